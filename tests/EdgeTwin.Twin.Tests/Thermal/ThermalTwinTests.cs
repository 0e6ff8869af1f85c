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
}
