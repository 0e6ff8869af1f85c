using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// Checks the tarballs made by src/EdgeTwin.Agent/deploy/release.sh (in $EDGETWIN_RELEASE_DIR, default
/// artifacts/release): SHA256SUMS matches, the layout is complete, and the host-architecture binary prints the version
/// stamped in Directory.Build.props and accepts the example config. Publishing takes minutes, so this suite does not
/// build the release itself; it skips with a printed reason when there is none.
/// </summary>
public sealed partial class ReleaseTarballTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string ReleaseDir =>
        Environment.GetEnvironmentVariable("EDGETWIN_RELEASE_DIR") is { Length: > 0 } d ? d : Path.Combine(Tool.RepoRoot(), "artifacts", "release");

    private static string StampedVersion()
    {
        var props = File.ReadAllText(Path.Combine(Tool.RepoRoot(), "Directory.Build.props"));
        return VersionElement().Match(props).Groups[1].Value;
    }

    private static string HostRid() => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "linux-x64",
        Architecture.Arm64 => "linux-arm64",
        var other => throw new PlatformNotSupportedException($"no EdgeTwin release for {other}"),
    };

    private static string Tarball(string rid)
    {
        var path = Path.Combine(ReleaseDir, $"edgetwin-{StampedVersion()}-{rid}.tar.gz");
        if (!File.Exists(path))
        {
            var reason = $"no release tarball {path}; run src/EdgeTwin.Agent/deploy/release.sh {rid} first";
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }

        return path;
    }

    [Fact]
    public async Task Sha256sums_match_every_tarball()
    {
        var tarball = Tarball(HostRid());
        var sums = await File.ReadAllLinesAsync(Path.Combine(ReleaseDir, "SHA256SUMS"), Ct);
        Assert.Contains(sums, l => l.EndsWith("  " + Path.GetFileName(tarball), StringComparison.Ordinal));
        foreach (var line in sums.Where(l => l.Length > 0))
        {
            var parts = line.Split("  ", 2);
            await using var stream = File.OpenRead(Path.Combine(ReleaseDir, parts[1]));
            var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, Ct));
            Assert.Equal(parts[0], actual);
        }
    }

    [Fact]
    public async Task Tarball_holds_binary_profiles_example_config_and_unit()
    {
        var tarball = Tarball(HostRid());
        var names = new List<string>();
        await using (var file = File.OpenRead(tarball))
        await using (var gz = new GZipStream(file, CompressionMode.Decompress))
        await using (var tar = new TarReader(gz))
        {
            while (await tar.GetNextEntryAsync(cancellationToken: Ct) is { } entry)
            {
                names.Add(entry.Name.TrimEnd('/'));
            }
        }

        var top = $"edgetwin-{StampedVersion()}-{HostRid()}";
        Assert.All(names, n => Assert.StartsWith(top, n, StringComparison.Ordinal));
        foreach (var required in new[] { "edgetwin", "edgetwin.service", "edgetwin.example.yaml", "VERSION", "device-profiles/apc-smart-ups.yaml", "libonnxruntime.so" })
        {
            Assert.Contains($"{top}/{required}", names);
        }

        Assert.DoesNotContain(names, n => n.EndsWith(".pdb", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Host_binary_prints_the_stamped_version_and_accepts_the_example_config()
    {
        var tarball = Tarball(HostRid());
        var tar = Tool.Find("tar") ?? throw new FileNotFoundException("tar");
        using var dir = new TempDir();
        var unpack = await Tool.RunAsync(tar, ["-xzf", tarball, "-C", dir.Path, "--strip-components=1"], Timeout, Ct);
        Assert.Equal(0, unpack.ExitCode);
        var binary = Path.Combine(dir.Path, "edgetwin");

        var version = await Tool.RunAsync(binary, ["--version"], Timeout, Ct, dir.Path);
        output.WriteLine(version.All);
        Assert.Equal(0, version.ExitCode);
        Assert.StartsWith(StampedVersion(), version.StdOut.Trim(), StringComparison.Ordinal);

        // The example config names a secret file beside it (secrets/ops-auth), as on a gateway's /etc/edgetwin.
        var examples = Path.Combine(Tool.RepoRoot(), "device-profiles", "examples");
        Directory.CreateDirectory(Path.Combine(dir.Path, "secrets"));
        File.Copy(Path.Combine(examples, "secrets", "ops-auth"), Path.Combine(dir.Path, "secrets", "ops-auth"));
        var check = await Tool.RunAsync(
            binary,
            ["check", "--config", Path.Combine(dir.Path, "edgetwin.example.yaml"), "--profiles-dir", Path.Combine(dir.Path, "device-profiles")],
            Timeout,
            Ct,
            dir.Path);
        output.WriteLine(check.All);
        Assert.Equal(0, check.ExitCode);
    }

    [GeneratedRegex("<Version>([^<]+)</Version>")]
    private static partial Regex VersionElement();
}
