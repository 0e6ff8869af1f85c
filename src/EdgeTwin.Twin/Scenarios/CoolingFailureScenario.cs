using System.Text.Json.Serialization;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Scenarios;

/// <summary>One rack's predicted limits after the failure (seconds from now; null: not within the horizon).</summary>
public sealed record CoolingFailureRack(
    [property: JsonPropertyName("rack")] string Rack,
    [property: JsonPropertyName("inlet_now_c")] double InletNowC,
    [property: JsonPropertyName("time_to_27c_s")] double? TimeTo27Seconds,
    [property: JsonPropertyName("time_to_32c_s")] double? TimeTo32Seconds,
    [property: JsonPropertyName("time_to_shutdown_s")] double? TimeToShutdownSeconds,
    [property: JsonPropertyName("peak_inlet_c")] double PeakInletC,
    [property: JsonPropertyName("time_to_32c_basis")] string? TimeTo32Basis = null);

/// <summary>A mitigation step and what it buys on its own, in minutes before the first rack reaches 32 °C (or shutdown).</summary>
public sealed record MitigationStep(
    [property: JsonPropertyName("rank")] int Rank,
    [property: JsonPropertyName("action")] string Action,
    [property: JsonPropertyName("targets")] IReadOnlyList<string> Targets,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("minutes_gained")] double MinutesGained,
    [property: JsonPropertyName("prevents_limit")] bool PreventsLimit)
{
    /// <summary>
    /// For a step that keeps every rack below the limit: how long from now it may wait and still do so (seconds, rounded
    /// down; null: the step does not prevent it). The inlets keep rising while nobody acts, so this is the operator's
    /// deadline, shorter than the time to the first crossing when a rack's inlet overshoots after the step.
    /// </summary>
    [JsonPropertyName("act_within_s")]
    public double? ActWithinSeconds { get; init; }

    /// <summary>
    /// How long the step is assumed to take from the decision to its effect (seconds; <see cref="CoolingFailureOptions.MeasureLeads"/>):
    /// the forecast takes it into effect that long after it is started, and <see cref="ActWithinSeconds"/> is the latest start.
    /// </summary>
    [JsonPropertyName("lead_s")]
    public double LeadSeconds { get; init; }
}

public sealed record CoolingFailureResult(
    [property: JsonPropertyName("scenario")] string Scenario,
    [property: JsonPropertyName("zone")] string Zone,
    [property: JsonPropertyName("failed_units")] IReadOnlyList<string> FailedUnits,
    [property: JsonPropertyName("shutdown_inlet_c")] double ShutdownInletC,
    [property: JsonPropertyName("horizon_s")] double HorizonSeconds,
    [property: JsonPropertyName("time_to_thermal_shutdown_s")] double? TimeToThermalShutdownSeconds,
    [property: JsonPropertyName("affected_racks")] IReadOnlyList<string> AffectedRacks,
    [property: JsonPropertyName("affected_servers")] IReadOnlyDictionary<string, int> AffectedServers,
    [property: JsonPropertyName("racks")] IReadOnlyList<CoolingFailureRack> Racks,
    [property: JsonPropertyName("mitigation_plan")] IReadOnlyList<MitigationStep> MitigationPlan,
    [property: JsonPropertyName("model_fit_rmse_k")] double ModelFitRmseK)
{
    /// <summary>
    /// "fitted", or "defaults" when the zone's room or rack airflow rests on typical figures rather than its telemetry
    /// (<see cref="ZoneThermalModel.RestsOnDefaults"/>): the times are then a guess, whatever they say.
    /// </summary>
    [JsonPropertyName("model_basis")]
    public string ModelBasis { get; init; } = "fitted";

    /// <summary>What the forecast assumes rather than fitted (<see cref="ZoneThermalModel.Assumptions"/>); empty: nothing.</summary>
    [JsonPropertyName("assumptions")]
    public IReadOnlyList<string> Assumptions { get; init; } = [];

    /// <summary>The room (hot-air) temperature at the end of the horizon in the expected forecast (diagnostics; not on the wire).</summary>
    [JsonIgnore]
    public double FinalRoomC { get; init; } = double.NaN;
}

/// <summary>Options of a <c>cooling_failure</c> what-if.</summary>
public sealed record CoolingFailureOptions
{
    public required IReadOnlyList<string> FailedUnits { get; init; }

    public TimeSpan Horizon { get; init; } = TimeSpan.FromHours(2);

    /// <summary>Racks whose load may be shed (named non-critical load); empty: no shedding step.</summary>
    public IReadOnlyList<string> NonCriticalRacks { get; init; } = [];

    /// <summary>Per-rack residual bias to hold through the forecast (see <see cref="ForecastActions.RackBiasK"/>); null: from the frame.</summary>
    public IReadOnlyList<double>? RackBiasK { get; init; }

    /// <summary>
    /// Racks are flagged as affected when they reach 32 °C in the expected forecast or in its upper band, this many
    /// standard deviations of the calibration's own uncertainty up (load deviation from the daily profile, room fit
    /// error; see <see cref="ForecastActions.UncertaintySigmas"/>). 0: the expected forecast alone. 0.5 (a rack with
    /// roughly a 30 % chance of reaching 32 °C is flagged) was the best of 0, 0.5 and 1 on the tuning seeds 1–20 and 201–240
    /// (Scenarios/README.md).
    /// </summary>
    public double RiskSigmas { get; init; } = 0.5;

    /// <summary>Whether the load follows the calibrated daily profile through the horizon (false: the present load is held).</summary>
    public bool FollowLoadProfile { get; init; } = true;

    /// <summary>Whether mitigation steps are evaluated (the validation harness skips them for speed).</summary>
    public bool PlanMitigation { get; init; } = true;

    /// <summary>
    /// How long each measure (by its action name) takes from the operator's decision to its effect; a measure not named
    /// takes <see cref="DefaultMeasureLeads"/>'s. Each step is forecast as taking effect that long after it is started.
    /// Before, every step took effect the moment it was advised, and the plan's first step could be one that kept the
    /// racks below the limit only "if taken at once".
    /// </summary>
    public IReadOnlyDictionary<string, TimeSpan> MeasureLeads { get; init; } = DefaultMeasureLeads;

    /// <summary>
    /// Typical times from decision to effect: set points and fan speeds written from the BMS or the unit's panel, the supply
    /// air following (2 min); doors and containment opened by someone walking to the room (5 min); IT load capped through
    /// the servers' power capping or shut down (5 min); workloads live-migrated (15 min). A site states its own under
    /// <c>thermal_twin.mitigation_lead_times</c>.
    /// </summary>
    public static IReadOnlyDictionary<string, TimeSpan> DefaultMeasureLeads { get; } = new Dictionary<string, TimeSpan>(StringComparer.Ordinal)
    {
        [CoolingFailureScenario.RaiseFansLowerSetpoints] = TimeSpan.FromMinutes(2),
        [CoolingFailureScenario.OpenContainment] = TimeSpan.FromMinutes(5),
        [CoolingFailureScenario.CapLoad] = TimeSpan.FromMinutes(5),
        [CoolingFailureScenario.MigrateLoad] = TimeSpan.FromMinutes(15),
        [CoolingFailureScenario.ShedLoad] = TimeSpan.FromMinutes(5),
    };

    /// <summary>The lead of <paramref name="action"/>: the site's, else the default, else none.</summary>
    public TimeSpan LeadOf(string action) =>
        MeasureLeads.TryGetValue(action, out var lead) || DefaultMeasureLeads.TryGetValue(action, out lead) ? lead : TimeSpan.Zero;

    /// <summary>The actions whose lead a site may state (<see cref="MeasureLeads"/>).</summary>
    public static IReadOnlyList<string> MeasureActions { get; } =
        [CoolingFailureScenario.RaiseFansLowerSetpoints, CoolingFailureScenario.OpenContainment, CoolingFailureScenario.CapLoad, CoolingFailureScenario.MigrateLoad, CoolingFailureScenario.ShedLoad];

    /// <summary>The longest lead a site may state: a measure that takes longer is not one against a cooling stop.</summary>
    public static readonly TimeSpan MaxMeasureLead = TimeSpan.FromHours(2);
}

/// <summary>
/// <c>cooling_failure</c>: stop the named units in the calibrated twin and forecast every rack's inlet.
/// Affected racks are those predicted to reach 32 °C (class A1 allowable) within the horizon; affected servers
/// are the servers of racks predicted to reach the shutdown inlet. The mitigation plan evaluates each step alone
/// against the failure and ranks by minutes gained before the first rack reaches 32 °C.
/// </summary>
public static class CoolingFailureScenario
{
    public const string Name = "cooling_failure";

    public static CoolingFailureResult Run(ZoneThermalModel model, ZoneFrame now, CoolingFailureOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(now);
        ArgumentNullException.ThrowIfNull(options);
        var zone = model.Zone;
        var baseActions = Failure(model, options);
        var baseline = ThermalForecast.Run(model, now, baseActions);

        // A rack whose 32 °C crossing appears only in the upper band is flagged too (an operator prefers a flagged rack
        // to a missed one); its time is the band's, marked as such.
        ZoneForecast? band = null;
        if (options.RiskSigmas > 0 && baseline.Racks.Any(r => r.SecondsTo32 is null))
        {
            var bandActions = Failure(model, options);
            bandActions.UncertaintySigmas = options.RiskSigmas;
            band = ThermalForecast.Run(model, now, bandActions);
        }

        var racks = new List<CoolingFailureRack>(baseline.Racks.Count);
        var affected = new List<string>();
        for (var i = 0; i < baseline.Racks.Count; i++)
        {
            var r = baseline.Racks[i];
            var upper = band?.Racks[i].SecondsTo32;
            var to32 = r.SecondsTo32 ?? upper;
            var basis = r.SecondsTo32 is not null ? "expected" : upper is not null ? "upper_band" : null;
            racks.Add(new CoolingFailureRack(r.Rack, Math.Round(r.InletNowC, 2), Round(r.SecondsTo27), Round(to32), Round(r.SecondsToShutdown), Math.Round(r.PeakInletC, 2), basis));
            if (to32 is not null)
            {
                affected.Add(r.Rack);
            }
        }

        var servers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var r in baseline.Racks.Where(r => r.SecondsToShutdown is not null))
        {
            var count = zone.Racks[zone.RackIndex(r.Rack)].Servers;
            servers[r.Rack] = count;
        }

        // Nothing to mitigate when no rack reaches 32 °C within the horizon.
        var plan = options.PlanMitigation && baseline.First32Seconds is not null ? Plan(model, now, options, baseline) : [];
        return new CoolingFailureResult(
            Name,
            zone.Id,
            options.FailedUnits,
            model.Settings.ShutdownInletC,
            baseline.HorizonSeconds,
            Round(baseline.FirstShutdownSeconds),
            affected,
            servers,
            racks,
            plan,
            Math.Round(model.InletFitRmseK, 3))
        {
            FinalRoomC = baseline.FinalRoomC,
            ModelBasis = model.RestsOnDefaults ? "defaults" : "fitted",
            Assumptions = [.. model.Assumptions],
        };
    }

    internal static ForecastActions Failure(ZoneThermalModel model, CoolingFailureOptions options)
    {
        var actions = new ForecastActions(model) { Horizon = options.Horizon, FollowLoadProfile = options.FollowLoadProfile };
        if (options.RackBiasK is { } biases)
        {
            for (var i = 0; i < Math.Min(biases.Count, actions.RackBiasK.Length); i++)
            {
                actions.RackBiasK[i] = biases[i];
            }
        }

        foreach (var id in options.FailedUnits)
        {
            var j = model.Zone.UnitIndex(id);
            if (j < 0)
            {
                throw new ArgumentException($"cooling_failure: zone '{model.Zone.Id}' has no cooling unit '{id}' (known: {string.Join(", ", model.Zone.Units.Select(u => u.Id))})", nameof(options));
            }

            actions.UnitFailed[j] = true;
        }

        return actions;
    }

    private static List<MitigationStep> Plan(ZoneThermalModel model, ZoneFrame now, CoolingFailureOptions options, ZoneForecast baseline)
    {
        var horizon = baseline.HorizonSeconds;
        var reference = baseline.First32Seconds ?? baseline.FirstShutdownSeconds;
        var candidates = Mitigations(model, now, options.FailedUnits, baseline, options.NonCriticalRacks);
        (double Gained, bool Prevents) Evaluate(Action<ForecastActions> apply, double effectiveAfter)
        {
            var actions = Failure(model, options);
            apply(actions);
            actions.ActionsFrom = TimeSpan.FromSeconds(effectiveAfter);
            var result = ThermalForecast.Run(model, now, actions);
            var after = baseline.First32Seconds is null ? result.FirstShutdownSeconds : result.First32Seconds;
            var prevents = reference is not null && after is null;
            return (reference is null ? 0 : ((after ?? horizon) - reference.Value) / 60, prevents);
        }

        // The latest start from which a preventing step still prevents, its lead included (bisected; a start whose effect
        // comes at the first crossing is too late by definition).
        double? ActWithin(Action<ForecastActions> apply, double lead, bool prevents)
        {
            if (!prevents || reference is not { } crossing)
            {
                return null;
            }

            double early = 0;
            var late = Math.Max(0, crossing - lead);
            for (var k = 0; k < ActWithinBisections && late - early > 1; k++)
            {
                var mid = (early + late) / 2;
                (early, late) = Evaluate(apply, mid + lead).Prevents ? (mid, late) : (early, mid);
            }

            return Math.Floor(early);
        }

        static MitigationStep Step(int rank, Mitigation m, TimeSpan lead, double gained, bool prevents, double? within) =>
            new(rank, m.Action, m.Targets, m.Description, Math.Round(gained, 1), prevents)
            {
                ActWithinSeconds = within,
                LeadSeconds = lead.TotalSeconds,
            };

        var steps = new List<(Mitigation Measure, TimeSpan Lead, double Gained, bool Prevents)>();
        foreach (var c in candidates)
        {
            var lead = options.LeadOf(c.Action);
            var (gained, prevents) = Evaluate(c.Apply, lead.TotalSeconds);
            steps.Add((c, lead, gained, prevents));
        }

        // Preventing steps first, the one that leaves the most time to start it first: each gains the whole horizon, so
        // "gained" cannot order them, and a step that holds only if started within 50 s is one the forecast's error undoes
        // (ranked by the candidates' order, least disruptive first, the demo's first step swapped between such a fan step and
        // the doors with 35 min to spare at every refresh). Ties keep the candidates' order. The others by what they buy.
        var plan = steps
            .Select(x => (x.Measure, x.Lead, x.Gained, x.Prevents, Within: ActWithin(x.Measure.Apply, x.Lead.TotalSeconds, x.Prevents)))
            .OrderByDescending(x => x.Prevents)
            .ThenByDescending(x => x.Prevents ? x.Within ?? 0 : x.Gained)
            .Select((x, k) => Step(k + 1, x.Measure, x.Lead, x.Gained, x.Prevents, x.Within))
            .ToList();
        if (candidates.Count > 1 && !plan.Any(x => x.PreventsLimit))
        {
            // No step is enough alone: the operator's next question is whether doing all of them is. Ranked last, as the
            // step taken after the others, so the first step stays one thing to do. Taken together they take effect when
            // the slowest has.
            var all = Together(candidates, Inv($"all {candidates.Count} steps together"));
            var lead = steps.Max(x => x.Lead);
            var (gained, prevents) = Evaluate(all.Apply, lead.TotalSeconds);
            plan.Add(Step(plan.Count + 1, all, lead, gained, prevents, ActWithin(all.Apply, lead.TotalSeconds, prevents)));
        }

        return plan;
    }

    /// <summary>Bisections of a preventing step's deadline: to 1/64 of the time to the first crossing (1.6 %: 25 s of 26 min).</summary>
    private const int ActWithinBisections = 6;

    /// <summary>"within 8.5 min" / "within 40 s" / "at once": a step's deadline as an operator reads it.</summary>
    public static string Within(double seconds) => seconds < 1 ? "at once" : "within " + Span(seconds);

    /// <summary>
    /// A preventing step's deadline as the message and the CLI give it: " if started within 7 min, allowing 2 min for it to take effect",
    /// " if taken within 40 s" for a step without a lead; empty for a step that does not prevent.
    /// </summary>
    public static string Deadline(MitigationStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        return step.ActWithinSeconds is not { } s ? string.Empty
            : step.LeadSeconds >= 1 ? Inv($" if started {Within(s)}, allowing {Span(step.LeadSeconds)} for it to take effect")
            : " if taken " + Within(s);
    }

    private static string Span(double seconds) => seconds < 120 ? Inv($"{seconds:0} s") : Inv($"{seconds / 60:0.#} min");

    /// <summary>The action of the plan's last step when no step alone keeps every rack below the limit: all of them at once.</summary>
    public const string AllMeasures = "all_measures";

    /// <summary>The remaining units to full fan speed and their set points 3 K lower.</summary>
    public const string RaiseFansLowerSetpoints = "raise_fans_lower_setpoints";

    /// <summary>Doors and containment opened to the neighbouring space.</summary>
    public const string OpenContainment = "open_containment";

    /// <summary>The IT load of the racks that cross 32 °C first capped to 50 %.</summary>
    public const string CapLoad = "cap_load";

    /// <summary>Half the load of those racks moved to the coolest.</summary>
    public const string MigrateLoad = "migrate_load";

    /// <summary>The named non-critical racks shut down.</summary>
    public const string ShedLoad = "shed_load";

    private static string Inv(FormattableString s) => s.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A measure an operator can take against a cooling stop, and how it changes a forecast.</summary>
    internal sealed record Mitigation(string Action, IReadOnlyList<string> Targets, string Description, Action<ForecastActions> Apply);

    /// <summary>Every one of <paramref name="measures"/> at once (<see cref="AllMeasures"/>), on the union of their targets.</summary>
    internal static Mitigation Together(IReadOnlyList<Mitigation> measures, string description) =>
        new(AllMeasures, [.. measures.SelectMany(m => m.Targets).Distinct(StringComparer.Ordinal)], description, a =>
        {
            foreach (var m in measures)
            {
                m.Apply(a);
            }
        });

    /// <summary>
    /// The measures against the stop of <paramref name="stoppedUnits"/>, their racks chosen from <paramref name="reference"/>
    /// (the forecast without measures): the racks that cross 32 °C first (else the hottest) are capped or relieved, the
    /// coolest take load moved to them.
    /// </summary>
    internal static List<Mitigation> Mitigations(ZoneThermalModel model, ZoneFrame now, IReadOnlyList<string> stoppedUnits, ZoneForecast reference, IReadOnlyList<string> nonCriticalRacks)
    {
        var zone = model.Zone;
        var s = model.Settings;
        var candidates = new List<Mitigation>();
        var remaining = Enumerable.Range(0, zone.Units.Count).Where(j => now.UnitRunning[j] && !stoppedUnits.Contains(zone.Units[j].Id)).ToList();
        if (remaining.Count > 0)
        {
            var ids = remaining.Select(j => zone.Units[j].Id).ToList();
            candidates.Add(new(RaiseFansLowerSetpoints, ids, $"set the remaining units ({string.Join(", ", ids)}) to 100 % fan speed and lower their supply set point by 3 K (not below {s.MinSupplySetpointC:0} °C)", a =>
            {
                foreach (var j in remaining)
                {
                    a.FanSpeed[j] = 1;
                    a.SetpointC[j] = Math.Max(s.MinSupplySetpointC, model.UnitSetpointC[j] - 3);
                }
            }));
        }

        candidates.Add(new(OpenContainment, [zone.Id], $"open doors and containment of {zone.Id} to the neighbouring space (assumed {s.OpenDoorsUaKwPerK:0.0} kW/K at {model.OutsideC:0} °C)", a => a.ExtraUaKwPerK = s.OpenDoorsUaKwPerK));

        // The racks that cross 32 °C first carry the cap/migrate steps.
        var hottest = reference.Racks.Where(r => r.SecondsTo32 is not null).OrderBy(r => r.SecondsTo32).Take(5).Select(r => zone.RackIndex(r.Rack)).ToList();
        if (hottest.Count == 0)
        {
            hottest = [.. reference.Racks.OrderByDescending(r => r.PeakInletC).Take(3).Select(r => zone.RackIndex(r.Rack))];
        }

        var hotIds = hottest.Select(i => zone.Racks[i].Id).ToList();
        candidates.Add(new(CapLoad, hotIds, $"cap the IT load of {string.Join(", ", hotIds)} to 50 %", a =>
        {
            foreach (var i in hottest)
            {
                a.RackPowerScale[i] = 0.5;
            }
        }));

        var coolest = reference.Racks.Where(r => r.SecondsTo32 is null).OrderBy(r => r.PeakInletC).Take(Math.Max(1, hottest.Count)).Select(r => zone.RackIndex(r.Rack)).ToList();
        if (coolest.Count > 0)
        {
            var coolIds = coolest.Select(i => zone.Racks[i].Id).ToList();
            candidates.Add(new(MigrateLoad, [.. hotIds.Concat(coolIds)], $"migrate half the load of {string.Join(", ", hotIds)} to {string.Join(", ", coolIds)}", a =>
            {
                var moved = 0.0;
                foreach (var i in hottest)
                {
                    moved += 0.5 * LoadWhenTaken(model, now, i, a);
                    a.RackPowerScale[i] = 0.5;
                }

                foreach (var i in coolest)
                {
                    a.RackExtraKw[i] += moved / coolest.Count;
                }
            }));
        }

        var shed = nonCriticalRacks.Select(zone.RackIndex).Where(i => i >= 0).ToList();
        if (shed.Count > 0)
        {
            var shedIds = shed.Select(i => zone.Racks[i].Id).ToList();
            candidates.Add(new(ShedLoad, shedIds, $"shut down the non-critical load on {string.Join(", ", shedIds)}", a =>
            {
                foreach (var i in shed)
                {
                    a.RackPowerScale[i] = 0;
                }
            }));
        }

        return candidates;
    }

    /// <summary>
    /// A rack's load when a measure is taken: the present one, or, for a measure taken later on a forecast that follows
    /// the daily profile, the profile's then with the present deviation faded as the forecast fades it — load migrated at
    /// a night-time stop is half of what the rack carries at night, not of its afternoon load.
    /// </summary>
    internal static double LoadWhenTaken(ZoneThermalModel model, ZoneFrame now, int rack, ForecastActions actions)
    {
        var present = model.RackKw(now, rack);
        if (actions.ActionsFrom <= TimeSpan.Zero || !actions.FollowLoadProfile || !model.HasLoadProfile || model.RackLoadMeanKw[rack] <= 0 || double.IsNaN(now.RackPowerKw[rack]))
        {
            return present;
        }

        var fade = Math.Exp(-actions.ActionsFrom.TotalSeconds / Math.Max(1, model.LoadNoiseTauSeconds));
        var deviation = present - model.ProfileKw(rack, now.TimeSeconds);
        return Math.Max(0, model.ProfileKw(rack, now.TimeSeconds + actions.ActionsFrom.TotalSeconds) + (deviation * fade));
    }

    private static double? Round(double? seconds) => seconds is { } v ? Math.Round(v, 1) : null;
}
