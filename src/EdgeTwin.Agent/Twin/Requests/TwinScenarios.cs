using System.Text.Json;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Capacity;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Agent.Twin.Requests;

/// <summary>
/// The what-ifs and the optimiser on a <see cref="SiteTwin"/>, and their JSON, shared by the <c>simulate</c>/<c>optimize</c>
/// commands (<c>--json</c>) and the MQTT request server, so a central twin gets byte for byte what a script gets. Unknown
/// units, racks, zones or feeds throw <see cref="ArgumentException"/> naming them.
/// </summary>
internal static class TwinScenarios
{
    /// <summary>Bounds of <c>horizon_min</c> (<c>--horizon-min</c>): a week is far beyond any thermal forecast.</summary>
    public const double MinHorizonMin = 1, MaxHorizonMin = 7 * 24 * 60;

    /// <summary>
    /// Bounds of the optimiser's <c>margin</c> (<c>--margin</c>) below the 27 °C inlet limit: a negative margin advised
    /// set points with inlets above the limit, one beyond 20 K a limit below any supply air.
    /// </summary>
    public const double MinMarginK = 0, MaxMarginK = 20;

    /// <summary>Shortest spacing of the start times a <c>cooling_maintenance_window</c> tries (<c>step_min</c>, <c>--step-min</c>).</summary>
    public const double MinWindowStepMin = 5;

    /// <summary>Why starts every <paramref name="stepMin"/> within <paramref name="withinHours"/> are too many to try; null: they are not.</summary>
    public static string? TooManyStarts(double stepMin, double withinHours)
    {
        var count = Math.Floor((withinHours * 60 / stepMin) + 1e-9) + 1;
        return count > CoolingWindowOptions.MaxCandidates
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{stepMin:0.#} within {withinHours:0.#} h is {count:0} start times, more than {CoolingWindowOptions.MaxCandidates}: take a longer step")
            : null;
    }

    /// <summary>Largest rack load (<c>kw</c>) and load change (<c>delta_kw</c>, either way) a what-if takes: a megawatt rack is a typo.</summary>
    public const double MaxRackKw = 1000;

    /// <summary>
    /// The sentence of a scenario's <see cref="ArgumentException"/> without .NET's " (Parameter 'elementId')" suffix,
    /// which named a C# parameter to the person at the terminal and to the centre.
    /// </summary>
    public static string Reason(ArgumentException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.ParamName is { } p ? e.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : e.Message;
    }

    /// <summary>Splits repeated and comma-separated ids (<c>--unit A --unit B,C</c>) into one list.</summary>
    public static IReadOnlyList<string> Ids(IEnumerable<string>? values) =>
        [.. (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];

    /// <summary>
    /// <c>cooling_failure</c>: one result per zone holding a failed unit. <paramref name="leadMinutes"/> overrides, by action,
    /// the site's time from decision to effect of a mitigation (<see cref="SiteTwin.MitigationLeads"/>).
    /// </summary>
    public static IReadOnlyList<CoolingFailureResult> CoolingFailure(SiteTwin twin, IReadOnlyList<string> units, double horizonMin, IReadOnlyList<string> nonCritical, IReadOnlyDictionary<string, double>? leadMinutes = null)
    {
        ArgumentNullException.ThrowIfNull(twin);
        var leads = new Dictionary<string, TimeSpan>(twin.MitigationLeads, StringComparer.Ordinal);
        foreach (var (action, minutes) in leadMinutes ?? new Dictionary<string, double>())
        {
            leads[action] = TimeSpan.FromMinutes(minutes);
        }

        return [.. UnitsByZone(twin, units, CoolingFailureScenario.Name).Select(x => CoolingFailureScenario.Run(twin.Zones[x.Zone], twin.Now[x.Zone], new CoolingFailureOptions
        {
            FailedUnits = x.Units,
            Horizon = TimeSpan.FromMinutes(Math.Max(1, horizonMin)),
            NonCriticalRacks = nonCritical,
            MeasureLeads = leads,
        }))];
    }

    /// <summary>Why a mitigation's lead (minutes) cannot be taken, or null: an action of the plan, 0 to 120 min.</summary>
    public static string? LeadProblem(string action, double minutes) =>
        !CoolingFailureOptions.MeasureActions.Contains(action, StringComparer.Ordinal)
            ? $"unknown mitigation '{action}' (known: {string.Join(", ", CoolingFailureOptions.MeasureActions)})"
            : !double.IsFinite(minutes) || minutes < 0 || minutes > CoolingFailureOptions.MaxMeasureLead.TotalMinutes
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{action}: {minutes} min is outside 0..{CoolingFailureOptions.MaxMeasureLead.TotalMinutes}")
                : null;

    /// <summary><c>cooling_maintenance_window</c>: one result per zone holding a named unit (its units stop together).</summary>
    public static IReadOnlyList<CoolingWindowResult> CoolingWindow(SiteTwin twin, IReadOnlyList<string> units, double minutes, double stepMin, double withinHours, IReadOnlyList<string>? nonCritical = null, double? precoolMin = null) =>
        [.. UnitsByZone(twin, units, CoolingMaintenanceWindow.Name).Select(x => CoolingMaintenanceWindow.Run(twin.Zones[x.Zone], twin.Now[x.Zone], new CoolingWindowOptions
        {
            Units = x.Units,
            Outage = TimeSpan.FromMinutes(minutes),
            Step = TimeSpan.FromMinutes(stepMin),
            Within = TimeSpan.FromHours(withinHours),
            NonCriticalRacks = nonCritical ?? [],
            PrecoolLead = precoolMin is { } m ? TimeSpan.FromMinutes(m) : CoolingWindowOptions.DefaultPrecoolLead,
        }))];

    /// <summary>The named cooling units grouped by the zone that holds them; none, or an unknown one, is refused naming them.</summary>
    private static List<(int Zone, IReadOnlyList<string> Units)> UnitsByZone(SiteTwin twin, IReadOnlyList<string> units, string scenario)
    {
        ArgumentNullException.ThrowIfNull(twin);
        if (units.Count == 0)
        {
            throw new ArgumentException($"{scenario}: no cooling unit given");
        }

        var unknown = units.Where(u => twin.FindUnit(u) < 0).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"{scenario}: unknown cooling unit(s) {string.Join(", ", unknown)} (known: {string.Join(", ", twin.Zones.SelectMany(z => z.Zone.Units).Select(u => u.Id))})");
        }

        return units.Select(twin.FindUnit).Distinct().Select(z => (z, (IReadOnlyList<string>)[.. units.Where(u => twin.FindUnit(u) == z)])).ToList();
    }

    /// <summary><c>optimize_cooling</c>: one advisory recommendation per zone.</summary>
    public static IReadOnlyList<CoolingRecommendation> OptimizeCooling(SiteTwin twin, double marginK) =>
        [.. twin.Zones.Select((z, k) => CoolingOptimiser.Optimise(z, twin.Now[k], marginK))];

    /// <summary><c>capacity</c>: power and cooling days to exhaustion per zone from <paramref name="frames"/> (per zone).</summary>
    public static IReadOnlyList<ZoneCapacity> Capacity(SiteTwin twin, IReadOnlyList<IReadOnlyList<ZoneFrame>> frames, double confidence) =>
        CapacityForecast.ForSite(twin.Site, [.. twin.Zones.Select(z => z.Zone)], frames, confidence, twin.Readings);

    /// <summary>A per-zone result as the commands print it: the object itself for one zone, an array for several.</summary>
    public static string PerZoneJson<T>(IReadOnlyList<T> results) =>
        JsonSerializer.Serialize(results.Count == 1 ? results[0] : (object)results, TwinCliSource.Json);

    /// <summary>Any other result (capacity what-ifs, the capacity forecast's list).</summary>
    public static string Json<T>(T result) => JsonSerializer.Serialize(result, TwinCliSource.Json);
}
