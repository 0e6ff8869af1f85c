using System.Globalization;
using System.Text.Json;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// <c>edgetwin alerts ack|list</c> through the real command line and the agent's control socket: an alerting service on
/// a temp store with the simulated GPIO panel (relay, buzzer with silence_on_ack, lamp).
/// </summary>
public sealed class AlertsCliTests : IAsyncLifetime
{
    private const string Yaml = """
        alerts:
          group_interval: 0s
          connectivity: { offline_after: 2 }
          sinks:
            - name: panel
              type: gpio
              chip: simulated
              outputs:
                - { name: relay, pin: 24, critical: on, failsafe: on }
                - { name: buzzer, pin: 25, critical: blink_fast, silence_on_ack: true }
                - { name: lamp, pin: 23, critical: on, warning: blink }
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
            - { name: inlet-warm, type: threshold, match: { metric: inlet }, above: 27, clear_below: 26, severity: warning }
            - { name: power-high, type: threshold, match: { metric: power }, above: 5, clear_below: 4, for: 1h, severity: warning }
            - { name: uplink-down, type: uplink, severity: warning }
        """;

    private static readonly string[] Racks = ["rack-a01", "rack-a02", "rack-a03"];

    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-alerts-cli-").FullName;
    private readonly SeriesRegistry _registry = new();
    private AlertingService _service = null!;
    private AlertControlServer _server = null!;

    private string Socket => Path.Combine(_dir, "alerts.sock");

    public async ValueTask InitializeAsync() => await StartAsync();

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task StartAsync()
    {
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(Yaml, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), _dir);
        Assert.Empty(diagnostics.Sorted());
        _service = new AlertingService(config, new SiteIndex(null), _registry, null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        await _service.StartAsync(CancellationToken.None);
        _server = new AlertControlServer(_service, Socket);
        _server.Start();
    }

    private async Task StopAsync()
    {
        await _server.DisposeAsync();
        await _service.DisposeAsync();
    }

    private void Feed(string device, string metric, double value)
    {
        var id = _registry.GetOrAdd(new SeriesDescriptor(device, metric, "Cel", MetricKind.Gauge, null));
        _service.Process([new Sample(id, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), value, SampleQuality.Good)]);
    }

    /// <summary>Every rack above both thresholds: three critical and three warning alerts fire.</summary>
    private async Task<JsonElement> StormAsync()
    {
        foreach (var rack in Racks)
        {
            Feed(rack, "inlet", 35);
        }

        await AlertingAgentSetup.Until(() => _service.Manager.Active().Count(a => a.FiredAt is not null) == 6, "six firing alerts", 20);
        await AlertingAgentSetup.Until(() => Outputs().buzzer == "blink_fast", "the buzzer on", 20);
        return await ListJsonAsync();
    }

    /// <summary>The patterns the panel drives now (relay and buzzer, in config order).</summary>
    private (string relay, string buzzer) Outputs()
    {
        var patterns = _service.Sinks.Select(s => s.Sink).OfType<EdgeTwin.Alerting.Sinks.GpioSink>().Single().Patterns;
        return (Name(patterns[0]), Name(patterns[1]));
    }

    private static string Name(OutputPattern p) => p switch
    {
        OutputPattern.On => "on",
        OutputPattern.Blink => "blink",
        OutputPattern.BlinkFast => "blink_fast",
        _ => "off",
    };

    private async Task<JsonElement> ListJsonAsync()
    {
        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket, "--json");
        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.Clone();
    }

    private static long[] Ids(JsonElement list, string rule) =>
        [.. list.GetProperty("alerts").EnumerateArray().Where(a => a.GetProperty("rule").GetString() == rule).Select(a => a.GetProperty("id").GetInt64())];

    private static string State(JsonElement list, long id) =>
        list.GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("id").GetInt64() == id).GetProperty("state").GetString()!;

    private static string Text(long id) => id.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Regression_ack_took_only_one_id()
    {
        var list = await StormAsync();
        var critical = Ids(list, "inlet-hot");

        var (exit, output, error) = await InProcessCli.RunAsync(["alerts", "ack", .. critical.Select(Text), "--socket", Socket]);

        Assert.True(exit == 0, output + error);
        foreach (var id in critical)
        {
            Assert.Contains($"alert {id} acknowledged (critical inlet-hot ", output, StringComparison.Ordinal);
        }

        list = await ListJsonAsync();
        Assert.All(critical, id => Assert.Equal("acknowledged", State(list, id)));
        Assert.All(Ids(list, "inlet-warm"), id => Assert.Equal("firing", State(list, id)));

        // Every critical alert acknowledged: the buzzer (silence_on_ack) stops, the relay stays on.
        await AlertingAgentSetup.Until(() => Outputs() == ("on", "off"), "relay on, buzzer off", 20);
    }

    [Fact]
    public async Task Regression_an_unknown_id_failed_the_whole_ack_instead_of_only_itself()
    {
        var list = await StormAsync();
        var first = Ids(list, "inlet-hot")[0];

        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "ack", Text(first), "9999", "--socket", Socket);

        Assert.Equal(1, exit);
        Assert.Contains($"alert {first} acknowledged", output, StringComparison.Ordinal);
        Assert.Contains("alert 9999 not found", error, StringComparison.Ordinal);
        Assert.Equal("acknowledged", State(await ListJsonAsync(), first));
    }

    [Fact]
    public async Task Regression_there_was_no_ack_all_or_ack_by_rule_during_a_storm()
    {
        var list = await StormAsync();

        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "ack", "--all", "--severity", "critical", "--socket", Socket);
        Assert.True(exit == 0, output + error);
        Assert.Equal(3, output.Split('\n').Count(l => l.Contains("acknowledged (critical inlet-hot", StringComparison.Ordinal)));
        list = await ListJsonAsync();
        Assert.All(Ids(list, "inlet-hot"), id => Assert.Equal("acknowledged", State(list, id)));
        Assert.All(Ids(list, "inlet-warm"), id => Assert.Equal("firing", State(list, id)));

        (exit, output, error) = await InProcessCli.RunAsync("alerts", "ack", "--rule", "inlet-warm", "--socket", Socket);
        Assert.True(exit == 0, output + error);
        list = await ListJsonAsync();
        Assert.All(Ids(list, "inlet-warm"), id => Assert.Equal("acknowledged", State(list, id)));

        // Nothing left to acknowledge is no failure; an unknown rule is.
        (exit, output, _) = await InProcessCli.RunAsync("alerts", "ack", "--all", "--socket", Socket);
        Assert.Equal(0, exit);
        Assert.Contains("nothing acknowledged", output, StringComparison.Ordinal);
        (exit, _, error) = await InProcessCli.RunAsync("alerts", "ack", "--rule", "no-such-rule", "--socket", Socket);
        Assert.Equal(1, exit);
        Assert.Contains("rule 'no-such-rule' not found", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ack_help_tells_the_buzzer_stops_once_every_critical_alert_is_acknowledged_and_that_acks_persist()
    {
        var (exit, output, _) = await InProcessCli.RunAsync("alerts", "ack", "--help");

        Assert.Equal(0, exit);
        Assert.Contains("silence_on_ack", output, StringComparison.Ordinal);
        Assert.Contains("every critical alert is acknowledged", output, StringComparison.Ordinal);
        Assert.Contains("survive a restart", output, StringComparison.Ordinal);
        Assert.Contains("--all", output, StringComparison.Ordinal);
        Assert.Contains("--rule", output, StringComparison.Ordinal);
    }
}
