using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Thermal;

/// <summary>Known answers for the model terms added for issue 8's accuracy: server-by-server shutdown, peer fan control, the coupling prior.</summary>
public sealed class ThermalModelTermsTests
{
    /// <summary>
    /// One rack of 10 × 1 kW servers, no cooling, U = 0.5 kW/K to 22 °C, shutdown inlet 35 °C: the room would settle at
    /// 22 + 10/0.5 = 42 °C, so it reaches 35 °C after −(C/U)·ln(7/17) s. Then servers trip one at a time: 7 running hold
    /// 22 + 7/0.5 = 36 °C (still pushed up), 6 hold 34 °C, so the room ends between 34 and 35 °C with 6 servers on —
    /// rather than the whole rack going dark and the room falling back toward 22 °C.
    /// </summary>
    [Fact]
    public void Servers_trip_one_at_a_time_and_the_room_holds_at_the_shutdown_inlet()
    {
        var settings = new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0, InletLagSeconds = 0.01, ShutdownInletC = 35, OutsideC = 22 };
        var model = ThermalCalibrator.Prior(ThermalAnalyticTests.OneRackZone(), settings);
        model.HeatCapacityKjPerK = 2000;
        model.EnvelopeUaKwPerK = 0.5;
        var frame = new ZoneFrame(0, 1, 1);
        frame.RackPowerKw[0] = 10;
        frame.UnitReturnC[0] = 25;
        var actions = new ForecastActions(model) { Horizon = TimeSpan.FromHours(4) };
        actions.UnitFailed[0] = true;

        var forecast = ThermalForecast.Run(model, frame, actions);

        var expected = -(2000 / 0.5) * Math.Log((42 - 35) / (42.0 - 25));
        var rack = Assert.Single(forecast.Racks);
        Assert.Equal(expected, rack.SecondsToShutdown!.Value, expected * 0.01);
        Assert.InRange(forecast.FinalRoomC, 34, 35.05);
        Assert.InRange(rack.PeakInletC, 35, 35.3);
        Assert.InRange(rack.FinalInletC, 34, 35.05);
    }

    /// <summary>
    /// Unit 1 follows a known velocity PI law on its rack's inlet (Kp 0.02, Ki 0.0004 /K/s, target 23 °C); unit 2's fan sits
    /// at its minimum all day, so its own loop cannot be identified: it takes unit 1's identified gains and target.
    /// </summary>
    [Fact]
    public void A_unit_whose_fan_never_moved_borrows_the_identified_control_of_its_peers()
    {
        var zone = new ThermalZone(
            "room1",
            200,
            [new ThermalRack("R01", "A", 1, 12, 10), new ThermalRack("R02", "A", 2, 12, 10)],
            [new ThermalUnit("crac1", 30, ["R01"]), new ThermalUnit("crac2", 30, ["R02"])]);
        const double kp = 0.02, ki = 0.0004, target = 23;
        var frames = new List<ZoneFrame>();
        var fan = 0.6;
        var previous = target;
        for (var k = 0; k < 8640; k++)
        {
            var t = k * 10.0;
            var inlet = target + (1.5 * Math.Sin(2 * Math.PI * t / 1800)) + (0.3 * Math.Sin(2 * Math.PI * t / 7000));
            fan = Math.Clamp(fan + (kp * (inlet - previous)) + (ki * (inlet - target) * 10), 0.3, 1);
            previous = inlet;
            var f = new ZoneFrame(t, 2, 2);
            f.RackPowerKw[0] = 8;
            f.RackPowerKw[1] = 8;
            f.RackInletC[0] = inlet;
            f.RackInletC[1] = 20;
            f.UnitRunning[0] = true;
            f.UnitRunning[1] = true;
            f.UnitFanSpeed[0] = fan;
            f.UnitFanSpeed[1] = 0.3;
            f.UnitSupplyC[0] = 18;
            f.UnitSupplyC[1] = 18;
            f.UnitReturnC[0] = 30;
            f.UnitReturnC[1] = 30;
            frames.Add(f);
        }

        var model = ThermalCalibrator.Calibrate(zone, frames);

        Assert.Equal(target, model.UnitTargetC[0], 0.5);
        Assert.Equal(ki, model.UnitKi[0], ki * 0.3);
        Assert.Equal(model.UnitTargetC[0], model.UnitTargetC[1]);
        Assert.Equal(model.UnitKi[0], model.UnitKi[1]);
        Assert.Equal(model.UnitKp[0], model.UnitKp[1]);
        Assert.Equal(0.3, model.UnitMinFan[1], 0.01);
    }

    /// <summary>A unit serving 2 of 20 racks: its prior coupling hands out at most 90 % of its air (65 % to the served two).</summary>
    [Fact]
    public void Prior_coupling_never_hands_out_more_air_than_the_unit_blows()
    {
        var racks = Enumerable.Range(1, 20).Select(i => new ThermalRack($"R{i:00}", i <= 10 ? "A" : "B", ((i - 1) % 10) + 1, 10, 10)).ToList();
        var zone = new ThermalZone("room1", null, racks, [new ThermalUnit("crac1", 100, ["R01", "R02"]), new ThermalUnit("crac2", 100, [.. racks.Skip(2).Select(r => r.Id)])]);
        var settings = new ThermalSettings();

        var prior = ThermalCalibrator.PriorCoupling(zone, settings);

        for (var j = 0; j < 2; j++)
        {
            var total = prior.Sum(row => row[j]);
            Assert.InRange(total, 0.65 * settings.ServerDeltaTK, (0.9 * settings.ServerDeltaTK) + 1e-9);
        }

        Assert.Equal(0.65 * settings.ServerDeltaTK / 2, prior[0][0], 1e-9);
        Assert.True(prior[2][0] > prior[15][0]); // a row neighbour gets more than a rack in the other row
    }
}
