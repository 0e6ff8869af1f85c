using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Scenarios;

/// <summary>The simulator as a validation plant: the twin gets what the site config and sensors say, nothing hidden.</summary>
internal sealed class SimulatedThermalPlant : IThermalPlant
{
    private readonly SimulatedSite _site;
    private readonly double _start;

    public SimulatedThermalPlant(SiteSpec spec)
    {
        _site = new SimulatedSite(spec);
        _start = spec.Start.ToUnixTimeMilliseconds() / 1000.0;
        Zone = ThermalZone.FromTopology(SimSiteConfig.Build(spec, [], TimeSpan.FromSeconds(10)).Site)[0];
    }

    public SimulatedSite Site => _site;

    public ThermalZone Zone { get; }

    public double ShutdownInletC => _site.Spec.ThermalShutdownInletC;

    public void Step(TimeSpan dt) => _site.Step(dt);

    public ZoneFrame Read()
    {
        var frame = new ZoneFrame((_site.Now.ToUnixTimeMilliseconds() / 1000.0) - _start, Zone.Racks.Count, Zone.Units.Count);
        for (var i = 0; i < Zone.Racks.Count; i++)
        {
            var rack = _site.Rack(Zone.Racks[i].Id);
            frame.RackPowerKw[i] = rack.PowerKw;
            frame.RackInletC[i] = rack.InletSensor.Reading;
            frame.RackOutletC[i] = rack.OutletSensor.Reading;
        }

        for (var j = 0; j < Zone.Units.Count; j++)
        {
            var unit = _site.CoolingUnit(Zone.Units[j].Id);
            frame.UnitRunning[j] = unit.IsRunning;
            frame.UnitFanSpeed[j] = unit.FanSpeed;
            frame.UnitSupplyC[j] = unit.SupplySensor.Reading;
            frame.UnitReturnC[j] = unit.ReturnSensor.Reading;
        }

        return frame;
    }

    public double TrueInletC(int rack) => _site.Racks[rack].InletC;

    public void FailUnit(string unitId) => _site.Apply(new FaultCommand(FaultKind.CoolingStop, unitId));

    public void RestoreAll()
    {
        foreach (var unit in _site.CoolingUnits)
        {
            _site.Apply(new FaultCommand(FaultKind.CoolingRestore, unit.Id));
        }

        foreach (var rack in _site.Racks)
        {
            _site.Apply(new FaultCommand(FaultKind.RackRestart, rack.Id));
        }
    }

    public void ApplySetpoints(string unitId, double supplySetpointC, double fanSpeed)
    {
        lock (_site.SyncRoot)
        {
            var unit = _site.CoolingUnit(unitId);
            unit.SupplySetpointC = supplySetpointC;
            unit.FanSpeedOverride = fanSpeed;
        }
    }

    /// <summary>A randomised validation site: rack count, power density 3–20 kW/rack, room volume, units, coupling and margin all drawn from the seed.</summary>
    public static (SiteSpec Spec, string FailedUnit) RandomSite(int seed, int maxRacks = 30)
    {
        var rng = new Random(seed);
        var density = 3 + (17 * rng.NextDouble());
        var units = rng.Next(1, 5);
        var spec = SiteGenerator.Generate(new SiteGenerationOptions
        {
            Seed = seed,
            Racks = rng.Next(Math.Min(6, maxRacks), maxRacks + 1),
            CoolingUnits = units,
            RacksPerRow = rng.Next(5, 11),
            MinRackKw = 0.8 * density,
            MaxRackKw = 1.2 * density,
            CoolingMargin = 1.0 + (0.4 * rng.NextDouble()),
        });
        return (spec, $"crac{rng.Next(1, units + 1)}");
    }
}
