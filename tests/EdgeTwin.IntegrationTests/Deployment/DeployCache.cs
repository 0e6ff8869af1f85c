namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// Slow, reusable inputs of the deployment tests, cached outside the checkout so re-runs (and fresh clones on the same
/// CI machine) are fast: Debian root tarballs made by debootstrap and the release tarballs made by release.sh.
/// Directory: $EDGETWIN_TEST_CACHE, else /var/cache/edgetwin-tests when writable, else ~/.cache/edgetwin-tests.
/// Each item is built at most once per test run (one lock per item; the scripts also lock across processes).
/// </summary>
internal static class DeployCache
{
    private static readonly SemaphoreSlim ReleaseLock = new(1, 1);
    private static readonly Dictionary<string, SemaphoreSlim> RootLocks = new(StringComparer.Ordinal)
    {
        ["bookworm/amd64"] = new(1, 1), ["bookworm/arm64"] = new(1, 1), ["trixie/amd64"] = new(1, 1), ["trixie/arm64"] = new(1, 1),
    };

    /// <summary>The Debian releases the deployment tests make roots of (debian-root.sh's suites), with their numbers.</summary>
    public static IReadOnlyDictionary<string, string> DebianReleases { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bookworm"] = "Debian 12",
        ["trixie"] = "Debian 13",
    };
    private static readonly Dictionary<string, string> Releases = new(StringComparer.Ordinal);

    public static string Directory { get; } = Resolve();

    public static string ScriptsDir => Path.Combine(Tool.RepoRoot(), "tests", "EdgeTwin.IntegrationTests", "Deployment", "scripts");

    public static string ReleaseDir => Path.Combine(Directory, "release");

    private static string Resolve()
    {
        if (Environment.GetEnvironmentVariable("EDGETWIN_TEST_CACHE") is { Length: > 0 } env)
        {
            System.IO.Directory.CreateDirectory(env);
            return env;
        }

        try
        {
            var system = System.IO.Directory.CreateDirectory("/var/cache/edgetwin-tests").FullName;
            var probe = Path.Combine(system, $".probe-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return system;
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            var home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "edgetwin-tests");
            System.IO.Directory.CreateDirectory(home);
            return home;
        }
    }

    /// <summary>
    /// The release tarball for <paramref name="rid"/> from the current sources: release.sh -s rebuilds only when the
    /// sources changed since the cached one was made. The first build takes minutes (two RIDs ≈ 2 × 3–6 min on 2 cores).
    /// </summary>
    public static async Task<string> ReleaseAsync(string rid, Action<string> log, CancellationToken ct)
    {
        await ReleaseLock.WaitAsync(ct);
        try
        {
            if (Releases.TryGetValue(rid, out var known))
            {
                return known;
            }

            var script = Path.Combine(Tool.RepoRoot(), "src", "EdgeTwin.Agent", "deploy", "release.sh");
            var result = await Tool.RunAsync("/bin/bash", [script, "-s", "-o", ReleaseDir, rid], TimeSpan.FromMinutes(40), ct, Tool.RepoRoot());
            log(result.All);
            Assert.True(result.ExitCode == 0, $"release.sh {rid} failed with {result.ExitCode}:\n{result.All}");
            var tarball = Path.Combine(ReleaseDir, $"edgetwin-{StampedVersion()}-{rid}.tar.gz");
            Assert.True(File.Exists(tarball), $"release.sh made no {tarball}");
            Releases[rid] = tarball;
            return tarball;
        }
        finally
        {
            ReleaseLock.Release();
        }
    }

    /// <summary>
    /// A Debian minbase root tarball of <paramref name="suite"/> (bookworm = Debian 12, trixie = Debian 13), made once by
    /// debootstrap (scripts/debian-root.sh): <c>amd64</c> for the Ansible chroot, <c>arm64</c> for the agent alone and the
    /// Ansible chroot under qemu (the same packages plus libssl3). Skips the calling test, with the reason printed, only
    /// when debootstrap is missing or cannot run here (no network to the mirror, no permission to mknod/chroot).
    /// </summary>
    public static async Task<string> DebianRootAsync(string arch, Action<string> log, CancellationToken ct, string suite = "bookworm")
    {
        var release = $"{DebianReleases[suite]} ({suite})";
        if (Tool.Find("debootstrap") is null)
        {
            Skip("debootstrap (Debian package 'debootstrap') is not installed");
        }

        if (arch == "arm64" && Tool.Find("qemu-aarch64-static") is null)
        {
            Skip("qemu-aarch64-static (Debian package 'qemu-user-static') is not installed");
        }

        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Skip($"debootstrap and chroot need root (running as {Environment.UserName})");
        }

        var gate = RootLocks[$"{suite}/{arch}"];
        await gate.WaitAsync(ct);
        try
        {
            // An arm64 root's second stage runs every maintainer script emulated: 35 min was measured at load 35–45.
            var timeout = TimeSpan.FromMinutes(arch == "amd64" ? 30 : 75);
            var result = await Tool.RunAsync("/bin/bash", [Path.Combine(ScriptsDir, "debian-root.sh"), arch, Directory, suite], timeout, ct);
            if (result.ExitCode != 0)
            {
                log(result.All);
                var tail = string.Join('\n', result.All.Split('\n').TakeLast(8));
                // Only a machine that cannot reach the mirror may skip; with the mirror reachable a failed debootstrap
                // is a failure of the test setup and must show as one.
                if (await MirrorUnreachableAsync(suite, ct) is { } why)
                {
                    Skip($"debootstrap of a {release} {arch} root needs the Debian mirror, which is unreachable here ({why}):\n{tail}");
                }

                Assert.Fail($"debootstrap of a {release} {arch} root failed (exit {result.ExitCode}) although {Mirror} answers:\n{result.All}");
            }

            return result.StdOut.Trim().Split('\n')[^1];
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The mirror debian-root.sh uses ($EDGETWIN_DEBIAN_MIRROR, else deb.debian.org).</summary>
    public static string Mirror => Environment.GetEnvironmentVariable("EDGETWIN_DEBIAN_MIRROR") is { Length: > 0 } m ? m : "http://deb.debian.org/debian";

    /// <summary>Null when the mirror serves <paramref name="suite"/>'s Release file within 30 s, else why not.</summary>
    private static async Task<string?> MirrorUnreachableAsync(string suite, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            using var response = await http.GetAsync($"{Mirror.TrimEnd('/')}/dists/{suite}/Release", HttpCompletionOption.ResponseHeadersRead, ct);
            return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode} from {Mirror}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return $"{Mirror}: {ex.Message}";
        }
    }

    /// <summary>Unpacks <paramref name="tarball"/> into <paramref name="dir"/> (numeric owners kept: we are root).</summary>
    public static async Task ExtractAsync(string tarball, string dir, CancellationToken ct, int stripComponents = 0)
    {
        System.IO.Directory.CreateDirectory(dir);
        var args = new List<string> { "--numeric-owner", "-xf", tarball, "-C", dir };
        if (stripComponents > 0)
        {
            args.Add($"--strip-components={stripComponents}");
        }

        var result = await Tool.RunAsync("tar", args, TimeSpan.FromMinutes(10), ct);
        Assert.True(result.ExitCode == 0, $"tar {string.Join(' ', args)}: {result.All}");
    }

    public static string StampedVersion()
    {
        var props = File.ReadAllText(Path.Combine(Tool.RepoRoot(), "Directory.Build.props"));
        var start = props.IndexOf("<Version>", StringComparison.Ordinal) + "<Version>".Length;
        return props[start..props.IndexOf("</Version>", start, StringComparison.Ordinal)];
    }

    private static void Skip(string reason)
    {
        Console.WriteLine($"SKIP: {reason}");
        Assert.Skip(reason);
    }
}
