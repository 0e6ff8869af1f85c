using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The default one-line summary the operator reads: what, where, how bad, since when; clears read as clears.</summary>
public sealed class SummaryTests
{
    private const string Allowable = """
        alerts:
          rules:
            - { name: inlet-allowable, type: threshold, match: { role: rack.inlet_temperature }, above: 32, clear_below: 30, for: 30s, severity: critical }
            - { name: pdu-power, type: threshold, match: { metric: total_power }, above: 2.19, severity: warning }
        """;

    [Fact]
    public async Task Regression_a_threshold_summary_had_no_unit_no_place_and_named_the_pdu_not_the_rack()
    {
        await using var h = await Harness.StartAsync(Allowable);
        var inlet = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        var power = h.Series("pdu-r01", "total_power", "pdu.total_power", "kW");

        h.Feed(inlet, 32.3);
        h.Advance(TimeSpan.FromSeconds(31));
        h.Feed(power, 2.2);

        // Was "pdu-r01/inlet_temperature = 32.3, above 32" and "pdu-r01/total_power = 2.2, above 2.19".
        Assert.Equal("rack r01 (room1, site dc1): inlet_temperature 32.3 °C above 32 °C since 12:00:30 UTC", h.Active("inlet-allowable")!.Summary);
        Assert.Equal("rack r01 (room1, site dc1): total_power 2.2 kW above 2.19 kW since 12:00:31 UTC", h.Active("pdu-power")!.Summary);
    }

    [Fact]
    public async Task Regression_a_stuck_or_missing_summary_read_as_unchanged_since_the_time_it_fired()
    {
        // Was "inlet_temperature has not changed for 3m since 12:03:00 UTC": unchanged since 12:00, fired at 12:03.
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: inlet-stuck, type: stuck, match: { role: rack.inlet_temperature }, after: 3m, tolerance: 0.01, severity: info }
                - { name: power-missing, type: missing, match: { role: pdu.total_power }, after: 2m, severity: warning }
            """);
        var inlet = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        var power = h.Series("pdu-r01", "total_power", "pdu.total_power", "kW");
        h.Feed(power, 2.2);
        for (var t = 0; t <= 19; t++)
        {
            h.Feed(inlet, 21.5);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Matches(@"^rack r01 \(room1, site dc1\): inlet_temperature has not changed for 3m; firing since 12:03:0\d UTC$", h.Active("inlet-stuck")!.Summary);
        Assert.Matches(@"^rack r01 \(room1, site dc1\): total_power has sent no data for 2m; firing since 12:02:0\d UTC$", h.Active("power-missing")!.Summary);
    }

    [Fact]
    public void Regression_a_summary_template_with_an_unknown_placeholder_reached_the_operator_as_written()
    {
        // check passed "{rack} is hot" (only action: was checked), and the journal and the NOC read "{rack} is hot".
        var (_, problems) = Yaml.Alerts("""
            alerts:
              rules:
                - { name: inlet-hot, type: threshold, match: { metric: inlet_temperature }, above: 27, summary: "{rack} is hot" }
            """);
        Assert.Contains("summary: unknown placeholder {rack}: summary can use {key}, {value}, {peak}, {rule}, {unit}, {limit}, {place}, {site}, {since}", Assert.Single(problems).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_summary_template_says_where_since_when_and_against_which_limit_as_the_default_text_does()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: inlet-allowable, type: threshold, match: { role: rack.inlet_temperature }, above: 32, clear_below: 30, for: 30s, severity: critical,
                    summary: "{place}: inlet {value} {unit} over {limit} since {since} ({rule} at {site})" }
            """);
        var inlet = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        h.Feed(inlet, 32.3);
        Assert.Equal("rack r01 (room1, site dc1): inlet 32.3 °C over 32 °C since  (inlet-allowable at dc1)", h.Active("inlet-allowable")!.Summary);
        h.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal("rack r01 (room1, site dc1): inlet 32.3 °C over 32 °C since 12:00:30 UTC (inlet-allowable at dc1)", h.Active("inlet-allowable")!.Summary);
    }

    [Fact]
    public async Task Regression_a_cleared_alert_said_above_its_threshold()
    {
        await using var h = await Harness.StartAsync(Allowable);
        var inlet = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        h.Feed(inlet, 32.3);
        h.Advance(TimeSpan.FromSeconds(31));
        h.Feed(inlet, 29.9);
        h.Advance(TimeSpan.FromMinutes(1));

        // Was "pdu-r01/inlet_temperature = 29.9, above 32" in the ALERT_RESOLVED message.
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        var resolved = h.Sink.All.Single(a => a.Status == AlertStatus.Resolved);
        Assert.Equal("rack r01 (room1, site dc1): inlet_temperature 29.9 °C, back below 30 °C (clear level); peak 32.3 °C", resolved.Summary);

        // Pending again: no "since" (the previous episode's fire time is not this one's).
        h.Feed(inlet, 32.5);
        Assert.Equal(AlertState.Pending, h.StateOf("inlet-allowable"));
        Assert.Equal("rack r01 (room1, site dc1): inlet_temperature 32.5 °C above 32 °C", h.Active("inlet-allowable")!.Summary);
    }

    [Fact]
    public async Task Regression_the_thermal_alert_replaced_the_twins_message_by_attribute_equals_value()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: thermal-shutdown-soon, type: event, event: prediction, attribute: time_to_thermal_shutdown_min, below: 15, clear_above: 20, clear_after: 10m, severity: critical }
            """);
        const string Message = "cooling_failure in room1 (crac1, crac2 stopped at 09:39:03 UTC): A02 reaches 32 °C in 109 s (peak 36.1 °C within 30 min), thermal shutdown in 6.8 min, 2 rack(s) affected; first step: open doors and containment of room1 (buys 4 min)";
        h.Service.Handle(new EdgeEvent(
            EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Critical, Message,
            new Dictionary<string, string> { ["time_to_thermal_shutdown_min"] = "6.84", ["zone"] = "room1" }));

        // Was "room1/cooling_failure: time_to_thermal_shutdown_min = 6.84".
        Assert.Equal(Message, h.Active("thermal-shutdown-soon")!.Summary);
        h.Advance(TimeSpan.FromMinutes(11));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        Assert.Equal("room1/cooling_failure: no prediction event for 10m (clear_after), alert cleared; lowest time_to_thermal_shutdown_min 6.84", h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary);
    }

    [Fact]
    public async Task Regression_a_cooling_unit_failure_raised_no_local_alert_until_an_inlet_crossed_27C()
    {
        // The demo at 3 a.m.: crac1 stopped, the twin published cooling_failure at once, but the shipped rules only had
        // thermal-shutdown-soon (shutdown < 15 min), so nothing local fired until rack A01 had been above 27 °C for a
        // while, and that alert named no cooling unit. The shipped cooling-unit-failed rule fires on the first
        // prediction with the twin's text, once for all its refreshes, and resolves with the twin's "resolved".
        var shipped = File.ReadAllLines(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"))
            .SkipWhile(l => !l.Trim().StartsWith("- name: cooling-unit-failed", StringComparison.Ordinal))
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal));
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", shipped));
        const string Message = "cooling_failure in room1 (crac1 stopped at 03:13:07 UTC): no rack predicted to reach 32 °C, 0 rack(s) affected";
        for (var k = 0; k < 6; k++)
        {
            h.Service.Handle(new EdgeEvent(
                EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Info, Message,
                new Dictionary<string, string> { ["state"] = "active", ["failed_unit_count"] = "1", ["failed_units"] = "crac1", ["zone"] = "room1" }));
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(Message, h.Active("cooling-unit-failed")!.Summary);
        Assert.Equal(AlertState.Firing, h.StateOf("cooling-unit-failed"));
        h.Service.Handle(new EdgeEvent(
            EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Info, "cooling_failure in room1 resolved: crac1 running again",
            new Dictionary<string, string> { ["state"] = "resolved", ["failed_units"] = "crac1", ["zone"] = "room1" }));
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        Assert.Single(h.Sink.All, a => a.Status == AlertStatus.Firing && a.Severity == EventSeverity.Critical);
        Assert.Single(h.Sink.All, a => a.Status == AlertStatus.Resolved);
    }

    [Fact]
    public async Task Regression_the_shipped_room_hot_spot_said_several_racks_when_one_rack_was_hot()
    {
        // The rule as datacenter.yaml ships it (its targets are the file's sinks, not the harness's).
        var shipped = File.ReadAllLines(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"))
            .SkipWhile(l => !l.Trim().StartsWith("- name: room-hot-spot", StringComparison.Ordinal))
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal))
            .Where(l => !l.TrimStart().StartsWith("targets:", StringComparison.Ordinal));
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", shipped));
        var r1 = h.Series("rack-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        var r2 = h.Series("rack-r02", "inlet_temperature", "rack.inlet_temperature", "Cel");
        var pdu = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        h.Feed(r2, 24);
        h.Feed(pdu, 24);
        h.Feed(r1, 27.6);
        h.Advance(TimeSpan.FromMinutes(1.1));

        // Was "several racks of room1 run hot"; r01's second sensor (its PDU) is the same rack, not another one.
        Assert.Equal("room room1 (site dc1): inlet_temperature 27.6 °C above 27 °C in rack r01 since 12:01:00 UTC", h.Active("room-hot-spot")!.Summary);
        h.Feed(pdu, 28);

        // Still one rack; the value is the live worst one (r01's PDU now reads 28), not the one at the raise (finding 3).
        Assert.Equal("room room1 (site dc1): inlet_temperature 28 °C above 27 °C in rack r01 since 12:01:00 UTC", h.Active("room-hot-spot")!.Summary);
        h.Feed(r2, 28.4);
        Assert.Equal("room room1 (site dc1): inlet_temperature above 27 °C in 2 of 2 racks (r01, r02) since 12:01:00 UTC", h.Active("room-hot-spot")!.Summary);
        h.Feed(r1, 25);
        Assert.Equal("room room1 (site dc1): inlet_temperature above 27 °C in 2 of 2 racks (r01, r02) since 12:01:00 UTC", h.Active("room-hot-spot")!.Summary);
        h.Feed(pdu, 25);
        h.Feed(r2, 25);
        Assert.Null(h.Active("room-hot-spot"));
        h.Advance(TimeSpan.FromMinutes(1));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        // The worst member while it was active (r02 at 28.4), which the clear's text alone no longer shows.
        Assert.Equal("room room1 (site dc1): inlet_temperature back below 26 °C (clear level); peak 28.4 °C", h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary);
    }

    private static readonly string[] RackInletRules = ["rack-inlet-above-recommended", "rack-inlet-above-allowable", "rack-inlet-rising-fast"];

    [Fact]
    public async Task Regression_the_shipped_rack_inlet_rules_alerted_once_per_sensor_so_a_rack_with_two_pdu_feeds_alerted_twice()
    {
        // Rack r01 has an inlet sensor on the rack and one on its PDU (each feed of a real rack has its own): the shipped
        // per-series rules raised two warnings and two criticals for one hot rack, and the panel's count was doubled.
        var lines = File.ReadAllLines(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"));
        var shipped = RackInletRules.SelectMany(name => lines
                .SkipWhile(l => l.Trim() != "- name: " + name)
                .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal))
                .Where(l => !l.TrimStart().StartsWith("targets:", StringComparison.Ordinal)));
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", shipped));
        var rack = h.Series("rack-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        var pdu = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        var other = h.Series("rack-r02", "inlet_temperature", "rack.inlet_temperature", "Cel");
        for (var t = 0; t < 13; t++)
        {
            // Both sensors of r01 climb 2 K a minute from 24 °C to 36 °C; r02 stays at 22 °C.
            h.Feed(rack, 24 + t);
            h.Feed(pdu, 23.5 + t);
            h.Feed(other, 22);
            h.Advance(TimeSpan.FromSeconds(30));
        }


        var firing = h.Service.Manager.Active().Where(a => a.FiredAt is not null).ToList();
        Assert.True(firing.Count == 3, string.Join("\n", firing.Select(a => $"{a.Rule}: {a.Summary}")));
        foreach (var rule in RackInletRules)
        {
            var alert = Assert.Single(firing, a => a.Rule == rule);
            Assert.Contains("rack r01", alert.Summary, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Regression_a_resolved_cooling_failure_said_resolved_last_failed_unit_count_1_peak_1()
    {
        // The shipped cooling-unit-failed and thermal-shutdown-soon as the agent ran them on the simulator (crac1 stopped,
        // restored): the clear read "room1/cooling_failure: resolved (last failed_unit_count = 1); peak 1" and "…
        // (last time_to_thermal_shutdown_min = 0); peak 0", neither the twin's "crac1 running again" nor what the peak was.
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + ShippedRules("cooling-unit-failed", "thermal-shutdown-soon"));
        h.Service.Handle(new EdgeEvent(
            EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Critical, "cooling_failure in room1 (crac1 stopped at 03:13:07 UTC): thermal shutdown in 3.3 min",
            new Dictionary<string, string> { ["state"] = "active", ["failed_unit_count"] = "1", ["time_to_thermal_shutdown_min"] = "3.3", ["zone"] = "room1" }));
        h.Advance(TimeSpan.FromSeconds(10));
        h.Service.Handle(new EdgeEvent(
            EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Info, "cooling_failure in room1 resolved: crac1 running again",
            new Dictionary<string, string> { ["state"] = "resolved", ["failed_units"] = "crac1", ["zone"] = "room1" }));
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Resolved) == 2, "the two resolved messages");
        var resolved = h.Sink.All.Where(a => a.Status == AlertStatus.Resolved).ToDictionary(a => a.Rule, a => a.Summary);
        Assert.Equal("cooling_failure in room1 resolved: crac1 running again; highest failed_unit_count 1", resolved["cooling-unit-failed"]);
        Assert.Equal("cooling_failure in room1 resolved: crac1 running again; lowest time_to_thermal_shutdown_min 3.3", resolved["thermal-shutdown-soon"]);
    }

    [Fact]
    public async Task Regression_a_per_rack_alert_named_its_rack_twice()
    {
        // The shipped per-rack inlet rules said "rack A02 (room1, site sim): inlet_temperature 27.4 °C above 27 °C in rack A02".
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + ShippedRules("rack-inlet-above-recommended"));
        var pdu = h.Series("pdu-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        h.Feed(pdu, 27.4);
        h.Advance(TimeSpan.FromMinutes(2.1));
        h.Feed(pdu, 27.4);
        Assert.Equal("rack r01 (room1, site dc1): inlet_temperature 27.4 °C above 27 °C since 12:02:00 UTC", h.Active("rack-inlet-above-recommended")!.Summary);
    }

    [Fact]
    public async Task Regression_the_ups_on_battery_alert_named_both_vendors_states_not_the_one_the_ups_reports()
    {
        // "device ups1 (room1, site sim): output_source reports battery / onBattery (state code 5)": the rule's list of
        // both vendors' names, and the clear "no longer reports battery / onBattery (state code 3)" without saying normal.
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + ShippedRules("ups-on-battery"));
        var ietf = h.Registry.GetOrAdd(new EdgeTwin.Core.Samples.SeriesDescriptor("ups-ietf", "output_source", "1", EdgeTwin.Core.Samples.MetricKind.State, "ups.output_source"));
        h.Feed(ietf, 3);
        h.Feed(ietf, 5);
        Assert.Equal("device ups-ietf (site dc1): output_source reports battery (state code 5) since 12:00:00 UTC", h.Active("ups-on-battery")!.Summary);
        h.Advance(TimeSpan.FromSeconds(5));
        h.Feed(ietf, 3);
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        Assert.Equal("device ups-ietf (site dc1): output_source reports normal (state code 3), no longer battery / onBattery", h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary);
    }

    [Fact]
    public async Task Regression_a_rising_fast_alert_cleared_by_a_falling_inlet_said_rises_at_a_negative_rate()
    {
        // Cooling back on the simulator: the inlet fell, and the shipped rack-inlet-rising-fast cleared with "inlet_temperature
        // rises at -90.241 °C/min, back within 0.5 °C/min (clear level)".
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + ShippedRules("rack-inlet-rising-fast"));
        var inlet = h.Series("rack-r01", "inlet_temperature", "rack.inlet_temperature", "Cel");
        for (var t = 0; t <= 18; t++)
        {
            h.Feed(inlet, 24 + (t / 3.0)); // 2 °C/min for 3 min
            h.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(AlertState.Firing, h.StateOf("rack-inlet-rising-fast"));
        h.Feed(inlet, 23); // cooling back: the inlet is below where the window began
        h.Advance(TimeSpan.FromSeconds(10));

        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        Assert.Matches(@"^rack r01 \(room1, site dc1\): inlet_temperature falls at [0-9.]+ °C/min, back within 0\.5 °C/min rise \(clear level\); peak [0-9.]+ °C/min$", h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary);
    }

    /// <summary>The named rules as datacenter.yaml ships them, without their targets (the file's sinks, not the harness's).</summary>
    private static string ShippedRules(params string[] names)
    {
        var lines = File.ReadAllLines(Path.Combine(ShippedFiles.Repo(), "device-profiles", "examples", "alert-rules", "datacenter.yaml"));
        return string.Join("\n", names.SelectMany(name => lines
            .SkipWhile(l => !l.Trim().StartsWith("- name: " + name + " ", StringComparison.Ordinal) && l.Trim() != "- name: " + name)
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal))
            .Where(l => !l.TrimStart().StartsWith("targets:", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task A_user_summary_template_is_kept_with_its_placeholders()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: hot, type: threshold, match: { role: rack.inlet_temperature }, above: 30, summary: "{rule}: {key} at {value} - call facilities" }
            """);
        h.Feed(h.Series("rack-r01", "inlet", "rack.inlet_temperature"), 31.25);
        Assert.Equal("hot: rack-r01/inlet at 31.25 - call facilities", h.Active("hot")!.Summary);
    }
}
