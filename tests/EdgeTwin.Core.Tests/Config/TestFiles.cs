namespace EdgeTwin.Core.Tests.Config;

/// <summary>Shipped files (copied beside the test binary by EdgeTwin.Core.csproj) and temporary config files.</summary>
internal static class TestFiles
{
    public static string ProfilesDir => Path.Combine(AppContext.BaseDirectory, "device-profiles");

    public static string SchemaDir => Path.Combine(ProfilesDir, "schema");

    public static string ExamplesDir => Path.Combine(ProfilesDir, "examples");

    public static IEnumerable<string> ShippedProfiles() =>
        Directory.EnumerateFiles(ProfilesDir, "*.yaml").Order(StringComparer.Ordinal);

    public static IEnumerable<string> Examples() =>
        Directory.EnumerateFiles(ExamplesDir, "*.yaml").Order(StringComparer.Ordinal);
}

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "edgetwin-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        var full = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp dir must not fail a test.
        }
    }
}
