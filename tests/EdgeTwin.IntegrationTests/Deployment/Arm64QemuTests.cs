using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The linux-arm64 release run on an arm64 Debian 12 root (debootstrap --foreign, second stage through qemu; cached)
/// under qemu-aarch64-static via binfmt_misc: <c>--version</c>, <c>check</c> on the example config, and a 75 s
/// <c>demo</c> that reads the simulated devices, runs the agent's pipeline and buffers in the outbox. The emulation's
/// own settings (an ARM /proc/cpuinfo, DOTNET_EnableWriteXorExecute=0) are <see cref="Arm64Emulation"/>'s.
/// </summary>
public sealed partial class Arm64QemuTests(ITestOutputHelper output)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Arm64_release_prints_its_version_checks_the_example_config_and_runs_the_demo_under_qemu()
    {
        var rootTar = await DeployCache.DebianRootAsync("arm64", output.WriteLine, Ct);
        await Arm64Emulation.RequireBinfmtAsync(Ct);

        var release = await DeployCache.ReleaseAsync("linux-arm64", output.WriteLine, Ct);
        using var work = new TempDir();
        var root = Path.Combine(work.Path, "root");
        await DeployCache.ExtractAsync(rootTar, root, Ct);
        var app = Path.Combine(root, "opt", "edgetwin");
        await DeployCache.ExtractAsync(release, app, Ct, stripComponents: 1);
        // The example config as shipped: the secret file it names (secrets/ops-auth) is in the tarball beside it.

        var version = await InRootAsync(root, ["/opt/edgetwin/edgetwin", "--version"], TimeSpan.FromMinutes(6));
        Assert.True(version.ExitCode == 0, version.Explained);
        Assert.StartsWith(DeployCache.StampedVersion(), version.StdOut.Trim(), StringComparison.Ordinal);
        var arch = await InRootAsync(root, ["/usr/bin/uname", "-m"], TimeSpan.FromMinutes(1));
        Assert.Equal("aarch64", arch.StdOut.Trim()); // really emulated, not the host's x86-64

        var check = await InRootAsync(root, ["/opt/edgetwin/edgetwin", "check", "--config", "/opt/edgetwin/edgetwin.example.yaml", "--profiles-dir", "/opt/edgetwin/device-profiles"], TimeSpan.FromMinutes(10));
        Assert.True(check.ExitCode == 0, check.Explained);

        // Under emulation every instruction is translated: on an idle 2-core machine the agent takes about 24 s to start
        // (JIT, ONNX sessions), its first polls take 7 s more and the thermal prediction came 9 s after the first
        // samples; a 20 s run missed it in a CI run. At load 32 the first polls timed out for 30 s, and a 40 s run with the
        // failure 15 s after the agent started polling missed it again. The failure now counts from the agent's first
        // reading of crac1, and comes 25 s after it: more than two of the twin's 10 s frames. At 10 s a CI run had the
        // twin's first frame with crac1 running land after the stop (polls of the emulated agent were overrunning), and the
        // twin reported crac1 "already down when the agent started". The run lasts 90 s once the agent polls; the limit
        // is for a machine loaded by the suite.
        var demo = await InRootAsync(root, ["/opt/edgetwin/edgetwin", "demo", "--duration", "90", "--failure-at", "25", "--profiles-dir", "/opt/edgetwin/device-profiles"], TimeSpan.FromMinutes(15));
        Assert.True(demo.ExitCode == 0, demo.Explained); // 0 = the agent's pipeline (twin models, ONNX models, alerting) had no fatal error
        var text = demo.StdOut;
        // Reads: devices answer and samples flow through the pipeline. Under emulation on a loaded machine some polls
        // overrun their 2 s timeout, so not every device need be up at every status line.
        var agent = AgentLine().Matches(text).LastOrDefault();
        Assert.True(agent is not null, $"no 'agent: …' line:\n{text}");
        Assert.True(int.Parse(agent.Groups[1].Value, CultureInfo.InvariantCulture) > 0, $"no device up:\n{text}");
        Assert.True(long.Parse(agent.Groups[3].Value, CultureInfo.InvariantCulture) > 0, text);
        // Buffers: the outbox took entries (the MQTT acknowledgements are reported, not asserted: the uplink's first
        // connect can be late in the run under emulation).
        Assert.Matches(@"outbox: [1-9]\d* appended", text);
        // Predicts: the thermal twin (warm-started, ONNX and twin models loaded) sees the scripted cooling failure and
        // counts down to 27 °C on the emulated CPU.
        Assert.Matches(@"thermal twin: crac1 down: 27 °C (in \d+:\d\d|not within)", text);
        // The twin saw crac1 run, then stop: the failure is scripted from the agent's first reading of the unit.
        Assert.DoesNotContain("already down when the agent started", text, StringComparison.Ordinal);
        Assert.Matches(@"edgetwin demo: stopped after \d+ s, [1-9]\d* samples", text);
        Console.WriteLine($"arm64 under qemu: {agent.Value}; {OutboxLine().Matches(text).LastOrDefault()?.Value}");
    }

    /// <summary>Runs a command chrooted into the arm64 root, /proc mounted with the ARM cpuinfo over it, /dev bound.</summary>
    private async Task<Tool.Result> InRootAsync(string root, IReadOnlyList<string> command, TimeSpan timeout)
    {
        var unshare = Tool.Find("unshare") ?? throw new FileNotFoundException("unshare (util-linux)");
        var args = new List<string>
        {
            "-m", "--propagation", "private", "--", "/bin/sh", "-c",
            Tool.MountIntoRootScript(cpuInfo: true) + " && r=\"$0\" && shift && exec chroot \"$r\" /usr/bin/env HOME=/root \"$@\"",
            root, Arm64Emulation.CpuInfo,
        };
        args.AddRange(command);
        var started = DateTime.UtcNow;
        var result = await Tool.RunAsync(unshare, args, timeout, Ct, root, Arm64Emulation.Environment);
        output.WriteLine($"---- [arm64/qemu] {string.Join(' ', command)} (exit {result.ExitCode}, {(DateTime.UtcNow - started).TotalSeconds:0.0} s)");
        output.WriteLine(result.All);
        return result;
    }

    [GeneratedRegex(@"agent: (\d+)/(\d+) devices up, (\d+) samples")]
    private static partial Regex AgentLine();

    [GeneratedRegex(@"outbox: \d+ appended, \d+ waiting, mqtt acked up to #\d+")]
    private static partial Regex OutboxLine();
}
