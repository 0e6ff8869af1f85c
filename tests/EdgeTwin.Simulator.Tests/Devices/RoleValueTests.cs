using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using FsCheck;
using FsCheck.Fluent;

namespace EdgeTwin.Simulator.Tests.Devices;

public sealed class RoleValueTests
{
    private static readonly SimDeviceBinding PduA = new("pdu-a01-a", "apc-rpdu2", SimEntityKind.Pdu, "pdu-a01-a");
    private static readonly SimDeviceBinding Crac = new("crac1", "liebert", SimEntityKind.CoolingUnit, "crac1");
    private static readonly SimDeviceBinding Ups = new("ups1", "ups-mib", SimEntityKind.Ups, "ups1");

    [Fact]
    public void A_PDU_reports_its_outlets_phases_and_its_racks_temperature()
    {
        var site = new SimulatedSite(Physics.TestSites.OneRack());
        var pdu = site.Pdu("pdu-a01-a");

        Assert.True(RoleValues.TryRead(site, PduA, "pdu.outlet_current", 2, out var outlet));
        Assert.Equal(new SimValue(pdu.OutletCurrentA(1), "A"), outlet);
        Assert.True(RoleValues.TryRead(site, PduA, "pdu.power", null, out var power));
        Assert.Equal(pdu.PowerKw, power.Value);
        Assert.True(RoleValues.TryRead(site, PduA, "rack.inlet_temperature", null, out var inlet));
        Assert.Equal(site.Rack("A01").InletSensor.Reading, inlet.Value);
        Assert.False(RoleValues.TryRead(site, PduA, "pdu.outlet_current", 99, out _), "outlet 99 does not exist");
        Assert.False(RoleValues.TryRead(site, PduA, "pdu.teleportation", null, out _));
        Assert.False(RoleValues.TryRead(site, PduA, "ups.load", null, out _), "a PDU is not a UPS");
    }

    [Fact]
    public void Regression_the_main_meter_read_power_at_0_volts_during_a_mains_failure()
    {
        // utility-fail on every UPS: the main meter (eastron-sdm630 in `edgetwin sim`) read 0 V, 0 A and 0 Hz but still
        // 52 W per phase, 152 W total and 157 VA, the cooling fans' power, which no meter on a dead supply can measure.
        var site = new SimulatedSite(Physics.TestSites.OneRack());
        var meter = new SimDeviceBinding("meter1", "eastron-sdm630", SimEntityKind.Meter, "room1");
        site.Step(TimeSpan.FromSeconds(30));
        Assert.True(RoleValues.TryRead(site, meter, "meter.power_total", null, out var before));
        Assert.True(before.Value > 0);

        site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        site.Apply(FaultCommand.Parse("utility-fail:ups2"));
        site.Step(TimeSpan.FromSeconds(30));
        foreach (var (role, metric) in new[] { ("meter.power_total", "total_power"), ("meter.power", "power_l1"), ("meter.apparent_power_total", "total_apparent_power"), ("meter.reactive_power_total", "total_reactive_power"), ("meter.current", "current_l1"), ("meter.voltage", "voltage_l1") })
        {
            Assert.True(RoleValues.TryRead(site, meter, role, null, out var v, metric));
            Assert.True(v.Value == 0, $"{role} reads {v.Value} {v.Unit} with the mains gone");
        }
    }

    [Fact]
    public void States_follow_faults_and_map_to_the_profiles_labels()
    {
        var site = new SimulatedSite(Physics.TestSites.OneRack());
        var labels = new Dictionary<long, string> { [1] = "on", [2] = "off" };
        Assert.True(RoleValues.TryRead(site, Crac, "crac.running", null, out var running));
        Assert.True(RawValue.TryEncode(running, "1", 1, 0, labels, out var raw));
        Assert.Equal(1, raw);

        site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
        site.Apply(FaultCommand.Parse("utility-fail:ups1"));
        site.Step(TimeSpan.FromSeconds(2));
        Assert.True(RoleValues.TryRead(site, Crac, "crac.running", null, out running));
        Assert.True(RawValue.TryEncode(running, "1", 1, 0, labels, out raw));
        Assert.Equal(2, raw);

        Assert.True(RoleValues.TryRead(site, Ups, "ups.output_source", null, out var source));
        Assert.True(RawValue.TryEncode(source, "1", 1, 0, new Dictionary<long, string> { [3] = "normal", [5] = "on battery" }, out raw));
        Assert.Equal(5, raw);
    }

    [Theory]
    [InlineData(2.5, "kW", "W", 1, 0, 2500)]
    [InlineData(2.5, "kW", "kW", 0.01, 0, 250)]
    [InlineData(21.5, "Cel", "Cel", 0.1, 0, 215)]
    [InlineData(20, "Cel", "[degF]", 1, 0, 68)]
    [InlineData(12.5, "min", "s", 1, 0, 750)]
    [InlineData(0.75, "1", "%", 1, 0, 75)]
    [InlineData(1, "m3/s", "CFM", 1, 0, 2118.88)]
    [InlineData(25, "Cel", "Cel", 0.5, -40, 130)]
    public void Encodes_to_the_raw_number_the_profile_expects(double value, string unit, string metricUnit, double scale, double offset, double expected)
    {
        Assert.True(RawValue.TryEncode(new SimValue(value, unit), metricUnit, scale, offset, null, out var raw));
        Assert.Equal(expected, raw, 1);
    }

    [Fact]
    public void Refuses_to_convert_between_different_quantities()
    {
        Assert.False(RawValue.TryEncode(new SimValue(3, "kW"), "A", 1, 0, null, out _));
    }

    [Fact]
    public void Decoding_the_raw_value_like_the_agent_gives_the_value_back()
    {
        Prop.ForAll(
            Gen.Choose(-5000, 5000).Select(i => i / 10.0).ToArbitrary(),
            Gen.Elements(0.001, 0.01, 0.1, 1.0, 10.0).ToArbitrary(),
            Gen.Choose(-50, 50).Select(i => (double)i).ToArbitrary(),
            (value, scale, offset) =>
            {
                RawValue.TryEncode(new SimValue(value, "kW"), "W", scale, offset, null, out var raw);
                return Math.Abs((raw * scale) + offset - (value * 1000)) < 1e-6 * Math.Max(1, Math.Abs(value * 1000));
            }).QuickCheckThrowOnFailure();
    }
}
