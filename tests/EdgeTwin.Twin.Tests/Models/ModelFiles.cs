using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>Paths of the committed models and a scratch models directory per test.</summary>
internal sealed class ModelFiles : IDisposable
{
    public ModelFiles()
    {
        Directory = Path.Combine(Path.GetTempPath(), "edgetwin-models-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string ManifestPath => Path.Combine(Directory, "manifest.json");

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"EdgeTwin.sln not found above {AppContext.BaseDirectory}");
    }

    public static string RepoModels => Path.Combine(RepoRoot(), "models");

    public static string FixturePath => Path.Combine(RepoRoot(), "tests", "EdgeTwin.Twin.Tests", "Models", "Fixtures", "rul-fixture.json");

    /// <summary>The committed manifest as a mutable tree.</summary>
    public static JsonObject RepoManifest() => JsonNode.Parse(File.ReadAllText(Path.Combine(RepoModels, "manifest.json")))!.AsObject();

    public static JsonObject RulEntry(JsonObject manifest) =>
        manifest["models"]!.AsArray().Single(m => (string?)m!["name"] == "rul-cmapss")!.AsObject();

    /// <summary>Copies the committed RUL model into the scratch directory and writes a manifest with only it.</summary>
    public JsonObject InstallRul(Action<JsonObject>? edit = null, byte[]? fileBytes = null, string fileName = "rul-cmapss.onnx") =>
        Install("rul-cmapss", edit, fileBytes, fileName);

    /// <summary>Copies the committed model <paramref name="name"/> into the scratch directory and writes a manifest with only it.</summary>
    public JsonObject Install(string name, Action<JsonObject>? edit = null, byte[]? fileBytes = null, string? fileName = null)
    {
        var manifest = RepoManifest();
        var entry = Entry(manifest, name);
        fileName ??= (string)entry["file"]!;
        var bytes = fileBytes ?? File.ReadAllBytes(Path.Combine(RepoModels, (string)entry["file"]!));
        File.WriteAllBytes(Path.Combine(Directory, fileName), bytes);
        entry["file"] = fileName;
        manifest["models"] = new JsonArray(entry.DeepClone());
        var only = Entry(manifest, name);
        edit?.Invoke(only);
        WriteManifest(manifest);
        return manifest;
    }

    public static JsonObject Entry(JsonObject manifest, string name) =>
        manifest["models"]!.AsArray().Single(m => (string?)m!["name"] == name)!.AsObject();

    /// <summary>Writes the manifest atomically by rename, as deploy does.</summary>
    public void WriteManifest(JsonObject manifest)
    {
        var tmp = ManifestPath + ".tmp";
        File.WriteAllText(tmp, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, ManifestPath, overwrite: true);
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
