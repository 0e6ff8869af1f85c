using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Thermal;

public sealed class ThermalAnalyticTests
{
    internal static ThermalZone OneRackZone() =>
        new("room1", 100, [new ThermalRack("R01", "A", 1, 12, 10)], [new ThermalUnit("crac1", 20, ["R01"])]);

    /// <summary>
    /// One zone, one rack, one unit that stops: the room is C·dT/dt = P − U·(T − T_o), so
    /// T(t) = T_o + P/U + (T0 − T_o − P/U)·e^(−U·t/C) and the time to a limit L is −(C/U)·ln((T_o + P/U − L)/(T_o + P/U − T0)).
    /// </summary>
    /// <summary>The room of the closed form below: C = 2000 kJ/K, U = 0.5 kW/K to 22 °C outside, one 10 kW rack, at 25 °C now.</summary>
    internal static (ZoneThermalModel Model, ZoneFrame Frame) AnalyticRoom()
    {
        var settings = new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0, InletLagSeconds = 0.01, OutsideC = 22 };
        var model = ThermalCalibrator.Prior(OneRackZone(), settings);
        model.HeatCapacityKjPerK = 2000;
        model.EnvelopeUaKwPerK = 0.5;
        var frame = new ZoneFrame(0, 1, 1);
        frame.RackPowerKw[0] = 10;
        frame.UnitReturnC[0] = 25;
        frame.UnitFanSpeed[0] = 0.6;
        frame.UnitSupplyC[0] = 18;
        return (model, frame);
    }

    [Fact]
    public void Total_cooling_loss_follows_the_exponential_approach()
    {
        var (model, frame) = AnalyticRoom();

        var result = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], MeasureLeads = AtOnce });

        const double tau = 2000 / 0.5;
        const double asymptote = 22 + (10 / 0.5);
        static double Time(double limit) => -tau * Math.Log((asymptote - limit) / (asymptote - 25));
        var rack = Assert.Single(result.Racks);
        Assert.Equal(Time(27), rack.TimeTo27Seconds!.Value, Time(27) * 0.01);
        Assert.Equal(Time(32), rack.TimeTo32Seconds!.Value, Time(32) * 0.01);
        Assert.Null(rack.TimeToShutdownSeconds); // 40 °C is reached only after ~2.4 h, beyond the 2 h horizon
        Assert.Null(result.TimeToThermalShutdownSeconds);
        Assert.Equal(["R01"], result.AffectedRacks);
        Assert.Empty(result.AffectedServers);
        Assert.Equal("cooling_failure", result.Scenario);

        // Opening the doors adds conductance, capping loads: the plan says so with a positive gain.
        var doors = Assert.Single(result.MitigationPlan, s => s.Action == "open_containment");
        Assert.True(doors.MinutesGained > 0);
        var cap = Assert.Single(result.MitigationPlan, s => s.Action == "cap_load");
        Assert.Equal(["R01"], cap.Targets);
        Assert.True(cap.PreventsLimit); // 5 kW / 0.5 kW/K + 22 = 32 °C asymptote: never above
        // Either holds from any inlet below 32 °C, so the operator may wait until the crossing (less 2122 s / 2^6).
        Assert.InRange(cap.ActWithinSeconds!.Value, Time(32) - 34, Time(32));
        Assert.InRange(doors.ActWithinSeconds!.Value, Time(32) - 34, Time(32));
        Assert.Equal(1, result.MitigationPlan[0].Rank);
    }

    /// <summary>Every measure taking effect the moment it is advised (the plan before measures had lead times).</summary>
    private static readonly Dictionary<string, TimeSpan> AtOnce = CoolingFailureOptions.MeasureActions.ToDictionary(a => a, _ => TimeSpan.Zero);

    /// <summary>
    /// A measure takes effect its lead after it is started. The room of <see cref="AnalyticRoom"/> reaches 32 °C at
    /// t32 = 4000·ln(17/10) = 2122 s. Doors opened (U 2 kW/K) level off at 27 °C, so they hold from any inlet below 32 °C:
    /// with a 10 min lead they must be started by t32 − 600 s. The rack capped to 5 kW levels off at exactly 32 °C, but with
    /// a 40 min lead it takes effect at 2400 s, after the crossing: it neither prevents it nor delays it. Taken at once, it
    /// may wait longer than the doors and ranks before them.
    /// </summary>
    [Fact]
    public void A_measure_takes_effect_its_lead_after_it_is_started_and_its_deadline_is_the_latest_start()
    {
        var (model, frame) = AnalyticRoom();
        var leads = new Dictionary<string, TimeSpan> { ["open_containment"] = TimeSpan.FromMinutes(10), ["cap_load"] = TimeSpan.FromMinutes(40) };

        var result = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], RiskSigmas = 0, MeasureLeads = leads });

        var t32 = 4000 * Math.Log(17.0 / 10);
        Assert.Equal(t32, result.Racks[0].TimeTo32Seconds!.Value, t32 * 0.01);
        Assert.Equal(["open_containment", "cap_load"], result.MitigationPlan.Select(s => s.Action));
        var doors = result.MitigationPlan[0];
        Assert.True(doors.PreventsLimit);
        Assert.Equal(600, doors.LeadSeconds);
        // Bisected over the starts 0..t32 − 600 s: within (t32 − 600)/2^6 = 24 s below the latest start, never after it.
        Assert.InRange(doors.ActWithinSeconds!.Value, t32 - 600 - 25, t32 - 600 + 5);
        var cap = result.MitigationPlan[1];
        Assert.False(cap.PreventsLimit);
        Assert.Null(cap.ActWithinSeconds);
        Assert.Equal(2400, cap.LeadSeconds);
        Assert.Equal(0, cap.MinutesGained, 0.1);
        Assert.Equal(" if started within 25.3 min, allowing 10 min for it to take effect", CoolingFailureScenario.Deadline(doors with { ActWithinSeconds = 1518 }));
        Assert.Equal(" if taken within 40 s", CoolingFailureScenario.Deadline(doors with { ActWithinSeconds = 40, LeadSeconds = 0 }));

        // Both preventing, the step that leaves more time to start it comes first: a cap at once may wait until t32 − 34 s,
        // the doors only until t32 − 600 s (the candidates' order has the doors first).
        var capAtOnce = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], RiskSigmas = 0, MeasureLeads = new Dictionary<string, TimeSpan>(leads) { ["cap_load"] = TimeSpan.Zero } });
        Assert.Equal(["cap_load", "open_containment"], capAtOnce.MitigationPlan.Select(s => s.Action));
        Assert.All(capAtOnce.MitigationPlan, s => Assert.True(s.PreventsLimit));
        Assert.InRange(capAtOnce.MitigationPlan[0].ActWithinSeconds!.Value, t32 - 34, t32);

        // An action the site does not name takes the default lead.
        Assert.Equal(TimeSpan.FromMinutes(15), new CoolingFailureOptions { FailedUnits = [], MeasureLeads = leads }.LeadOf("migrate_load"));
    }

    /// <summary>
    /// The room at 31.5 °C crosses 32 °C in 4000·ln(10.5/10) = 195 s. Capping the rack to 5 kW takes 5 min (the default):
    /// by then the rack is past the limit. Before, every step took effect the moment it was advised, and the plan's first
    /// step read "cap the IT load of R01 to 50 %: keeps every rack below the limit if taken within 3.1 min".
    /// </summary>
    [Fact]
    public void Regression_a_step_that_takes_longer_than_the_time_left_was_advised_as_keeping_every_rack_below_the_limit()
    {
        var (model, frame) = AnalyticRoom();
        frame.UnitReturnC[0] = 31.5;

        var result = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], RiskSigmas = 0 });

        Assert.Equal(4000 * Math.Log(10.5 / 10), result.Racks[0].TimeTo32Seconds!.Value, 4.0); // 195 s, within 2 %
        Assert.All(result.MitigationPlan, s => Assert.False(s.PreventsLimit, s.Description));
        Assert.All(result.MitigationPlan, s => Assert.Null(s.ActWithinSeconds));
        Assert.Equal(300, Assert.Single(result.MitigationPlan, s => s.Action == "cap_load").LeadSeconds);

        // Taken at once, the same cap would have held (it levels off at 32 °C).
        var atOnce = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], RiskSigmas = 0, MeasureLeads = AtOnce });
        Assert.True(Assert.Single(atOnce.MitigationPlan, s => s.Action == "cap_load").PreventsLimit);
    }

    /// <summary>
    /// Actions that wait (<see cref="ForecastActions.ActionsFrom"/>): the unit stops now and the doors open 600 s later.
    /// Until then the room follows T(t) = 42 − 17·e^(−t/4000) (T(600) = 27.37 °C); then with U = 0.5 + 1.5 kW/K it falls
    /// toward 22 + 10/2 = 27 °C with τ = 1000 s: the peak is T(600), and after 2 h it is 27 + 0.37·e^(−6.6).
    /// </summary>
    [Fact]
    public void Actions_from_a_later_moment_leave_the_room_as_it_is_until_then()
    {
        var (model, frame) = AnalyticRoom();
        var actions = new ForecastActions(model) { ExtraUaKwPerK = 1.5, ActionsFrom = TimeSpan.FromSeconds(600), Horizon = TimeSpan.FromHours(2) };
        actions.UnitFailed[0] = true;

        var rack = Assert.Single(ThermalForecast.Run(model, frame, actions).Racks);

        var at600 = 42 - (17 * Math.Exp(-600.0 / 4000));
        Assert.Equal(at600, rack.PeakInletC, 0.02);
        Assert.Equal(-4000 * Math.Log(15.0 / 17), rack.SecondsTo27!.Value, 5.0); // 27 °C at 500 s, before the doors
        Assert.Equal(27 + ((at600 - 27) * Math.Exp(-6.6)), rack.FinalInletC, 0.02);
        Assert.Null(rack.SecondsTo32);

        actions.ActionsFrom = TimeSpan.Zero;
        var atOnce = Assert.Single(ThermalForecast.Run(model, frame, actions).Racks);
        Assert.Equal(27 - (2 * Math.Exp(-7.2)), atOnce.PeakInletC, 0.02); // doors open at once: 27 − 2·e^(−t/1000), never at 27 °C
        Assert.Null(atOnce.SecondsTo27);
    }

    /// <summary>
    /// The same room at 24 kW: no step is enough alone — opened doors (U 2 kW/K) level off at 34 °C and cross 32 °C at
    /// 1000·ln(9/2) = 1504 s, the rack capped to 12 kW levels off at 46 °C and crosses at 4000·ln(21/14) = 1622 s (against
    /// 676 s without either) — but together they level off at 28 °C: the plan ends with both together, which keeps every
    /// rack below the limit, after the single steps (the first step stays one thing to do).
    /// </summary>
    [Fact]
    public void When_no_step_is_enough_alone_the_plan_ends_with_all_of_them_together()
    {
        var (model, frame) = AnalyticRoom();
        frame.RackPowerKw[0] = 24;

        var result = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"], RiskSigmas = 0, MeasureLeads = AtOnce });

        Assert.Equal(4000 * Math.Log(45.0 / 38), result.Racks[0].TimeTo32Seconds!.Value, 676 * 0.01);
        Assert.Equal(["cap_load", "open_containment", CoolingFailureScenario.AllMeasures], result.MitigationPlan.Select(s => s.Action));
        Assert.Equal((1622 - 676) / 60.0, result.MitigationPlan[0].MinutesGained, 0.3);
        Assert.Equal((1504 - 676) / 60.0, result.MitigationPlan[1].MinutesGained, 0.3);
        Assert.All(result.MitigationPlan.Take(2), s => Assert.False(s.PreventsLimit));
        var all = result.MitigationPlan[2];
        Assert.Equal((3, "all 2 steps together", true), (all.Rank, all.Description, all.PreventsLimit));
        Assert.Equal(["R01", "room1"], all.Targets.Order(StringComparer.Ordinal));
        // Together they hold from any inlet below 32 °C (they level off at 28 °C): the deadline is the crossing at 676 s,
        // less the bisection's step (676 s / 2^6). A step that does not prevent the crossing has none.
        Assert.InRange(all.ActWithinSeconds!.Value, 676 - 11, 4000 * Math.Log(45.0 / 38));
        Assert.All(result.MitigationPlan.Take(2), s => Assert.Null(s.ActWithinSeconds));
        Assert.Equal(["at once", "within 40 s", "within 11.3 min"], new[] { 0.4, 40, 676 }.Select(CoolingFailureScenario.Within));
    }

    [Fact]
    public void Shutdown_time_and_affected_servers_when_the_room_heats_past_the_limit()
    {
        var settings = new ThermalSettings { ServerFanPowerPerK = 0, ServerAirflowPerK = 0, InletLagSeconds = 0.01, ShutdownInletC = 35 };
        var model = ThermalCalibrator.Prior(OneRackZone(), settings);
        model.HeatCapacityKjPerK = 2000;
        model.EnvelopeUaKwPerK = 0.5;
        var frame = new ZoneFrame(0, 1, 1);
        frame.RackPowerKw[0] = 10;
        frame.UnitReturnC[0] = 25;
        var result = CoolingFailureScenario.Run(model, frame, new CoolingFailureOptions { FailedUnits = ["crac1"] });
        var expected = -(2000 / 0.5) * Math.Log((42 - 35) / (42.0 - 25));
        Assert.Equal(expected, result.TimeToThermalShutdownSeconds!.Value, expected * 0.01);
        Assert.Equal(10, result.AffectedServers["R01"]);
    }

    [Fact]
    public void Unknown_unit_is_named_in_the_error()
    {
        var model = ThermalCalibrator.Prior(OneRackZone());
        var e = Assert.Throws<ArgumentException>(() => CoolingFailureScenario.Run(model, new ZoneFrame(0, 1, 1), new CoolingFailureOptions { FailedUnits = ["CRAC-9"] }));
        Assert.Contains("CRAC-9", e.Message, StringComparison.Ordinal);
        Assert.Contains("crac1", e.Message, StringComparison.Ordinal);
    }
}
