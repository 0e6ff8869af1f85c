using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>
/// The simulator as a thermal plant for the twin: the twin gets the site config the operators would write and the
/// sensor readings (noise and lag included), never the hidden physics; <see cref="TrueInletC"/> is for scoring only.
/// </summary>
internal sealed class SimulatedThermalPlant : IThermalPlant
{
    private readonly double _start;

    /// <param name="spec">The simulated site.</param>
    /// <param name="room">The room (zone) seen as the plant; null: the first. A site of several rooms (<c>Rooms</c>) is
    /// validated room by room.</param>
    public SimulatedThermalPlant(SiteSpec spec, string? room = null)
    {
        Site = new SimulatedSite(spec);
        _start = spec.Start.ToUnixTimeMilliseconds() / 1000.0;
        Topology = SimSiteConfig.Build(spec, [], TimeSpan.FromSeconds(10)).Site;
        var zones = ThermalZone.FromTopology(Topology);
        Zone = room is null ? zones[0]
            : zones.FirstOrDefault(z => string.Equals(z.Id, room, StringComparison.Ordinal))
                ?? throw new ArgumentException($"no room '{room}' in the simulated site (rooms: {string.Join(", ", zones.Select(z => z.Id))})", nameof(room));
    }

    public SimulatedSite Site { get; }

    public EdgeTwin.Core.Config.SiteTopology Topology { get; }

    public ThermalZone Zone { get; }

    public double ShutdownInletC => Site.Spec.ThermalShutdownInletC;

    public void Step(TimeSpan dt) => Site.Step(dt);

    public ZoneFrame Read()
    {
        var frame = new ZoneFrame((Site.Now.ToUnixTimeMilliseconds() / 1000.0) - _start, Zone.Racks.Count, Zone.Units.Count);
        for (var i = 0; i < Zone.Racks.Count; i++)
        {
            var rack = Site.Rack(Zone.Racks[i].Id);
            frame.RackPowerKw[i] = rack.PowerKw;
            frame.RackInletC[i] = rack.InletSensor.Reading;
            frame.RackOutletC[i] = rack.OutletSensor.Reading;
        }

        for (var j = 0; j < Zone.Units.Count; j++)
        {
            var unit = Site.CoolingUnit(Zone.Units[j].Id);
            frame.UnitRunning[j] = unit.IsRunning;
            frame.UnitStateRead[j] = true;
            frame.UnitFanSpeed[j] = unit.FanSpeed;
            frame.UnitSupplyC[j] = unit.SupplySensor.Reading;
            frame.UnitReturnC[j] = unit.ReturnSensor.Reading;
        }

        return frame;
    }

    // By id: the zone's rack i is the site's i-th only in the first room (room2's first rack read room1's first inlet).
    public double TrueInletC(int rack) => Site.Rack(Zone.Racks[rack].Id).InletC;

    public void FailUnit(string unitId) => Site.Apply(new FaultCommand(FaultKind.CoolingStop, unitId));

    public void RestoreAll()
    {
        foreach (var unit in Site.CoolingUnits)
        {
            Site.Apply(new FaultCommand(FaultKind.CoolingRestore, unit.Id));
        }

        foreach (var rack in Site.Racks)
        {
            Site.Apply(new FaultCommand(FaultKind.RackRestart, rack.Id));
        }
    }

    public void ApplySetpoints(string unitId, double supplySetpointC, double fanSpeed)
    {
        lock (Site.SyncRoot)
        {
            var unit = Site.CoolingUnit(unitId);
            unit.SupplySetpointC = supplySetpointC;
            unit.FanSpeedOverride = fanSpeed;
        }
    }

    /// <summary>
    /// Recorded normal telemetry of a simulated site (a fresh copy of <paramref name="spec"/>, so the served site is not
    /// touched): <paramref name="duration"/> of frames every <paramref name="poll"/>, timed in Unix seconds so the last lies
    /// one poll before <paramref name="end"/>. The warm start of the live twin in the demo and the agent tests: the twin
    /// is calibrated at once, as an agent restarted on a site with recorded history would be. <paramref name="room"/>: that
    /// room's zone (null: the first room's).
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<ZoneFrame>> History(SiteSpec spec, TimeSpan duration, DateTimeOffset end, TimeSpan? poll = null, string? room = null)
    {
        var step = poll ?? TimeSpan.FromSeconds(10);
        var plant = new SimulatedThermalPlant(spec, room);
        var count = (int)(duration / step);
        var offset = (end.ToUnixTimeMilliseconds() / 1000.0) - step.TotalSeconds - (count * step.TotalSeconds);
        var frames = new List<ZoneFrame>(count);
        ZoneFrame? last = null;
        for (var k = 0; k < count; k++)
        {
            plant.Step(step);
            var f = plant.Read();
            f.TimeSeconds += offset;
            if (last is not null)
            {
                f.FillFrom(last);
            }

            frames.Add(f);
            last = f;
        }

        return [frames];
    }

    /// <summary>
    /// A randomised validation site: rack count, power density 3–20 kW/rack, room volume and mass, number of units,
    /// their coupling and the cooling margin all drawn from the seed; the unit to fail too.
    /// </summary>
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
