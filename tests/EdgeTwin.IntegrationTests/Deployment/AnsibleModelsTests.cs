using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The role's models tasks (<c>--tags models</c>) run on this machine (local connection) with the real linux-x64
/// release (release.sh, cached; see <see cref="DeployCache"/>) as the installed one and the repository's models: the
/// staged set is verified by the release's own <c>edgetwin models verify --dir</c> before it is published, a set it
/// rejects is not published and fails the play with its message, and the live set a new one replaces is kept for a
/// rollback.
/// </summary>
public sealed partial class AnsibleModelsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string AnsibleDir => Path.Combine(Tool.RepoRoot(), "ansible");

    [Fact]
    public async Task Regression_models_tag_published_a_manifest_the_installed_release_rejects_and_kept_no_previous_set()
    {
        var playbook = Tool.Require("ansible-playbook", "ansible");
        var repoModels = Path.Combine(Tool.RepoRoot(), "models");
        if (!File.Exists(Path.Combine(repoModels, "manifest.json")))
        {
            Assert.Skip("the repository has no models/manifest.json");
        }

        var tarball = await DeployCache.ReleaseAsync(ReleaseTarballRid(), output.WriteLine, Ct);
        using var dir = new TempDir();
        var current = Path.Combine(dir.Path, "current");
        await DeployCache.ExtractAsync(tarball, current, Ct, stripComponents: 1);
        var dest = Path.Combine(dir.Path, "etc", "models");

        // The repository's models, as a site's models directory holds them (manifest + the files it names).
        var good = ModelSet(dir, "good", repoModels, manifest => manifest);
        var first = await DeployModelsAsync(playbook, dir, good, dest, current);
        Assert.True(first.Result.ExitCode == 0, first.Result.Explained);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(good, "manifest.json"), Ct), await File.ReadAllBytesAsync(Path.Combine(dest, "manifest.json"), Ct));
        Assert.False(Directory.Exists(dest + ".previous"), "a first deploy has no previous set to keep");

        // Unchanged: nothing to do.
        var again = await DeployModelsAsync(playbook, dir, good, dest, current);
        Assert.True(again.Result.ExitCode == 0, again.Result.Explained);
        Assert.Equal(0, again.Changed);

        // The audit's case: the files' sha256 unchanged (the controller's hash check passes), the manifest's input
        // shape wrong. The release rejects it: not published, the play fails with the verifier's reason.
        var bad = ModelSet(dir, "bad", repoModels, manifest =>
        {
            var entry = manifest["models"]!.AsArray().First(m => (string?)m!["name"] == "bearing-rul")!;
            entry["version"] = "1.0.1";
            entry["inputs"]![0]!["shape"]![1] = 47;
            return manifest;
        });
        var rejected = await DeployModelsAsync(playbook, dir, bad, dest, current);
        Assert.NotEqual(0, rejected.Result.ExitCode);
        Assert.Contains("rejects these models", rejected.Result.All, StringComparison.Ordinal);
        Assert.Contains("the manifest says [-1,47,3]", rejected.Result.All, StringComparison.Ordinal);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(good, "manifest.json"), Ct), await File.ReadAllBytesAsync(Path.Combine(dest, "manifest.json"), Ct));
        Assert.DoesNotMatch(@"TASK \[edgetwin : Publish manifest\.json[^\n]*\n(ok|changed)", rejected.Result.All);

        // A set the release accepts replaces the live one; the live one is kept whole as the previous set.
        var next = ModelSet(dir, "next", repoModels, manifest =>
        {
            manifest["models"]!.AsArray().First(m => (string?)m!["name"] == "bearing-rul")!["version"] = "1.0.1";
            return manifest;
        });
        var published = await DeployModelsAsync(playbook, dir, next, dest, current);
        Assert.True(published.Result.ExitCode == 0, published.Result.Explained);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(next, "manifest.json"), Ct), await File.ReadAllBytesAsync(Path.Combine(dest, "manifest.json"), Ct));
        var previous = dest + ".previous";
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(good, "manifest.json"), Ct), await File.ReadAllBytesAsync(Path.Combine(previous, "manifest.json"), Ct));
        foreach (var model in Directory.GetFiles(good, "*.onnx"))
        {
            Assert.True(File.Exists(Path.Combine(previous, Path.GetFileName(model))), $"{Path.GetFileName(model)} missing from the previous set");
        }

        // The kept set is one the release accepts as it is (what the README's rollback copies back).
        var verify = await Tool.RunAsync(Path.Combine(current, "edgetwin"), ["models", "verify", "--dir", previous], Timeout, Ct, current);
        output.WriteLine(verify.All);
        Assert.True(verify.ExitCode == 0, verify.Explained);
    }

    private static string ReleaseTarballRid() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "linux-x64",
        System.Runtime.InteropServices.Architecture.Arm64 => "linux-arm64",
        var other => throw new PlatformNotSupportedException($"no EdgeTwin release for {other}"),
    };

    /// <summary>A models directory <paramref name="name"/>: the repository's model files and its manifest as <paramref name="edit"/> leaves it.</summary>
    private static string ModelSet(TempDir dir, string name, string repoModels, Func<JsonNode, JsonNode> edit)
    {
        var set = Directory.CreateDirectory(Path.Combine(dir.Path, name)).FullName;
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(repoModels, "manifest.json")))!;
        foreach (var entry in manifest["models"]!.AsArray())
        {
            var file = (string)entry!["file"]!;
            File.Copy(Path.Combine(repoModels, file), Path.Combine(set, file));
        }

        File.WriteAllText(Path.Combine(set, "manifest.json"), edit(manifest).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return set;
    }

    private sealed record Play(Tool.Result Result, int Changed);

    private async Task<Play> DeployModelsAsync(string playbook, TempDir dir, string src, string dest, string current)
    {
        var extra = $$"""{"edgetwin_models_src": "{{src}}", "edgetwin_models_dir": "{{dest}}", "edgetwin_current": "{{current}}", "edgetwin_group": "root"}""";
        var result = await Tool.RunRoleTasksAsync(playbook, dir.Path, "models.yml", extra, Timeout, Ct);
        output.WriteLine(result.All);
        var recap = Recap().Match(result.StdOut);
        Assert.True(recap.Success, $"no PLAY RECAP for localhost:\n{result.All}");
        return new Play(result, int.Parse(recap.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"localhost\s*:\s*ok=\d+\s+changed=(\d+)")]
    private static partial Regex Recap();
}
