using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Tests.Shared;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// A rule's <c>action</c> and <c>runbook_url</c> where the operator sees the alert, against real peers: the webhook's
/// JSON and its Slack text (a local HTTP listener), mosquitto, the syslog datagram socket, a real Alertmanager's
/// annotations, <c>alerts list</c> over the control socket, and the alert events the uplink publishes to the centre.
/// A resolved alert carries the runbook but no first action.
/// </summary>
public sealed class RunbookActionSinkTests
{
    private const string Action = "Check the CRAC of rack {key}'s row; open the cold-aisle doors of rows A-B";
    private const string Runbook = "https://wiki.example/dc1/runbooks/inlet-hot?v=2&lang=en";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Persona audit: the operator woken at 3 a.m. got what, where, how bad and since when, but no first action and no link
    /// to the site's procedure on any sink. Every message sink now shows both; a resolved alert only the runbook.
    /// </summary>
    [Fact]
    public async Task Regression_an_alert_told_the_operator_neither_what_to_do_first_nor_where_the_sites_procedure_is()
    {
        await using var hook = new TinyHttpServer();
        await using var chat = new TinyHttpServer();
        await using var broker = await Mosquitto.StartAsync();
        await using var am = await Alertmanager.StartAsync(TimeSpan.FromSeconds(30));
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        var dir = Directory.CreateTempSubdirectory("edgetwin-runbook-").FullName;
        var journalPath = Path.Combine(dir, "log.sock");
        using var journal = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        journal.Bind(new UnixDomainSocketEndPoint(journalPath));
        var events = new CollectingEvents();
        var registry = new SeriesRegistry();
        var config = Yaml.Valid($$"""
            alerts:
              group_by: [rack]
              group_interval: 0s
              tick: 100ms
              sinks:
                - { name: hook, type: webhook, url: "{{hook.Url}}", retries: 0, timeout: 5s }
                - { name: chat, type: webhook, format: slack, url: "{{chat.Url}}", retries: 0, timeout: 5s }
                - { name: local, type: mqtt, host: 127.0.0.1, port: {{broker.Port}}, timeout: 10s }
                - { name: journal, type: syslog, socket: "{{journalPath}}" }
                - { name: am, type: webhook, format: alertmanager, url: "{{am.Url}}", resend_interval: 10s, timeout: 5s }
              rules:
                - name: inlet-hot
                  type: threshold
                  match: { metric: inlet }
                  above: 30
                  clear_below: 29
                  combine: any
                  per: rack
                  severity: critical
                  action: "{{Action}}"
                  runbook_url: "{{Runbook}}"
            """);
        var service = new AlertingService(config, Harness.Site, registry, events, new AlertingOptions
        {
            StorePath = Path.Combine(dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        try
        {
            await service.StartAsync(Ct);
            var series = registry.GetOrAdd(new SeriesDescriptor("rack-r01", "inlet", "Cel", MetricKind.Gauge, null));
            service.Process([new Sample(series, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 35)]);
            const string Expected = "Check the CRAC of rack r01's row; open the cold-aisle doors of rows A-B";

            // Webhook (format: edgetwin): beside the summary.
            await Wait.UntilAsync(() => hook.Hits.Count == 1, "the webhook's firing message");
            var firing = Alert(hook.Hits[0].Body);
            Assert.Equal(Expected, firing.GetProperty("action").GetString());
            Assert.Equal(Runbook, firing.GetProperty("runbook_url").GetString());
            Assert.Contains("\"runbook_url\":\"https://wiki.example/dc1/runbooks/inlet-hot?v=2&lang=en\"", Encoding.UTF8.GetString(hook.Hits[0].Body), StringComparison.Ordinal);

            // Chat: the line under the alert, '&' written as Slack requires.
            await Wait.UntilAsync(() => chat.Hits.Count == 1, "the chat message");
            var text = JsonDocument.Parse(chat.Hits[0].Body).RootElement.GetProperty("text").GetString()!;
            var lines = text.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("FIRING critical inlet-hot: rack r01 (room1, site dc1): inlet 35 °C above 30 °C", lines[0], StringComparison.Ordinal);
            Assert.Equal("    first action: " + Expected + " | runbook: https://wiki.example/dc1/runbooks/inlet-hot?v=2&amp;lang=en", lines[1]);

            // MQTT: the same JSON as the webhook.
            await Wait.UntilAsync(() => !received.IsEmpty, "the MQTT message", 30);
            Assert.True(received.TryDequeue(out var mqtt));
            var published = Alert(mqtt.Payload);
            Assert.Equal(Expected, published.GetProperty("action").GetString());
            Assert.Equal(Runbook, published.GetProperty("runbook_url").GetString());

            // Syslog: SD-params, the text stays the summary.
            var line = await ReceiveAsync(journal);
            Assert.Contains($" action=\"{Expected}\" runbook_url=\"{Runbook}\"] rack r01 (room1, site dc1): inlet 35 °C above 30 °C", line, StringComparison.Ordinal);

            // Alertmanager: the annotations its and Grafana's templates look for, and the description ends with them.
            var inAm = await InAlertmanagerAsync(am);
            Assert.Equal(Expected, inAm.Annotations["action"]);
            Assert.Equal(Runbook, inAm.Annotations["runbook_url"]);
            Assert.EndsWith(". First action: " + Expected + "; runbook: " + Runbook, inAm.Annotations["description"], StringComparison.Ordinal);

            // The centre's event.
            var raised = events.Events.Single(e => e.Kind == EdgeEventKind.AlertRaised);
            Assert.Equal(Expected, raised.Attributes!["action"]);
            Assert.Equal(Runbook, raised.Attributes["runbook_url"]);

            // Cleared: the runbook stays (the follow-up), no first action anywhere.
            service.Process([new Sample(series, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 20)]);
            await Wait.UntilAsync(() => hook.Hits.Count == 2 && chat.Hits.Count == 2, "the resolved messages");
            var resolved = Alert(hook.Hits[1].Body);
            Assert.Equal("resolved", resolved.GetProperty("status").GetString());
            Assert.False(resolved.TryGetProperty("action", out _));
            Assert.Equal(Runbook, resolved.GetProperty("runbook_url").GetString());
            var resolvedText = JsonDocument.Parse(chat.Hits[1].Body).RootElement.GetProperty("text").GetString()!;
            Assert.EndsWith(")\n    runbook: https://wiki.example/dc1/runbooks/inlet-hot?v=2&amp;lang=en", resolvedText, StringComparison.Ordinal);
            var clearedLine = await ReceiveAsync(journal);
            Assert.Contains("ALERT_RESOLVED", clearedLine, StringComparison.Ordinal);
            Assert.DoesNotContain(" action=", clearedLine, StringComparison.Ordinal);
            Assert.Contains($" runbook_url=\"{Runbook}\"] ", clearedLine, StringComparison.Ordinal);
            await Wait.UntilAsync(() => events.Events.Any(e => e.Kind == EdgeEventKind.AlertCleared), "the clear event");
            var cleared = events.Events.Single(e => e.Kind == EdgeEventKind.AlertCleared);
            Assert.False(cleared.Attributes!.ContainsKey("action"));
            Assert.Equal(Runbook, cleared.Attributes["runbook_url"]);
        }
        finally
        {
            await service.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Alerts_list_answers_the_action_and_runbook_and_the_cli_line_shows_them()
    {
        await using var h = await Harness.StartAsync($$"""
            alerts:
              group_interval: 0s
              rules:
                - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, severity: critical, action: "Check rack {key}: {value} C", runbook_url: "{{Runbook}}" }
                - { name: inlet-warm, type: threshold, match: { metric: inlet }, above: 27, severity: warning }
            """);
        var socket = Path.Combine(h.Dir, "alerts.sock");
        await using var server = new AlertControlServer(h.Service, socket, h.Time, new ListLogger());
        server.Start();
        h.Feed(h.Series("rack-r01", "inlet"), 31);

        using var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct);
        var alerts = list.RootElement.GetProperty("alerts").EnumerateArray().ToDictionary(a => a.GetProperty("rule").GetString()!);
        var hot = alerts["inlet-hot"];
        Assert.Equal("Check rack rack-r01/inlet: 31 C", hot.GetProperty("action").GetString());
        Assert.Equal(Runbook, hot.GetProperty("runbook_url").GetString());
        Assert.Equal("first action: Check rack rack-r01/inlet: 31 C | runbook: " + Runbook, AlertControlClient.ActionLine(hot));

        // A rule without them: null in the JSON, no line under its row.
        var warm = alerts["inlet-warm"];
        Assert.Equal(JsonValueKind.Null, warm.GetProperty("action").ValueKind);
        Assert.Equal(JsonValueKind.Null, warm.GetProperty("runbook_url").ValueKind);
        Assert.Null(AlertControlClient.ActionLine(warm));
    }

    [Fact]
    public async Task A_group_message_carries_each_alerts_own_action_and_the_chat_shows_a_shared_one_once()
    {
        await using var chat = new TinyHttpServer();
        var config = new WebhookSinkConfig { Name = "chat", Url = chat.Url, Format = WebhookFormat.Slack, Retries = 0, Timeout = TimeSpan.FromSeconds(10) };
        var fired = new DateTimeOffset(2026, 12, 2, 3, 12, 5, TimeSpan.Zero);
        AlertSnapshot Rack(long id, string rack, string rule, string? action, string? runbook) => new(
            id, rule, rack, AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 33, $"rack {rack} (room1, site dc1): inlet 33 °C above 32 °C", new Dictionary<string, string> { ["rack"] = rack }, [],
            fired, null, null, false, fired) { Action = action, RunbookUrl = runbook };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config);
        await runner.StartAsync(Ct);
        var message = new AlertNotification("room=room1", [
            Rack(1, "A01", "inlet-hot", "Open the cold-aisle doors of row A", Runbook),
            Rack(2, "A02", "inlet-hot", "Open the cold-aisle doors of row A", Runbook),
            Rack(3, "A03", "inlet-hot-b", "Check CRAC-2", null),
            Rack(4, "A04", "inlet-plain", null, null),
        ], fired);
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Delivered == 1, "the chat message");

        var lines = JsonDocument.Parse(chat.Hits.Single().Body).RootElement.GetProperty("text").GetString()!.Split('\n');
        Assert.Equal(6, lines.Length);
        Assert.StartsWith("FIRING critical inlet-hot: rack A01 ", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("FIRING critical inlet-hot: rack A02 ", lines[1], StringComparison.Ordinal);
        Assert.Equal("    first action: Open the cold-aisle doors of row A | runbook: https://wiki.example/dc1/runbooks/inlet-hot?v=2&amp;lang=en", lines[2]);
        Assert.StartsWith("FIRING critical inlet-hot-b: rack A03 ", lines[3], StringComparison.Ordinal);
        Assert.Equal("    first action: Check CRAC-2", lines[4]);
        Assert.StartsWith("FIRING critical inlet-plain: rack A04 ", lines[5], StringComparison.Ordinal);

        // The JSON formats carry each alert's own, whatever its neighbours have.
        using var json = JsonDocument.Parse(AlertJson.Encode("dc1", "gw1", message, message.Alerts));
        var alerts = json.RootElement.GetProperty("alerts").EnumerateArray().ToList();
        Assert.Equal(new string?[] { "Open the cold-aisle doors of row A", "Open the cold-aisle doors of row A", "Check CRAC-2", null }, alerts.Select(a => a.TryGetProperty("action", out var x) ? x.GetString() : null));
        Assert.Equal(new string?[] { Runbook, Runbook, null, null }, alerts.Select(a => a.TryGetProperty("runbook_url", out var x) ? x.GetString() : null));
    }

    [Fact]
    public async Task An_event_alert_carries_its_rules_action_beside_the_events_own_text()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              group_interval: 0s
              rules:
                - { name: cooling-unit-failed, type: event, event: prediction, attribute: failed_unit_count, above: 0.5, severity: critical, action: "Reset {key}'s unit, call the cooling contractor" }
            """);
        const string Message = "cooling_failure in room1 (crac1 stopped at 03:13:07 UTC): first step: open the cold-aisle doors";
        h.Service.Handle(new EdgeEvent(EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Info, Message,
            new Dictionary<string, string> { ["state"] = "active", ["failed_unit_count"] = "1", ["zone"] = "room1" }));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
        var firing = h.Sink.All.Single(a => a.Status == AlertStatus.Firing);
        Assert.Equal(Message, firing.Summary);
        Assert.Equal("Reset room1/cooling_failure's unit, call the cooling contractor", firing.Action);
        // The alert_raised event goes out on its own path, not with the sink's message: wait for it too (CI read the
        // events before it had come, "Sequence contains no matching element").
        await Wait.UntilAsync(() => h.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertRaised), "the alert_raised event");
        Assert.Equal("Reset room1/cooling_failure's unit, call the cooling contractor", h.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertRaised).Attributes!["action"]);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_alert_events_the_uplink_publishes_to_the_centre_carry_the_action_and_runbook()
    {
        await using var broker = await Mosquitto.StartAsync();
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        await using var h = await Harness.StartAsync($$"""
            alerts:
              group_interval: 0s
              rules:
                - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical, action: "Check the CRAC of rack r01's row", runbook_url: "{{Runbook}}" }
            """);
        await using var outbox = new InMemoryOutbox();
        var uplink = EdgeTwin.Alerting.Tests.State.AlertEventFactsTests.UplinkTo(h, outbox, broker.Port, "edgetwin-runbook-");
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            var s = h.Series("rack-r01", "inlet");
            h.Feed(s, 31);
            h.Feed(s, 20);
            await Wait.UntilAsync(() => received.Count(m => m.Topic == "edgetwin/dc1/gw1/event") >= 2, "the raise and clear at mosquitto", 60);

            var bodies = received.Where(m => m.Topic == "edgetwin/dc1/gw1/event")
                .Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("body"))
                .ToDictionary(b => b.GetProperty("event").GetString()!);
            var raised = bodies["alert_raised"].GetProperty("attributes");
            Assert.Equal("Check the CRAC of rack r01's row", raised.GetProperty("action").GetString());
            Assert.Equal(Runbook, raised.GetProperty("runbook_url").GetString());
            var cleared = bodies["alert_cleared"].GetProperty("attributes");
            Assert.False(cleared.TryGetProperty("action", out _));
            Assert.Equal(Runbook, cleared.GetProperty("runbook_url").GetString());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    private static async Task<AmAlert> InAlertmanagerAsync(Alertmanager am)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if ((await am.AlertsAsync()).SingleOrDefault() is { } alert)
            {
                return alert;
            }

            Assert.True(DateTime.UtcNow < deadline, "the alert never reached alertmanager; its log:\n" + am.ReadLog());
            await Task.Delay(50, Ct);
        }
    }

    private static JsonElement Alert(byte[] body) => JsonDocument.Parse(body).RootElement.GetProperty("alerts")[0];

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[8192];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        return Encoding.UTF8.GetString(buffer, 0, await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token));
    }
}
