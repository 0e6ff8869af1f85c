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
        Assert.Equal("device ups-apc (site dc1): output_status reports onBattery (state code 3) since 12:00:00 UTC", onBattery.Summary);

        h.Feed(ietf, 5);
        Assert.Equal(AlertState.Firing, h.StateOf("ups-on-battery", "ups-ietf/output_source"));
        h.Feed(ietf, 6);
        h.Feed(apc, 2);
        Assert.Empty(h.Manager.Active());
    }

    [Fact]
    public async Task Regression_a_wall_clock_step_held_a_pending_alert_for_the_size_of_the_step_or_fired_it_at_once()
    {
        // for: compared wall-clock instants: an NTP step back of an hour kept an inlet alarm pending an hour longer, a step
        // forward fired it at once, skipping its hold-down.
        await using var h = await Harness.StartAsync(Inlet);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        h.Feed(s, 28);
        h.Clock.Step(TimeSpan.FromHours(-1));
        h.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(AlertState.Pending, h.StateOf("inlet-hot"));
        h.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));

        h.Feed(s, 20);
        Assert.Null(h.Active("inlet-hot"));
        h.Feed(s, 28);
        h.Clock.Step(TimeSpan.FromDays(1));
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(AlertState.Pending, h.StateOf("inlet-hot"));
    }

    [Fact]
    public async Task Regression_a_forward_clock_step_made_every_series_look_missing()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: no-data, type: missing, match: { device: "rack-*" }, after: 1m, severity: critical }
            """);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 22);
        h.Clock.Step(TimeSpan.FromDays(1));
        h.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(h.Active("no-data"));

        // And a step back does not hide a real gap.
        h.Feed(s, 22);
        h.Clock.Step(TimeSpan.FromHours(-2));
        h.Advance(TimeSpan.FromSeconds(61));
        Assert.NotNull(h.Active("no-data"));
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
    public async Task Regression_a_backward_clock_step_blinded_rate_rules_for_the_size_of_the_step()
    {
        // Each sample older than the last was dropped as out of order: after NTP stepped the clock an hour back, a
        // rise_per_min rule saw nothing for that hour, however fast the inlet rose.
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: inlet-rising, type: rate, match: { role: rack.inlet_temperature }, rise_per_min: 2, clear_rise_per_min: 1, window: 1m }
            """);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        for (var i = 0; i < 7; i++)
        {
            h.Feed(s, 22);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        h.Clock.Step(TimeSpan.FromHours(-1));
        var v = 22.0;
        for (var i = 0; i < 8 && h.Active("inlet-rising") is null; i++)
        {
            v += 0.5;
            h.Feed(s, v);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.NotNull(h.Active("inlet-rising"));

        // A step forward in a flat stretch is no rise (and no clear of a real one before the window refills).
        for (var i = 0; i < 8; i++)
        {
            h.Feed(s, v);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Null(h.Active("inlet-rising"));
        h.Clock.Step(TimeSpan.FromHours(5));
        for (var i = 0; i < 8; i++)
        {
            h.Feed(s, v);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Null(h.Active("inlet-rising"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    public async Task Regression_a_rate_rule_never_fired_with_1s_polling(int pollSeconds)
    {
        // The shipped rack-inlet-rising-fast rule. Its 64-point ring held 63 s at 1 s polling, never half the 3 min window.
        const string rule = """
            alerts:
              rules:
                - { name: rising-fast, type: rate, match: { role: rack.inlet_temperature }, rise_per_min: 1.5, clear_rise_per_min: 0.5, window: 3m }
            """;
        await using var h = await Harness.StartAsync(rule);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");

        // Flat (with sensor jitter) for 10 min: quiet.
        for (var t = 0; t < 600; t += pollSeconds)
        {
            h.Feed(s, 22 + (t / pollSeconds % 2 * 0.1));
            h.Advance(TimeSpan.FromSeconds(pollSeconds));
        }

        Assert.Null(h.Active("rising-fast"));

        // 5 K/min for 2 min: the rate over the last 3 min passes 1.5 K/min within the first minute.
        for (var t = 0; t < 120; t += pollSeconds)
        {
            h.Feed(s, 22 + (5.0 * t / 60));
            h.Advance(TimeSpan.FromSeconds(pollSeconds));
        }

        var alert = h.Active("rising-fast");
        Assert.NotNull(alert);
        Assert.Equal(AlertState.Firing, alert.State);
        Assert.True(alert.Value >= 1.5, $"rate {alert.Value}");
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

    private const string FlapRules = """
        alerts:
          group_interval: 0s
          flap_window: 5m
          flap_max_changes: 3
          rules:
            - { name: flappy, type: threshold, match: { metric: inlet }, above: 30, severity: warning }
            - { name: fan-hot, type: threshold, match: { metric: fan }, above: 30, severity: warning }
        """;

    private const string RetirementRules = """
        alerts:
          group_interval: 0s
          rules:
            - { name: no-data, type: missing, match: { device: "rack-*" }, after: 1m, severity: critical }
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, severity: warning }
        """;

    [Fact]
    public async Task A_missing_alert_of_a_retired_series_clears_saying_why_and_its_rules_stop_watching_it()
    {
        // The row of a switch port left its table: "no data" fired, and before retirement it would have fired until a restart.
        await using var h = await Harness.StartAsync(RetirementRules);
        var gone = h.Series("rack-r01", "inlet");
        var stays = h.Series("rack-r02", "inlet");
        h.Feed(gone, 35);
        h.Feed(stays, 22);
        h.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(AlertState.Firing, h.StateOf("no-data", "rack-r01/inlet"));
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot", "rack-r01/inlet"));
        Assert.Equal(2, h.Service.Engine.BoundSeries);

        h.Registry.Retire(gone);
        h.Advance(TimeSpan.FromSeconds(1));

        Assert.Null(h.Active("no-data", "rack-r01/inlet"));
        Assert.Null(h.Active("inlet-hot", "rack-r01/inlet"));
        Assert.Equal(AlertState.Firing, h.StateOf("no-data", "rack-r02/inlet"));
        Assert.Equal(1, h.Service.Engine.BoundSeries);
        await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Resolved) == 2, "two resolved messages");
        var cleared = h.Sink.All.Single(a => a.Status == AlertStatus.Resolved && a.Rule == "no-data");
        Assert.Equal("rack r01 (room1, site dc1): inlet left the device (its table row is gone for row_retention): series retired, alert cleared", cleared.Summary);

        // Long after: never missing again.
        h.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(h.Active("no-data", "rack-r01/inlet"));
    }

    [Fact]
    public async Task Regression_the_alerts_of_retired_series_stayed_in_memory_until_a_restart()
    {
        // A churning table (virtual ports, a renumbering PDU) left one alert instance per rule and vanished row for ever.
        await using var h = await Harness.StartAsync(RetirementRules);
        var gone = h.Series("rack-r01", "inlet");
        var quiet = h.Series("rack-r03", "inlet");
        var stays = h.Series("rack-r02", "inlet");
        h.Feed(gone, 35);
        h.Feed(quiet, 22);
        h.Feed(stays, 22);
        h.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(6, h.Manager.InstanceCount);

        h.Registry.Retire(gone);  // firing: cleared, then forgotten
        h.Registry.Retire(quiet); // never fired: forgotten
        h.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(2, h.Manager.InstanceCount);
        Assert.Equal(AlertState.Firing, h.StateOf("no-data", "rack-r02/inlet"));
        await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Resolved && a.Key == "rack-r01/inlet") == 2, "the clears of the retired series' alerts");
    }

    private const string AnomalyRule = """
        alerts:
          group_interval: 0s
          rules:
            - { name: anomaly-high, type: event, event: anomaly, attribute: score, above: 0.9, clear_below: 0.7, clear_after: 5m }
        """;

    private static void Publish(Harness h, EdgeEventKind kind, string source, string attribute, string value) =>
        h.Service.Handle(new EdgeEvent(kind, source, h.Time.GetUtcNow(), EventSeverity.Warning, kind.ToString(), new Dictionary<string, string> { [attribute] = value }));

    [Fact]
    public async Task Regression_the_anomaly_alerts_of_retired_series_stayed_in_memory_until_a_restart()
    {
        // The binding alerts of a retired row were forgotten, its event alerts were not: every row of a churning table
        // that once had an anomaly event past the limit left an anomaly alert, and an entry in the
        // engine's clear_after list, for ever.
        await using var h = await Harness.StartAsync(AnomalyRule);
        void Anomaly(string source, string score) => Publish(h, EdgeEventKind.Anomaly, source, "score", score);

        _ = h.Series("rack-r02", "inlet"); // a live series' event alert stays
        Anomaly("rack-r02/inlet", "0.95");
        const int Rows = 300;
        for (var i = 0; i < Rows; i++)
        {
            var row = h.Series("rack-r01", $"port_{i}_in_octets");
            Anomaly($"rack-r01/port_{i}_in_octets", i % 3 == 0 ? "0.95" : "0.4"); // some fire, most stay below the limit
            h.Advance(TimeSpan.FromSeconds(1));
            h.Registry.Retire(row);
            h.Advance(TimeSpan.FromSeconds(1));
            Assert.True(h.Manager.InstanceCount <= 2, $"{h.Manager.InstanceCount} alerts held after {i + 1} retired rows");
        }

        Assert.Equal(1, h.Manager.InstanceCount);
        Assert.Equal(1, h.Service.Engine.EventAlertCount);
        Assert.NotNull(h.Manager.Find(h.Config.Rules.Single(), "rack-r02/inlet"));
        static bool Row(AlertSnapshot a) => a.Status == AlertStatus.Resolved && a.Key.StartsWith("rack-r01/", StringComparison.Ordinal);
        await Wait.UntilAsync(() => h.Sink.All.Count(Row) == Rows / 3, "the clears of the retired rows' firing alerts");
        Assert.All(h.Sink.All.Where(Row), a => Assert.EndsWith("series retired, alert cleared", a.Summary, StringComparison.Ordinal));

        // A row that comes back and has an anomaly again gets its alert again, and it clears after clear_after as before.
        _ = h.Series("rack-r01", "port_0_in_octets");
        Anomaly("rack-r01/port_0_in_octets", "0.95");
        Assert.Equal(AlertState.Firing, h.StateOf("anomaly-high", "rack-r01/port_0_in_octets"));
        h.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        Assert.Equal(AlertState.Inactive, h.StateOf("anomaly-high", "rack-r01/port_0_in_octets"));
    }

    [Fact]
    public async Task Regression_every_series_with_an_anomaly_event_at_any_score_kept_an_alert_in_memory()
    {
        // The anomaly stage publishes events well below the shipped rule's limit; each one made an alert instance and an
        // entry in the clear_after list, held for the series' life: ≈ 4 MB over the soak's 3,981 series.
        await using var h = await Harness.StartAsync(AnomalyRule + """

                - { name: shutdown-soon, type: event, event: prediction, attribute: time_to_thermal_shutdown_min, below: 15, clear_above: 20 }
            """);

        for (var i = 0; i < 200; i++)
        {
            _ = h.Series("pdu-r01", $"outlet_{i}_power");
            Publish(h, EdgeEventKind.Anomaly, $"pdu-r01/outlet_{i}_power", "score", "0.4");
            Publish(h, EdgeEventKind.Prediction, "room1/cooling_failure", "time_to_thermal_shutdown_min", "45");
        }

        Assert.Equal(0, h.Manager.InstanceCount);
        Assert.Equal(0, h.Service.Engine.EventAlertCount);

        // Past the limit the alert is made and fires; below it again it clears and is kept (its flap record, the owed
        // "resolved"), as before.
        Publish(h, EdgeEventKind.Anomaly, "pdu-r01/outlet_7_power", "score", "0.95");
        Publish(h, EdgeEventKind.Prediction, "room1/cooling_failure", "time_to_thermal_shutdown_min", "12");
        Assert.Equal(AlertState.Firing, h.StateOf("anomaly-high", "pdu-r01/outlet_7_power"));
        Assert.Equal(AlertState.Firing, h.StateOf("shutdown-soon", "room1/cooling_failure"));
        h.Advance(TimeSpan.FromSeconds(10));
        Publish(h, EdgeEventKind.Anomaly, "pdu-r01/outlet_7_power", "score", "0.4");
        Publish(h, EdgeEventKind.Prediction, "room1/cooling_failure", "time_to_thermal_shutdown_min", "45");
        Assert.Equal(AlertState.Inactive, h.StateOf("anomaly-high", "pdu-r01/outlet_7_power"));
        Assert.Equal(AlertState.Inactive, h.StateOf("shutdown-soon", "room1/cooling_failure"));
        Assert.Equal(2, h.Manager.InstanceCount);
        await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Resolved) == 2, "both clears delivered");
    }

    [Fact]
    public async Task A_retired_series_flapping_alert_is_kept_until_it_settles_and_one_whose_clear_a_silence_holds_back_until_the_catch_up()
    {
        await using var h = await Harness.StartAsync(FlapRules);
        var flapping = h.Series("rack-r01", "inlet");
        var silenced = h.Series("rack-r02", "fan");
        FlapFiveTimes(h, flapping);

        h.Feed(silenced, 35);
        h.Advance(TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Rule == "fan-hot" && a.Status == AlertStatus.Firing), "the fan alert announced");
        Assert.True(h.Manager.Active().Single(a => a.Rule == "flappy").Flapping);
        Assert.Equal(ControlResult.Done, h.Manager.Silence("fan-hot", h.Time.GetUtcNow().AddMinutes(10), "bob"));

        h.Registry.Retire(flapping);
        h.Registry.Retire(silenced);
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(h.Manager.Active());
        Assert.Equal(2, h.Manager.InstanceCount); // the flap guard and the owed "resolved" still need them

        h.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal(1, h.Manager.InstanceCount); // settled: the flapping one is gone
        Assert.DoesNotContain(h.Sink.All, a => a.Rule == "fan-hot" && a.Status == AlertStatus.Resolved);

        h.Advance(TimeSpan.FromMinutes(5));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Rule == "fan-hot" && a.Status == AlertStatus.Resolved), "the catch-up at the silence's end");
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, h.Manager.InstanceCount);
    }

    [Fact]
    public async Task A_row_that_returns_before_its_retired_alert_is_forgotten_keeps_the_alert_live()
    {
        await using var h = await Harness.StartAsync(FlapRules);
        var first = h.Series("rack-r01", "inlet");
        FlapFiveTimes(h, first);

        h.Registry.Retire(first);
        h.Advance(TimeSpan.FromSeconds(1));
        var back = h.Series("rack-r01", "inlet"); // same key, a new series id
        Assert.NotEqual(first, back);
        h.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal(1, h.Manager.InstanceCount);

        h.Feed(back, 35);
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(AlertState.Firing, h.StateOf("flappy", "rack-r01/inlet"));
    }

    /// <summary>Five raises and clears 5 s apart, ending raised: flapping with <c>flap_max_changes: 3</c>.</summary>
    private static void FlapFiveTimes(Harness h, SeriesId series)
    {
        foreach (var v in new double[] { 35, 20, 35, 20, 35 })
        {
            h.Feed(series, v);
            h.Advance(TimeSpan.FromSeconds(5));
        }
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
        Assert.Equal("device pdu-r01 (rack r01, room1, site dc1) is down since 12:00:10 UTC: 5 failed polls, no answer from udp:10.0.0.5:161 within 2s", alert.Summary);
        Assert.Single(h.Manager.Active());
        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceUp, "pdu-r01", h.Time.GetUtcNow(), EventSeverity.Info, "up"));
        Assert.Null(h.Active("device-down"));
    }

    [Fact]
    public async Task Regression_a_forward_clock_step_cleared_an_event_alert_before_its_clear_after()
    {
        // clear_after compared wall-clock milliseconds: NTP stepping the clock 5 h forward cleared a critical "thermal
        // shutdown in 12 min" alert at once (resolved to the NOC, relay off) and the next countdown raised it again.
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: thermal-shutdown-soon, type: event, event: prediction, attribute: time_to_shutdown_min, below: 15, clear_above: 20, clear_after: 10m, severity: critical }
            """);
        void Predict(double value) => h.Service.Handle(new EdgeEvent(
            EdgeEventKind.Prediction, "room1/thermal", h.Clock.GetUtcNow(), EventSeverity.Info, "prediction",
            new Dictionary<string, string> { ["time_to_shutdown_min"] = value.ToString(CultureInfo.InvariantCulture) }));

        Predict(12);
        var fired = h.Active("thermal-shutdown-soon");
        Assert.NotNull(fired);
        h.Clock.Step(TimeSpan.FromHours(5));
        h.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(fired.Id, h.Active("thermal-shutdown-soon")?.Id);

        // A step back does not hold it past its clear_after either.
        h.Clock.Step(TimeSpan.FromHours(-7));
        h.Advance(TimeSpan.FromMinutes(10));
        Assert.Null(h.Active("thermal-shutdown-soon"));
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

    private const string ShutdownRule = """
        alerts:
          rules:
            - { name: thermal-shutdown-soon, type: event, event: prediction, attribute: time_to_thermal_shutdown_min, below: 15, clear_above: 20, clear_after: 10m, severity: critical }
        """;

    /// <summary>The thermal twin's cooling_failure prediction (ThermalTwinStage): active with a countdown, or resolved without one.</summary>
    private static EdgeEvent CoolingFailure(Harness h, string state, double? shutdownMin)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["scenario"] = "cooling_failure",
            ["model"] = "thermal",
            ["state"] = state,
            ["zone"] = "room1",
            ["failed_units"] = "crac1,crac2",
        };
        if (shutdownMin is { } m)
        {
            attributes["time_to_thermal_shutdown_min"] = m.ToString(CultureInfo.InvariantCulture);
            attributes["time_to_shutdown_min"] = attributes["time_to_thermal_shutdown_min"];
        }

        return new EdgeEvent(EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), shutdownMin is null ? EventSeverity.Info : EventSeverity.Critical,
            state == "resolved" ? "cooling_failure in room1 resolved: crac1,crac2 running again" : "cooling_failure in room1", attributes);
    }

    [Fact]
    public async Task Regression_the_thermal_shutdown_alert_stayed_firing_10_min_after_the_cooling_failure_resolved()
    {
        var h = await Harness.StartAsync(ShutdownRule);
        h.Service.Handle(CoolingFailure(h, "active", 6.84));
        Assert.Equal(AlertState.Firing, h.StateOf("thermal-shutdown-soon"));
        h.Advance(TimeSpan.FromSeconds(10));
        h.Service.Handle(CoolingFailure(h, "active", 12.59));
        h.Advance(TimeSpan.FromSeconds(10));

        // Cooling back: the twin's resolved event clears it at once, not clear_after (10 min) after the last countdown.
        h.Service.Handle(CoolingFailure(h, "resolved", null));
        Assert.Null(h.Active("thermal-shutdown-soon"));
        Assert.Equal(["raised", "cleared"], h.Manager.History(10).Select(e => e.Change));

        // A failure still on but no shutdown within the horizon (no countdown in the event) also ends the alert.
        h.Service.Handle(CoolingFailure(h, "active", 5));
        Assert.NotNull(h.Active("thermal-shutdown-soon"));
        h.Service.Handle(CoolingFailure(h, "active", null));
        Assert.Null(h.Active("thermal-shutdown-soon"));

        // After a restart the restored alert is cleared by the resolved event too (the twin sends it when the unit runs again).
        h.Service.Handle(CoolingFailure(h, "active", 4));
        h = await h.RestartAsync();
        await using (h)
        {
            Assert.Equal(AlertState.Firing, h.StateOf("thermal-shutdown-soon"));
            h.Service.Handle(CoolingFailure(h, "resolved", null));
            Assert.Null(h.Active("thermal-shutdown-soon"));

            // A resolved event with no alert open raises nothing and creates nothing.
            h.Service.Handle(CoolingFailure(h, "resolved", null));
            Assert.Empty(h.Manager.Active());
        }
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
    public async Task Regression_alerts_list_and_the_acknowledge_showed_the_value_at_the_raise_not_the_current_value()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              group_interval: 0s
              rules:
                - { name: inlet-hot, type: threshold, match: { role: rack.inlet_temperature }, above: 32, clear_below: 30, severity: critical }
                - { name: ups-on-battery, type: state, match: { role: ups.output_source }, states: [battery, onBattery], severity: critical }
            """);
        var s = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        h.Feed(s, 32.3);
        await Wait.UntilAsync(() => h.Sink.All.Count == 1, "firing message");
        h.Feed(s, 33.8);
        h.Feed(s, 34.9);
        Assert.Equal(34.9, h.Active("inlet-hot")!.Value);

        Assert.Equal(ControlResult.Done, h.Manager.Acknowledge(h.Active("inlet-hot")!.Id, "ops"));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Acknowledged), "acknowledge message");
        Assert.Equal(34.9, h.Sink.All.Single(a => a.Status == AlertStatus.Acknowledged).Value);

        // Inside the hysteresis band: still firing, still the live value; the clear carries the value that cleared it.
        h.Feed(s, 31);
        Assert.Equal(31, h.Active("inlet-hot")!.Value);
        h.Feed(s, 29.5);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "resolved message");
        Assert.Equal(29.5, h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Value);

        // A state alert shows the state it is in now.
        var ups = h.Registry.GetOrAdd(new SeriesDescriptor("ups-apc", "output_status", "1", MetricKind.State, "ups.output_source"));
        h.Feed(ups, 3);
        Assert.Equal(3, h.Active("ups-on-battery")!.Value);
        h.Feed(ups, 3);
        Assert.Equal(3, h.Active("ups-on-battery")!.Value);
    }

    [Fact]
    public async Task Regression_a_room_alert_showed_the_value_at_the_raise_not_its_hottest_rack_now()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: room-hot, type: threshold, match: { role: rack.inlet_temperature }, above: 27, clear_below: 26, combine: any, per: room }
            """);
        var r1 = h.Series("rack-r01", "inlet", "rack.inlet_temperature");
        var r2 = h.Series("rack-r02", "inlet", "rack.inlet_temperature");
        h.Feed(r1, 27.5);
        h.Feed(r2, 25);
        Assert.Equal(27.5, h.Active("room-hot")!.Value);

        // The hottest active rack, not whichever rack sent the last sample.
        h.Feed(r2, 29);
        h.Feed(r1, 27.8);
        Assert.Equal(29, h.Active("room-hot")!.Value);
        h.Feed(r2, 30.5);
        Assert.Equal(30.5, h.Active("room-hot")!.Value);

        // The hottest rack cools below the clear level: the other one, still hot, is shown from its next sample.
        h.Feed(r2, 25);
        h.Feed(r1, 28.1);
        Assert.Equal(28.1, h.Active("room-hot")!.Value);
    }

    [Fact]
    public async Task Regression_a_room_alert_was_labelled_with_the_rack_and_device_of_its_first_member()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: room-hot, type: threshold, match: { role: rack.inlet_temperature }, above: 27, combine: any, per: room }
                - { name: rack-hot, type: threshold, match: { role: rack.inlet_temperature }, above: 27, combine: any, per: rack }
            """);
        var pdu = h.Series("pdu-r01", "inlet", "rack.inlet_temperature");
        var r2 = h.Series("rack-r02", "inlet", "rack.inlet_temperature");
        h.Feed(pdu, 20);
        h.Feed(r2, 28);

        var room = h.Active("room-hot")!;
        Assert.Equal(new Dictionary<string, string> { ["room"] = "room1", ["rule"] = "room-hot", ["severity"] = "warning" }, room.Labels);
        await Wait.UntilAsync(() => h.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "room-hot"), "the alert_raised event");
        var raised = h.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "room-hot").Attributes!;
        Assert.Equal("room1", raised["label.room"]);
        Assert.False(raised.ContainsKey("label.device") || raised.ContainsKey("label.rack"));

        // Per rack: the rack and the room it stands in, not the device of the member that spoke first.
        var rack = h.Active("rack-hot")!;
        Assert.Equal(new Dictionary<string, string> { ["rack"] = "r02", ["room"] = "room1", ["rule"] = "rack-hot", ["severity"] = "warning" }, rack.Labels);
    }

    [Fact]
    public async Task Regression_an_event_alert_was_labelled_with_its_sources_first_segment_as_device_and_no_room()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: thermal-shutdown-soon, type: event, event: prediction, attribute: time_to_thermal_shutdown_min, below: 15, clear_above: 20, severity: critical }
                - { name: anomaly-high, type: event, event: anomaly, attribute: score, above: 0.9, clear_below: 0.7 }
            """);

        // The thermal twin's room1/cooling_failure names its zone (a room): room=room1, no device "room1".
        h.Service.Handle(CoolingFailure(h, "active", 6.84));
        var thermal = h.Active("thermal-shutdown-soon")!;
        Assert.Equal("room1", thermal.Labels["room"]);
        Assert.False(thermal.Labels.ContainsKey("device"));
        await Wait.UntilAsync(() => h.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "thermal-shutdown-soon"), "the alert_raised event");
        Assert.Equal("room1", h.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "thermal-shutdown-soon").Attributes!["label.room"]);

        void Anomaly(string source, Dictionary<string, string> attributes) =>
            h.Service.Handle(new EdgeEvent(EdgeEventKind.Anomaly, source, h.Time.GetUtcNow(), EventSeverity.Warning, "anomaly", attributes));

        // A series anomaly names its device; the twin's hot spot is keyed by its rack; an unknown source gives no place.
        Anomaly("rack-r01/inlet", new() { ["score"] = "0.95", ["device"] = "rack-r01" });
        Anomaly("r02/thermal_hot_spot", new() { ["score"] = "0.95" });
        Anomaly("group:hall", new() { ["score"] = "0.95" });
        var series = h.Active("anomaly-high", "rack-r01/inlet")!.Labels;
        Assert.Equal(("rack-r01", "r01", "room1"), (series["device"], series["rack"], series["room"]));
        var spot = h.Active("anomaly-high", "r02/thermal_hot_spot")!.Labels;
        Assert.Equal(("r02", "room1"), (spot["rack"], spot["room"]));
        Assert.False(spot.ContainsKey("device"));
        Assert.Equal(["rule", "severity"], h.Active("anomaly-high", "group:hall")!.Labels.Keys.Order(StringComparer.Ordinal));
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
        Assert.Contains("the uplink has delivered nothing for 3 checks", h.Service.Connectivity.History()[^1].Reason, StringComparison.Ordinal);
        Assert.StartsWith("uplink (site dc1) offline since 12:00:00 UTC: ", h.Active("uplink-down")!.Summary, StringComparison.Ordinal);
        Assert.Contains("delivered nothing for 3 checks", h.Active("uplink-down")!.Summary, StringComparison.Ordinal);

        // The port answering again is not enough; the alert clears when the uplink delivers.
        h.Service.Connectivity.Observe(true, false);
        Assert.Equal(AlertState.Firing, h.StateOf("uplink-down"));
        h.Service.Connectivity.Observe(true, true);
        Assert.Null(h.Active("uplink-down"));
    }

    [Fact]
    public async Task Regression_the_uplink_alert_said_only_uplink_offline_without_the_site_or_since_when()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              group_interval: 0s
              rules:
                - { name: uplink-down, type: uplink, severity: warning }
            """);
        h.Advance(TimeSpan.FromMinutes(3));
        for (var i = 0; i < 3; i++)
        {
            h.Service.Connectivity.Observe(probeOk: false, uplinkHealthy: false);
        }

        Assert.StartsWith("uplink (site dc1) offline since 12:03:00 UTC: ", h.Active("uplink-down")!.Summary, StringComparison.Ordinal);
        h.Advance(TimeSpan.FromMinutes(42) + TimeSpan.FromSeconds(13));
        h.Service.Connectivity.Observe(true, true);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the clear's message");
        Assert.Equal("uplink (site dc1) back online after 42 min 13 s", h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary);
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
        // "warm" fires at once: the live value of firing alerts (single and combined) is kept without allocating.
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: hot, type: threshold, match: { metric: inlet }, above: 30 }
                - { name: rising, type: rate, match: { metric: inlet }, rise_per_min: 50 }
                - { name: stuck, type: stuck, match: { metric: inlet }, after: 1h }
                - { name: gone, type: missing, match: { metric: inlet }, after: 1h }
                - { name: warm, type: threshold, match: { metric: inlet }, above: 10 }
                - { name: warm-rack, type: threshold, match: { metric: inlet }, above: 10, combine: any, per: rack }
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

        Assert.Equal(200, h.Manager.Active().Count(a => a.Rule.StartsWith("warm", StringComparison.Ordinal)));

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
