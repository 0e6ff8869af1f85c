using System.Globalization;
using System.Text.Json.Serialization;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Power;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Scenarios;

public sealed record RackInletChange(
    [property: JsonPropertyName("rack")] string Rack,
    [property: JsonPropertyName("inlet_before_c")] double InletBeforeC,
    [property: JsonPropertyName("inlet_after_c")] double InletAfterC);

/// <summary>Predicted steady-state inlets (after an hour) of the changed rack and its neighbours.</summary>
public sealed record ThermalImpact(
    [property: JsonPropertyName("zone")] string Zone,
    [property: JsonPropertyName("max_inlet_before_c")] double MaxInletBeforeC,
    [property: JsonPropertyName("max_inlet_after_c")] double MaxInletAfterC,
    [property: JsonPropertyName("hottest_rack_after")] string HottestRackAfter,
    [property: JsonPropertyName("racks")] IReadOnlyList<RackInletChange> Racks)
{
    /// <summary>The zone's server shutdown inlet: a steady inlet at or above it means the rack cannot run there.</summary>
    [JsonIgnore]
    public double ShutdownInletC { get; init; } = double.PositiveInfinity;

    /// <summary>"thermal: hottest inlet 29.4 °C at NEW (limit 27 °C)", or "thermal: NEW's inlet reaches the 40 °C shutdown inlet (limit 27 °C): its servers would shut down".</summary>
    public string Text(double limitC) => MaxInletAfterC >= ShutdownInletC - 1e-9
        ? string.Create(CultureInfo.InvariantCulture, $"thermal: {HottestRackAfter}'s inlet reaches the {ShutdownInletC:0} °C shutdown inlet (limit {limitC:0} °C): its servers would shut down")
        : string.Create(CultureInfo.InvariantCulture, $"thermal: hottest inlet {MaxInletAfterC:0.0} °C at {HottestRackAfter} (limit {limitC:0} °C)");
}

public sealed record PowerHeadroom(
    [property: JsonPropertyName("headroom_kw")] double HeadroomKw,
    [property: JsonPropertyName("headroom_redundant_kw")] double HeadroomRedundantKw,
    [property: JsonPropertyName("binding_element")] string? BindingElement,
    [property: JsonPropertyName("binding_element_redundant")] string? BindingElementRedundant,
    [property: JsonPropertyName("unpowered_racks")] IReadOnlyList<string> UnpoweredRacks,
    [property: JsonPropertyName("elements")] IReadOnlyList<PowerElementLoad> Elements);

/// <summary>Cooling capacity of the zone against its heat load, with all units and with the largest unit out (N+1).</summary>
public sealed record CoolingSufficiency(
    [property: JsonPropertyName("sufficient")] bool Sufficient,
    [property: JsonPropertyName("sufficient_n_plus_1")] bool SufficientNPlus1,
    [property: JsonPropertyName("heat_load_kw")] double HeatLoadKw,
    [property: JsonPropertyName("capacity_kw")] double CapacityKw,
    [property: JsonPropertyName("capacity_n_plus_1_kw")] double CapacityNPlus1Kw,
    [property: JsonPropertyName("headroom_n_plus_1_kw")] double HeadroomNPlus1Kw)
{
    /// <summary>The unit N+1 assumes out (the largest), null for a zone without units.</summary>
    [JsonPropertyName("largest_unit")]
    public string? LargestUnit { get; init; }

    /// <summary>Of <see cref="HeatLoadKw"/>, the units' own fan heat (the rest is the racks' IT load).</summary>
    [JsonPropertyName("fan_heat_kw")]
    public double FanHeatKw { get; init; }

    /// <summary>
    /// N+1 headroom before the change (null when the scenario adds no heat): a room already short says so, so the
    /// answer tells a rack that breaks N+1 from a room that had none left.
    /// </summary>
    [JsonPropertyName("headroom_n_plus_1_before_kw")]
    public double? HeadroomNPlus1BeforeKw { get; init; }

    /// <summary>"cooling N+1: heat 19.9 kW (IT 18.0 + fans 1.9) against 15.0 kW with crac-1 (15.0 kW) out: 4.9 kW short (0.8 kW short already before the change)".</summary>
    public string Text()
    {
        // "already" when the change makes it worse; a load reduction in a short room is "short before the change".
        var before = HeadroomNPlus1BeforeKw is < 0 and var b
            ? string.Create(CultureInfo.InvariantCulture, $" ({-b:0.0} kW short {(HeadroomNPlus1Kw <= b ? "already " : "")}before the change)")
            : "";
        return string.Create(
            CultureInfo.InvariantCulture,
            $"cooling N+1: heat {HeatLoadKw:0.0} kW (IT {HeatLoadKw - FanHeatKw:0.0} + fans {FanHeatKw:0.0}) against {CapacityNPlus1Kw:0.0} kW with {(LargestUnit is null ? "the largest unit" : LargestUnit)} ({CapacityKw - CapacityNPlus1Kw:0.0} kW) out: {Math.Abs(HeadroomNPlus1Kw):0.0} kW {(HeadroomNPlus1Kw < 0 ? "short" : "to spare")}{before}");
    }
}

public sealed record Placement(
    [property: JsonPropertyName("zone")] string Zone,
    [property: JsonPropertyName("row")] string Row,
    [property: JsonPropertyName("next_to")] string NextTo,
    [property: JsonPropertyName("feeds")] IReadOnlyList<string> Feeds);

/// <summary>The common shape of <c>add_rack</c>, <c>load_change</c> and <c>feed_failure</c>.</summary>
public sealed record CapacityScenarioResult(
    [property: JsonPropertyName("scenario")] string Scenario,
    [property: JsonPropertyName("verdict")] string Verdict,
    [property: JsonPropertyName("binding_constraint")] string BindingConstraint,
    [property: JsonPropertyName("thermal_impact")] ThermalImpact ThermalImpact,
    [property: JsonPropertyName("power_headroom")] PowerHeadroom PowerHeadroom,
    [property: JsonPropertyName("cooling_sufficient")] CoolingSufficiency CoolingSufficient,
    [property: JsonPropertyName("placement")] Placement? Placement,
    [property: JsonPropertyName("alternatives")] IReadOnlyList<Placement> Alternatives,
    [property: JsonPropertyName("power_data")] string PowerData,
    [property: JsonPropertyName("assumptions")] IReadOnlyList<string> Assumptions);

/// <summary>
/// Capacity what-ifs on the calibrated twin. The verdict is <c>ok</c> when the power chain keeps its derated headroom
/// (with redundancy: after any single feed/UPS failure), the zone's cooling covers its heat load with its largest unit
/// out (N+1), and every inlet stays at or below 27 °C; otherwise <c>not_ok</c>, naming the first constraint broken.
/// When all hold, the binding constraint is the one with the least margin.
/// </summary>
public static class CapacityScenarios
{
    private static readonly TimeSpan SteadyHorizon = TimeSpan.FromHours(1);

    /// <summary>
    /// <c>add_rack</c>: a rack of <paramref name="kw"/> placed next to <paramref name="nextTo"/>, or at the best place found
    /// (in <paramref name="zone"/> and <paramref name="row"/> when given: "row B of room 2").
    /// </summary>
    public static CapacityScenarioResult AddRack(SiteTwin twin, double kw, string? zone = null, string? nextTo = null, IReadOnlyList<string>? feeds = null, string newRackId = "NEW", string? row = null)
    {
        ArgumentNullException.ThrowIfNull(twin);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kw);
        var candidates = new List<(int Zone, int Rack)>();
        if (nextTo is not null)
        {
            var found = twin.FindRack(nextTo);
            if (found.Zone < 0)
            {
                throw new ArgumentException($"add_rack: no rack '{nextTo}' in the site", nameof(nextTo));
            }

            var rackRow = twin.Zones[found.Zone].Zone.Racks[found.Rack].Row;
            if (row is not null && !string.Equals(rackRow, row, StringComparison.Ordinal))
            {
                throw new ArgumentException($"add_rack: rack '{nextTo}' is in row {rackRow}, not row {row}", nameof(row));
            }

            candidates.Add(found);
        }
        else
        {
            var zones = zone is null ? Enumerable.Range(0, twin.Zones.Count).ToList() : [twin.ZoneIndex(zone)];
            if (zones.Contains(-1))
            {
                throw new ArgumentException($"add_rack: no zone '{zone}' (known: {string.Join(", ", twin.Zones.Select(z => z.Zone.Id))})", nameof(zone));
            }

            foreach (var z in zones)
            {
                var racks = twin.Zones[z].Zone.Racks;
                var inRow = Enumerable.Range(0, racks.Count).Where(i => row is null || string.Equals(racks[i].Row, row, StringComparison.Ordinal)).ToList();
                // At most 24 candidate places per zone, spread along the racks (of the row when one is given).
                var stride = Math.Max(1, (int)Math.Ceiling(inRow.Count / 24.0));
                for (var k = 0; k < inRow.Count; k += stride)
                {
                    candidates.Add((z, inRow[k]));
                }
            }

            if (row is not null && candidates.Count == 0)
            {
                // Name the rows there are, with their zone when the search spans several.
                var rows = zones.SelectMany(z => twin.Zones[z].Zone.Racks.Select(r => zone is null ? $"{twin.Zones[z].Zone.Id}/{r.Row}" : r.Row)).Distinct(StringComparer.Ordinal);
                throw new ArgumentException($"add_rack: no row '{row}' in {(zone is null ? "the site" : zone)} (rows: {string.Join(", ", rows)})", nameof(row));
            }
        }

        if (candidates.Count == 0)
        {
            throw new ArgumentException("add_rack: the site has no racks to place a new one next to", nameof(zone));
        }

        var results = candidates.Select(c => EvaluateAddRack(twin, kw, c.Zone, c.Rack, feeds, newRackId)).ToList();
        var ranked = results
            .OrderByDescending(r => r.Verdict == "ok")
            .ThenBy(r => r.ThermalImpact.MaxInletAfterC)
            .ThenByDescending(r => r.PowerHeadroom.HeadroomRedundantKw)
            .ToList();
        return ranked[0] with { Alternatives = [.. ranked.Skip(1).Take(4).Select(r => r.Placement!)] };
    }

    /// <summary><c>load_change</c>: rack <paramref name="rackId"/> draws <paramref name="deltaKw"/> more (negative: less).</summary>
    public static CapacityScenarioResult LoadChange(SiteTwin twin, string rackId, double deltaKw)
    {
        ArgumentNullException.ThrowIfNull(twin);
        var (z, i) = twin.FindRack(rackId);
        if (z < 0)
        {
            throw new ArgumentException($"load_change: no rack '{rackId}' in the site", nameof(rackId));
        }

        var model = twin.Zones[z];
        var actions = new ForecastActions(model) { Horizon = SteadyHorizon, ServersTrip = false };
        var rackKw = new Dictionary<string, double>(twin.Readings.RackKw, StringComparer.Ordinal);
        var present = rackKw.GetValueOrDefault(rackId);
        var frameKw = twin.Now[z].RackPowerKw[i];
        // A rack cannot draw less than nothing: a drop beyond its present load switches it off (it gave a negative heat
        // load and a rack cooling its own aisle). The thermal and cooling parts take the frame's kW, the power part the
        // power twin's, as they do for every other rack.
        List<string> notes = [];
        if (deltaKw < -present || (!double.IsNaN(frameKw) && deltaKw < -frameKw))
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"{rackId}: a change of {deltaKw:0.0} kW taken as {-present:0.0} kW, the rack switched off: it draws {present:0.0} kW now"));
        }

        if (!double.IsNaN(frameKw) && deltaKw <= -frameKw)
        {
            actions.RackPowerScale[i] = 0;
        }
        else
        {
            actions.RackExtraKw[i] = deltaKw;
        }

        rackKw[rackId] = Math.Max(0, present + deltaKw);
        var power = Headroom(twin.Power, rackKw, twin.Readings, PathOf(twin.Site, rackId));
        var thermal = Thermal(model, twin.Now[z], model, twin.Now[z], actions, [i]);
        var cooling = Cooling(model, twin.Now[z], double.IsNaN(frameKw) ? Math.Max(deltaKw, -present) : Math.Max(deltaKw, -frameKw));
        return Verdict("load_change", thermal, power, cooling, null, twin.Readings.Assumptions, notes: notes);
    }

    /// <summary><c>feed_failure</c>: the PDU or UPS <paramref name="elementId"/> fails; its load moves to the surviving feeds.</summary>
    public static CapacityScenarioResult FeedFailure(SiteTwin twin, string elementId)
    {
        ArgumentNullException.ThrowIfNull(twin);
        var known = twin.Site.Power.Pdus.Any(p => p.Id == elementId) || twin.Site.Power.Ups.Any(u => u.Id == elementId);
        if (!known)
        {
            throw new ArgumentException($"feed_failure: no PDU or UPS '{elementId}' in the power chain", nameof(elementId));
        }

        var failed = new HashSet<string>(StringComparer.Ordinal) { elementId };
        var after = twin.Power.Distribute(twin.Readings.RackKw, failed);
        var assessment = twin.Power.Assess(twin.Readings);
        var elements = assessment.Elements
            .Where(e => e.Id != elementId)
            .Select(e =>
            {
                var load = e.Kind == "pdu" ? after.Pdu[e.Id] : after.Ups[e.Id];
                // The failure is given: every survivor's load is its worst case, caused by this element.
                return e with
                {
                    LoadKw = Math.Round(load, 3),
                    LoadPercentOfDerated = Math.Round(load / e.DeratedKw * 100, 1),
                    WorstCaseLoadKw = Math.Round(load, 3),
                    WorstCaseFailure = elementId,
                    SurvivesSingleFailure = load <= e.UsableKw + 1e-9,
                };
            })
            .ToList();
        var tightest = elements.OrderBy(e => e.UsableKw - e.LoadKw).FirstOrDefault();
        var headroom = tightest is null ? 0 : Math.Round(tightest.UsableKw - tightest.LoadKw, 3);
        var power = new PowerHeadroom(headroom, headroom, tightest?.Id, tightest?.Id, after.Unpowered, [.. elements.Where(e => e.LoadKw > 0).OrderBy(e => e.UsableKw - e.LoadKw).Take(20)]);

        // Racks that lose every feed stop heating the room. The thermal and cooling parts are of the zone the failure
        // touches (they were always the first zone's: a PDU failing in room2 was answered with room1's inlets and units).
        var z = FailureZone(twin, elementId, after.Unpowered, tightest?.Id);
        var model = twin.Zones[z];
        var actions = new ForecastActions(model) { Horizon = SteadyHorizon, ServersTrip = false };
        var changed = new List<int>();
        foreach (var r in after.Unpowered)
        {
            var (rz, ri) = twin.FindRack(r);
            if (rz == z)
            {
                actions.RackPowerScale[ri] = 0;
                changed.Add(ri);
            }
        }

        var thermal = Thermal(model, twin.Now[z], model, twin.Now[z], actions, changed);
        var cooling = Cooling(model, twin.Now[z], 0);
        return Verdict("feed_failure", thermal, power, cooling, null, assessment.Assumptions, includeCooling: false, failed: elementId);
    }

    /// <summary>
    /// The zone a feed/UPS failure is answered for: that of the racks left without power, else of the racks on the
    /// tightest surviving element (where the failure binds), else of the racks the failed element fed; 0 for none.
    /// </summary>
    private static int FailureZone(SiteTwin twin, string failed, IReadOnlyList<string> unpowered, string? tightest)
    {
        foreach (var r in unpowered)
        {
            if (twin.FindRack(r).Zone is var uz and >= 0)
            {
                return uz;
            }
        }

        foreach (var element in new[] { tightest, failed })
        {
            if (element is null)
            {
                continue;
            }

            foreach (var rack in twin.Site.AllRacks)
            {
                var fed = rack.Feeds.Any(f => f == element
                    || twin.Site.Power.Pdus.Any(p => p.Id == f && p.Upstream == element));
                if (fed && twin.FindRack(rack.Id).Zone is var rz and >= 0)
                {
                    return rz;
                }
            }
        }

        return 0;
    }

    private static CapacityScenarioResult EvaluateAddRack(SiteTwin twin, double kw, int z, int like, IReadOnlyList<string>? feeds, string newRackId)
    {
        var model = twin.Zones[z];
        var neighbour = model.Zone.Racks[like];
        var rack = new ThermalRack(newRackId, neighbour.Row, neighbour.Position + 1, Math.Ceiling(kw * 1.2), neighbour.Servers);
        var grown = model.WithRack(rack, like);
        var frame = twin.Now[z].WithRack(kw);
        var actions = new ForecastActions(grown) { Horizon = SteadyHorizon, ServersTrip = false };

        // Power: the new rack on the given PDUs, or on new PDUs like its neighbour's (same UPSes, same breakers).
        var (site, newFeeds) = WithRack(twin.Site, neighbour.Id, newRackId, kw, feeds);
        var powerModel = new PowerModel(site);
        var rackKw = new Dictionary<string, double>(twin.Readings.RackKw, StringComparer.Ordinal) { [newRackId] = kw };
        var power = Headroom(powerModel, rackKw, twin.Readings, PathOf(site, newRackId));
        var baseline = new ForecastActions(model) { Horizon = SteadyHorizon, ServersTrip = false };
        var thermal = Thermal(model, twin.Now[z], grown, frame, actions, [like, grown.Zone.Racks.Count - 1], baseline);
        var cooling = Cooling(model, twin.Now[z], kw);
        // New PDUs have no phase readings: the new rack is taken as balanced over their phases; on existing PDUs it
        // follows their measured split (the phase it would be plugged into is not known).
        var placed = feeds is { Count: > 0 }
            ? $"{newRackId}: {kw.ToString("0.0", CultureInfo.InvariantCulture)} kW split evenly over {string.Join(", ", newFeeds)}, following each one's measured phase split where it has one"
            : $"{newRackId}: {kw.ToString("0.0", CultureInfo.InvariantCulture)} kW on new feeds {string.Join(", ", newFeeds)} rated like {neighbour.Id}'s, balanced over their phases";
        return Verdict("add_rack", thermal, power, cooling, new Placement(model.Zone.Id, neighbour.Row, neighbour.Id, newFeeds), twin.Readings.Assumptions, notes: [placed]);
    }

    private static (SiteTopology Site, IReadOnlyList<string> Feeds) WithRack(SiteTopology site, string nextTo, string newId, double kw, IReadOnlyList<string>? feeds)
    {
        var neighbour = site.AllRacks.First(r => r.Id == nextTo);
        var pdus = site.Power.Pdus.ToList();
        List<string> newFeeds;
        if (feeds is { Count: > 0 })
        {
            var unknown = feeds.Where(f => pdus.All(p => p.Id != f)).ToList();
            if (unknown.Count > 0)
            {
                throw new ArgumentException($"add_rack: unknown PDU(s) {string.Join(", ", unknown)}", nameof(feeds));
            }

            newFeeds = [.. feeds];
        }
        else
        {
            newFeeds = [];
            foreach (var f in neighbour.Feeds)
            {
                var like = pdus.FirstOrDefault(p => p.Id == f);
                if (like is null)
                {
                    continue;
                }

                var id = $"{newId.ToLowerInvariant()}-{newFeeds.Count + 1}";
                pdus.Add(like with { Id = id, Device = null });
                newFeeds.Add(id);
            }
        }

        var rooms = site.Rooms.Select(room => room with
        {
            Rows = [.. room.Rows.Select(row => row.Racks.Any(r => r.Id == nextTo)
                ? row with { Racks = [.. row.Racks, new RackConfig(newId, row.Racks.Max(r => r.Position) + 1, Math.Ceiling(kw * 1.2), newFeeds, neighbour.Servers)] }
                : row)],
        }).ToList();
        return (site with { Rooms = rooms, Power = site.Power with { Pdus = pdus } }, newFeeds);
    }

    /// <summary>The PDUs feeding a rack and the UPSes above them.</summary>
    private static HashSet<string> PathOf(SiteTopology site, string rackId)
    {
        var path = new HashSet<string>(StringComparer.Ordinal);
        var rack = site.AllRacks.FirstOrDefault(r => r.Id == rackId);
        if (rack is null)
        {
            return path;
        }

        foreach (var f in rack.Feeds)
        {
            path.Add(f);
            if (site.Power.Pdus.FirstOrDefault(p => p.Id == f)?.Upstream is { } ups)
            {
                path.Add(ups);
            }
        }

        return path;
    }

    private static PowerHeadroom Headroom(PowerModel model, Dictionary<string, double> rackKw, PowerReadings readings, HashSet<string> path)
    {
        var r = new PowerReadings();
        foreach (var (k, v) in rackKw)
        {
            r.RackKw[k] = v;
        }

        foreach (var (k, v) in readings.UpsBatteries)
        {
            r.UpsBatteries[k] = v;
        }

        // The measured phase split of each PDU limits it in the what-if as it does now (it was dropped here).
        foreach (var (k, v) in readings.PduPhaseCurrentA)
        {
            r.PduPhaseCurrentA[k] = v;
        }

        var assessment = model.Assess(r);
        var onPath = assessment.Elements.Where(e => path.Count == 0 || path.Contains(e.Id)).ToList();
        var min = onPath.OrderBy(e => e.UsableKw - e.LoadKw).FirstOrDefault();
        var minRedundant = onPath.OrderBy(e => e.UsableKw - e.WorstCaseLoadKw).FirstOrDefault();
        return new PowerHeadroom(
            min is null ? 0 : Math.Round(min.UsableKw - min.LoadKw, 3),
            minRedundant is null ? 0 : Math.Round(minRedundant.UsableKw - minRedundant.WorstCaseLoadKw, 3),
            min?.Id,
            minRedundant?.Id,
            [],
            onPath);
    }

    private static ThermalImpact Thermal(ZoneThermalModel before, ZoneFrame beforeFrame, ZoneThermalModel after, ZoneFrame afterFrame, ForecastActions actions, IReadOnlyList<int> changed, ForecastActions? baselineActions = null)
    {
        var baseline = ThermalForecast.Run(before, beforeFrame, baselineActions ?? new ForecastActions(before) { Horizon = SteadyHorizon, ServersTrip = false });
        var result = ThermalForecast.Run(after, afterFrame, actions);
        var zone = after.Zone;
        var show = new SortedSet<int>();
        foreach (var i in changed)
        {
            show.Add(i);
            var rack = zone.Racks[i];
            for (var k = 0; k < zone.Racks.Count; k++)
            {
                if (zone.Racks[k].Row == rack.Row && Math.Abs(zone.Racks[k].Position - rack.Position) <= 1)
                {
                    show.Add(k);
                }
            }
        }

        // With every server running a room short of cooling runs away (a 300 kW rack read 1731 °C): past the shutdown
        // inlet the figure only says the servers would shut down, so it is reported at that inlet.
        var shutdown = after.Settings.ShutdownInletC;
        double Inlet(RackForecast r) => Math.Round(Math.Min(r.FinalInletC, shutdown), 2);
        var rows = show.Select(i => new RackInletChange(
            zone.Racks[i].Id,
            i < baseline.Racks.Count ? Inlet(baseline.Racks[i]) : double.NaN,
            Inlet(result.Racks[i]))).ToList();
        var hottest = result.Racks.MaxBy(r => r.FinalInletC)!;
        return new ThermalImpact(zone.Id, baseline.Racks.Max(Inlet), Inlet(hottest), hottest.Rack, rows)
        {
            ShutdownInletC = shutdown,
        };
    }

    private static CoolingSufficiency Cooling(ZoneThermalModel model, ZoneFrame now, double extraKw)
    {
        var units = model.Zone.Units;
        var capacity = 0.0;
        var largest = 0.0;
        string? largestUnit = null;
        var fanHeat = 0.0;
        for (var j = 0; j < units.Count; j++)
        {
            capacity += units[j].CapacityKw;
            if (units[j].CapacityKw > largest)
            {
                (largest, largestUnit) = (units[j].CapacityKw, units[j].Id);
            }

            fanHeat += model.UnitFanKw[j];
        }

        var load = now.TotalPowerKw() + extraKw + fanHeat;
        var n1 = capacity - largest;
        return new CoolingSufficiency(load <= capacity, load <= n1, Math.Round(load, 2), capacity, n1, Math.Round(n1 - load, 2))
        {
            LargestUnit = largestUnit,
            FanHeatKw = Math.Round(fanHeat, 2),
            HeadroomNPlus1BeforeKw = extraKw == 0 ? null : Math.Round(n1 - (load - extraKw), 2),
        };
    }

    /// <summary>How every power figure is computed; stated with each answer so the engineer can redo it by hand.</summary>
    public const string PowerMethod = "power: each feed and UPS held to 80 % of its rating (continuous load); feed kW = breaker A × line-to-neutral V × phases × PF 0.95, lowered when a measured phase carries more than its share; a rack's load is split evenly over its live feeds and moves wholly to the survivors when one fails";

    /// <param name="includeCooling">False for a feed failure: it adds no heat, so the zone's N+1 cooling is reported but does not decide.</param>
    /// <param name="failed">The element a feed_failure takes out, named in the power texts.</param>
    /// <param name="notes">How the scenario itself was set up (stated, but no missing data).</param>
    private static CapacityScenarioResult Verdict(string scenario, ThermalImpact thermal, PowerHeadroom power, CoolingSufficiency cooling, Placement? placement, IReadOnlyList<string> dataAssumptions, bool includeCooling = true, string? failed = null, IReadOnlyList<string>? notes = null)
    {
        var limit = 27.0;
        var constraints = new List<(string Name, double Margin, string Text)>
        {
            ("power", power.HeadroomKw, PowerText(power, redundant: false, failed)),
            ("power_redundant", power.HeadroomRedundantKw, PowerText(power, redundant: true, failed)),
            ("cooling_n_plus_1", cooling.HeadroomNPlus1Kw, cooling.Text()),
            ("thermal", limit - thermal.MaxInletAfterC, thermal.Text(limit)),
        };
        if (!includeCooling)
        {
            constraints.RemoveAll(c => c.Name == "cooling_n_plus_1");
        }

        if (power.UnpoweredRacks.Count > 0)
        {
            constraints.Insert(0, ("unpowered", -1, $"power: racks without any live feed: {string.Join(", ", power.UnpoweredRacks)}"));
        }

        var broken = constraints.FirstOrDefault(c => c.Margin < 0);
        var binding = broken.Name is not null ? broken : constraints.OrderBy(c => c.Margin).First();
        return new CapacityScenarioResult(
            scenario,
            broken.Name is null ? "ok" : "not_ok",
            binding.Text,
            thermal,
            power,
            cooling,
            placement,
            [],
            dataAssumptions.Count == 0 ? "measured" : "partial",
            [PowerMethod, .. notes ?? [], .. dataAssumptions]);
    }

    /// <summary>"power: if pdu-a fails, pdu-b carries 6.0 kW of 5.6 kW usable, 0.4 kW over (32 A breaker × 230 V × …)".</summary>
    private static string PowerText(PowerHeadroom power, bool redundant, string? failed)
    {
        var id = redundant ? power.BindingElementRedundant : power.BindingElement;
        var headroom = redundant ? power.HeadroomRedundantKw : power.HeadroomKw;
        var name = redundant ? "power with redundancy" : "power";
        var e = power.Elements.FirstOrDefault(x => x.Id == id);
        if (e is null)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{name}: {headroom:0.0} kW headroom{(id is null ? "" : " at " + id)}");
        }

        var load = redundant ? e.WorstCaseLoadKw : e.LoadKw;
        var when = failed is not null ? $"with {failed} failed, "
            : redundant ? e.WorstCaseFailure is { } f ? $"if {f} fails, " : "no single failure adds load: "
            : "";
        // A margin under 0.1 kW reads "0.0 kW over" at one decimal, beside a not_ok verdict: two decimals then.
        var fmt = Math.Abs(headroom) < 0.1 || Math.Abs(load - e.UsableKw) < 0.1 ? "0.00" : "0.0";
        var amount = headroom >= 0
            ? $"{headroom.ToString(fmt, CultureInfo.InvariantCulture)} kW left"
            : $"{(-headroom).ToString(fmt, CultureInfo.InvariantCulture)} kW over";
        return $"{name}: {when}{e.Id} carries {load.ToString(fmt, CultureInfo.InvariantCulture)} kW of {e.UsableKw.ToString(fmt, CultureInfo.InvariantCulture)} kW usable, {amount} ({e.Limit})";
    }
}
