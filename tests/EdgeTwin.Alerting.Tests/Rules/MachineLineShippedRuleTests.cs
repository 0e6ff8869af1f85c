using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The shipped machine-line rules on what the shipped drive and sensor profiles publish.</summary>
public sealed class MachineLineShippedRuleTests
{
    [Fact]
    public async Task Regression_the_shipped_vibration_sensor_stuck_rule_watched_the_drives_torque_and_fired_on_every_long_stop()
    {
        // vibration-sensor-stuck matched role machine.torque, the ABB drive's motor_torque: 0.0 while the machine stands,
        // so a 20 min break raised "motor_torque has not changed for 15m" with "check the sensor's cable". It is about the
        // vibration transmitter's velocity RMS (generic-vibration-transmitter, role machine.vibration_rms).
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("vibration-sensor-stuck")));
        var torque = h.Registry.GetOrAdd(new SeriesDescriptor("drive-m1", "motor_torque", "%", MetricKind.Gauge, "machine.torque"));
        var vibration = h.Registry.GetOrAdd(new SeriesDescriptor("vib-m1", "vibration_rms", "mm/s", MetricKind.Gauge, "machine.vibration_rms"));
        for (var t = 0; t < 20 * 6; t++)
        {
            h.Feed(torque, 0);      // the machine stands for 20 min
            h.Feed(vibration, 2.31); // and the transmitter's reading is frozen
            h.Advance(TimeSpan.FromSeconds(10));
        }

        var alert = Assert.Single(h.Manager.Active());
        Assert.Equal(("vibration-sensor-stuck", "vib-m1/vibration_rms", AlertState.Firing), (alert.Rule, alert.Key, alert.State));
        Assert.Contains("vibration_rms has not changed for 15m", alert.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_shipped_bearing_hot_rule_missed_a_vibration_transmitters_bearing_temperature()
    {
        // bearing-hot matches a 1-Wire probe named *-bearing; the vibration transmitter (generic-vibration-transmitter)
        // reports the bearing's temperature as its own metric, role machine.bearing_temperature, which no rule watched.
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n"
            + string.Join("\n", ShippedRule("bearing-hot").Concat(ShippedRule("bearing-hot-transmitter"))));
        var probe = h.Registry.GetOrAdd(new SeriesDescriptor("m1-bearing", "temperature", "Cel", MetricKind.Gauge, "temperature"));
        var transmitter = h.Registry.GetOrAdd(new SeriesDescriptor("vib-m2", "bearing_temperature", "Cel", MetricKind.Gauge, "machine.bearing_temperature"));
        for (var t = 0; t < 12; t++)
        {
            h.Feed(probe, 60);
            h.Feed(transmitter, 86.5);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        var alert = Assert.Single(h.Manager.Active());
        Assert.Equal(("bearing-hot-transmitter", "vib-m2/bearing_temperature", AlertState.Firing), (alert.Rule, alert.Key, alert.State));
        Assert.Contains("86.5 °C above 80 °C", alert.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_packml_machine_that_aborted_raised_nothing_with_the_shipped_rules()
    {
        // generic-packml-plc publishes StateCurrent (machine.packml_state); an e-stop takes it to Aborting/Aborted, and no
        // shipped rule looked at it: only line-all-stopped, when every drive of the line had stopped for 2 min.
        Harness.Site.AddStateNames("press-1", "machine_state", new Dictionary<long, string> { [2] = "stopped", [4] = "idle", [6] = "execute", [8] = "aborting", [9] = "aborted" });
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("machine-aborted")));
        var state = h.Registry.GetOrAdd(new SeriesDescriptor("press-1", "machine_state", "1", MetricKind.State, "machine.packml_state"));

        h.Feed(state, 6);
        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(state, 2);   // a normal stop
        Assert.Null(h.Active("machine-aborted"));
        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(state, 8);
        var alert = h.Active("machine-aborted");
        Assert.NotNull(alert);
        Assert.Equal(("press-1", AlertState.Firing, Core.Events.EventSeverity.Warning), (alert.Key, alert.State, alert.Severity));
        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(state, 9);
        Assert.Equal(AlertState.Firing, h.StateOf("machine-aborted", "press-1"));
        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(state, 4);   // cleared and reset: idle
        Assert.Null(h.Active("machine-aborted"));
    }

    [Fact]
    public async Task A_drive_near_its_thermal_trip_warns_after_a_minute()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedRule("drive-near-thermal-trip")));
        var inverter = h.Registry.GetOrAdd(new SeriesDescriptor("drive-m1", "inverter_temperature", "%", MetricKind.Gauge, "machine.drive_temperature_ratio"));
        for (var t = 0; t < 8; t++)
        {
            h.Feed(inverter, t < 2 ? 80 : 93);
            h.Advance(TimeSpan.FromSeconds(10));
        }

        h.Feed(inverter, 93);
        var alert = h.Active("drive-near-thermal-trip");
        Assert.NotNull(alert);
        Assert.Equal(("drive-m1", AlertState.Firing), (alert.Key, alert.State));
        Assert.Contains("93 % above 90 %", alert.Summary, StringComparison.Ordinal);
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(inverter, 84);
        Assert.Null(h.Active("drive-near-thermal-trip"));
    }

    private static IEnumerable<string> ShippedRule(string name) => ShippedFiles.Rule("machine-line", name);
}
