using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// What an alert event tells the central twin without parsing English (consumer audit F2): the device and series it is
/// about, the rule's limit, clear level, direction, units and for-duration, per rule type.
/// </summary>
public sealed class AlertEventFactsTests
{
    private const string Rules = """
        alerts:
          group_interval: 1s
          rules:
            - { name: rack-inlet-warm, type: threshold, match: { metric: inlet }, above: 24, clear_below: 23, for: 10s, severity: warning, labels: { owner: "ops+noc's" } }
            - { name: inlet-rising, type: rate, match: { metric: supply }, rise_per_min: 2, clear_rise_per_min: 1, window: 1m }
            - { name: supply-falling, type: rate, match: { metric: return }, fall_per_min: 3, window: 1m }
            - { name: inlet-stuck, type: stuck, match: { metric: stuck_probe }, after: 2m, tolerance: 0.05 }
            - { name: inlet-missing, type: missing, match: { metric: humidity }, after: 1m }
            - { name: device-down, type: device_down, device: "crac-*", severity: critical }
            - { name: uplink-lost, type: uplink, severity: warning }
            - { name: thermal-countdown, type: event, event: prediction, source: "*/cooling_failure", attribute: time_to_thermal_shutdown_min, below: 60, clear_above: 90, severity: critical }
            - { name: rack-hot, type: threshold, match: { metric: outlet }, above: 35, combine: any, per: rack }
            - { name: on-battery, type: state, match: { metric: output_source }, states: [battery], severity: critical }
        """;

    [Fact]
    public async Task Regression_alert_events_carried_the_threshold_only_in_the_message_text()
    {
        await using var h = await Harness.StartAsync(Rules);
        var s = h.Series("pdu-r01", "inlet");
        h.Feed(s, 25.2);
        h.Advance(TimeSpan.FromSeconds(11));
        h.Feed(s, 25.4);
        await Wait.UntilAsync(() => h.Events.Events.Count == 1, "the raise");
        h.Feed(s, 22.5);
        await Wait.UntilAsync(() => h.Events.Events.Count == 2, "the clear");

        var raised = h.Events.Events[0];
        var cleared = h.Events.Events[1];
        Assert.Equal(EdgeEventKind.AlertRaised, raised.Kind);
        Assert.Equal(EdgeEventKind.AlertCleared, cleared.Kind);
        foreach (var e in new[] { raised, cleared })
        {
            var a = e.Attributes!;
            Assert.Equal("rack-inlet-warm", a["rule"]);
            Assert.Equal("threshold", a["rule_type"]);
            Assert.Equal("warning", a["severity"]);
            Assert.Equal("pdu-r01", a["device"]);
            Assert.Equal("pdu-r01/inlet", a["series"]);
            Assert.Equal("inlet", a["metric"]);
            Assert.Equal("Cel", a["unit"]);
            Assert.Equal("Cel", a["value_unit"]);
            Assert.Equal("above", a["direction"]);
            Assert.Equal("24", a["threshold"]);
            Assert.Equal("23", a["clear_level"]);
            Assert.Equal("10", a["for_s"]);
        }

        Assert.Equal("firing", raised.Attributes!["state"]);
        Assert.Equal("25.2", raised.Attributes["value"]);
        Assert.Equal("resolved", cleared.Attributes!["state"]);
        Assert.Equal("22.5", cleared.Attributes["value"]);
        Assert.Equal("25.4", cleared.Attributes["peak"]);

        // An acknowledgement carries the same facts.
        h.Feed(s, 26);
        h.Advance(TimeSpan.FromSeconds(11));
        h.Feed(s, 26);
        await Wait.UntilAsync(() => h.Events.Events.Count == 3, "the second raise");
        Assert.Equal(ControlResult.Done, h.Manager.Acknowledge(h.Active("rack-inlet-warm")!.Id, "alice"));
        await Wait.UntilAsync(() => h.Events.Events.Count == 4, "the acknowledgement");
        var ack = h.Events.Events[3];
        Assert.Equal("acknowledged", ack.Attributes!["state"]);
        Assert.Equal("24", ack.Attributes["threshold"]);
        Assert.Equal("pdu-r01", ack.Device);
    }

    [Fact]
    public async Task Rate_stuck_missing_state_and_event_rules_carry_the_facts_of_their_type()
    {
        await using var h = await Harness.StartAsync(Rules);

        // Rate: +3 K/min over a minute.
        var supply = h.Series("crac-1", "supply");
        for (var i = 0; i <= 6; i++)
        {
            h.Feed(supply, 18 + (i * 0.5));
            h.Advance(TimeSpan.FromSeconds(10));
        }

        // Falling: -4 K/min.
        var ret = h.Series("crac-1", "return");
        for (var i = 0; i <= 6; i++)
        {
            h.Feed(ret, 30 - (i * 0.66));
            h.Advance(TimeSpan.FromSeconds(10));
        }

        // Stuck and missing.
        var probe = h.Series("rack-r02", "stuck_probe");
        h.Feed(probe, 21);
        var humidity = h.Series("rack-r03", "humidity", unit: "%");
        h.Feed(humidity, 40);
        h.Advance(TimeSpan.FromMinutes(3));

        // State: a UPS on battery (code 5).
        var ups = h.Series("ups-ietf", "output_source", unit: "1");
        h.Feed(ups, 5);

        // Event: the thermal twin's countdown for room1.
        h.Service.Handle(new EdgeEvent(EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Critical, "room1: thermal shutdown in 25 min",
            new Dictionary<string, string> { ["zone"] = "room1", ["time_to_thermal_shutdown_min"] = "25" }));

        await Wait.UntilAsync(() => Raised(h, "inlet-rising") is not null && Raised(h, "supply-falling") is not null && Raised(h, "inlet-stuck") is not null
            && Raised(h, "inlet-missing") is not null && Raised(h, "on-battery") is not null && Raised(h, "thermal-countdown") is not null, "every rule raised");

        var rate = Raised(h, "inlet-rising")!.Attributes!;
        Assert.Equal(("rate", "crac-1", "crac-1/supply", "above", "2", "1", "Cel/min", "60"), (rate["rule_type"], rate["device"], rate["series"], rate["direction"], rate["threshold"], rate["clear_level"], rate["value_unit"], rate["window_s"]));
        var fall = Raised(h, "supply-falling")!.Attributes!;
        Assert.Equal(("below", "-3", "-3"), (fall["direction"], fall["threshold"], fall["clear_level"]));
        Assert.True(double.Parse(fall["value"], System.Globalization.CultureInfo.InvariantCulture) < -3, fall["value"]);

        var stuck = Raised(h, "inlet-stuck")!.Attributes!;
        Assert.Equal(("stuck", "rack-r02", "rack-r02/stuck_probe", "120", "0.05", "Cel"), (stuck["rule_type"], stuck["device"], stuck["series"], stuck["after_s"], stuck["tolerance"], stuck["value_unit"]));
        Assert.False(stuck.ContainsKey("threshold"));

        var missing = Raised(h, "inlet-missing")!.Attributes!;
        Assert.Equal(("missing", "rack-r03", "rack-r03/humidity", "%", "60", "s"), (missing["rule_type"], missing["device"], missing["series"], missing["unit"], missing["after_s"], missing["value_unit"]));

        var state = Raised(h, "on-battery")!.Attributes!;
        Assert.Equal(("state", "ups-ietf", "ups-ietf/output_source", "battery", "5"), (state["rule_type"], state["device"], state["series"], state["states"], state["value"]));
        Assert.False(state.ContainsKey("value_unit"));

        var countdown = Raised(h, "thermal-countdown")!;
        var ev = countdown.Attributes!;
        Assert.Equal(("event", "room1", "below", "60", "90", "prediction", "time_to_thermal_shutdown_min", "600", "25"),
            (ev["rule_type"], ev["device"], ev["direction"], ev["threshold"], ev["clear_level"], ev["watch_event"], ev["watch_attribute"], ev["clear_after_s"], ev["value"]));
        Assert.Equal("room1/cooling_failure", ev["key"]);
        Assert.False(ev.ContainsKey("series"), "the event's source is not a series");
        Assert.Equal("room1", countdown.Device);
    }

    [Fact]
    public async Task Regression_alert_event_device_was_the_rule_name()
    {
        await using var h = await Harness.StartAsync(Rules);
        var inlet = h.Series("pdu-r01", "inlet");
        h.Feed(inlet, 30);
        h.Advance(TimeSpan.FromSeconds(11));
        h.Feed(inlet, 30);
        h.Feed(h.Series("rack-r02", "outlet"), 40);
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceDown, "crac-1", h.Time.GetUtcNow(), EventSeverity.Critical, "down", null));
        h.Manager.SetUplink(UplinkState.Offline, h.Time.GetUtcNow(), "connection refused");
        Assert.Equal(ControlResult.Done, h.Manager.Silence("rack-hot", h.Time.GetUtcNow().AddHours(1), "bob"));
        await Wait.UntilAsync(() => h.Events.Events.Count >= 5, "four raises and a silence");

        var byRule = h.Events.Events.ToDictionary(e => e.Source + "/" + e.Kind.ToWireName());

        // The source stays the rule (what rules and sinks key on); the device is what the alert is about.
        Assert.Equal("pdu-r01", byRule["rack-inlet-warm/alert_raised"].Device);
        Assert.Equal("pdu-r01/inlet", byRule["rack-inlet-warm/alert_raised"].Series);
        Assert.Equal("crac-1", byRule["device-down/alert_raised"].Device);
        Assert.Equal("crac-1", byRule["device-down/alert_raised"].Attributes!["device"]);

        // A combined alert is about its scope (the rack), as the thermal twin files zone events under the zone.
        var rack = byRule["rack-hot/alert_raised"];
        Assert.Equal("r02", rack.Device);
        Assert.Null(rack.Series);
        Assert.Equal(("any", "rack", "1", "1", "outlet"), (rack.Attributes!["combine"], rack.Attributes["per"], rack.Attributes["members"], rack.Attributes["members_active"], rack.Attributes["metric"]));

        // Gateway-level: the uplink rule and a silence.
        Assert.Equal("gw1", byRule["uplink-lost/alert_raised"].Device);
        Assert.Equal("gw1", byRule["rack-hot/alert_silenced"].Device);

        // Through the outbox's body mapping: body and envelope device (the Kafka key) and the series' facts.
        var registry = h.Registry;
        var identity = new UplinkIdentity("gw1", "dc1");
        var outbox = new InMemoryOutbox();
        await using (outbox)
        {
            var feeder = new OutboxFeeder(outbox, new SeriesSummarizer(registry, identity), registry, identity);
            await feeder.PublishAsync(byRule["rack-inlet-warm/alert_raised"], TestContext.Current.CancellationToken);
            await feeder.PublishAsync(byRule["uplink-lost/alert_raised"], TestContext.Current.CancellationToken);
            outbox.RegisterUplink("t");
            var entries = await outbox.ReadAsync("t", 0, 10, TestContext.Current.CancellationToken);
            Assert.Equal(["pdu-r01", "gw1"], entries.Select(e => e.Record.DeviceId));
            using var body = JsonDocument.Parse(entries[0].Record.Payload);
            var b = body.RootElement;
            Assert.Equal("pdu-r01", b.GetProperty("device").GetString());
            Assert.Equal("pdu-r01/inlet", b.GetProperty("series").GetString());
            Assert.Equal("inlet", b.GetProperty("metric").GetString());
            Assert.Equal("Cel", b.GetProperty("unit").GetString());
            Assert.Equal("rack-inlet-warm", b.GetProperty("source").GetString());
            Assert.Equal("24", b.GetProperty("attributes").GetProperty("threshold").GetString());
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Alert_events_decoded_from_a_real_mosquitto_name_device_series_threshold_and_unit()
    {
        await using var broker = await Mosquitto.StartAsync();
        var received = new ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        await using var h = await Harness.StartAsync(Rules);
        await using var outbox = new InMemoryOutbox();
        var uplink = AlertEventFactsTests.UplinkTo(h, outbox, broker.Port, "edgetwin-alert-facts-");
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            var s = h.Series("pdu-r01", "inlet");
            h.Feed(s, 25.2);
            h.Advance(TimeSpan.FromSeconds(11));
            h.Feed(s, 25.2);
            await Wait.UntilAsync(() => received.Any(m => m.Topic == "edgetwin/dc1/gw1/event"), "the alert event at mosquitto", 60);

            var (topic, payload) = received.First(m => m.Topic == "edgetwin/dc1/gw1/event");
            var text = Encoding.UTF8.GetString(payload);
            using var doc = JsonDocument.Parse(payload);
            var envelope = doc.RootElement;
            Assert.Equal("pdu-r01", envelope.GetProperty("device").GetString()); // the Kafka key too: OutboxRecord.DeviceId
            var body = envelope.GetProperty("body");
            Assert.Equal("alert_raised", body.GetProperty("event").GetString());
            Assert.Equal("rack-inlet-warm", body.GetProperty("source").GetString());
            Assert.Equal("pdu-r01", body.GetProperty("device").GetString());
            Assert.Equal("pdu-r01/inlet", body.GetProperty("series").GetString());
            Assert.Equal("inlet", body.GetProperty("metric").GetString());
            Assert.Equal("Cel", body.GetProperty("unit").GetString());
            var a = body.GetProperty("attributes");
            Assert.Equal("24", a.GetProperty("threshold").GetString());
            Assert.Equal("23", a.GetProperty("clear_level").GetString());
            Assert.Equal("above", a.GetProperty("direction").GetString());
            Assert.Equal("10", a.GetProperty("for_s").GetString());
            Assert.Equal("firing", a.GetProperty("state").GetString());
            Assert.Equal("ops+noc's", a.GetProperty("label.owner").GetString());

            // The bytes as a consumer greps them: '+' and '\'' as they are, the degree sign escaped (README).
            Assert.Contains("\"label.owner\":\"ops+noc's\"", text, StringComparison.Ordinal);
            Assert.Contains("25.2 \\u00B0C above 24 \\u00B0C", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\\u002B", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\\u0027", text, StringComparison.Ordinal);
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    private static EdgeEvent? Raised(Harness h, string rule) =>
        h.Events.Events.FirstOrDefault(e => e.Source == rule && e.Kind == EdgeEventKind.AlertRaised);

    /// <summary>The harness's events into an outbox and through a real MQTT uplink to the broker on <paramref name="port"/>, as the agent forwards them.</summary>
    internal static MqttUplink UplinkTo(Harness h, InMemoryOutbox outbox, int port, string clientPrefix)
    {
        var identity = new UplinkIdentity("gw1", "dc1");
        h.Events.Forward = new OutboxFeeder(outbox, new SeriesSummarizer(h.Registry, identity), h.Registry, identity);
        return new MqttUplink(
            new MqttUplinkOptions
            {
                Host = "127.0.0.1",
                Port = port,
                Site = "dc1",
                Gateway = "gw1",
                ClientId = clientPrefix + Guid.NewGuid().ToString("N"),
                Delivery = new DeliveryOptions { ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1), AckTimeout = TimeSpan.FromSeconds(10), BacklogRatePerSecond = 0 },
            },
            outbox);
    }
}
