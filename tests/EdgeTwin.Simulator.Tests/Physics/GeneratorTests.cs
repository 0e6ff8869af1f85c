using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Physics;

public sealed class GeneratorTests
{
    [Fact]
    public void Generates_rows_units_feeds_and_machines_as_asked()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 23, CoolingUnits = 3, Machines = 4, Seed = 9 });
        Assert.Equal(23, spec.Racks.Count);
        Assert.Equal(["A", "B", "C"], spec.Racks.Select(r => r.Row).Distinct());
        Assert.Equal("C03", spec.Racks[^1].Id);
        Assert.Equal(3, spec.CoolingUnits.Count);
        Assert.Equal(46, spec.Pdus.Count);
        Assert.Equal(4, spec.Machines.Count);
        Assert.All(spec.CoolingUnits, u => Assert.InRange(u.Coupling.Values.Sum(), 0.8, 0.96));
        Assert.All(spec.Racks, r => Assert.InRange(r.DesignKw, 4, 10));
        // Every rack gets cold air from some unit, and neighbouring units share racks.
        Assert.All(spec.Racks, r => Assert.Contains(spec.CoolingUnits, u => u.Coupling.ContainsKey(r.Id)));
        Assert.NotEmpty(spec.CoolingUnits[0].Serves.Intersect(spec.CoolingUnits[1].Coupling.Keys));
        Assert.True(spec.CoolingUnits.Sum(u => u.CapacityKw) >= spec.Racks.Sum(r => r.DesignKw) * 1.3);
    }

    [Fact]
    public void The_same_seed_generates_the_same_site()
    {
        var a = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 8, Seed = 4 });
        var b = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 8, Seed = 4 });
        Assert.Equal(a.Racks, b.Racks);
        Assert.Equal(a.Room, b.Room);
        Assert.Equal(a.CoolingUnits.Select(u => u.Coupling.OrderBy(c => c.Key).ToList()), b.CoolingUnits.Select(u => u.Coupling.OrderBy(c => c.Key).ToList()));
    }
}
