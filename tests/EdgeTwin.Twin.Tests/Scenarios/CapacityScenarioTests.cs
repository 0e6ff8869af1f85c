using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Tests.Power;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Scenarios;

/// <summary>Capacity what-ifs and the optimiser on a small hand-built twin (two racks, one unit; parameters set, not fitted).</summary>
public sealed class CapacityScenarioTests
{
    private static SiteTwin Twin(double r01Kw = 4, double r02Kw = 4, bool r02Metered = true)
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
        if (!r02Metered)
        {
            frame.RackPowerKw[1] = double.NaN;
        }

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
        // Regression: the text said only "cooling N+1: -15.2 kW of capacity left with the largest unit out".
        Assert.Equal("cooling N+1: heat 15.2 kW (IT 14.0 + fans 1.2) against 0.0 kW with crac1 (40.0 kW) out: 15.2 kW short (9.2 kW short already before the change)", result.BindingConstraint);
        Assert.Equal("crac1", result.CoolingSufficient.LargestUnit);

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
    public void Regression_rack_without_power_meter_counted_as_zero_kw()
    {
        // R01 4 kW metered, R02 unmetered with a 10 kW budget. ups1 fails: everything moves to the B feeds and ups2.
        // Counted at 0 kW (before) R02 left pdu-r02-b empty and the answer was a confident "ok". Counted at its budget
        // pdu-r02-b carries 10 kW of 8.3904 kW usable: 1.6 kW over, and the answer says the figure rests on an assumption.
        var twin = Twin(4, 4, r02Metered: false);
        var result = CapacityScenarios.FeedFailure(twin, "ups1");
        Assert.Equal("partial", result.PowerData);
        Assert.Contains("R02: no power reading (no meter, or none yet); counted at its budget 10.0 kW", result.Assumptions);
        Assert.Equal(10, twin.Readings.RackKw["R02"]);
        Assert.Equal("not_ok", result.Verdict);
        Assert.Equal("pdu-r02-b", result.PowerHeadroom.BindingElement);
        Assert.Equal(Math.Round(8.3904 - 10, 3), result.PowerHeadroom.HeadroomKw, 3);
        Assert.Equal(14, result.PowerHeadroom.Elements.Single(e => e.Id == "ups2").LoadKw, 3);

        // Every rack metered: nothing assumed but the method.
        var metered = CapacityScenarios.FeedFailure(Twin(4, 4), "ups1");
        Assert.Equal("measured", metered.PowerData);
        Assert.Equal([CapacityScenarios.PowerMethod], metered.Assumptions);
    }

    [Fact]
    public void Regression_negative_absurd_and_stale_rack_readings_taken_as_the_load()
    {
        var rack = new RackConfig("R07", 7, 8, ["pdu-a"], 10);
        Assert.Equal((5.0, (string?)null), SiteTwin.RackLoad(rack, 5, ageSeconds: 60));

        var negative = SiteTwin.RackLoad(rack, -0.7);
        Assert.Equal(8, negative.Kw);
        Assert.Equal("R07: power reading -0.7 kW is not a load; counted at its budget 8.0 kW", negative.Why);

        // A meter in W read as kW: 4500 "kW" on an 8 kW rack.
        var watts = SiteTwin.RackLoad(rack, 4500);
        Assert.Equal(8, watts.Kw);
        Assert.Contains("over 5 × its budget 8.0 kW (a meter in W read as kW?)", watts.Why, StringComparison.Ordinal);

        // A meter that stopped an hour ago: its last value is not trusted below the budget, kept above it.
        var stale = SiteTwin.RackLoad(rack, 3, ageSeconds: 3600);
        Assert.Equal(8, stale.Kw);
        Assert.Equal("R07: last power reading 3.00 kW is 60 min old; counted at 8.0 kW (the larger of it and its budget)", stale.Why);
        Assert.Equal(9.5, SiteTwin.RackLoad(rack, 9.5, ageSeconds: 3600).Kw);

        // A rack on A and B meters whose B meter never reported: 3 kW is half the story.
        var half = SiteTwin.RackLoad(rack, 3, ageSeconds: double.PositiveInfinity);
        Assert.Equal(8, half.Kw);
        Assert.Equal("R07: 3.00 kW is the sum of only some of its power meters (another has never reported); counted at 8.0 kW (the larger of it and its budget)", half.Why);
    }

    [Fact]
    public void Regression_feed_failure_text_named_neither_the_failure_nor_the_limit()
    {
        // pdu-r01-a fails: R01's 9 kW moves wholly to pdu-r01-b, 16 A × 230 V × 3 × 0.95 = 10.488 kW, 80 % = 8.3904 kW.
        // The text was "power: -0.6 kW below the 80 % derated rating of pdu-r01-b".
        var result = CapacityScenarios.FeedFailure(Twin(9, 4), "pdu-r01-a");
        Assert.Equal("not_ok", result.Verdict);
        Assert.Equal(
            "power: with pdu-r01-a failed, pdu-r01-b carries 9.0 kW of 8.4 kW usable, 0.6 kW over (16 A breaker × 230 V × 3 phases × PF 0.95 = 10.49 kW, 80 % = 8.39 kW)",
            result.BindingConstraint);
        Assert.Equal("pdu-r01-a", result.PowerHeadroom.Elements.Single(e => e.Id == "pdu-r01-b").WorstCaseFailure);

        // Adding load: the redundant text names the failure that loads the binding element.
        var add = CapacityScenarios.AddRack(Twin(8, 8), 6, nextTo: "R01");
        Assert.StartsWith("power with redundancy: if ups", add.BindingConstraint, StringComparison.Ordinal);
        Assert.Contains("carries 22.0 kW of 16.0 kW usable, 6.0 kW over (UPS 20 kW, 80 % = 16.00 kW)", add.BindingConstraint, StringComparison.Ordinal);

        // How the new rack was placed is stated; it is no missing data.
        Assert.Equal("measured", add.PowerData);
        Assert.Contains("NEW: 6.0 kW on new feeds new-1, new-2 rated like R01's, balanced over their phases", add.Assumptions);
    }

    [Fact]
    public void Regression_add_rack_too_hot_to_run_read_cooler_the_more_kw_it_was_given()
    {
        // The what-if's forecast let the new rack's servers trip at the 40 °C shutdown inlet and reported the inlet
        // after an hour of shedding: on the simulated site a 12 kW rack read 38.1 °C, a 20 kW one 27.9 °C and a 300 kW
        // one 23.8 °C, its neighbours cooler than before. The steady-state what-ifs keep every server running now.
        var twin = Twin();
        var previous = double.NegativeInfinity;
        CapacityScenarioResult? last = null;
        foreach (var kw in new[] { 5.0, 15, 30, 60, 120 })
        {
            var result = CapacityScenarios.AddRack(twin, kw, nextTo: "R01");
            Assert.True(result.ThermalImpact.MaxInletAfterC >= previous - 1e-6, $"{kw} kW: {result.ThermalImpact.MaxInletAfterC} °C after {previous} °C for less");
            previous = result.ThermalImpact.MaxInletAfterC;
            last = result;
        }

        // Too hot to run: reported at the shutdown inlet (beyond it a room short of cooling runs away to figures that
        // only say the servers would shut down), and the thermal text says so.
        Assert.Equal(40, last!.ThermalImpact.MaxInletAfterC);
        Assert.Equal("NEW", last.ThermalImpact.HottestRackAfter);
        Assert.Equal("thermal: NEW's inlet reaches the 40 °C shutdown inlet (limit 27 °C): its servers would shut down", last.ThermalImpact.Text(27));
    }

    [Fact]
    public void Regression_feed_failure_in_the_second_room_answered_with_the_first_rooms_inlets_and_cooling()
    {
        // room1: R01 cooled by crac1; room2: R02 cooled by crac2 (25 kW). pdu-r02-a fails: R02's load moves to
        // pdu-r02-b. The thermal and cooling parts were room1's (crac1) whatever the failed element fed.
        var twin = TwoRoomTwin();
        var result = CapacityScenarios.FeedFailure(twin, "pdu-r02-a");
        Assert.Equal("room2", result.ThermalImpact.Zone);
        Assert.Equal("crac2", result.CoolingSufficient.LargestUnit);
        Assert.Equal(25, result.CoolingSufficient.CapacityKw);

        var first = CapacityScenarios.FeedFailure(twin, "pdu-r01-b");
        Assert.Equal("room1", first.ThermalImpact.Zone);
        Assert.Equal("crac1", first.CoolingSufficient.LargestUnit);
    }

    [Fact]
    public void Regression_load_change_below_the_racks_load_gave_a_negative_heat_load()
    {
        // R01 draws 4 kW; "-100 kW" gave the zone a heat load of -92 kW plus fans, and R01 an aisle colder than its
        // supply air. A rack cannot draw less than nothing: the drop is taken as the rack switched off, and said so.
        var twin = Twin();
        var result = CapacityScenarios.LoadChange(twin, "R01", -100);
        var off = CapacityScenarios.LoadChange(twin, "R01", -4);
        Assert.Equal(Math.Round(4 + result.CoolingSufficient.FanHeatKw, 2), result.CoolingSufficient.HeatLoadKw, 2);
        Assert.Equal(off.CoolingSufficient.HeatLoadKw, result.CoolingSufficient.HeatLoadKw, 6);
        Assert.Equal(off.ThermalImpact.MaxInletAfterC, result.ThermalImpact.MaxInletAfterC, 6);
        Assert.Contains("R01: a change of -100.0 kW taken as -4.0 kW, the rack switched off: it draws 4.0 kW now", result.Assumptions);
        Assert.Equal(0, result.PowerHeadroom.Elements.Single(e => e.Id == "pdu-r01-a").LoadKw, 6);
    }

    [Fact]
    public void Regression_add_rack_could_not_be_asked_for_a_row()
    {
        // "Can I add a 6 kW rack in row B?": add_rack took a zone or one neighbour, so the search went over every row of
        // the room and could answer with a place in row A. Now a row is a place to search, and a row that does not exist
        // is refused naming the rows there are.
        SiteTopology one = PowerModelTests.Site(rackKwBudget: 10);
        var racks = one.AllRacks.ToList();
        var twin = PriorTwin(one with
        {
            Rooms = [new RoomConfig("room1", 200, [new RowConfig("A", [racks[0]]), new RowConfig("B", [racks[1] with { Position = 1 }])])],
        });
        var inB = CapacityScenarios.AddRack(twin, 6, row: "B");
        Assert.Equal("B", inB.Placement!.Row);
        Assert.Equal("R02", inB.Placement.NextTo);
        Assert.All(inB.Alternatives, a => Assert.Equal("B", a.Row));
        Assert.Equal("A", CapacityScenarios.AddRack(twin, 6, zone: "room1", row: "A").Placement!.Row);

        var none = Assert.Throws<ArgumentException>(() => CapacityScenarios.AddRack(twin, 6, row: "C"));
        Assert.Equal("row", none.ParamName);
        Assert.StartsWith("add_rack: no row 'C' in the site (rows: room1/A, room1/B)", none.Message, StringComparison.Ordinal);
        Assert.StartsWith("add_rack: no row 'C' in room1 (rows: A, B)", Assert.Throws<ArgumentException>(() => CapacityScenarios.AddRack(twin, 6, zone: "room1", row: "C")).Message, StringComparison.Ordinal);
        Assert.StartsWith("add_rack: rack 'R01' is in row A, not row B", Assert.Throws<ArgumentException>(() => CapacityScenarios.AddRack(twin, 6, nextTo: "R01", row: "B")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_not_ok_power_text_read_0_0_kw_over()
    {
        // ups1 failing on the simulated site put 6.82 kW on pdu-b02-b, usable 6.773 kW: "carries 6.8 kW of 6.8 kW usable,
        // 0.0 kW over" beside a not_ok verdict. Under 0.1 kW of margin the figures get two decimals.
        var result = CapacityScenarios.FeedFailure(Twin(8.42, 4), "pdu-r01-a");
        Assert.Equal("not_ok", result.Verdict);
        Assert.StartsWith("power: with pdu-r01-a failed, pdu-r01-b carries 8.42 kW of 8.39 kW usable, 0.03 kW over (", result.BindingConstraint, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_add_rack_cooling_text_hid_that_the_room_was_already_short_of_n_plus_1()
    {
        // Room2 of the simulated site (crac2 + crac3, 30 kW each; 29.0 kW of IT + 1.8 kW of fans) is 0.8 kW short of N+1
        // before anything is added; "a 6 kW rack: 6.8 kW short" read as if the rack alone broke it. Two units of 8 kW
        // here and 8 kW of IT: the units' fan heat alone is short already.
        SiteTopology one = PowerModelTests.Site(rackKwBudget: 10);
        var twin = PriorTwin(one with
        {
            CoolingUnits = [new CoolingUnitConfig("crac1", "room1", 8, ["R01", "R02"], null), new CoolingUnitConfig("crac2", "room1", 8, ["R01", "R02"], null)],
        });
        var result = CapacityScenarios.AddRack(twin, 2, nextTo: "R01");
        var before = -(result.CoolingSufficient.HeadroomNPlus1Kw + 2);
        Assert.True(before > 0, $"{before}");
        Assert.Equal(-before, result.CoolingSufficient.HeadroomNPlus1BeforeKw!.Value, 2);
        Assert.EndsWith(string.Create(System.Globalization.CultureInfo.InvariantCulture, $" kW short ({before:0.0} kW short already before the change)"), result.CoolingSufficient.Text(), StringComparison.Ordinal);

        // Less load in a room short of N+1: short before, within it after (no "already").
        var less = CapacityScenarios.LoadChange(twin, "R01", -1).CoolingSufficient;
        Assert.EndsWith(string.Create(System.Globalization.CultureInfo.InvariantCulture, $" kW to spare ({before:0.0} kW short before the change)"), less.Text(), StringComparison.Ordinal);

        // A feed failure adds no heat: no "before".
        Assert.Null(CapacityScenarios.FeedFailure(twin, "pdu-r01-a").CoolingSufficient.HeadroomNPlus1BeforeKw);
    }

    /// <summary>Two rooms of one rack each, one unit each (room1's crac1 40 kW, room2's crac2 25 kW), 2N feeds per rack.</summary>
    private static SiteTwin TwoRoomTwin()
    {
        SiteTopology one = PowerModelTests.Site(rackKwBudget: 10);
        var racks = one.AllRacks.ToList();
        SiteTopology site = one with
        {
            Rooms =
            [
                new RoomConfig("room1", 200, [new RowConfig("A", [racks[0]])]),
                new RoomConfig("room2", 200, [new RowConfig("B", [racks[1] with { Position = 1 }])]),
            ],
            CoolingUnits =
            [
                new CoolingUnitConfig("crac1", "room1", 40, ["R01"], null),
                new CoolingUnitConfig("crac2", "room2", 25, ["R02"], null),
            ],
        };
        return PriorTwin(site);
    }

    /// <summary>A prior twin per room of <paramref name="site"/>, every rack at 4 kW, settled at its steady state.</summary>
    private static SiteTwin PriorTwin(SiteTopology site)
    {
        var settings = new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0 };
        var models = new List<ZoneThermalModel>();
        var frames = new List<ZoneFrame>();
        foreach (var zone in ThermalZone.FromTopology(site))
        {
            var model = ThermalCalibrator.Prior(zone, settings);
            var units = zone.Units.Count;
            Array.Fill(model.UnitSetpointC, 18);
            var frame = new ZoneFrame(0, zone.Racks.Count, units);
            Array.Fill(frame.RackPowerKw, 4);
            Array.Fill(frame.UnitFanSpeed, 0.8);
            Array.Fill(frame.UnitSupplyC, 18);
            Array.Fill(frame.UnitReturnC, CoolingOptimiser.SteadyRoom(model, frame.RackPowerKw, [.. Enumerable.Repeat(0.8, units)], [.. Enumerable.Repeat(18.0, units)], [.. Enumerable.Repeat(true, units)]));
            model.PredictInlets(frame, frame.RackInletC);
            models.Add(model);
            frames.Add(frame);
        }

        return new SiteTwin(site, models, frames);
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
