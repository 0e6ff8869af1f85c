using System.Globalization;
using System.Text.Json.Serialization;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Scenarios;

/// <summary>One start time of a planned cooling stop and what the room does through it (seconds from the start; null: never).</summary>
public sealed record CoolingWindowCandidate(
    [property: JsonPropertyName("start_in_s")] double StartInSeconds,
    [property: JsonPropertyName("peak_inlet_c")] double PeakInletC,
    [property: JsonPropertyName("hottest_rack")] string HottestRack,
    [property: JsonPropertyName("time_to_32c_s")] double? TimeTo32Seconds,
    [property: JsonPropertyName("time_to_shutdown_s")] double? TimeToShutdownSeconds,
    [property: JsonPropertyName("racks_at_32c")] IReadOnlyList<string> RacksAt32C,
    [property: JsonPropertyName("racks_over_27c")] int RacksOver27C,
    [property: JsonPropertyName("zone_load_kw")] double ZoneLoadKw)
{
    /// <summary>No rack at 32 °C in the expected forecast nor in its upper band: the room holds through the stop.</summary>
    [JsonPropertyName("holds")]
    public bool Holds => RacksAt32C.Count == 0;
}

/// <summary>A measure taken for the whole of a planned stop, and how the starts then fare (tried at <see cref="StartsTried"/> of them).</summary>
public sealed record CoolingWindowMeasure(
    [property: JsonPropertyName("rank")] int Rank,
    [property: JsonPropertyName("action")] string Action,
    [property: JsonPropertyName("targets")] IReadOnlyList<string> Targets,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("starts_holding")] int StartsHolding,
    [property: JsonPropertyName("starts_tried")] int StartsTried,
    [property: JsonPropertyName("best")] CoolingWindowCandidate Best);

/// <summary>
/// What would make a planned stop hold when no start does: a shorter stop (the longest that holds, at the start that
/// leaves the most time), or measures taken for the whole stop, each alone and, when none holds alone, all together.
/// </summary>
public sealed record CoolingWindowRemedies(
    [property: JsonPropertyName("longest_holding_outage_s")] double? LongestHoldingOutageSeconds,
    [property: JsonPropertyName("longest_holding_start_in_s")] double LongestHoldingStartInSeconds,
    [property: JsonPropertyName("measures")] IReadOnlyList<CoolingWindowMeasure> Measures)
{
    /// <summary>
    /// Heat to take out of the room through the whole stop for it to hold at <see cref="LongestHoldingStartInSeconds"/>
    /// (the zone's IT load lowered evenly until no rack reaches 32 °C): the size of portable cooling, or the load to move
    /// out of the room; null when not even a room without IT load holds.
    /// </summary>
    [JsonPropertyName("heat_to_remove_kw")]
    public double? HeatToRemoveKw { get; init; }
}

public sealed record CoolingWindowResult(
    [property: JsonPropertyName("scenario")] string Scenario,
    [property: JsonPropertyName("zone")] string Zone,
    [property: JsonPropertyName("units")] IReadOnlyList<string> Units,
    [property: JsonPropertyName("outage_s")] double OutageSeconds,
    [property: JsonPropertyName("step_s")] double StepSeconds,
    [property: JsonPropertyName("best")] CoolingWindowCandidate Best,
    [property: JsonPropertyName("worst")] CoolingWindowCandidate Worst,
    [property: JsonPropertyName("candidates")] IReadOnlyList<CoolingWindowCandidate> Candidates,
    [property: JsonPropertyName("model_fit_rmse_k")] double ModelFitRmseK)
{
    /// <summary>"fitted", or "defaults" when the zone's model rests on typical figures (see <see cref="CoolingFailureResult.ModelBasis"/>).</summary>
    [JsonPropertyName("model_basis")]
    public string ModelBasis { get; init; } = "fitted";

    /// <summary>Whether the forecast follows a calibrated daily load profile; false: the present load is held, and every start reads alike.</summary>
    [JsonPropertyName("load_profile")]
    public bool LoadProfile { get; init; }

    [JsonPropertyName("assumptions")]
    public IReadOnlyList<string> Assumptions { get; init; } = [];

    /// <summary>When no start holds: what would (null when one does, or when not asked for).</summary>
    [JsonPropertyName("remedies")]
    public CoolingWindowRemedies? Remedies { get; init; }
}

/// <summary>Options of a <c>cooling_maintenance_window</c> what-if.</summary>
public sealed record CoolingWindowOptions
{
    /// <summary>Longest stop and farthest start asked for: the load profile is daily, so two days hold every start time twice.</summary>
    public static readonly TimeSpan MaxOutage = TimeSpan.FromHours(24), MaxWithin = TimeSpan.FromHours(48);

    /// <summary>Most start times tried; each is one forecast from now through the end of its stop.</summary>
    public const int MaxCandidates = 289;

    public required IReadOnlyList<string> Units { get; init; }

    /// <summary>How long the units stay stopped.</summary>
    public required TimeSpan Outage { get; init; }

    /// <summary>Spacing of the start times tried, from now.</summary>
    public TimeSpan Step { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>The latest start tried, from now.</summary>
    public TimeSpan Within { get; init; } = TimeSpan.FromHours(24);

    /// <summary>A start holds when no rack reaches 32 °C in the expected forecast nor this many σ up (as <see cref="CoolingFailureOptions.RiskSigmas"/>).</summary>
    public double RiskSigmas { get; init; } = 0.5;

    /// <summary>Racks whose load may be shut down for the stop (a <c>shed_load</c> measure); empty: none.</summary>
    public IReadOnlyList<string> NonCriticalRacks { get; init; } = [];

    /// <summary>When no start holds, look for what would (<see cref="CoolingWindowResult.Remedies"/>).</summary>
    public bool PlanRemedies { get; init; } = true;

    /// <summary>Longest pre-cooling asked for: a room's air and racks hold cold for minutes, not hours.</summary>
    public static readonly TimeSpan MaxPrecoolLead = TimeSpan.FromHours(6);

    /// <summary>Pre-cooling when none is asked for: an hour, time for the room to settle at the colder set points.</summary>
    public static readonly TimeSpan DefaultPrecoolLead = TimeSpan.FromHours(1);

    /// <summary>
    /// How long before the stop the <c>precool</c> measure raises the remaining units' fans and lowers their set points
    /// (kept through the stop), the usual preparation for planned cooling work; zero: not tried.
    /// </summary>
    public TimeSpan PrecoolLead { get; init; } = DefaultPrecoolLead;
}

/// <summary>
/// <c>cooling_maintenance_window</c>: when, over the next day, to stop cooling units for a planned repair (a blower
/// change) with the most margin. For each start time the calibrated twin runs from now with every unit running until the
/// start, then without the units for the stop and a settling tail (<see cref="Tail"/>) after they run again, the load
/// following its daily profile throughout. Starts where no rack reaches 32 °C (expected, nor in the upper band) rank
/// first, by the lowest peak inlet; the others by the latest first rack at 32 °C, then the lowest peak.
/// </summary>
public static class CoolingMaintenanceWindow
{
    public const string Name = "cooling_maintenance_window";

    /// <summary>After the units run again the inlets still lag their fall; the peak is looked for this long after.</summary>
    public static readonly TimeSpan Tail = TimeSpan.FromMinutes(10);

    public static CoolingWindowResult Run(ZoneThermalModel model, ZoneFrame now, CoolingWindowOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(now);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Units.Count == 0)
        {
            throw new ArgumentException($"{Name}: no cooling unit given", nameof(options));
        }

        if (options.Outage <= TimeSpan.Zero || options.Outage > CoolingWindowOptions.MaxOutage)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Outage, $"{Name}: the stop must last more than 0 and at most {CoolingWindowOptions.MaxOutage.TotalHours:0} h");
        }

        if (options.PrecoolLead < TimeSpan.Zero || options.PrecoolLead > CoolingWindowOptions.MaxPrecoolLead)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.PrecoolLead, $"{Name}: pre-cooling must start 0 to {CoolingWindowOptions.MaxPrecoolLead.TotalHours:0} h before the stop");
        }

        if (options.Step <= TimeSpan.Zero || options.Within < TimeSpan.Zero || options.Within > CoolingWindowOptions.MaxWithin)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"{Name}: starts every {options.Step} within {options.Within}: the step must be positive and the latest start at most {CoolingWindowOptions.MaxWithin.TotalHours:0} h away");
        }

        var count = (int)Math.Floor((options.Within.TotalSeconds / options.Step.TotalSeconds) + 1e-9) + 1;
        if (count > CoolingWindowOptions.MaxCandidates)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"{Name}: {count} start times (every {options.Step.TotalMinutes:0.#} min within {options.Within.TotalHours:0.#} h) is more than {CoolingWindowOptions.MaxCandidates}: take a longer step");
        }

        var failure = new CoolingFailureOptions { FailedUnits = options.Units };
        var candidates = new List<CoolingWindowCandidate>(count);
        for (var k = 0; k < count; k++)
        {
            candidates.Add(Candidate(model, now, failure, options, k * options.Step.TotalSeconds, options.Outage, apply: null));
        }

        var ranked = candidates.OrderBy(c => c, Ranking).ToList();
        return new CoolingWindowResult(Name, model.Zone.Id, options.Units, options.Outage.TotalSeconds, options.Step.TotalSeconds, ranked[0], ranked[^1], candidates, Math.Round(model.InletFitRmseK, 3))
        {
            ModelBasis = model.RestsOnDefaults ? "defaults" : "fitted",
            LoadProfile = model.HasLoadProfile,
            Assumptions = [.. model.Assumptions],
            Remedies = options.PlanRemedies && !ranked[0].Holds ? Remedies(model, now, failure, options, candidates, ranked[0]) : null,
        };
    }

    /// <summary>Most starts a measure is tried at (every k-th of the grid, the best start among them), to bound the cost.</summary>
    public const int MaxStartsPerMeasure = 25;

    /// <summary>A shorter stop is looked for in whole multiples of this (a planner's granularity).</summary>
    public static readonly TimeSpan ShorterStopStep = TimeSpan.FromMinutes(5);

    private static CoolingWindowRemedies Remedies(ZoneThermalModel model, ZoneFrame now, CoolingFailureOptions failure, CoolingWindowOptions options, List<CoolingWindowCandidate> candidates, CoolingWindowCandidate best)
    {
        // The longest stop that holds at the start leaving the most time: it cannot reach that start's first crossing
        // (which happens while the units are still stopped), and holding shrinks with the stop, so bisect below it.
        var steps = (int)Math.Floor(Math.Min(best.TimeTo32Seconds ?? options.Outage.TotalSeconds, options.Outage.TotalSeconds) / ShorterStopStep.TotalSeconds);
        int lo = 0, hi = steps;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (Candidate(model, now, failure, options, best.StartInSeconds, mid * ShorterStopStep, apply: null).Holds)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        // The heat to remove: the largest even share of the load that holds (bisected; the room holds less the more it
        // carries), its complement of the load at the start being what portable cooling must take out.
        double? heatKw = null;
        bool HoldsWith(double share) => Candidate(model, now, failure, options, best.StartInSeconds, options.Outage, a => Array.Fill(a.RackPowerScale, share)).Holds;
        if (HoldsWith(0))
        {
            double holds = 0, fails = 1;
            for (var k = 0; k < 10; k++)
            {
                var mid = (holds + fails) / 2;
                (holds, fails) = HoldsWith(mid) ? (mid, fails) : (holds, mid);
            }

            heatKw = Math.Ceiling((1 - holds) * best.ZoneLoadKw * 10) / 10;
        }

        // Measures for the whole stop, their racks chosen on the best start's forecast without them.
        var reference = ThermalForecast.Run(model, now, Actions(model, failure, options.Outage, best.StartInSeconds, 0));
        var mitigations = CoolingFailureScenario.Mitigations(model, now, options.Units, reference, options.NonCriticalRacks);
        var every = (int)Math.Ceiling(candidates.Count / (double)MaxStartsPerMeasure);
        var starts = candidates.Where((c, k) => k % every == 0 || ReferenceEquals(c, best)).Select(c => c.StartInSeconds).ToList();
        var measures = new List<(CoolingFailureScenario.Mitigation Measure, int Holding, CoolingWindowCandidate Best)>();
        foreach (var m in mitigations)
        {
            measures.Add(Measure(m));
        }

        if (Precool(mitigations, options.PrecoolLead) is { } precool)
        {
            measures.Add(Measure(precool));
        }

        // "Together" is the measures taken at the stop: pre-cooling would move every one of them earlier.
        if (mitigations.Count > 1 && measures.All(m => m.Holding == 0))
        {
            measures.Add(Measure(CoolingFailureScenario.Together(mitigations, "all of them together: " + string.Join("; ", mitigations.Select(m => m.Description)))));
        }

        return new CoolingWindowRemedies(
            lo > 0 ? lo * ShorterStopStep.TotalSeconds : null,
            best.StartInSeconds,
            [.. measures
                .OrderByDescending(x => x.Holding)
                .ThenBy(x => x.Best, Ranking)
                .Select((x, k) => new CoolingWindowMeasure(k + 1, x.Measure.Action, x.Measure.Targets, x.Measure.Description, x.Holding, starts.Count, x.Best))])
        {
            HeatToRemoveKw = heatKw,
        };

        (CoolingFailureScenario.Mitigation, int, CoolingWindowCandidate) Measure(CoolingFailureScenario.Mitigation m)
        {
            var tried = starts.Select(start => Candidate(model, now, failure, options, start, options.Outage, m.Apply)).ToList();
            return (m, tried.Count(c => c.Holds), tried.OrderBy(c => c, Ranking).First());
        }
    }

    /// <summary>The <c>precool</c> measure's action.</summary>
    public const string PrecoolAction = "precool";

    /// <summary>
    /// The remaining units' fans raised and set points lowered <paramref name="lead"/> before the stop (from now when the
    /// stop starts sooner) and kept through it; null when no unit remains to do it or pre-cooling is not asked for.
    /// </summary>
    private static CoolingFailureScenario.Mitigation? Precool(IReadOnlyList<CoolingFailureScenario.Mitigation> mitigations, TimeSpan lead)
    {
        if (lead <= TimeSpan.Zero || mitigations.FirstOrDefault(m => m.Action == CoolingFailureScenario.RaiseFansLowerSetpoints) is not { } raise)
        {
            return null;
        }

        return new(PrecoolAction, raise.Targets, Inv($"pre-cool from {Duration(lead.TotalSeconds)} before the stop: {raise.Description}"), a =>
        {
            raise.Apply(a);
            a.ActionsFrom = a.FailAfter > lead ? a.FailAfter - lead : TimeSpan.Zero;
        });
    }

    /// <summary>Better first: holds, then the later first rack at 32 °C (never is latest), then the lower peak, then the sooner start.</summary>
    public static IComparer<CoolingWindowCandidate> Ranking { get; } = Comparer<CoolingWindowCandidate>.Create((a, b) =>
    {
        var c = b.Holds.CompareTo(a.Holds);
        if (c == 0 && !a.Holds)
        {
            c = (b.TimeTo32Seconds ?? double.MaxValue).CompareTo(a.TimeTo32Seconds ?? double.MaxValue);
        }

        if (c == 0)
        {
            c = a.PeakInletC.CompareTo(b.PeakInletC);
        }

        return c != 0 ? c : a.StartInSeconds.CompareTo(b.StartInSeconds);
    });

    /// <summary>
    /// The answer in a sentence: the best start and why, and the worst for contrast; or, when no start holds, the start
    /// that leaves the most time before the first rack reaches 32 °C.
    /// </summary>
    /// <param name="clock">The wall-clock time of a start (seconds from now), e.g. " (03:00 UTC)"; null: none.</param>
    public static string Describe(CoolingWindowResult result, Func<double, string>? clock = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        string StartIn(double seconds) => Inv($"in {seconds / 3600:0.#} h") + (clock?.Invoke(seconds) ?? string.Empty);
        string Start(CoolingWindowCandidate c) => StartIn(c.StartInSeconds);
        var stop = Inv($"{string.Join(", ", result.Units)} stopped for {Duration(result.OutageSeconds)}");
        var holding = result.Candidates.Count(c => c.Holds);
        var (best, worst) = (result.Best, result.Worst);
        if (holding == 0)
        {
            return Inv($"no start within {result.Candidates[^1].StartInSeconds / 3600:0.#} h keeps every rack below 32 °C with {stop}; the most time: start {Start(best)}, {best.RacksAt32C[0]} at 32 °C {Minutes(best.TimeTo32Seconds!.Value)} in")
                + (best.TimeToShutdownSeconds is { } s ? Inv($", thermal shutdown {Minutes(s)} in") : string.Empty)
                + Inv($" (zone load {best.ZoneLoadKw:0.#} kW); the least: start {Start(worst)}, {Minutes(worst.TimeTo32Seconds!.Value)} in")
                + (result.Remedies is { } remedies ? "; " + DescribeRemedies(result, remedies, StartIn) : string.Empty);
        }

        var of = holding == result.Candidates.Count ? "every start holds"
            : holding == 1 ? Inv($"the only one of {result.Candidates.Count} starts that holds")
            : Inv($"{holding} of {result.Candidates.Count} starts hold (in {HoldingSpans(result.Candidates)})");
        var tail = worst.Holds
            ? Inv($"; the warmest: start {Start(worst)}, peak {worst.HottestRack} {worst.PeakInletC:0.0} °C")
            : Inv($"; the worst: start {Start(worst)}, {worst.RacksAt32C[0]} at 32 °C {Minutes(worst.TimeTo32Seconds!.Value)} in");
        return Inv($"best start for {stop}: {Start(best)}, no rack reaches 32 °C (peak {best.HottestRack} {best.PeakInletC:0.0} °C, zone load {best.ZoneLoadKw:0.#} kW); {of}") + tail;
    }

    /// <summary>
    /// "to hold, stop for at most 45 min, starting in 13 h; or, for the whole 6 h, open doors …: 4 of 25 starts hold, the
    /// best in 13 h with peak A02 29.1 °C; also holding: cap_load".
    /// </summary>
    private static string DescribeRemedies(CoolingWindowResult result, CoolingWindowRemedies remedies, Func<double, string> startIn)
    {
        var shorter = remedies.LongestHoldingOutageSeconds is { } s
            ? Inv($"to hold, stop for at most {Duration(s)}, starting {startIn(remedies.LongestHoldingStartInSeconds)}")
            : Inv($"not even a {Duration(ShorterStopStep.TotalSeconds)} stop holds");
        var holding = remedies.Measures.Where(m => m.StartsHolding > 0).ToList();
        if (holding.Count > 0)
        {
            var top = holding[0];
            var others = holding.Count > 1 ? "; also holding: " + string.Join(", ", holding.Skip(1).Select(m => m.Action)) : string.Empty;
            return shorter + Inv($"; or, for the whole {Duration(result.OutageSeconds)}, {top.Description}: {top.StartsHolding} of {top.StartsTried} starts hold, the best {startIn(top.Best.StartInSeconds)} with peak {top.Best.HottestRack} {top.Best.PeakInletC:0.0} °C{others}");
        }

        var extraCooling = "plan extra cooling" + (remedies.HeatToRemoveKw is { } kw ? Inv($" of about {kw:0.#} kW (portable units) or move that much load out of the room") : string.Empty);
        if (remedies.Measures.Count == 0)
        {
            return shorter + Inv($"; for the whole {Duration(result.OutageSeconds)}, ") + extraCooling;
        }

        var most = remedies.Measures[0];
        var which = most.Action == CoolingFailureScenario.AllMeasures ? "not even all of them together" : Inv($"the best, {most.Action}");
        return shorter + Inv($"; for the whole {Duration(result.OutageSeconds)} no measure holds ({which}: {most.Best.RacksAt32C[0]} at 32 °C {Minutes(most.Best.TimeTo32Seconds!.Value)} in, starting {startIn(most.Best.StartInSeconds)}): ") + extraCooling;
    }

    /// <summary>The holding starts as spans of consecutive ones: "12–15 h, 23 h".</summary>
    private static string HoldingSpans(IReadOnlyList<CoolingWindowCandidate> candidates)
    {
        var spans = new List<string>();
        for (var k = 0; k < candidates.Count; k++)
        {
            if (!candidates[k].Holds)
            {
                continue;
            }

            var first = k;
            while (k + 1 < candidates.Count && candidates[k + 1].Holds)
            {
                k++;
            }

            spans.Add(k == first ? Inv($"{candidates[first].StartInSeconds / 3600:0.#} h") : Inv($"{candidates[first].StartInSeconds / 3600:0.#}–{candidates[k].StartInSeconds / 3600:0.#} h"));
        }

        return string.Join(", ", spans);
    }

    /// <summary>A stop's length as a planner writes it: "4 h", "45 min", "6 h 55 min".</summary>
    public static string Duration(double seconds) =>
        seconds % 3600 == 0 ? Inv($"{seconds / 3600:0} h")
        : seconds < 3600 ? Inv($"{seconds / 60:0} min")
        : Inv($"{Math.Floor(seconds / 3600):0} h {(seconds % 3600) / 60:0} min");

    private static string Minutes(double seconds) => seconds < 120 ? Inv($"{seconds:0} s") : Inv($"{seconds / 60:0.0} min");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static CoolingWindowCandidate Candidate(ZoneThermalModel model, ZoneFrame now, CoolingFailureOptions failure, CoolingWindowOptions options, double startIn, TimeSpan outage, Action<ForecastActions>? apply)
    {
        var actions = Actions(model, failure, outage, startIn, 0);
        apply?.Invoke(actions);
        var expected = ThermalForecast.Run(model, now, actions);
        ZoneForecast? band = null;
        if (options.RiskSigmas > 0 && expected.Racks.Any(r => r.SecondsTo32 is null))
        {
            var upper = Actions(model, failure, outage, startIn, options.RiskSigmas);
            apply?.Invoke(upper);
            band = ThermalForecast.Run(model, now, upper);
        }

        var at32 = new List<(string Rack, double Seconds)>();
        for (var i = 0; i < expected.Racks.Count; i++)
        {
            if ((expected.Racks[i].SecondsTo32 ?? band?.Racks[i].SecondsTo32) is { } s)
            {
                at32.Add((expected.Racks[i].Rack, s));
            }
        }

        var hottest = expected.Racks.MaxBy(r => r.PeakInletC)!;
        return new CoolingWindowCandidate(
            startIn,
            Math.Round(hottest.PeakInletC, 2),
            hottest.Rack,
            at32.Count == 0 ? null : Math.Round(at32.Min(x => x.Seconds), 1),
            expected.FirstShutdownSeconds is { } shutdown ? Math.Round(shutdown, 1) : null,
            [.. at32.OrderBy(x => x.Seconds).Select(x => x.Rack)],
            expected.Racks.Count(r => r.SecondsTo27 is not null),
            Math.Round(ZoneLoadKw(model, now, startIn), 1));
    }

    private static ForecastActions Actions(ZoneThermalModel model, CoolingFailureOptions failure, TimeSpan outage, double startIn, double sigmas)
    {
        var actions = CoolingFailureScenario.Failure(model, failure);
        actions.FollowLoadProfile = true;
        actions.FailAfter = TimeSpan.FromSeconds(startIn);
        // A measure is taken at the stop, not from now: hours under it before the start would pre-cool the room.
        actions.ActionsFrom = actions.FailAfter;
        actions.Outage = outage;
        actions.Horizon = outage + Tail;
        actions.UncertaintySigmas = sigmas;
        return actions;
    }

    /// <summary>The zone's IT load the profile expects at the start (the present load without a profile), for the reader's "why".</summary>
    private static double ZoneLoadKw(ZoneThermalModel model, ZoneFrame now, double startIn)
    {
        var total = 0.0;
        for (var i = 0; i < model.Zone.Racks.Count; i++)
        {
            var present = model.RackKw(now, i);
            var profiled = model.HasLoadProfile && model.RackLoadMeanKw[i] > 0 ? model.ProfileKw(i, now.TimeSeconds + startIn) : double.NaN;
            total += double.IsNaN(profiled) ? present : profiled;
        }

        return total;
    }
}
