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

    private static IEnumerable<string> ShippedRule(string name) => ShippedFiles.Rule("machine-line", name);
}
