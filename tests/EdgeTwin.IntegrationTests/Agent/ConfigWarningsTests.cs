using System.Collections.Concurrent;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Thermal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// A custom PDU profile with an enum name in another case and its power in <c>w</c>, and enum names in another case in the
/// site config's own and an owned section (<c>alerts</c>): what <c>edgetwin check</c> prints,
/// what the agent logs at start, and what the thermal twin makes of the power.
/// </summary>
public sealed class ConfigWarningsTests
{
    private const string Profile = """
        profile: custom-pdu
        vendor: X
        model: Y
        protocol: snmp
        source: vendor MIB
        metrics:
          - { name: total_power, oid: .1.3.6.1.4.1.99.1.0, unit: w, kind: Gauge, role: pdu.power }
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_check_and_the_agent_start_said_nothing_about_an_enum_in_another_case_or_a_power_unit_w()
    {
        var (path, profile) = WriteSite(Profile);

        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.True(exit == 0, $"exit {exit}: {error}\n{output}");
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] warnings =
        [
            $"{profile}:7:58: warning: metrics[0].unit: unknown unit 'w' (did you mean 'W'?); it is kept as written, but the twin and the centre understand only the units in device-profiles/README.md",
            $"{profile}:7:67: warning: metrics[0].kind: 'Gauge' is accepted as 'gauge'; write 'gauge' (the schema and editors accept only that spelling)",
            $"{path}:18:19: warning: credentials.pub.version: '2C' is accepted as '2c'; write '2c' (the schema and editors accept only that spelling)",
            $"{path}:27:17: warning: alerts.rules[0].severity: 'Critical' is accepted as 'critical'; write 'critical' (the schema and editors accept only that spelling)",
        ];
        Assert.Equal(warnings, lines[..^1]);
        Assert.StartsWith($"OK: {path}: site dc1", lines[^1], StringComparison.Ordinal);
        Assert.EndsWith("; 4 warnings", lines[^1], StringComparison.Ordinal);

        // The agent's start logs the same warnings, and the thermal twin says it leaves the power out.
        var loaded = AgentConfigFile.LoadSite(path);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));
        var logs = await AgentStartLogs.CaptureAsync(loaded.Config!, s => s.AddThermalTwin());

        var logged = logs.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToList();
        Assert.Equal(warnings.Select(w => "Config: " + w), logged.Where(m => m.StartsWith("Config: ", StringComparison.Ordinal)));
        Assert.Contains(
            "Thermal twin: device pdu-a metric total_power (pdu.power, profile custom-pdu) is in 'w', not W, kW or MW: not used as rack power",
            logged);
    }

    [Fact]
    public void Regression_a_pdu_power_in_w_or_Watt_was_taken_as_kW()
    {
        // PowerScale treated every unit but W and MW as kW: a custom profile's 'w' fed the twin 1000 times the rack's power.
        var (path, _) = WriteSite(Profile);
        var loaded = AgentConfigFile.LoadSite(path);
        Assert.True(loaded.IsValid, string.Join("\n", loaded.Problems));
        var config = loaded.Config!;
        var map = new ThermalSeriesMap(config, [.. ThermalZone.FromTopology(config.Site).Where(z => z.Racks.Count > 0)]);

        double? Scale(string unit)
        {
            var cells = map.Bind(new SeriesDescriptor("pdu-a", "total_power", unit, MetricKind.Gauge, "pdu.power"));
            return cells.Count == 0 ? null : Assert.Single(cells.Select(c => c.Scale).Distinct());
        }

        // pdu-a feeds two racks: each gets half, in kW.
        Assert.Equal(2, map.Bind(new SeriesDescriptor("pdu-a", "total_power", "W", MetricKind.Gauge, "pdu.power")).Count);
        Assert.Equal(0.0005, Scale("W"));
        Assert.Equal(0.5, Scale("kW"));
        Assert.Equal(500, Scale("MW"));
        Assert.Null(Scale("w"));
        Assert.Null(Scale("Watt"));
        Assert.Null(Scale("kWh"));
        Assert.Equal(
            ["device pdu-a metric total_power (pdu.power, profile custom-pdu) is in 'w', not W, kW or MW: not used as rack power"],
            map.UnusablePower());
    }

    private static (string Path, string Profile) WriteSite(string profileYaml)
    {
        var dir = AgentFiles.TempDir("edgetwin-config-warnings-");
        var profiles = Directory.CreateDirectory(Path.Combine(dir.FullName, "profiles")).FullName;
        var profile = Path.Combine(profiles, "custom-pdu.yaml");
        File.WriteAllText(profile, profileYaml);
        var path = Path.Combine(dir.FullName, "site.yaml");
        File.WriteAllText(path, $"""
            site:
              id: dc1
              gateway_id: gw-test
              rooms:
                - id: room1
                  rows:
                    - id: A
                      racks:
                        - {"{"} id: A01, position: 1, power_budget_kw: 6, feeds: [pdu-a] {"}"}
                        - {"{"} id: A02, position: 2, power_budget_kw: 6, feeds: [pdu-a] {"}"}
              power:
                pdus:
                  - {"{"} id: pdu-a, device: pdu-a, breaker_a: 32 {"}"}
            profiles_dir: {profiles}
            devices:
              - {"{"} id: pdu-a, profile: custom-pdu, address: "udp:127.0.0.1:9", credentials: pub, interval: 10s, timeout: 200ms {"}"}
            credentials:
              pub: {"{"} version: 2C, community: public {"}"}
            outbox: {"{"} path: {Path.Combine(dir.FullName, "outbox.db")} {"}"}
            alerts:
              rules:
                - name: pdu-high
                  type: threshold
                  match:
                    role: pdu.power
                  above: 5000
                  severity: Critical
            """);
        // Installed as the Ansible role does: at 0644 the inline community would add its own warning (SecretFileWarningsTests).
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        }

        return (path, profile);
    }
}
