using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Thermal;

/// <summary>Known answers for a planned cooling stop (<see cref="ForecastActions.FailAfter"/>, <see cref="ForecastActions.Outage"/>) and the window search over the day.</summary>
public sealed class CoolingMaintenanceWindowTests
{
    private const double Tau = 2000 / 0.5;
    private const double Asymptote = 22 + (10 / 0.5);

    /// <summary>
    /// The one-rack room of <see cref="ThermalAnalyticTests"/> (C = 2000 kJ/K, U = 0.5 kW/K, 10 kW, 22 °C outside):
    /// without cooling T(t) = 42 − 17·e^(−t/4000 s). A 20 min stop peaks at T(1200 s) = 29.41 °C and never reaches 32 °C
    /// (at 2122 s); the unit running again cools the rack; a 60 min stop crosses 32 °C at 2122 s.
    /// </summary>
    [Fact]
    public void A_stop_of_known_length_peaks_where_the_closed_form_is_at_its_end()
    {
        var (model, frame) = ThermalAnalyticTests.AnalyticRoom();

        var twenty = ThermalForecast.Run(model, frame, Stop(model, after: TimeSpan.Zero, outage: TimeSpan.FromMinutes(20), horizon: TimeSpan.FromMinutes(40)));
        var hour = ThermalForecast.Run(model, frame, Stop(model, after: TimeSpan.Zero, outage: TimeSpan.FromMinutes(60), horizon: TimeSpan.FromMinutes(70)));

        var rack = Assert.Single(twenty.Racks);
        Assert.Equal(Room(1200), rack.PeakInletC, 0.05);
        Assert.Null(rack.SecondsTo32);
        Assert.True(rack.FinalInletC < rack.PeakInletC - 1, $"the unit running again cools the rack: {rack.FinalInletC:0.00} °C at the end against a peak of {rack.PeakInletC:0.00} °C");
        Assert.Equal(Time(32), Assert.Single(hour.Racks).SecondsTo32!.Value, Time(32) * 0.01);
    }

    /// <summary>
    /// A stop 10 min from now in the same room with its unit already off: the forecast's clock starts at the stop, so the
    /// rack's inlet "now" is T(600 s), its time to 32 °C the closed form's less 600 s, and 27 °C (passed at 500 s) is
    /// reached at once.
    /// </summary>
    [Fact]
    public void A_later_stop_counts_its_crossings_from_the_stop()
    {
        var (model, frame) = ThermalAnalyticTests.AnalyticRoom();
        frame.UnitRunning[0] = false;

        var later = ThermalForecast.Run(model, frame, Stop(model, after: TimeSpan.FromMinutes(10), outage: null, horizon: TimeSpan.FromHours(1)));

        var rack = Assert.Single(later.Racks);
        Assert.Equal(Room(600), rack.InletNowC, 0.05);
        Assert.Equal(Time(32) - 600, rack.SecondsTo32!.Value, Time(32) * 0.01);
        Assert.Equal(0, rack.SecondsTo27); // 27 °C was passed at 500 s, before the stop: above at once
        Assert.Equal(3600, later.HorizonSeconds);
    }

    /// <summary>
    /// A simulated room of 6 racks and 2 units whose load swings over the day (its trough about 03:00), calibrated on 26 h:
    /// without crac1 for 4 h it reaches 32 °C whenever the stop starts, so no start holds, and the best start is the one
    /// that leaves the most time: at the load's trough (± 1 h), the worst at its crest; the time to 32 °C grows steeply as
    /// the load falls toward what the remaining unit removes, so the best leaves well over twice the worst's.
    /// </summary>
    [Fact]
    public void Without_a_start_that_holds_the_best_is_the_one_at_the_loads_trough()
    {
        var (model, now) = SimulatedRoom(seed: 5, racks: 6, units: 2);

        var r = CoolingMaintenanceWindow.Run(model, now, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromHours(4), Step = TimeSpan.FromHours(1) });

        Assert.True(r.LoadProfile);
        Assert.Equal("fitted", r.ModelBasis);
        Assert.Equal(25, r.Candidates.Count);
        Assert.DoesNotContain(r.Candidates, c => c.Holds);
        Assert.InRange(r.Best.StartInSeconds - r.Candidates.MinBy(c => c.ZoneLoadKw)!.StartInSeconds, -3600, 3600);
        Assert.InRange(r.Worst.StartInSeconds - r.Candidates.MaxBy(c => c.ZoneLoadKw)!.StartInSeconds, -3600, 3600);
        Assert.True(r.Best.TimeTo32Seconds > 2 * r.Worst.TimeTo32Seconds, $"best {r.Best.TimeTo32Seconds} s, worst {r.Worst.TimeTo32Seconds} s");
        Assert.Equal(r.Candidates.Max(c => c.TimeTo32Seconds), r.Best.TimeTo32Seconds);
        Assert.StartsWith("no start within 24 h keeps every rack below 32 °C with crac1 stopped for 4 h; the most time: start in ", CoolingMaintenanceWindow.Describe(r), StringComparison.Ordinal);
        Assert.Contains(System.FormattableString.Invariant($"start in {r.Best.StartInSeconds / 3600:0.#} h (at +{r.Best.StartInSeconds} s), "), CoolingMaintenanceWindow.Describe(r, s => System.FormattableString.Invariant($" (at +{s} s)")), StringComparison.Ordinal);
    }

    /// <summary>
    /// The same kind of room with 3 units: the other two carry it through a 6 h stop of crac1 at any time of day, so every
    /// start holds and the best is the one with the lowest peak inlet, which lies at the load's trough (± 2 h: the peaks
    /// differ by tenths of a kelvin).
    /// </summary>
    [Fact]
    public void When_every_start_holds_the_best_has_the_lowest_peak_inlet()
    {
        var (model, now) = SimulatedRoom(seed: 1, racks: 12, units: 3);

        var r = CoolingMaintenanceWindow.Run(model, now, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromHours(6), Step = TimeSpan.FromHours(1) });

        Assert.All(r.Candidates, c => Assert.True(c.Holds));
        Assert.Equal(r.Candidates.Min(c => c.PeakInletC), r.Best.PeakInletC);
        Assert.Equal(r.Candidates.Max(c => c.PeakInletC), r.Worst.PeakInletC);
        Assert.True(r.Best.PeakInletC < r.Worst.PeakInletC);
        Assert.InRange(r.Best.StartInSeconds - r.Candidates.MinBy(c => c.ZoneLoadKw)!.StartInSeconds, -7200, 7200);
        var text = CoolingMaintenanceWindow.Describe(r);
        Assert.StartsWith("best start for crac1 stopped for 6 h: in ", text, StringComparison.Ordinal);
        Assert.Contains("no rack reaches 32 °C (peak ", text, StringComparison.Ordinal);
        Assert.Contains("; every start holds; the warmest: start in ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_options_are_refused_naming_what_is_wrong()
    {
        var (model, frame) = ThermalAnalyticTests.AnalyticRoom();
        CoolingWindowOptions Options(string[] units, double hours, double stepMin, double withinH) =>
            new() { Units = units, Outage = TimeSpan.FromHours(hours), Step = TimeSpan.FromMinutes(stepMin), Within = TimeSpan.FromHours(withinH) };

        Assert.Contains("no cooling unit given", Assert.Throws<ArgumentException>(() => CoolingMaintenanceWindow.Run(model, frame, Options([], 1, 30, 24))).Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<ArgumentException>(() => CoolingMaintenanceWindow.Run(model, frame, Options(["CRAC-9"], 1, 30, 24)));
        Assert.Contains("CRAC-9", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("at most 24 h", Assert.Throws<ArgumentOutOfRangeException>(() => CoolingMaintenanceWindow.Run(model, frame, Options(["crac1"], 25, 30, 24))).Message, StringComparison.Ordinal);
        Assert.Contains("take a longer step", Assert.Throws<ArgumentOutOfRangeException>(() => CoolingMaintenanceWindow.Run(model, frame, Options(["crac1"], 1, 1, 24))).Message, StringComparison.Ordinal);
    }

    /// <summary>A stop starting now is the cooling_failure what-if of the same units through the stop: same crossings.</summary>
    [Fact]
    public void The_start_now_is_the_cooling_failure_of_the_same_units()
    {
        var (model, frame) = ThermalAnalyticTests.AnalyticRoom();

        var r = CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromHours(1), Within = TimeSpan.Zero, RiskSigmas = 0 });
        var failure = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], Horizon = TimeSpan.FromHours(1), RiskSigmas = 0, PlanMitigation = false });

        var now = Assert.Single(r.Candidates);
        Assert.Equal(0, now.StartInSeconds);
        Assert.Equal(failure.Racks[0].TimeTo32Seconds, now.TimeTo32Seconds);
        Assert.Equal(["R01"], now.RacksAt32C);
        Assert.False(now.Holds);
    }

    /// <summary>Holding starts that are not consecutive are named as spans, not as one range that hides the gap.</summary>
    [Fact]
    public void The_sentence_names_the_holding_starts_as_spans()
    {
        static CoolingWindowCandidate Start(double h, double peak, bool holds) => new(h * 3600, peak, "A01", holds ? null : 1800, null, holds ? [] : ["A01"], 1, 50);
        CoolingWindowCandidate[] starts = [Start(0, 28.0, true), Start(1, 27.5, true), Start(2, 33, false), Start(3, 29, true)];
        var result = new CoolingWindowResult(CoolingMaintenanceWindow.Name, "room1", ["crac1"], 5400, 3600, starts[1], starts[2], starts, 0.1);

        Assert.Equal(
            "best start for crac1 stopped for 1 h 30 min: in 1 h, no rack reaches 32 °C (peak A01 27.5 °C, zone load 50 kW); 3 of 4 starts hold (in 0–1 h, 3 h); the worst: start in 2 h, A01 at 32 °C 30.0 min in",
            CoolingMaintenanceWindow.Describe(result));
        Assert.Equal([starts[1], starts[0], starts[3], starts[2]], starts.Order(CoolingMaintenanceWindow.Ranking));
    }

    /// <summary>
    /// The one-rack room with a 60 min stop reaches 32 °C at 2122 s, so it does not hold; what would: a stop of at most
    /// 35 min (T(2100 s) = 31.94 °C; 40 min crosses), or for the whole hour opened doors (U 0.5 + 1.5 kW/K: T∞ = 27 °C,
    /// τ = 1000 s, T(3600 s) = 26.95 °C) or the rack capped to 50 % (T∞ = 32 °C, T(3600 s) = 29.15 °C): both hold, the doors
    /// with the lower peak first. The room has no other unit to raise and no cooler rack to move load to.
    /// </summary>
    [Fact]
    public void When_no_start_holds_the_remedies_are_a_shorter_stop_and_the_measures_that_hold()
    {
        var (model, frame) = ThermalAnalyticTests.AnalyticRoom();

        var r = CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromHours(1), Within = TimeSpan.Zero, RiskSigmas = 0 });

        Assert.False(r.Best.Holds);
        var remedies = Assert.IsType<CoolingWindowRemedies>(r.Remedies);
        Assert.Equal(35 * 60, remedies.LongestHoldingOutageSeconds);
        Assert.Equal(0, remedies.LongestHoldingStartInSeconds);
        Assert.Equal(["open_containment", "cap_load"], remedies.Measures.Select(m => m.Action));
        Assert.All(remedies.Measures, m => Assert.Equal((1, 1), (m.StartsHolding, m.StartsTried)));
        Assert.Equal(27 - (2 * Math.Exp(-3.6)), remedies.Measures[0].Best.PeakInletC, 0.05);
        Assert.Equal(32 - (7 * Math.Exp(-0.9)), remedies.Measures[1].Best.PeakInletC, 0.05);
        Assert.Equal(["R01"], remedies.Measures[1].Targets);
        // Holding through 3600 s needs T∞ = 22 + 20·s with T∞ − (T∞ − 25)·e^(−0.9) < 32: s < 0.740, 2.60 kW of the 10 out.
        Assert.Equal(10 * (1 - ((((32 - (25 * Math.Exp(-0.9))) / (1 - Math.Exp(-0.9))) - 22) / 20)), remedies.HeatToRemoveKw!.Value, 0.1);
        var text = CoolingMaintenanceWindow.Describe(r);
        Assert.Contains("; to hold, stop for at most 35 min, starting in 0 h; or, for the whole 1 h, open doors and containment of ", text, StringComparison.Ordinal);
        Assert.EndsWith(": 1 of 1 starts hold, the best in 0 h with peak R01 27.0 °C; also holding: cap_load", text, StringComparison.Ordinal);

        var shorter = CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromMinutes(35), Within = TimeSpan.Zero, RiskSigmas = 0 });
        Assert.True(shorter.Best.Holds);
        Assert.Null(shorter.Remedies);
    }

    /// <summary>
    /// Measures are taken at the stop, not from now. The one-rack room's load is flat, so a stop in 1 h meets the room as
    /// a stop now does, and each measure peaks at its closed form from 25 °C at either start: doors 27 − 2·e^(−3.6), the
    /// rack capped to 50 % 32 − 7·e^(−0.9). Before, the window ran the room under its measures from now: an hour of the
    /// rack capped with the unit still running cooled it before the later stop, whose peak came out below the closed form
    /// and ranked that start best.
    /// </summary>
    [Fact]
    public void Regression_the_window_took_its_measures_from_now_and_cooled_the_room_before_a_later_stop()
    {
        var (model, frame) = ThermalAnalyticTests.AnalyticRoom();

        var r = CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromHours(1), Step = TimeSpan.FromHours(1), Within = TimeSpan.FromHours(1), RiskSigmas = 0 });

        Assert.Equal([0.0, 3600.0], r.Candidates.Select(c => c.StartInSeconds));
        var remedies = Assert.IsType<CoolingWindowRemedies>(r.Remedies);
        var doors = Assert.Single(remedies.Measures, m => m.Action == "open_containment");
        var cap = Assert.Single(remedies.Measures, m => m.Action == "cap_load");
        Assert.Equal((2, 2), (doors.StartsHolding, doors.StartsTried));
        Assert.Equal((2, 2), (cap.StartsHolding, cap.StartsTried));
        Assert.Equal(27 - (2 * Math.Exp(-3.6)), doors.Best.PeakInletC, 0.05);
        Assert.Equal(32 - (7 * Math.Exp(-0.9)), cap.Best.PeakInletC, 0.05);
        Assert.Equal(10 * (1 - ((((32 - (25 * Math.Exp(-0.9))) / (1 - Math.Exp(-0.9))) - 22) / 20)), remedies.HeatToRemoveKw!.Value, 0.1);
    }

    /// <summary>
    /// The simulated room without a holding start (seed 5, 6 racks, 2 units, crac1 stopped 4 h): the longest stop the
    /// remedies name holds at their start when run as the stop asked for, and 5 min more does not; the measures are tried
    /// at every start of the hourly grid and rank by how many hold.
    /// </summary>
    [Fact]
    public void The_longest_holding_stop_holds_and_five_minutes_more_does_not()
    {
        var (model, now) = SimulatedRoom(seed: 5, racks: 6, units: 2);

        var r = CoolingMaintenanceWindow.Run(model, now, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromHours(4), Step = TimeSpan.FromHours(1) });

        var remedies = Assert.IsType<CoolingWindowRemedies>(r.Remedies);
        Assert.Equal(r.Best.StartInSeconds, remedies.LongestHoldingStartInSeconds);
        var longest = Assert.IsType<double>(remedies.LongestHoldingOutageSeconds);
        Assert.InRange(longest, 300, r.Best.TimeTo32Seconds!.Value);
        CoolingWindowCandidate At(double outageSeconds) => CoolingMaintenanceWindow.Run(model, now, new CoolingWindowOptions
        {
            Units = ["crac1"],
            Outage = TimeSpan.FromSeconds(outageSeconds),
            Step = TimeSpan.FromSeconds(Math.Max(1, remedies.LongestHoldingStartInSeconds)),
            Within = TimeSpan.FromSeconds(remedies.LongestHoldingStartInSeconds),
        }).Candidates[^1];
        Assert.True(At(longest).Holds);
        Assert.False(At(longest + 300).Holds);
        Assert.Contains(remedies.Measures, m => m.Action == "raise_fans_lower_setpoints" && m.Targets.SequenceEqual(["crac2"]));
        Assert.All(remedies.Measures, m => Assert.Equal(25, m.StartsTried));
        Assert.Equal(remedies.Measures.Select(m => m.StartsHolding).OrderDescending(), remedies.Measures.Select(m => m.StartsHolding));
        Assert.Equal(Enumerable.Range(1, remedies.Measures.Count), remedies.Measures.Select(m => m.Rank));
        Assert.Contains(System.FormattableString.Invariant($"; to hold, stop for at most "), CoolingMaintenanceWindow.Describe(r), StringComparison.Ordinal);

        // The heat named, taken out evenly (the load scaled down by it) for the whole stop at that start, holds; 1 kW less does not.
        var heat = Assert.IsType<double>(remedies.HeatToRemoveKw);
        Assert.InRange(heat, 0.1, r.Best.ZoneLoadKw);
        bool HoldsLowered(double kw) => new[] { 0, 0.5 }.All(sigmas =>
        {
            var actions = new ForecastActions(model)
            {
                FailAfter = TimeSpan.FromSeconds(r.Best.StartInSeconds),
                Outage = TimeSpan.FromHours(4),
                Horizon = TimeSpan.FromHours(4) + CoolingMaintenanceWindow.Tail,
                FollowLoadProfile = true,
                UncertaintySigmas = sigmas,
                ActionsFrom = TimeSpan.FromSeconds(r.Best.StartInSeconds),
            };
            actions.UnitFailed[model.Zone.UnitIndex("crac1")] = true;
            Array.Fill(actions.RackPowerScale, 1 - (kw / r.Best.ZoneLoadKw));
            return ThermalForecast.Run(model, now, actions).First32Seconds is null;
        });
        Assert.True(HoldsLowered(heat));
        Assert.False(HoldsLowered(heat - 1));
    }

    /// <summary>No measure holds alone, nor all together: the sentence says so and asks for extra cooling.</summary>
    [Fact]
    public void When_nothing_holds_the_sentence_asks_for_extra_cooling()
    {
        CoolingWindowCandidate[] starts = [new(0, 36, "A01", 900, 2400, ["A01"], 3, 60), new(3600, 35, "A01", 1500, null, ["A01"], 3, 55)];
        var all = new CoolingWindowCandidate(3600, 33, "A01", 4800, null, ["A01"], 2, 55);
        var result = new CoolingWindowResult(CoolingMaintenanceWindow.Name, "room1", ["crac1"], 3 * 3600, 3600, starts[1], starts[0], starts, 0.1)
        {
            Remedies = new CoolingWindowRemedies(null, 3600, [new(1, "all_measures", ["room1", "A01"], "all of them together: …", 0, 2, all), new(2, "open_containment", ["room1"], "open doors …", 0, 2, starts[1])]) { HeatToRemoveKw = 14.2 },
        };

        Assert.Equal(
            "no start within 1 h keeps every rack below 32 °C with crac1 stopped for 3 h; the most time: start in 1 h, A01 at 32 °C 25.0 min in (zone load 55 kW); the least: start in 0 h, 15.0 min in; "
            + "not even a 5 min stop holds; for the whole 3 h no measure holds (not even all of them together: A01 at 32 °C 80.0 min in, starting in 1 h): plan extra cooling of about 14.2 kW (portable units) or move that much load out of the room",
            CoolingMaintenanceWindow.Describe(result));
    }

    /// <summary>
    /// Pre-cooling, by the closed form: one 23 kW rack that sees the room (C = 2000 kJ/K, U = 0.5 kW/K to 22 °C), two
    /// units of 1 kW/K at full fan whose supply is their set point (18 °C). Both running hold the room at
    /// (23 + 11 + 36)/2.5 = 28 °C. crac1 stops for 45 min; crac2 alone at 15 °C (fans already full, set point 3 K lower)
    /// levels off at (23 + 11 + 15)/1.5 = 32.67 °C with τ = 1333 s: from 28 °C it crosses 32 °C after
    /// 1333·ln(4.67/0.67) = 2594 s, within the stop. Pre-cooled for an hour before (crac2 at 15 °C beside crac1: toward
    /// 26.8 °C, τ = 800 s) the room starts the stop at 26.81 °C and crosses only after 2898 s: the stop in 1 h holds with
    /// a peak of T(2700 s); the stop now has no hour before it and fares as the measure taken at the stop.
    /// </summary>
    [Fact]
    public void Pre_cooling_an_hour_before_a_stop_lets_the_room_hold_where_the_same_measure_at_the_stop_does_not()
    {
        var settings = new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0, InletLagSeconds = 0.01, OutsideC = 22 };
        var zone = new ThermalZone("room1", 100, [new ThermalRack("R01", "A", 1, 30, 10)], [new ThermalUnit("crac1", 1000, ["R01"]), new ThermalUnit("crac2", 1000, ["R01"])]);
        var model = ThermalCalibrator.Prior(zone, settings);
        model.HeatCapacityKjPerK = 2000;
        model.EnvelopeUaKwPerK = 0.5;
        model.RackBaseRecirculation[0] = 1;
        for (var j = 0; j < 2; j++)
        {
            model.UnitConductanceKwPerK[j] = 1;
            model.UnitFanKw[j] = 0;
        }

        var frame = new ZoneFrame(0, 1, 2);
        frame.RackPowerKw[0] = 23;
        frame.RackInletC[0] = 28;
        for (var j = 0; j < 2; j++)
        {
            frame.UnitReturnC[j] = 28;
            frame.UnitFanSpeed[j] = 1;
            frame.UnitSupplyC[j] = 18;
        }

        var r = CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromMinutes(45), Step = TimeSpan.FromHours(1), Within = TimeSpan.FromHours(1), RiskSigmas = 0 });

        Assert.Equal(2, r.Candidates.Count);
        Assert.All(r.Candidates, c => Assert.False(c.Holds));
        var remedies = Assert.IsType<CoolingWindowRemedies>(r.Remedies);
        var raise = Assert.Single(remedies.Measures, m => m.Action == CoolingFailureScenario.RaiseFansLowerSetpoints);
        var precool = Assert.Single(remedies.Measures, m => m.Action == CoolingMaintenanceWindow.PrecoolAction);
        var crossing = 2000 / 1.5 * Math.Log((98.0 / 3 - 28) / (98.0 / 3 - 32));
        Assert.Equal((0, 2), (raise.StartsHolding, raise.StartsTried));
        Assert.Equal(crossing, raise.Best.TimeTo32Seconds!.Value, 15.0);
        Assert.Equal((1, 2), (precool.StartsHolding, precool.StartsTried));
        Assert.Equal(["crac2"], precool.Targets);
        Assert.Equal(3600, precool.Best.StartInSeconds);
        var startC = 26.8 + (1.2 * Math.Exp(-3600 / 800.0));
        Assert.Equal(98.0 / 3 - ((98.0 / 3 - startC) * Math.Exp(-2700 / (2000 / 1.5))), precool.Best.PeakInletC, 0.05);
        Assert.StartsWith("pre-cool from 1 h before the stop: set the remaining units (crac2) to 100 % fan speed", precool.Description, StringComparison.Ordinal);
        Assert.True(precool.Rank < raise.Rank);

        // Asked for none, the measure is not tried; a lead beyond six hours is refused.
        var without = CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromMinutes(45), Step = TimeSpan.FromHours(1), Within = TimeSpan.FromHours(1), RiskSigmas = 0, PrecoolLead = TimeSpan.Zero });
        Assert.DoesNotContain(without.Remedies!.Measures, m => m.Action == CoolingMaintenanceWindow.PrecoolAction);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CoolingMaintenanceWindow.Run(model, frame, new CoolingWindowOptions { Units = ["crac1"], Outage = TimeSpan.FromMinutes(45), PrecoolLead = TimeSpan.FromHours(7) }));
        Assert.Contains("pre-cooling must start 0 to 6 h before the stop", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>migrate_load</c> moves half the hot rack's load to the cool one. Taken at a stop 12 h from now on a forecast
    /// that follows the daily profile (R01: 10 + 4·cos(ωt) kW, 14 kW now, 6 kW then), half of what R01 carries then is
    /// 3 kW; before, it moved half of the present 14 kW (7 kW) into the night and overheated the cool rack. Taken now,
    /// or without a profile, it is half the present load.
    /// </summary>
    [Fact]
    public void Regression_migrated_load_at_a_later_stop_was_half_the_racks_afternoon_load_not_what_it_carries_then()
    {
        var zone = new ThermalZone("room1", 100, [new ThermalRack("R01", "A", 1, 20, 10), new ThermalRack("R02", "A", 2, 20, 10)], [new ThermalUnit("crac1", 50, ["R01", "R02"]), new ThermalUnit("crac2", 50, ["R01", "R02"])]);
        var model = ThermalCalibrator.Prior(zone);
        model.HasLoadProfile = true;
        model.RackLoadMeanKw[0] = 10;
        model.RackLoadCosKw[0] = 4;
        model.RackLoadMeanKw[1] = 5;
        var now = new ZoneFrame(0, 2, 2);
        now.RackPowerKw[0] = 14;
        now.RackPowerKw[1] = 5;
        var reference = new ZoneForecast
        {
            Racks = [new RackForecast { Rack = "R01", SecondsTo32 = 600, PeakInletC = 33 }, new RackForecast { Rack = "R02", PeakInletC = 25 }],
        };
        var migrate = Assert.Single(CoolingFailureScenario.Mitigations(model, now, ["crac1"], reference, []), m => m.Action == "migrate_load");

        double Moved(TimeSpan from, bool profile)
        {
            var actions = new ForecastActions(model) { ActionsFrom = from, FollowLoadProfile = profile };
            migrate.Apply(actions);
            Assert.Equal([0.5, 1.0], actions.RackPowerScale);
            return actions.RackExtraKw[1];
        }

        Assert.Equal(3, Moved(TimeSpan.FromHours(12), profile: true), 1e-9);
        Assert.Equal(7, Moved(TimeSpan.Zero, profile: true), 1e-9);
        Assert.Equal(7, Moved(TimeSpan.FromHours(12), profile: false), 1e-9);
    }

    private static (ZoneThermalModel Model, ZoneFrame Now) SimulatedRoom(int seed, int racks, int units)
    {
        var spec = EdgeTwin.Simulator.Physics.SiteGenerator.Generate(new EdgeTwin.Simulator.Physics.SiteGenerationOptions { Racks = racks, CoolingUnits = units, Seed = seed, Machines = 0, Start = new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero) });
        var zone = new EdgeTwin.Agent.Twin.Thermal.SimulatedThermalPlant(spec, "room1").Zone;
        var frames = EdgeTwin.Agent.Twin.Thermal.SimulatedThermalPlant.History(spec, TimeSpan.FromHours(26), new DateTimeOffset(2026, 12, 5, 14, 0, 0, TimeSpan.Zero), room: "room1")[0];
        return (ThermalCalibrator.Calibrate(zone, frames), frames[^1]);
    }

    private static ForecastActions Stop(ZoneThermalModel model, TimeSpan after, TimeSpan? outage, TimeSpan horizon)
    {
        var actions = new ForecastActions(model) { FailAfter = after, Outage = outage, Horizon = horizon };
        actions.UnitFailed[0] = true;
        return actions;
    }

    private static double Room(double t) => Asymptote - ((Asymptote - 25) * Math.Exp(-t / Tau));

    private static double Time(double limit) => -Tau * Math.Log((Asymptote - limit) / (Asymptote - 25));
}
