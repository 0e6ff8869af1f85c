using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

internal static class TestSites
{
    public static SimulatedSite Generated(int racks = 10, int units = 2, int machines = 2, int seed = 7) =>
        new(SiteGenerator.Generate(new SiteGenerationOptions { Racks = racks, CoolingUnits = units, Machines = machines, Seed = seed }));

    /// <summary>One rack, one unit that feeds it all its air: small enough to reason about by hand.</summary>
    public static SiteSpec OneRack(double rackKw = 6, double capacityKw = 12) => new()
    {
        Room = new RoomSpec("room1", VolumeM3: 100, MassFactor: 4, EnvelopeUaKwPerK: 0),
        Racks = [new RackSpec("A01", "A", 1, rackKw, Servers: 4)],
        CoolingUnits = [new CoolingUnitSpec("crac1", capacityKw, 18, new Dictionary<string, double> { ["A01"] = 0.9 })],
        Pdus =
        [
            new PduSpec("pdu-a01-a", "A01", "a", "ups1", BreakerA: 16, Phases: 1),
            new PduSpec("pdu-a01-b", "A01", "b", "ups2", BreakerA: 16, Phases: 1),
        ],
        Upses = [new UpsSpec("ups1", 20, BatteryKwh: 1), new UpsSpec("ups2", 20, BatteryKwh: 1)],
    };
}
