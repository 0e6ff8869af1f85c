namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The role's readiness check in <c>unit</c> mode (a gateway with systemd), with stand-in <c>systemctl</c> and
/// <c>journalctl</c> on PATH (this machine has no systemd as PID 1): a failed unit is reported with the agent's last
/// output from the journal, scrubbed, and without a journal still reported. Runs the role's files/edgetwin-ready.
/// </summary>
public sealed class ReadyUnitTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string ReadyScript => Path.Combine(Tool.RepoRoot(), "ansible", "roles", "edgetwin", "files", "edgetwin-ready");

    private static void Script(string path, string text)
    {
        File.WriteAllText(path, text.Replace("\r", "", StringComparison.Ordinal) + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        }
    }

    [Fact]
    public async Task Regression_edgetwin_ready_unit_printed_only_the_systemd_state_not_the_agents_last_output()
    {
        var python = Tool.DebianPython();
        using var dir = new TempDir();
        var bin = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName;
        // systemd's view of a release that exited before READY=1 five times.
        Script(Path.Combine(bin, "systemctl"), """
            #!/bin/sh
            printf 'ActiveState=failed\nSubState=failed\nNRestarts=5\nMainPID=0\n'
            """);
        var env = new Dictionary<string, string> { ["PATH"] = bin };

        // No journalctl on the host: still the verdict, and why there is no output.
        var noJournal = await Tool.RunAsync(python, [ReadyScript, "unit", "--timeout", "20", "--settle", "0", "edgetwin.service"], Timeout, Ct, dir.Path, env);
        output.WriteLine(noJournal.All);
        Assert.Equal(1, noJournal.ExitCode);
        Assert.Contains("NOT READY: edgetwin.service failed", noJournal.StdErr, StringComparison.Ordinal);
        Assert.Contains("no journalctl on this host", noJournal.StdErr, StringComparison.Ordinal);

        // The agent's output in the journal, with a broker password in it.
        var args = Path.Combine(dir.Path, "journalctl-args");
        Script(Path.Combine(bin, "journalctl"), $$"""
            #!/bin/sh
            echo "$*" > '{{args}}'
            echo "/etc/edgetwin/edgetwin.yaml:12:5: uplinks.mqtt.host: cannot resolve broker.example.net"
            echo "uplink: cannot connect to mqtts://gw1:mqtt-pw-0c1d@broker.example.net:8883/"
            echo "edgetwin: refusing to start"
            """);
        var result = await Tool.RunAsync(python, [ReadyScript, "unit", "--timeout", "20", "--settle", "0", "edgetwin.service"], Timeout, Ct, dir.Path, env);
        output.WriteLine(result.All);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("NOT READY: edgetwin.service failed", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("/etc/edgetwin/edgetwin.yaml:12:5: uplinks.mqtt.host: cannot resolve broker.example.net", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("edgetwin: refusing to start", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("mqtts://***@broker.example.net:8883/", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("mqtt-pw-0c1d", result.All, StringComparison.Ordinal);
        Assert.Equal("-u edgetwin.service -n 40 --no-pager -o cat", (await File.ReadAllTextAsync(args, Ct)).Trim());
    }

    [Fact]
    public async Task A_journalctl_that_hangs_does_not_hold_the_verdict()
    {
        var python = Tool.DebianPython();
        using var dir = new TempDir();
        var bin = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName;
        Script(Path.Combine(bin, "systemctl"), """
            #!/bin/sh
            printf 'ActiveState=failed\nSubState=failed\nNRestarts=1\nMainPID=0\n'
            """);
        Script(Path.Combine(bin, "journalctl"), """
            #!/bin/sh
            exec /bin/sleep 60
            """);
        var started = DateTime.UtcNow;
        var result = await Tool.RunAsync(python, [ReadyScript, "unit", "--timeout", "20", "--settle", "0", "edgetwin.service"], Timeout, Ct, dir.Path, new Dictionary<string, string> { ["PATH"] = bin });
        output.WriteLine(result.All);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("did not answer within 15s", result.StdErr, StringComparison.Ordinal);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(45), $"took {(DateTime.UtcNow - started).TotalSeconds:0} s");
    }
}
