using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Tests.Power;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Scenarios;

/// <summary>Capacity what-ifs and the optimiser on a small hand-built twin (two racks, one unit; parameters set, not fitted).</summary>
public sealed class CapacityScenarioTests
{
    private static SiteTwin Twin(double r01Kw = 4, double r02Kw = 4)
    {
        SiteTopology site = PowerModelTests.Site(rackKwBudget: 10);
        var zone = ThermalZone.FromTopology(site)[0];
        var settings = new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0 };
        var model = ThermalCalibrator.Prior(zone, settings);
        model.HeatCapacityKjPerK = 1000;
        model.EnvelopeUaKwPerK = 0.1;
        model.UnitSetpointC[0] = 18;
        var frame = new ZoneFrame(0, 2, 1);
        frame.RackPowerKw[0] = r01Kw;
        frame.RackPowerKw[1] = r02Kw;
        frame.UnitFanSpeed[0] = 0.8;
        frame.UnitSupplyC[0] = 18;
        // Start at the model's own steady state so the "before" is settled.
        var power = new[] { r01Kw, r02Kw };
        var room = CoolingOptimiser.SteadyRoom(model, power, [0.8], [18], [true]);
        frame.UnitReturnC[0] = room;
        model.PredictInlets(frame, frame.RackInletC);
        return new SiteTwin(site, [model], [frame]);
    }

    [Fact]
    public void Add_rack_reports_all_three_parts_and_a_verdict()
    {
        var twin = Twin();
        var result = CapacityScenarios.AddRack(twin, 6);
        Assert.Equal("add_rack", result.Scenario);
        Assert.NotNull(result.Placement);
        Assert.Equal("room1", result.Placement!.Zone);
        Assert.Equal(2, result.Placement.Feeds.Count); // new PDUs on both UPSes, like the neighbour's

        // Cooling: 4 + 4 + 6 kW of IT plus 1.2 kW of fan heat against one 40 kW unit: sufficient, but no N+1 with one unit.
        Assert.True(result.CoolingSufficient.Sufficient);
        Assert.False(result.CoolingSufficient.SufficientNPlus1);
        Assert.Equal(0, result.CoolingSufficient.CapacityNPlus1Kw);
        Assert.Equal("not_ok", result.Verdict);
        Assert.StartsWith("cooling N+1", result.BindingConstraint, StringComparison.Ordinal);

        // The new rack appears in the thermal impact with its predicted inlet, the neighbour with before and after.
        var added = Assert.Single(result.ThermalImpact.Racks, r => r.Rack == "NEW");
        Assert.True(double.IsNaN(added.InletBeforeC));
        Assert.InRange(added.InletAfterC, 15, 45);
        Assert.Contains(result.ThermalImpact.Racks, r => r.Rack == result.Placement.NextTo && !double.IsNaN(r.InletBeforeC));

        // Power: a 6 kW rack on two 3-phase 16 A feeds (8.39 kW derated each) survives the loss of either.
        Assert.True(result.PowerHeadroom.HeadroomRedundantKw > 0, result.PowerHeadroom.BindingElementRedundant);
    }

    [Fact]
    public void Add_rack_that_overloads_the_ups_pair_names_power_as_binding()
    {
        // Two UPS of 20 kW (16 kW derated): 8 + 8 kW today, a 6 kW rack makes 22 kW on one UPS after the other fails.
        var twin = Twin(8, 8);
        var result = CapacityScenarios.AddRack(twin, 6, nextTo: "R01");
        Assert.Equal("not_ok", result.Verdict);
        Assert.StartsWith("power with redundancy", result.BindingConstraint, StringComparison.Ordinal);
        Assert.Equal(Math.Round(16 - 22.0, 3), result.PowerHeadroom.HeadroomRedundantKw, 3);
    }

    [Fact]
    public void Load_change_raises_the_rack_inlet_and_uses_headroom()
    {
        var twin = Twin();
        var more = CapacityScenarios.LoadChange(twin, "R01", 3);
        var less = CapacityScenarios.LoadChange(twin, "R01", -2);
        var r01More = more.ThermalImpact.Racks.Single(r => r.Rack == "R01");
        var r01Less = less.ThermalImpact.Racks.Single(r => r.Rack == "R01");
        Assert.True(r01More.InletAfterC > r01Less.InletAfterC);
        Assert.True(more.PowerHeadroom.HeadroomKw < less.PowerHeadroom.HeadroomKw);
        Assert.Throws<ArgumentException>(() => CapacityScenarios.LoadChange(twin, "R77", 1));
    }

    [Fact]
    public void Feed_failure_of_a_ups_moves_every_rack_to_the_other()
    {
        var twin = Twin(4, 5);
        var result = CapacityScenarios.FeedFailure(twin, "ups1");
        Assert.Equal("feed_failure", result.Scenario);
        Assert.Empty(result.PowerHeadroom.UnpoweredRacks);
        var ups2 = result.PowerHeadroom.Elements.Single(e => e.Id == "ups2");
        Assert.Equal(9, ups2.LoadKw, 3);
        Assert.Equal("ok", result.Verdict);

        // 5 kW on one 3-phase 16 A feed is fine; 9 kW is above its 8.39 kW derated rating.
        var overloaded = CapacityScenarios.FeedFailure(Twin(4, 9), "ups1");
        Assert.Equal("not_ok", overloaded.Verdict);
        Assert.Equal("pdu-r02-b", overloaded.PowerHeadroom.BindingElement);
    }

    [Fact]
    public void Optimiser_saves_energy_without_breaking_the_inlet_limit()
    {
        var twin = Twin();
        var r = CoolingOptimiser.Optimise(twin.Zones[0], twin.Now[0], marginK: 1);
        Assert.True(r.Advisory);
        Assert.InRange(r.PredictedMaxInletC, 0, 26.0 + 1e-6);
        Assert.True(r.SavingKw >= 0);
        Assert.True(r.CoolingPowerKw <= r.CoolingPowerNowKw);
        Assert.Single(r.Units);
        // At 8 kW on a 40 kW unit the cheapest feasible point runs warmer supply air than 18 °C.
        Assert.True(r.Units[0].SupplySetpointC > 18, $"set point {r.Units[0].SupplySetpointC}");
    }

    [Fact]
    public void Optimiser_keeps_half_of_each_predicted_inlet_rise_in_reserve_by_default()
    {
        var twin = Twin();
        var today = twin.Now[0].RackInletC.Max();
        var trusting = CoolingOptimiser.Optimise(twin.Zones[0], twin.Now[0], marginK: 1, riseUncertainty: 0);
        var guarded = CoolingOptimiser.Optimise(twin.Zones[0], twin.Now[0], marginK: 1);

        // Trusting the model, the cheapest point sits on the limit; the default keeps half of the predicted rise in reserve.
        Assert.InRange(trusting.PredictedMaxInletC, 25.8, 26.0 + 1e-6);
        Assert.True(today < 25, $"today {today}");
        Assert.True(guarded.PredictedMaxInletC + (0.5 * (guarded.PredictedMaxInletC - today)) <= 26.0 + 1e-3, $"guarded {guarded.PredictedMaxInletC}, today {today}");
        Assert.True(guarded.PredictedMaxInletC < trusting.PredictedMaxInletC - 0.1);
        Assert.True(guarded.SavingKw > 0 && guarded.SavingKw < trusting.SavingKw, $"{guarded.SavingKw} vs {trusting.SavingKw}");
    }
}
