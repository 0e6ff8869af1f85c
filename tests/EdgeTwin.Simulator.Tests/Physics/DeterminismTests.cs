using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

public sealed class DeterminismTests
{
    private static double[] Fingerprint(SimulatedSite site) =>
    [
        site.Room.TemperatureC,
        .. site.Racks.SelectMany(r => new[] { r.PowerKw, r.InletC, r.InletSensor.Reading, r.OutletSensor.Reading }),
        .. site.CoolingUnits.SelectMany(u => new[] { u.FanSpeed, u.SupplySensor.Reading, u.CoolingKw }),
        .. site.Pdus.Select(p => p.EnergyKwh),
        .. site.Machines.SelectMany(m => new[] { m.Wear, m.VibrationSensor.Reading, m.CurrentA }),
    ];

    private static SimulatedSite Run(int seed)
    {
        var site = TestSites.Generated(seed: seed);
        site.Apply(FaultCommand.Parse("cooling-stop:crac2@20m"));
        site.Step(TimeSpan.FromMinutes(30));
        return site;
    }

    [Fact]
    public void The_same_seed_gives_the_same_run_bit_for_bit()
    {
        Assert.Equal(Fingerprint(Run(42)), Fingerprint(Run(42)));
    }

    [Fact]
    public void A_different_seed_gives_a_different_site()
    {
        Assert.NotEqual(Fingerprint(Run(42)), Fingerprint(Run(43)));
    }

    [Fact]
    public void Stepping_in_small_or_large_increments_gives_the_same_state()
    {
        var a = TestSites.Generated(seed: 5);
        var b = TestSites.Generated(seed: 5);
        a.Step(TimeSpan.FromMinutes(5));
        for (var i = 0; i < 300; i++)
        {
            b.Step(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(Fingerprint(a), Fingerprint(b));
    }

    [Fact]
    public void A_scheduled_fault_fires_at_its_time_not_before()
    {
        var site = TestSites.Generated();
        site.Apply(FaultCommand.Parse("cooling-stop:crac1@90s"));
        site.Step(TimeSpan.FromSeconds(89));
        Assert.Equal(CoolingUnitState.Running, site.CoolingUnit("crac1").State);
        site.Step(TimeSpan.FromSeconds(2));
        Assert.Equal(CoolingUnitState.Stopped, site.CoolingUnit("crac1").State);
        var e = Assert.Single(site.Events());
        Assert.Equal(site.Spec.Start + TimeSpan.FromSeconds(90), e.Time);
    }
}
