using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// src/EdgeTwin.Agent/deploy/edgetwin.service checked by systemd itself: <c>systemd-analyze verify</c> must be silent and
/// <c>systemd-analyze security --offline=true</c> must rate the exposure at 2.5 or lower.
/// </summary>
public sealed partial class SystemdUnitTests(ITestOutputHelper output)
{
    private const double MaxExposure = 2.5;
    private const string InstalledBinary = "/opt/edgetwin/current/edgetwin";
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static string UnitPath => Path.Combine(Tool.RepoRoot(), "src", "EdgeTwin.Agent", "deploy", "edgetwin.service");

    private static string SystemdAnalyze()
    {
        var path = Tool.Find("systemd-analyze");
        if (path is null)
        {
            const string reason = "systemd-analyze (Debian package 'systemd') is not installed";
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }

        return path;
    }

    [Fact]
    public async Task Verify_reports_nothing()
    {
        var analyze = SystemdAnalyze();
        using var dir = new TempDir();

        // verify checks that ExecStart= is executable; the release is not installed here, so point it at a stand-in.
        var binary = Path.Combine(dir.Path, "edgetwin");
        await File.WriteAllTextAsync(binary, "#!/bin/sh\nexit 0\n", Ct);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(binary, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        }
        var unit = await File.ReadAllTextAsync(UnitPath, Ct);
        Assert.Contains(InstalledBinary, unit, StringComparison.Ordinal);
        var copy = Path.Combine(dir.Path, "edgetwin.service");
        await File.WriteAllTextAsync(copy, unit.Replace(InstalledBinary, binary, StringComparison.Ordinal), Ct);

        var result = await Tool.RunAsync(analyze, ["verify", "--man=no", copy], Timeout, Ct, dir.Path);
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.All.Trim());
    }

    [Fact]
    public async Task Security_exposure_is_at_most_2_5()
    {
        var analyze = SystemdAnalyze();
        using var dir = new TempDir();
        var result = await Tool.RunAsync(
            analyze,
            ["security", "--offline=true", $"--threshold={(int)(MaxExposure * 10)}", "--no-pager", UnitPath],
            Timeout,
            Ct,
            dir.Path);
        output.WriteLine(result.All);
        var match = ExposureLine().Match(result.StdOut);
        Assert.True(match.Success, $"no 'Overall exposure level' line in:\n{result.All}");
        var exposure = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        Console.WriteLine($"edgetwin.service exposure: {exposure:0.0} (limit {MaxExposure})");
        Assert.InRange(exposure, 0, MaxExposure);
        Assert.Equal(0, result.ExitCode); // --threshold: systemd agrees it is within the limit
    }

    [Fact]
    public void Unit_declares_what_the_fleet_relies_on()
    {
        var settings = ReadService(File.ReadAllLines(UnitPath));
        Assert.Equal(["notify"], settings["Type"]);
        Assert.Equal(["on-failure"], settings["Restart"]);
        Assert.Equal(["edgetwin"], settings["User"]);
        Assert.Equal(["edgetwin"], settings["StateDirectory"]);
        Assert.Equal(["edgetwin"], settings["ConfigurationDirectory"]);
        // Regression: LogsDirectory=edgetwin created /var/log/edgetwin, which nothing writes (the agent logs to the
        // journal): an operator looked there for logs.
        Assert.False(settings.ContainsKey("LogsDirectory"), "LogsDirectory= declares /var/log/edgetwin, which nothing writes");
        Assert.Equal(["strict"], settings["ProtectSystem"]);
        Assert.Equal(["yes"], settings["NoNewPrivileges"]);
        Assert.Equal(["yes"], settings["PrivateTmp"]);
        Assert.Equal([""], settings["CapabilityBoundingSet"]); // empty: no capabilities at all
        Assert.Equal(["closed"], settings["DevicePolicy"]);
        Assert.All(settings["DeviceAllow"], d => Assert.Matches("^char-(gpiochip|i2c|tty[A-Za-z]+) rw$", d));
        var watchdog = Assert.Single(settings["WatchdogSec"]);
        Assert.Matches("^[1-9][0-9]*s$", watchdog);
        // The agent's own SIGTERM budget (45 s) must fit inside systemd's, or the flush is cut short by SIGKILL.
        Assert.Equal(["60s"], settings["TimeoutStopSec"]);
        Assert.Contains("2", settings["RestartPreventExitStatus"]);
        // One descriptor per Modbus TCP meter: a gateway whose DefaultLimitNOFILE= is 1024 capped a 1,000-meter site.
        Assert.Equal(["65536"], settings["LimitNOFILE"]);
        // Restarted for ever at a bounded rate: the 5-in-10-minutes start limit left the agent dead after a burst of
        // runtime failures (AnsibleRoleTests.Regression_five_runtime_failures_in_ten_minutes_…, the role's unit).
        Assert.Equal(["15s"], settings["RestartSec"]);
        var unitSection = ReadService(File.ReadAllLines(UnitPath), "[Unit]");
        Assert.Equal(["0"], unitSection["StartLimitIntervalSec"]);
        Assert.False(unitSection.ContainsKey("StartLimitBurst"));
    }

    /// <summary>The [Service] section as key → values (repeated keys keep every value, in order).</summary>
    internal static Dictionary<string, List<string>> ReadService(IEnumerable<string> lines, string section = "[Service]")
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var inService = false;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            if (line[0] == '[')
            {
                inService = line == section;
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (!inService || eq < 0)
            {
                continue;
            }

            var key = line[..eq].Trim();
            if (!result.TryGetValue(key, out var values))
            {
                result[key] = values = [];
            }

            values.Add(line[(eq + 1)..].Trim());
        }

        return result;
    }

    [GeneratedRegex(@"Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)")]
    private static partial Regex ExposureLine();
}
