using System.Globalization;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>Every rule type on a fake clock: hysteresis, <c>for:</c> durations, combinations, the uplink gate.</summary>
public sealed class RuleEngineTests
{
    private const string Inlet = """
        alerts:
          rules:
            - name: inlet-hot
              type: threshold
              match: { role: rack.inlet_temperature }
              above: 27
              clear_below: 26
              for: 30s
              severity: warning
        """;

    [Fact]
    public async Task Threshold_waits_for_its_duration_then_fires_and_clears_only_below_the_clear_level()
    {
        await using var h = await Harness.StartAsync(Inlet);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");

        h.Feed(s, 28);
        Assert.Equal(AlertState.Pending, h.StateOf("inlet-hot"));
        h.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(AlertState.Pending, h.StateOf("inlet-hot"));
        h.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));

        // Between the clear level and the limit: still firing (hysteresis).
        h.Feed(s, 26.5);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        h.Feed(s, 25.9);
        Assert.Null(h.Active("inlet-hot"));

        // Re-entering the band below the limit does not start a new pending period.
        h.Feed(s, 26.9);
        Assert.Null(h.Active("inlet-hot"));
    }

    [Fact]
    public async Task Regression_the_shipped_ups_on_battery_rule_missed_apc_on_battery_and_fired_on_smart_boost()
    {
        // It was a threshold above 3.5 on ups.output_source: APC's onBattery is 3 (no alarm), its onSmartBoost 4 (critical).
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: ups-on-battery, type: state, match: { role: ups.output_source }, states: [battery, onBattery], severity: critical }
            """);
        var ietf = h.Registry.GetOrAdd(new SeriesDescriptor("ups-ietf", "output_source", "1", MetricKind.State, "ups.output_source"));
        var apc = h.Registry.GetOrAdd(new SeriesDescriptor("ups-apc", "output_status", "1", MetricKind.State, "ups.output_source"));
        var noStates = h.Registry.GetOrAdd(new SeriesDescriptor("rack-r01", "odd", "1", MetricKind.State, "ups.output_source"));
        Assert.Equal(2, h.Service.Engine.BoundSeries);

        h.Feed(ietf, 3);
        h.Feed(apc, 4);
        h.Feed(noStates, 5);
        Assert.Empty(h.Manager.Active());

        h.Feed(apc, 3);
        var onBattery = Assert.Single(h.Manager.Active());
        Assert.Equal(("ups-apc/output_status", AlertState.Firing), (onBattery.Key, onBattery.State));
        Assert.Equal("ups-apc/output_status reports battery / onBattery (state code 3)", onBattery.Summary);

        h.Feed(ietf, 5);
        Assert.Equal(AlertState.Firing, h.StateOf("ups-on-battery", "ups-ietf/output_source"));
        h.Feed(ietf, 6);
        h.Feed(apc, 2);
        Assert.Empty(h.Manager.Active());
    }

    [Fact]
    public async Task Threshold_that_drops_back_before_its_duration_never_fires()
    {
        await using var h = await Harness.StartAsync(Inlet);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        h.Feed(s, 30);
        h.Advance(TimeSpan.FromSeconds(20));
        h.Feed(s, 20);
        h.Advance(TimeSpan.FromSeconds(60));
        Assert.Null(h.Active("inlet-hot"));
        Assert.DoesNotContain(h.Manager.History(100), e => e.Change == "raised");
    }

    [Fact]
    public async Task Samples_of_bad_quality_do_not_change_a_threshold()
    {
        await using var h = await Harness.StartAsync(Inlet.Replace("for: 30s", "for: 0s", StringComparison.Ordinal));
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        h.Feed(s, 99, SampleQuality.OutOfRange);
        Assert.Null(h.Active("inlet-hot"));
        h.Feed(s, 28);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        h.Feed(s, 0, SampleQuality.DeviceError);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
    }

    [Fact]
    public async Task Below_threshold_uses_the_clear_above_level()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: supply-cold, type: threshold, match: { metric: supply }, below: 14, clear_above: 15 }
            """);
        var s = h.Series("crac-1", "supply");
        h.Feed(s, 13.5);
        Assert.Equal(AlertState.Firing, h.StateOf("supply-cold"));
        h.Feed(s, 14.5);
        Assert.Equal(AlertState.Firing, h.StateOf("supply-cold"));
        h.Feed(s, 15.5);
        Assert.Null(h.Active("supply-cold"));
    }

    [Fact]
    public async Task Rate_of_change_fires_on_a_fast_rise_over_its_window()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: inlet-rising, type: rate, match: { role: rack.inlet_temperature }, rise_per_min: 2, clear_rise_per_min: 1, window: 1m }
            """);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");

        // 0.5 °C/min for two minutes: quiet.
        for (var i = 0; i < 12; i++)
        {
            h.Feed(s, 22 + (i * 0.05));
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Null(h.Active("inlet-rising"));

        // 3 °C/min: fires once the window holds enough of it.
        var v = 22.6;
        for (var i = 0; i < 8 && h.Active("inlet-rising") is null; i++)
        {
            v += 0.5;
            h.Feed(s, v);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        var alert = h.Active("inlet-rising");
        Assert.NotNull(alert);
        Assert.InRange(alert.Value, 2, 3.5);

        // Flat again: the rate falls below the clear level within the window.
        for (var i = 0; i < 8; i++)
        {
            h.Feed(s, v);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Null(h.Active("inlet-rising"));
    }

    [Fact]
    public async Task Rate_fall_fires_on_a_fast_drop()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: pressure-drop, type: rate, match: { metric: pressure }, fall_per_min: 1, window: 30s }
            """);
        var s = h.Series("press-1", "pressure", unit: "bar");
        var v = 10.0;
        for (var i = 0; i < 6; i++)
        {
            h.Feed(s, v);
            v -= 1;
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.NotNull(h.Active("pressure-drop"));
    }

    [Fact]
    public async Task Stuck_series_fires_after_no_change_and_clears_on_a_change()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: inlet-stuck, type: stuck, match: { metric: inlet }, after: 5m, tolerance: 0.01 }
            """);
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 29; i++)
        {
            h.Feed(s, 22.0 + (i % 2 * 0.005)); // changes within the tolerance
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Null(h.Active("inlet-stuck"));
        h.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-stuck"));
        h.Feed(s, 22.5);
        Assert.Null(h.Active("inlet-stuck"));

        // A source that flags the value as stuck raises it at once.
        h.Feed(s, 22.5, SampleQuality.Stuck);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-stuck"));
    }

    [Fact]
    public async Task Missing_series_fires_after_silence_and_clears_on_the_next_sample()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: no-data, type: missing, match: { device: "rack-*" }, after: 1m, severity: critical }
            """);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 22);
        h.Advance(TimeSpan.FromSeconds(59));
        Assert.Null(h.Active("no-data"));
        h.Advance(TimeSpan.FromSeconds(2));
        var alert = h.Active("no-data");
        Assert.NotNull(alert);
        Assert.Equal(EventSeverity.Critical, alert.Severity);
        h.Feed(s, 22);
        Assert.Null(h.Active("no-data"));
    }

    [Fact]
    public async Task Regression_a_dead_device_raised_a_missing_data_alert_per_series_besides_its_device_down_alert()
    {
        // One dead PDU, cycling: device-down and rack-inlet-missing fired and resolved independently (13 webhook posts in 6 min).
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: device-down, type: device_down, device: "pdu-*", severity: critical }
                - { name: no-data, type: missing, match: { metric: inlet }, after: 1m }
            """);
        var pdu = h.Series("pdu-r01", "inlet");
        var rack = h.Series("rack-r01", "inlet"); // no device_down rule covers it: its missing alert is the only signal
        h.Feed(pdu, 22);
        h.Feed(rack, 22);
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceDown, "pdu-r01", h.Time.GetUtcNow(), EventSeverity.Warning, "down"));
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceDown, "rack-r01", h.Time.GetUtcNow(), EventSeverity.Warning, "down"));
        h.Advance(TimeSpan.FromSeconds(90));
        Assert.NotNull(h.Active("device-down", "pdu-r01"));
        Assert.Null(h.Active("no-data", "pdu-r01/inlet"));
        Assert.NotNull(h.Active("no-data", "rack-r01/inlet"));

        // Up again but still silent (the metric stopped): now the missing alert is the news.
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceUp, "pdu-r01", h.Time.GetUtcNow(), EventSeverity.Info, "up"));
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(h.Active("device-down", "pdu-r01"));
        Assert.NotNull(h.Active("no-data", "pdu-r01/inlet"));
    }

    [Fact]
    public async Task Device_down_follows_the_schedulers_events()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: device-down, type: device_down, device: "pdu-*", for: 10s, severity: critical }
            """);
        var t = h.Time.GetUtcNow();
        var cause = new Dictionary<string, string> { ["reason"] = "timeout", ["failures"] = "5", ["error"] = "no answer from udp:10.0.0.5:161 within 2s" };
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceDown, "pdu-r01", t, EventSeverity.Warning, "down", cause));
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceDown, "rack-r01", t, EventSeverity.Warning, "down"));
        Assert.Equal(AlertState.Pending, h.StateOf("device-down", "pdu-r01"));
        h.Advance(TimeSpan.FromSeconds(11));
        var alert = h.Active("device-down");
        Assert.NotNull(alert);
        Assert.Equal("pdu-r01", alert.Key);
        Assert.Equal("r01", alert.Labels["rack"]);
        Assert.Equal("device pdu-r01 is down: 5 failed polls, no answer from udp:10.0.0.5:161 within 2s", alert.Summary);
        Assert.Single(h.Manager.Active());
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceUp, "pdu-r01", h.Time.GetUtcNow(), EventSeverity.Info, "up"));
        Assert.Null(h.Active("device-down"));
    }

    [Fact]
    public async Task Prediction_event_below_a_limit_fires_and_expires_without_new_predictions()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - name: thermal-shutdown-soon
                  type: event
                  event: prediction
                  source: "room1*"
                  attribute: time_to_shutdown_min
                  below: 15
                  clear_above: 20
                  clear_after: 10m
                  severity: critical
                - { name: failure-likely, type: event, event: prediction, attribute: failure_probability, above: 0.8, clear_below: 0.6 }
            """);
        void Predict(string source, string attribute, double value) => h.Service.Handle(new EdgeEvent(
            EdgeEventKind.Prediction, source, h.Time.GetUtcNow(), EventSeverity.Info, "prediction",
            new Dictionary<string, string> { [attribute] = value.ToString(CultureInfo.InvariantCulture) }));

        Predict("room1/thermal", "time_to_shutdown_min", 25);
        Assert.Null(h.Active("thermal-shutdown-soon"));
        Predict("room1/thermal", "time_to_shutdown_min", 12);
        Assert.Equal(12, h.Active("thermal-shutdown-soon")!.Value);
        Predict("room1/thermal", "time_to_shutdown_min", 18); // inside the hysteresis band
        Assert.NotNull(h.Active("thermal-shutdown-soon"));
        h.Advance(TimeSpan.FromMinutes(11));
        Assert.Null(h.Active("thermal-shutdown-soon"));

        Predict("press-1/bearing", "failure_probability", 0.85);
        Assert.NotNull(h.Active("failure-likely", "press-1/bearing"));
        Predict("press-1/bearing", "failure_probability", 0.7);
        Assert.NotNull(h.Active("failure-likely"));
        Predict("press-1/bearing", "failure_probability", 0.5);
        Assert.Null(h.Active("failure-likely"));
    }

    [Fact]
    public async Task Any_per_room_gives_one_alert_for_the_room_not_one_per_rack()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: room-hot, type: threshold, match: { role: rack.inlet_temperature }, above: 30, combine: any, per: room }
            """);
        var r1 = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        var r2 = h.Series("rack-r02", "inlet", "rack.inlet_temperature");
        var r3 = h.Series("rack-r03", "inlet", "rack.inlet_temperature");
        h.Feed(r1, 31);
        h.Feed(r2, 32);
        h.Feed(r3, 20);
        var active = h.Manager.Active();
        var room = Assert.Single(active);
        Assert.Equal("room1", room.Key);
        Assert.Equal("room1", room.Labels["room"]);
        h.Feed(r1, 20);
        Assert.NotNull(h.Active("room-hot"));
        h.Feed(r2, 20);
        Assert.Null(h.Active("room-hot"));
    }

    [Fact]
    public async Task All_per_rack_fires_only_when_every_series_of_the_rack_agrees()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: rack-all-hot, type: threshold, match: { device: "*-r01" }, above: 30, clear_below: 29, combine: all, per: rack }
            """);
        var a = h.Series("rack-r01", "inlet");
        var b = h.Series("pdu-r01", "temperature");
        h.Feed(a, 35);
        Assert.Null(h.Active("rack-all-hot"));
        h.Feed(b, 31);
        Assert.Equal("r01", h.Active("rack-all-hot")!.Key);
        h.Feed(b, 29.5); // hysteresis keeps this member active
        Assert.NotNull(h.Active("rack-all-hot"));
        h.Feed(b, 28);
        Assert.Null(h.Active("rack-all-hot"));
    }

    [Fact]
    public async Task A_rule_gated_on_the_uplink_raises_only_while_the_centre_cannot_see_us()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: local-escalation, type: threshold, match: { metric: inlet }, above: 30, when_uplink: not_online, severity: critical }
                - { name: uplink-down, type: uplink, for: 1m }
            """);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 35);
        Assert.Null(h.Active("local-escalation"));

        h.Service.Connectivity.Observe(probeOk: false, uplinkHealthy: null);
        Assert.Equal(UplinkState.Degraded, h.Service.Connectivity.State);
        Assert.NotNull(h.Active("local-escalation"));

        h.Service.Connectivity.Observe(false, null);
        h.Service.Connectivity.Observe(false, null);
        Assert.Equal(UplinkState.Offline, h.Service.Connectivity.State);
        Assert.Equal(AlertState.Pending, h.StateOf("uplink-down"));
        h.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(AlertState.Firing, h.StateOf("uplink-down"));

        h.Service.Connectivity.Observe(true, true);
        Assert.Null(h.Active("local-escalation"));
        Assert.Null(h.Active("uplink-down"));
    }

    [Fact]
    public async Task Regression_a_restart_during_an_outage_sent_a_false_resolved_for_the_uplink_alert()
    {
        var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: uplink-down, type: uplink }
            """);
        for (var i = 0; i < 3; i++)
        {
            h.Service.Connectivity.Observe(false, null);
        }

        Assert.Equal(AlertState.Firing, h.StateOf("uplink-down"));
        var restarted = await h.RestartAsync();
        await using (restarted)
        {
            Assert.Equal(AlertState.Firing, restarted.StateOf("uplink-down"));

            // The first check after the restart fails: offline as saved before the restart (it was degraded before the
            // state was kept); either way it must not clear the restored alert.
            restarted.Service.Connectivity.Observe(false, null);
            Assert.Equal(UplinkState.Offline, restarted.Service.Connectivity.State);
            Assert.Equal(AlertState.Firing, restarted.StateOf("uplink-down"));
            Assert.DoesNotContain(restarted.Manager.History(100), e => e.Rule == "uplink-down" && e.Change == "cleared");

            restarted.Service.Connectivity.Observe(true, true);
            Assert.Null(restarted.Active("uplink-down"));
        }
    }

    [Fact]
    public async Task Regression_a_broker_that_refuses_the_client_never_raised_the_uplink_alert()
    {
        // The broker's port answers (probe ok) but the login is refused: nothing is delivered, which was "degraded" for ever.
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: uplink-down, type: uplink }
            """);
        for (var i = 0; i < 3; i++)
        {
            h.Service.Connectivity.Observe(probeOk: true, uplinkHealthy: false);
        }

        Assert.Equal(UplinkState.Offline, h.Service.Connectivity.State);
        Assert.Equal(AlertState.Firing, h.StateOf("uplink-down"));
        Assert.Contains("answers but the uplink has delivered nothing for 3 checks", h.Service.Connectivity.History()[^1].Reason, StringComparison.Ordinal);
        Assert.StartsWith("uplink offline: ", h.Active("uplink-down")!.Summary, StringComparison.Ordinal);
        Assert.Contains("delivered nothing for 3 checks", h.Active("uplink-down")!.Summary, StringComparison.Ordinal);

        // The port answering again is not enough; the alert clears when the uplink delivers.
        h.Service.Connectivity.Observe(true, false);
        Assert.Equal(AlertState.Firing, h.StateOf("uplink-down"));
        h.Service.Connectivity.Observe(true, true);
        Assert.Null(h.Active("uplink-down"));
    }

    [Fact]
    public async Task Series_registered_after_start_are_bound_and_unmatched_series_cost_nothing()
    {
        await using var h = await Harness.StartAsync(Inlet.Replace("for: 30s", "for: 0s", StringComparison.Ordinal));
        var other = h.Series("pdu-r01", "current", unit: "A");
        h.Feed(other, 1000);
        Assert.Equal(0, h.Service.Engine.BoundSeries);
        var late = h.Series("rack-r02", "inlet", "rack.inlet_temperature");
        Assert.Equal(1, h.Service.Engine.BoundSeries);
        h.Feed(late, 40);
        Assert.Equal("rack-r02/inlet", h.Active("inlet-hot")!.Key);
    }

    [Fact]
    public async Task Evaluating_samples_without_a_change_allocates_nothing()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: hot, type: threshold, match: { metric: inlet }, above: 30 }
                - { name: rising, type: rate, match: { metric: inlet }, rise_per_min: 50 }
                - { name: stuck, type: stuck, match: { metric: inlet }, after: 1h }
                - { name: gone, type: missing, match: { metric: inlet }, after: 1h }
            """);
        var ids = Enumerable.Range(0, 100).Select(i => h.Series($"rack-{i}", "inlet")).ToArray();
        var batch = new Sample[ids.Length];
        void Fill(int round)
        {
            var t = h.Time.GetUtcNow().ToUnixTimeMilliseconds() + round;
            for (var i = 0; i < ids.Length; i++)
            {
                batch[i] = new Sample(ids[i], t, 20 + (round % 2 * 0.1));
            }
        }

        for (var round = 0; round < 100; round++)
        {
            Fill(round);
            h.Service.Process(batch); // warm up: rate rings are allocated on first use
        }

        // Up to three measured passes of 100,000 evaluations. Once in CI a pass allocated 1,272 bytes (not reproduced;
        // far below one byte per evaluation, so one-time work on this thread such as a tier-up, not the engine's); an
        // allocation per sample or per batch shows in every pass.
        var passes = new List<long>();
        for (var pass = 0; pass < 3 && (passes.Count == 0 || passes[^1] != 0); pass++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var round = 100 + (pass * 1000); round < 1100 + (pass * 1000); round++)
            {
                Fill(round);
                h.Service.Process(batch);
            }

            passes.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(passes[^1] == 0, $"bytes allocated per pass of 1,000 batches: {string.Join(", ", passes)}");
    }
}
