using BenchmarkDotNet.Attributes;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// 24 simulated hours of a 100-rack, 8-unit site (10 s polls, sensor noise and lag), generated once per process.
/// Targets (issue 8): calibration ≤ 5 s, one cooling_failure ≤ 100 ms, one optimisation ≤ 2 s.
/// </summary>
internal static class ThermalBenchSite
{
    private static readonly Lazy<(ThermalZone Zone, List<ZoneFrame> Frames, ZoneThermalModel Model)> Data = new(Build);

    public static ThermalZone Zone => Data.Value.Zone;

    public static List<ZoneFrame> Frames => Data.Value.Frames;

    public static ZoneThermalModel Model => Data.Value.Model;

    private static (ThermalZone, List<ZoneFrame>, ZoneThermalModel) Build()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 100, CoolingUnits = 8, Seed = 7, ServersPerRack = 4, RacksPerRow = 10, MinRackKw = 4, MaxRackKw = 12 });
        var site = new SimulatedSite(spec);
        var zone = ThermalZone.FromTopology(SimSiteConfig.Build(spec, [], TimeSpan.FromSeconds(10)).Site)[0];
        var frames = new List<ZoneFrame>(8640);
        for (var k = 0; k < 8640; k++)
        {
            site.Step(TimeSpan.FromSeconds(10));
            var f = new ZoneFrame(k * 10.0, zone.Racks.Count, zone.Units.Count);
            for (var i = 0; i < zone.Racks.Count; i++)
            {
                var rack = site.Rack(zone.Racks[i].Id);
                f.RackPowerKw[i] = rack.PowerKw;
                f.RackInletC[i] = rack.InletSensor.Reading;
                f.RackOutletC[i] = rack.OutletSensor.Reading;
            }

            for (var j = 0; j < zone.Units.Count; j++)
            {
                var unit = site.CoolingUnit(zone.Units[j].Id);
                f.UnitFanSpeed[j] = unit.FanSpeed;
                f.UnitSupplyC[j] = unit.SupplySensor.Reading;
                f.UnitReturnC[j] = unit.ReturnSensor.Reading;
            }

            frames.Add(f);
        }

        return (zone, frames, ThermalCalibrator.Calibrate(zone, frames));
    }
}

[MemoryDiagnoser]
public class ThermalCalibrationBenchmarks
{
    [GlobalSetup]
    public void Setup() => _ = ThermalBenchSite.Model;

    /// <summary>Batch calibration of the 100-rack zone from 24 h (8,640 frames).</summary>
    [Benchmark]
    public ZoneThermalModel Calibrate100Racks() => ThermalCalibrator.Calibrate(ThermalBenchSite.Zone, ThermalBenchSite.Frames);
}

[MemoryDiagnoser]
public class ThermalScenarioBenchmarks
{
    [GlobalSetup]
    public void Setup()
    {
        // The "with plan" case claims a mitigation plan (one forecast per step): with too few failed units no rack gets
        // hot, no plan is made, and it would measure the forecast alone.
        var withPlan = CoolingFailure100Racks();
        var noPlan = CoolingFailureNoPlan100Racks();
        if (withPlan.MitigationPlan.Count == 0 || withPlan.Racks.Count != 100 || noPlan.Racks.Count != 100 || noPlan.MitigationPlan.Count != 0)
        {
            throw new InvalidOperationException($"ThermalScenario: cooling_failure forecast {withPlan.Racks.Count} racks with a plan of {withPlan.MitigationPlan.Count} steps (without plan: {noPlan.Racks.Count} racks, {noPlan.MitigationPlan.Count} steps); claimed: 100 racks, a plan, and none");
        }
    }

    /// <summary>One cooling_failure on 100 racks: 2 h forecast plus its mitigation plan (one forecast per step).</summary>
    [Benchmark]
    public CoolingFailureResult CoolingFailure100Racks() =>
        // Three of eight units: with one, the remaining units carry the room and no rack reaches 32 °C, so no plan is made.
        CoolingFailureScenario.Run(ThermalBenchSite.Model, ThermalBenchSite.Frames[^1], new CoolingFailureOptions { FailedUnits = ["crac2", "crac3", "crac4"] });

    /// <summary>The failure forecast alone (2 h, 100 racks), without evaluating the mitigation steps.</summary>
    [Benchmark]
    public CoolingFailureResult CoolingFailureNoPlan100Racks() =>
        CoolingFailureScenario.Run(ThermalBenchSite.Model, ThermalBenchSite.Frames[^1], new CoolingFailureOptions { FailedUnits = ["crac3"], PlanMitigation = false });

    /// <summary>One cooling optimisation (8 units: 16 variables) on 100 racks.</summary>
    [Benchmark]
    public CoolingRecommendation Optimise100Racks() => CoolingOptimiser.Optimise(ThermalBenchSite.Model, ThermalBenchSite.Frames[^1]);
}
