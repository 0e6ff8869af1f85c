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

    /// <summary>
    /// The ids of the rule's alerts in the list: <paramref name="expected"/> of them (by default one per rack, after the
    /// storm), acknowledged or not. Counted, so that an <c>Assert.All</c> over them cannot pass on a list that lost them.
    /// </summary>
    private static long[] Ids(JsonElement list, string rule, int? expected = null)
    {
        long[] ids = [.. list.GetProperty("alerts").EnumerateArray().Where(a => a.GetProperty("rule").GetString() == rule).Select(a => a.GetProperty("id").GetInt64())];
        expected ??= Racks.Length;
        Assert.True(ids.Length == expected, $"{ids.Length} {rule} alerts listed, not {expected}: {list}");
        return ids;
    }

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

    [Fact]
    public async Task Regression_list_hid_what_the_relay_buzzer_and_lamp_show()
    {
        await StormAsync();
        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket);
        Assert.True(exit == 0, error);
        Assert.Contains("output   panel/relay: on", output, StringComparison.Ordinal);
        Assert.Contains("output   panel/buzzer: blink_fast", output, StringComparison.Ordinal);
        Assert.Contains("output   panel/lamp: on", output, StringComparison.Ordinal);

        (exit, _, error) = await InProcessCli.RunAsync("alerts", "ack", "--all", "--severity", "critical", "--socket", Socket);
        Assert.True(exit == 0, error);
        await AlertingAgentSetup.Until(() => Outputs().buzzer == "off", "the buzzer off", 20);
        (_, output, _) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket);
        Assert.Contains("output   panel/buzzer: off (acknowledged)", output, StringComparison.Ordinal);
        Assert.Contains("output   panel/relay: on", output, StringComparison.Ordinal);

        var json = (await ListJsonAsync()).GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "buzzer");
        Assert.Equal(("panel", "off", true), (json.GetProperty("sink").GetString(), json.GetProperty("pattern").GetString(), json.GetProperty("quieted_by_ack").GetBoolean()));
    }

    [Fact]
    public async Task Regression_clock_numbered_alert_ids_pushed_the_list_and_history_columns_out_of_line()
    {
        Feed("rack-a01", "inlet", 34.6);
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Any(a => a.Rule == "inlet-hot" && a.FiredAt is not null), "the firing alert", 20);
        var id = Text(Ids(await ListJsonAsync(), "inlet-hot", expected: 1)[0]);
        Assert.True(id.Length > 5, $"a new store numbers from the clock, got {id}");

        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket);
        Assert.True(exit == 0, error);
        var lines = output.Split('\n');
        var header = lines.Single(l => l.Contains("SEVERITY", StringComparison.Ordinal));
        var row = lines.Single(l => l.Contains("inlet-hot", StringComparison.Ordinal));
        Assert.StartsWith(id + "  critical", row.TrimStart(), StringComparison.Ordinal);
        Assert.Equal(header.IndexOf("SEVERITY", StringComparison.Ordinal), row.IndexOf("critical", StringComparison.Ordinal));
        Assert.Equal(header.IndexOf("RULE", StringComparison.Ordinal), row.IndexOf("inlet-hot", StringComparison.Ordinal));

        (exit, output, error) = await InProcessCli.RunAsync("alerts", "history", "--socket", Socket);
        Assert.True(exit == 0, error);
        var changes = output.Split('\n').Where(l => l.Contains("inlet-", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(changes);
        // Every row's severity starts in the same column whatever the id's length.
        Assert.Single(changes.Select(l => l.IndexOf("critical", StringComparison.Ordinal) is var c and >= 0 ? c : l.IndexOf("warning", StringComparison.Ordinal)).Distinct());
        Assert.Contains(changes, l => l.Contains("  " + id + "  critical", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_list_did_not_say_how_bad_an_alert_got()
    {
        Feed("rack-a01", "inlet", 34.6);
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Any(a => a.Rule == "inlet-hot" && a.FiredAt is not null), "the firing alert", 20);
        Feed("rack-a01", "inlet", 31.2); // still above the clear level: firing, the value now lower than the worst

        var (exit, output, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket);
        Assert.True(exit == 0, error);
        var lines = output.Split('\n');
        Assert.Contains(lines, l => l.Contains("SINCE", StringComparison.Ordinal) && l.Contains("PEAK", StringComparison.Ordinal));
        var line = lines.Single(l => l.Contains("inlet-hot", StringComparison.Ordinal));
        Assert.Contains("  34.6 °C  ", line, StringComparison.Ordinal);
        Assert.Contains("31.2 °C above 30 °C", line, StringComparison.Ordinal); // the summary keeps the value now

        var json = (await ListJsonAsync()).GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("rule").GetString() == "inlet-hot");
        Assert.Equal(34.6, json.GetProperty("peak").GetDouble());
        Assert.Equal("34.6 °C", json.GetProperty("peak_text").GetString());
    }

    [Fact]
    public async Task Regression_pending_alerts_showed_no_since()
    {
        var before = DateTimeOffset.UtcNow;
        Feed("rack-a01", "power", 6); // for: 1h, so it stays pending
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Any(a => a.Rule == "power-high"), "the pending alert", 20);

        var pending = (await ListJsonAsync()).GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("rule").GetString() == "power-high");
        Assert.Equal("pending", pending.GetProperty("state").GetString());
        var since = DateTimeOffset.Parse(pending.GetProperty("pending_since").GetString()!, CultureInfo.InvariantCulture);
        Assert.InRange(since, before.AddSeconds(-1), DateTimeOffset.UtcNow);

        var (_, output, _) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket);
        var line = output.Split('\n').Single(l => l.Contains("power-high", StringComparison.Ordinal));
        Assert.Contains(since.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture), line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_offline_since_restarted_with_the_agent_during_an_outage()
    {
        // Offline (two failed checks), then the agent restarts while the outage goes on.
        _service.Connectivity.Observe(false, false);
        _service.Connectivity.Observe(false, false);
        Assert.Equal(UplinkState.Offline, _service.Connectivity.State);
        var offlineSince = _service.Connectivity.Since;
        await _service.Manager.FlushAsync(CancellationToken.None);
        await StopAsync();
        await Task.Delay(1100, TestContext.Current.CancellationToken); // the text shows seconds: a restart must not move them
        await StartAsync();

        // The first check after the restart still fails: still offline since the outage began, not degraded since now.
        _service.Connectivity.Observe(false, false);
        var uplink = (await ListJsonAsync()).GetProperty("uplink");
        Assert.Equal("offline", uplink.GetProperty("state").GetString());
        Assert.Equal(offlineSince.ToUnixTimeMilliseconds(), DateTimeOffset.Parse(uplink.GetProperty("since").GetString()!, CultureInfo.InvariantCulture).ToUnixTimeMilliseconds());
        var (_, output, _) = await InProcessCli.RunAsync("alerts", "list", "--socket", Socket);
        Assert.Contains($"uplink   offline since {offlineSince.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}", output, StringComparison.Ordinal);
        Assert.DoesNotContain("first probe", output, StringComparison.Ordinal); // the alert keeps saying why it is offline

        // A good check ends it at once.
        _service.Connectivity.Observe(true, true);
        Assert.Equal(UplinkState.Online, _service.Connectivity.State);
    }

    [Fact]
    public async Task Regression_a_missing_socket_said_cannot_assign_requested_address()
    {
        var missing = Path.Combine(_dir, "no-agent.sock");
        var (exit, _, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", missing);
        Assert.True(exit == 1, error);
        Assert.Contains($"the agent is not running or the socket path is wrong: {missing} does not exist", error, StringComparison.Ordinal);

        // A socket file nobody listens on (an agent killed with SIGKILL leaves one).
        var stale = Path.Combine(_dir, "stale.sock");
        // Bound but not listening (.NET removes the file when the socket is disposed, so it stays open meanwhile).
        using var bound = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        bound.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(stale));
        (exit, _, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", stale);
        Assert.True(exit == 1, error);
        Assert.Contains($"the agent is not running or the socket path is wrong: nothing accepts connections on {stale}", error, StringComparison.Ordinal);
    }
}
