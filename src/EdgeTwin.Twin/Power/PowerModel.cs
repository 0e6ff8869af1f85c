using System.Globalization;
using System.Text.Json.Serialization;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Twin.Power;

/// <summary>Measured power state: rack loads, and where telemetry has them, PDU phase currents and UPS battery figures.</summary>
public sealed class PowerReadings
{
    /// <summary>IT load of each rack (kW).</summary>
    public Dictionary<string, double> RackKw { get; } = new(StringComparer.Ordinal);

    /// <summary>Measured phase currents of a PDU (A), when its device reports them.</summary>
    public Dictionary<string, double[]> PduPhaseCurrentA { get; } = new(StringComparer.Ordinal);

    /// <summary>Battery state of a UPS.</summary>
    public Dictionary<string, UpsBattery> UpsBatteries { get; } = new(StringComparer.Ordinal);

    /// <summary>Seconds between a rack's last power reading and the latest reading of the site, where known.</summary>
    public Dictionary<string, double> RackReadingAgeS { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// What the figures rest on besides measurements: a rack without a usable power reading counted at its budget, a
    /// PDU's phase currents that could not be used. Empty: every rack load is measured.
    /// </summary>
    public List<string> Assumptions { get; } = [];
}

/// <param name="ChargePercent">Battery charge 0..100, NaN when unknown.</param>
/// <param name="RuntimeMinutes">Runtime the UPS reports at <paramref name="AtLoadKw"/>, NaN when unknown.</param>
/// <param name="AtLoadKw">Load at which the runtime was reported (its output), NaN when unknown.</param>
/// <param name="BatteryKwh">Usable battery energy when full, NaN when unknown.</param>
public sealed record UpsBattery(double ChargePercent, double RuntimeMinutes, double AtLoadKw, double BatteryKwh = double.NaN);

/// <summary>One element of the chain (feed/PDU or UPS) against its rating.</summary>
public sealed record PowerElementLoad(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("load_kw")] double LoadKw,
    [property: JsonPropertyName("rating_kw")] double RatingKw,
    [property: JsonPropertyName("derated_kw")] double DeratedKw,
    [property: JsonPropertyName("load_percent_of_derated")] double LoadPercentOfDerated,
    [property: JsonPropertyName("max_phase_current_a")] double? MaxPhaseCurrentA,
    [property: JsonPropertyName("phase_imbalance_percent")] double? PhaseImbalancePercent,
    [property: JsonPropertyName("worst_case_load_kw")] double WorstCaseLoadKw,
    [property: JsonPropertyName("worst_case_failure")] string? WorstCaseFailure,
    [property: JsonPropertyName("survives_single_failure")] bool SurvivesSingleFailure,
    [property: JsonPropertyName("ups_runtime_min")] double? UpsRuntimeMinutes,
    [property: JsonPropertyName("usable_kw")] double UsableKw,
    [property: JsonPropertyName("limiting_phase")] int? LimitingPhase,
    [property: JsonPropertyName("limit")] string Limit);

public sealed record RackRedundancy(
    [property: JsonPropertyName("rack")] string Rack,
    [property: JsonPropertyName("feeds")] IReadOnlyList<string> Feeds,
    [property: JsonPropertyName("redundancy")] string Redundancy,
    [property: JsonPropertyName("survives_feed_loss")] bool SurvivesFeedLoss);

public sealed record PowerAssessment(
    [property: JsonPropertyName("elements")] IReadOnlyList<PowerElementLoad> Elements,
    [property: JsonPropertyName("racks")] IReadOnlyList<RackRedundancy> Racks,
    [property: JsonPropertyName("headroom_kw")] double HeadroomKw,
    [property: JsonPropertyName("headroom_redundant_kw")] double HeadroomRedundantKw,
    [property: JsonPropertyName("binding_element")] string? BindingElement,
    [property: JsonPropertyName("binding_element_redundant")] string? BindingElementRedundant,
    [property: JsonPropertyName("assumptions")] IReadOnlyList<string> Assumptions);

/// <summary>
/// The power chain twin: UPS → PDU (rack feed, with its breaker) → rack. A rack's load is shared evenly by its live
/// feeds; a PDU carries its share of each rack it feeds; a UPS carries its PDUs. Every element is held to 80 % of its
/// rating (the continuous-load derating of breakers, NEC 210.19/IEC practice). Redundancy: for every single failure of a
/// PDU or UPS the loads are re-distributed over what remains and every survivor is checked against its derated rating.
/// </summary>
public sealed class PowerModel
{
    public const double ContinuousDerating = 0.8;
    public const double DefaultPowerFactor = 0.95;

    private readonly Dictionary<string, PduConfig> _pdus;
    private readonly Dictionary<string, UpsConfig> _upses;
    private readonly Dictionary<string, RackConfig> _racks;

    public PowerModel(SiteTopology site, double powerFactor = DefaultPowerFactor)
    {
        ArgumentNullException.ThrowIfNull(site);
        Site = site;
        PowerFactor = powerFactor;
        _pdus = site.Power.Pdus.ToDictionary(p => p.Id, StringComparer.Ordinal);
        _upses = site.Power.Ups.ToDictionary(u => u.Id, StringComparer.Ordinal);
        _racks = site.AllRacks.ToDictionary(r => r.Id, StringComparer.Ordinal);
    }

    public SiteTopology Site { get; }

    public double PowerFactor { get; }

    /// <summary>Rated real power of a feed: breaker × voltage × phases × power factor (kW).</summary>
    public double PduRatingKw(PduConfig pdu)
    {
        ArgumentNullException.ThrowIfNull(pdu);
        return pdu.BreakerA * pdu.VoltageV * pdu.Phases * PowerFactor / 1000;
    }

    /// <summary>Loads of every PDU and UPS for rack loads <paramref name="rackKw"/> with the given elements failed.</summary>
    public (Dictionary<string, double> Pdu, Dictionary<string, double> Ups, List<string> Unpowered) Distribute(IReadOnlyDictionary<string, double> rackKw, IReadOnlySet<string>? failed = null)
    {
        ArgumentNullException.ThrowIfNull(rackKw);
        var pduLoad = _pdus.Keys.ToDictionary(k => k, _ => 0.0, StringComparer.Ordinal);
        var upsLoad = _upses.Keys.ToDictionary(k => k, _ => 0.0, StringComparer.Ordinal);
        var unpowered = new List<string>();
        foreach (var (rackId, kw) in rackKw)
        {
            if (!_racks.TryGetValue(rackId, out var rack))
            {
                continue;
            }

            var live = rack.Feeds.Where(f => _pdus.TryGetValue(f, out var p) && Live(p, failed)).ToList();
            if (live.Count == 0)
            {
                if (rack.Feeds.Count > 0 || failed is { Count: > 0 })
                {
                    unpowered.Add(rackId);
                }

                continue;
            }

            foreach (var f in live)
            {
                pduLoad[f] += kw / live.Count;
            }
        }

        foreach (var (id, load) in pduLoad)
        {
            if (_pdus[id].Upstream is { } ups && upsLoad.ContainsKey(ups))
            {
                upsLoad[ups] += load;
            }
        }

        return (pduLoad, upsLoad, unpowered);
    }

    /// <summary>Full assessment: loads vs derated ratings, phase balance, single-failure redundancy, UPS runtime, headroom.</summary>
    public PowerAssessment Assess(PowerReadings readings)
    {
        ArgumentNullException.ThrowIfNull(readings);
        var normal = Distribute(readings.RackKw);
        var failures = _pdus.Keys.Concat(_upses.Keys).ToList();
        var worst = new Dictionary<string, (double Kw, string? By)>(StringComparer.Ordinal);
        var survivesAll = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var id in _pdus.Keys.Concat(_upses.Keys))
        {
            worst[id] = (_pdus.ContainsKey(id) ? normal.Pdu[id] : normal.Ups[id], null);
        }

        var unpoweredBy = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var failure in failures)
        {
            var after = Distribute(readings.RackKw, new HashSet<string>(StringComparer.Ordinal) { failure });
            unpoweredBy[failure] = after.Unpowered;
            foreach (var (id, kw) in after.Pdu.Concat(after.Ups))
            {
                if (id != failure && kw > worst[id].Kw)
                {
                    worst[id] = (kw, failure);
                }
            }
        }

        var elements = new List<PowerElementLoad>();
        var assumptions = new List<string>(readings.Assumptions);
        var usable = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var pdu in _pdus.Values)
        {
            var rating = PduRatingKw(pdu);
            var derated = ContinuousDerating * rating;
            double? maxPhase = null, imbalance = null;
            int? limiting = null;
            var phaseSum = 0.0;
            var use = derated;
            if (readings.PduPhaseCurrentA.TryGetValue(pdu.Id, out var phases) && phases.Length > 0)
            {
                if (phases.Any(a => !double.IsFinite(a) || a < 0 || a > 10 * pdu.BreakerA))
                {
                    // A negative, NaN or absurd current says nothing about the balance: check without it, and say so.
                    assumptions.Add(string.Create(CultureInfo.InvariantCulture, $"{pdu.Id}: phase currents {string.Join(" / ", phases.Select(a => a.ToString("0.##", CultureInfo.InvariantCulture)))} A are not usable (negative, NaN or above 10 × its {pdu.BreakerA:0.#} A breaker); phase balance not checked, load assumed balanced"));
                }
                else
                {
                    maxPhase = phases.Max();
                    var sum = phaseSum = phases.Sum();
                    var mean = sum / phases.Length;
                    imbalance = phases.Length > 1 && mean > 0 ? (phases.Max() - phases.Min()) / mean * 100 : 0;
                    if (phases.Length > 1 && maxPhase > 0)
                    {
                        // The most loaded phase reaches its 80 % first: with the load keeping its measured split, the
                        // feed is full when that phase is, i.e. at derated × mean/max of its three-phase rating.
                        var phaseLimited = derated * sum / (phases.Length * maxPhase.Value);
                        if (phaseLimited < derated - 1e-9)
                        {
                            use = phaseLimited;
                            limiting = Array.IndexOf(phases, maxPhase.Value) + 1;
                        }
                    }
                }
            }

            usable[pdu.Id] = use;
            var phaseOk = maxPhase is null || maxPhase <= ContinuousDerating * pdu.BreakerA;
            var limit = string.Create(CultureInfo.InvariantCulture, $"{pdu.BreakerA:0.#} A breaker × {pdu.VoltageV:0.#} V × {pdu.Phases} phase{(pdu.Phases > 1 ? "s" : "")} × PF {PowerFactor:0.00} = {rating:0.00} kW, 80 % = {derated:0.00} kW")
                + (limiting is { } l ? string.Create(CultureInfo.InvariantCulture, $"; phase L{l} carries {maxPhase!.Value / phaseSum * 100:0}% of the load ({maxPhase:0.0} A of {phaseSum:0.0} A), so it is full at {use:0.00} kW") : "");
            elements.Add(Element(pdu.Id, "pdu", normal.Pdu[pdu.Id], rating, use, limiting, limit, worst[pdu.Id], null, phaseOk, maxPhase, imbalance));
        }

        foreach (var ups in _upses.Values)
        {
            var limit = string.Create(CultureInfo.InvariantCulture, $"UPS {ups.CapacityKw:0.#} kW, 80 % = {ContinuousDerating * ups.CapacityKw:0.00} kW");
            elements.Add(Element(ups.Id, "ups", normal.Ups[ups.Id], ups.CapacityKw, ContinuousDerating * ups.CapacityKw, null, limit, worst[ups.Id], Runtime(ups.Id, normal.Ups[ups.Id], readings), true, null, null));
        }

        var racks = new List<RackRedundancy>();
        foreach (var rack in _racks.Values)
        {
            var feeds = rack.Feeds.Where(_pdus.ContainsKey).ToList();
            var sources = feeds.Select(f => _pdus[f].Upstream ?? "utility:" + f).Distinct(StringComparer.Ordinal).Count();
            var mode = feeds.Count <= 1 ? "N" : sources >= feeds.Count ? "2N" : "N+1";
            var survives = feeds.Count > 1 && failures.All(f => !unpoweredBy[f].Contains(rack.Id, StringComparer.Ordinal)
                && feeds.Where(p => p != f).All(p => worst[p].Kw <= usable[p] + 1e-9));
            racks.Add(new RackRedundancy(rack.Id, feeds, mode, survives));
        }

        var (headroom, binding) = Headroom(elements, e => e.LoadKw);
        var (redundant, bindingRedundant) = Headroom(elements, e => e.WorstCaseLoadKw);
        return new PowerAssessment(elements, racks, headroom, redundant, binding, bindingRedundant, assumptions);
    }

    /// <summary>
    /// Minutes a UPS battery carries <paramref name="loadKw"/>: from its energy and charge when known (95 % inverter
    /// efficiency), else scaled from the runtime it reports at its present load with a Peukert-like exponent of 1.1.
    /// </summary>
    public static double? RuntimeMinutes(UpsBattery battery, double loadKw)
    {
        ArgumentNullException.ThrowIfNull(battery);
        if (loadKw <= 0.01)
        {
            return null;
        }

        if (!double.IsNaN(battery.BatteryKwh))
        {
            var charge = double.IsNaN(battery.ChargePercent) ? 100 : battery.ChargePercent;
            return battery.BatteryKwh * charge / 100 * 0.95 / loadKw * 60;
        }

        if (!double.IsNaN(battery.RuntimeMinutes) && !double.IsNaN(battery.AtLoadKw) && battery.AtLoadKw > 0.01)
        {
            return battery.RuntimeMinutes * Math.Pow(battery.AtLoadKw / loadKw, 1.1);
        }

        return null;
    }

    private static double? Runtime(string ups, double loadKw, PowerReadings readings) =>
        readings.UpsBatteries.TryGetValue(ups, out var b) ? RuntimeMinutes(b, loadKw) is { } m ? Math.Round(m, 1) : null : null;

    private static PowerElementLoad Element(string id, string kind, double load, double rating, double usable, int? limitingPhase, string limit, (double Kw, string? By) worst, double? runtime, bool phaseOk, double? maxPhase, double? imbalance)
    {
        var derated = ContinuousDerating * rating;
        return new PowerElementLoad(
            id,
            kind,
            Math.Round(load, 3),
            Math.Round(rating, 3),
            Math.Round(derated, 3),
            derated > 0 ? Math.Round(load / derated * 100, 1) : double.PositiveInfinity,
            maxPhase is { } m ? Math.Round(m, 2) : null,
            imbalance is { } i ? Math.Round(i, 1) : null,
            Math.Round(worst.Kw, 3),
            worst.By,
            phaseOk && worst.Kw <= usable + 1e-9,
            runtime,
            Math.Round(usable, 3),
            limitingPhase,
            limit);
    }

    private static (double Kw, string? Binding) Headroom(List<PowerElementLoad> elements, Func<PowerElementLoad, double> load)
    {
        var min = double.PositiveInfinity;
        string? binding = null;
        foreach (var e in elements)
        {
            var h = e.UsableKw - load(e);
            if (h < min)
            {
                min = h;
                binding = e.Id;
            }
        }

        return (double.IsPositiveInfinity(min) ? 0 : Math.Round(min, 3), binding);
    }

    private bool Live(PduConfig pdu, IReadOnlySet<string>? failed) =>
        failed is null || (!failed.Contains(pdu.Id) && (pdu.Upstream is null || !failed.Contains(pdu.Upstream)));
}
