using System.Diagnostics.Metrics;
using EdgeTwin.Twin.Tests.Scenarios;
using EdgeTwin.Twin.Thermal;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using EdgeTwin.Agent.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Thermal;

/// <summary>The live twin on 6 simulated hours of a small simulated site: calibration, fit-error metric, hot spots.</summary>
public sealed class ThermalTwinTests
{
    [Fact]
    public void Calibrates_from_observed_frames_reports_fit_error_and_flags_a_hot_spot()
    {
        var spec = EdgeTwin.Simulator.Physics.SiteGenerator.Generate(new EdgeTwin.Simulator.Physics.SiteGenerationOptions { Racks = 6, CoolingUnits = 2, Seed = 5 });
        var plant = new SimulatedThermalPlant(spec);
        using var twin = new ThermalTwin([plant.Zone]);
        using var rmse = new MetricCollector<double>(null, ThermalTwin.MeterName, "edgetwin.twin.thermal.inlet_fit_rmse");
        for (var k = 0; k < 6 * 360; k++)
        {
            plant.Step(TimeSpan.FromSeconds(10));
            twin.Observe(0, plant.Read());
        }

        Assert.Equal(0, twin.Model(0).CalibrationFrames);
        var model = twin.Recalibrate(0);
        Assert.Equal(6 * 360, model.CalibrationFrames);
        Assert.InRange(model.InletFitRmseK, 0.01, 0.5);
        Assert.InRange(model.RoomFitRmseK, 0.01, 0.5);
        rmse.RecordObservableInstruments();
        var m = Assert.Single(rmse.GetMeasurementSnapshot());
        Assert.Equal(model.InletFitRmseK, m.Value);
        Assert.Equal("room1", m.Tags["zone"]);

        // Normal operation: no hot spot. A rack reading 4 K above its normal inlet is one.
        Assert.Empty(twin.FindHotSpots(0));
        var frame = plant.Read();
        frame.TimeSeconds += 100;
        frame.RackInletC[2] += 4;
        twin.Observe(0, frame);
        var spot = Assert.Single(twin.FindHotSpots(0));
        Assert.Equal(plant.Zone.Racks[2].Id, spot.Rack);
        Assert.InRange(spot.ResidualK, 3, 5);
    }

    [Fact]
    public void The_steady_load_is_each_racks_median_over_the_span_and_the_rest_of_the_frame_is_the_latest()
    {
        var spec = EdgeTwin.Simulator.Physics.SiteGenerator.Generate(new EdgeTwin.Simulator.Physics.SiteGenerationOptions { Racks = 3, CoolingUnits = 1, Seed = 5 });
        var zone = new SimulatedThermalPlant(spec).Zone;
        using var twin = new ThermalTwin([zone]);
        Assert.Null(twin.LatestWithSteadyLoad(0, 60));

        // Rack 0 swings and reads half once; rack 1 has no reading until the last frame; rack 2 ramps.
        double[][] power = [[8, double.NaN, 1], [4, double.NaN, 2], [9, double.NaN, 3], [7, double.NaN, 4], [4.5, 6, 5]];
        for (var k = 0; k < power.Length; k++)
        {
            var frame = new ZoneFrame(1000 + (k * 10), 3, 1);
            power[k].CopyTo(frame.RackPowerKw, 0);
            frame.RackInletC[0] = 20 + k;
            twin.Observe(0, frame);
        }

        var steady = twin.LatestWithSteadyLoad(0, 40)!; // frames at 1010..1040; the one at 1000 is exactly 40 s before
        Assert.Equal([5.75, 6, 3.5], steady.RackPowerKw);
        Assert.Equal(1040, steady.TimeSeconds);
        Assert.Equal(24, steady.RackInletC[0]);
        Assert.Equal(4.5, twin.Latest(0)!.RackPowerKw[0]); // the window itself is not changed
        Assert.Equal(4.5, twin.LatestWithSteadyLoad(0, 0)!.RackPowerKw[0]); // a span of 0: the latest frame alone
        Assert.Equal(7, twin.LatestWithSteadyLoad(0, 45)!.RackPowerKw[0]);
    }

    private static readonly System.Text.Json.JsonSerializerOptions NamedFloats = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    [Fact]
    public void Regression_a_cooling_failure_answer_from_a_room_fitted_on_minutes_did_not_say_it_rested_on_defaults()
    {
        // The live agent with first_calibration_after: 1m answered crac2 with "no rack reaches 27 °C"; only
        // model_fit_rmse_k NaN hinted that its room and racks were typical figures.
        var spec = EdgeTwin.Simulator.Physics.SiteGenerator.Generate(new EdgeTwin.Simulator.Physics.SiteGenerationOptions { Seed = 1, Racks = 12, CoolingUnits = 3, Machines = 0, Rooms = 2, Start = new DateTimeOffset(2026, 12, 4, 16, 58, 5, TimeSpan.Zero) });
        var zone = new SimulatedThermalPlant(spec, "room2").Zone;
        var end = new DateTimeOffset(2026, 12, 5, 16, 58, 5, TimeSpan.Zero);
        var options = new EdgeTwin.Twin.Scenarios.CoolingFailureOptions { FailedUnits = ["crac2"], Horizon = TimeSpan.FromMinutes(30), PlanMitigation = false };

        var minutes = SimulatedThermalPlant.History(spec, TimeSpan.FromMinutes(3), end, room: "room2")[0];
        var guess = EdgeTwin.Twin.Scenarios.CoolingFailureScenario.Run(ThermalCalibrator.Calibrate(zone, minutes), minutes[^1], options);
        Assert.Equal("defaults", guess.ModelBasis);
        Assert.Contains(guess.Assumptions, a => a.StartsWith("zone 'room2': no rack's inlet fitted", StringComparison.Ordinal));
        Assert.Contains(guess.Assumptions, a => a.Contains("no daily load profile (calibration window 3 min", StringComparison.Ordinal));
        Assert.Contains("\"model_basis\":\"defaults\"", System.Text.Json.JsonSerializer.Serialize(guess, NamedFloats), StringComparison.Ordinal);

        var prior = EdgeTwin.Twin.Scenarios.CoolingFailureScenario.Run(ThermalCalibrator.Prior(zone), minutes[^1], options);
        Assert.Equal("defaults", prior.ModelBasis);
        Assert.StartsWith("zone 'room2' is not calibrated", Assert.Single(prior.Assumptions), StringComparison.Ordinal);

        var hours = SimulatedThermalPlant.History(spec, TimeSpan.FromHours(2), end, room: "room2")[0];
        var fitted = EdgeTwin.Twin.Scenarios.CoolingFailureScenario.Run(ThermalCalibrator.Calibrate(zone, hours), hours[^1], options);
        Assert.Equal("fitted", fitted.ModelBasis);
        Assert.DoesNotContain(fitted.Assumptions, a => a.Contains("inlet", StringComparison.Ordinal) || a.Contains("not calibrated", StringComparison.Ordinal));
    }
}
