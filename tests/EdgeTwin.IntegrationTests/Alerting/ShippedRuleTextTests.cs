using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Faults;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// The shipped datacenter.yaml rules on the simulated site with the real agent pipeline (SNMP/Modbus on loopback, the
/// thermal twin), fired by the simulator's faults, read as the operator at 3 a.m. reads them: the journal's RFC 5424
/// line (a real Unix datagram socket), the webhook JSON (the MQTT sink's payload is the same body) and Alertmanager's.
/// </summary>
public sealed partial class ShippedRuleTextTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Regression_the_shipped_datacenter_alerts_of_a_mains_and_cooling_failure_were_unclear_to_the_operator()
    {
        await using var sim = await SimPaths.StartAsync(racks: 2, units: 1, machines: 0);
        var site = sim.Site;
        var config = AlertingAgentSetup.SiteConfig(sim);
        await using var hook = new TinyHttpServer();
        await using var manager = new TinyHttpServer();
        var dir = Directory.CreateTempSubdirectory("edgetwin-shipped-text-");
        var path = Path.Combine(dir.FullName, "log");
        using var journal = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        journal.Bind(new UnixDomainSocketEndPoint(path));
        var lines = new ConcurrentQueue<string>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var receiving = Task.Run(async () =>
        {
            var buffer = new byte[65536];
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var n = await journal.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                    lines.Enqueue(Encoding.UTF8.GetString(buffer, 0, n));
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }, Ct);

        // The file's rules as shipped, with this test's sinks under the names their targets use; for: shortened to 1 s so the
        // run takes a minute (the texts do not show it).
        var file = File.ReadAllText(Path.Combine(SimPaths.Root, "device-profiles", "examples", "alert-rules", "datacenter.yaml"));
        var rules = ForRegex().Replace(file[file.IndexOf("\n  rules:", StringComparison.Ordinal)..], "for: 1s");
        var yaml = "alerts:\n  group_interval: 0s\n  sinks:\n"
            + $"    - {{ name: journal, type: syslog, socket: {path} }}\n"
            + $"    - {{ name: noc, type: webhook, url: \"{hook.Url}\" }}\n"
            + $"    - {{ name: panel, type: webhook, format: alertmanager, url: \"http://127.0.0.1:{manager.Port}\" }}\n"
            + $"    - {{ name: local-broker, type: webhook, url: \"{hook.Url}\" }}"
            + rules;
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "datacenter.yaml", diagnostics)!;
        var alerts = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), dir.FullName);
        Assert.Empty(diagnostics.Sorted());
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddThermalTwin(new ThermalTwinOptions()).AddAlerting(new AlertingAgentOptions { StateDirectory = dir.FullName, Config = alerts }),
        };

        string? Line(string rule, string status) => lines.FirstOrDefault(l => l.Contains($" rule=\"{rule}\" ", StringComparison.Ordinal) && l.Contains($" status=\"{status}\" ", StringComparison.Ordinal));
        Task Until(string rule, string status) => AlertingAgentSetup.Until(() => Line(rule, status) is not null, $"{rule} {status} in the journal", 60);
        using var agent = AgentHostBuilder.Build(config, options);
        await agent.StartAsync(Ct);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(5), Ct);

            // crac1 (the only unit) stops and pdu-a01-a's feed is overloaded for 30 s; then both are back.
            site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
            site.Apply(FaultCommand.Parse("pdu-overload:pdu-a01-a"));
            site.Step(TimeSpan.FromSeconds(30));
            sim.Refresh();
            await Until("cooling-unit-failed", "firing");
            await Until("pdu-phase-current-over-breaker", "firing");
            await Until("rack-inlet-above-recommended", "firing");
            site.Apply(FaultCommand.Parse("cooling-restore:crac1"));
            site.Apply(FaultCommand.Parse("pdu-clear:pdu-a01-a"));
            site.Step(TimeSpan.FromSeconds(60));
            sim.Refresh();
            await Until("cooling-unit-failed", "resolved");

            // Mains lost on ups1 until its battery has run out (about 14 min at this load).
            site.Apply(FaultCommand.Parse("utility-fail:ups1"));
            site.Step(TimeSpan.FromSeconds(30));
            sim.Refresh();
            await Until("ups-on-battery", "firing");
            for (var k = 0; k < 60 && site.Ups("ups1").OutputOn; k++)
            {
                site.Step(TimeSpan.FromSeconds(60));
            }

            Assert.False(site.Ups("ups1").OutputOn, "ups1's battery ran out");
            sim.Refresh();
            await Until("ups-output-off", "firing");
            site.Apply(FaultCommand.Parse("utility-restore:ups1"));
            site.Step(TimeSpan.FromSeconds(600));
            sim.Refresh();
            await Until("ups-output-off", "resolved");
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            await stop.CancelAsync();
            await receiving;
            foreach (var l in lines)
            {
                TestContext.Current.TestOutputHelper?.WriteLine(l);
            }

            dir.Delete(recursive: true);
        }

        // The state the UPS reports, not the rule's list of both vendors' names ("battery / onBattery").
        Assert.EndsWith("device ups1 (room1, site sim): output_source reports battery (state code 5) since " + Since(Line("ups-on-battery", "firing")!), Line("ups-on-battery", "firing")!, StringComparison.Ordinal);

        // The battery ran out: output none. ups-on-battery clears then, and nothing said the load had lost its power.
        Assert.Contains("] device ups1 (room1, site sim): output_source reports none (state code 2) since ", Line("ups-output-off", "firing"), StringComparison.Ordinal);
        Assert.Contains(" severity=\"critical\" ", Line("ups-output-off", "firing"), StringComparison.Ordinal);
        Assert.Contains(" action=\"The load on this UPS has no power:", Line("ups-output-off", "firing"), StringComparison.Ordinal);

        // A per-rack alert names its rack once ("rack A02 (room1, site sim): … above 27 °C in rack A02").
        var rack = Line("rack-inlet-above-recommended", "firing")!;
        Assert.Matches(@"\] rack A0[12] \(room1, site sim\): inlet_temperature [0-9.]+ °C above 27 °C since \d\d:\d\d:\d\d UTC$", rack);

        // The twin's own "resolved" text, and what the worst value was (it read "room1/cooling_failure: resolved (last
        // failed_unit_count = 1); peak 1").
        Assert.EndsWith("] cooling_failure in room1 resolved: crac1 running again; highest failed_unit_count 1", Line("cooling-unit-failed", "resolved"), StringComparison.Ordinal);

        // Every number on the wire without binary noise (value="110.31249999999999" for 17.65 A on the 16 A breaker).
        var numbers = lines.SelectMany(l => NumberRegex().Matches(l).Select(m => m.Groups[1].Value)).ToList();
        Assert.NotEmpty(numbers);
        Assert.All(numbers, n => Assert.True(n.Count(char.IsAsciiDigit) <= 12, n));
        foreach (var hit in hook.Hits)
        {
            using var body = JsonDocument.Parse(hit.Body);
            foreach (var a in body.RootElement.GetProperty("alerts").EnumerateArray())
            {
                Assert.True(!a.TryGetProperty("value", out var v) || v.GetRawText().Count(char.IsAsciiDigit) <= 12, v.GetRawText());
                // No placeholder left as written ("phase_current{phase=1}" is the series' tags, not one).
                Assert.DoesNotMatch(PlaceholderRegex(), a.GetProperty("summary").GetString()!);
                Assert.True(!a.TryGetProperty("action", out var action) || !PlaceholderRegex().IsMatch(action.GetString()!), action.ToString());
            }
        }

        // Alertmanager's annotations are read by people (its UI, Grafana, pager texts): the value as the summary shows it.
        var posted = manager.Hits.SelectMany(h => JsonDocument.Parse(h.Body).RootElement.EnumerateArray().Select(a => a.Clone())).ToList();
        var overBreaker = posted.First(a => a.GetProperty("labels").GetProperty("alertname").GetString() == "pdu-phase-current-over-breaker");
        Assert.Matches(@"^[0-9]+(\.[0-9]{1,3})? % of breaker$", overBreaker.GetProperty("annotations").GetProperty("value").GetString()!);
    }

    private static string Since(string line) => Regex.Match(line, @"since (\d\d:\d\d:\d\d UTC)$").Groups[1].Value;

    [GeneratedRegex(@"for: \d+[ms]\b")]
    private static partial Regex ForRegex();

    [GeneratedRegex(@"\{[a-z_]+\}")]
    private static partial Regex PlaceholderRegex();

    [GeneratedRegex(@" (?:value|peak)=""([^""]*)""")]
    private static partial Regex NumberRegex();
}
