using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Power;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Scenarios;

/// <summary>The calibrated twin of a whole site at one moment: a thermal model and the latest frame per zone, and the power chain.</summary>
public sealed class SiteTwin
{
    public SiteTwin(SiteTopology site, IReadOnlyList<ZoneThermalModel> zones, IReadOnlyList<ZoneFrame> now, PowerReadings? readings = null)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(zones);
        ArgumentNullException.ThrowIfNull(now);
        if (zones.Count != now.Count)
        {
            throw new ArgumentException($"{zones.Count} zone models but {now.Count} frames", nameof(now));
        }

        Site = site;
        Zones = zones;
        Now = now;
        Power = new PowerModel(site);
        Readings = readings ?? new PowerReadings();
        var frameKw = new Dictionary<string, double>(StringComparer.Ordinal);
        for (var z = 0; z < zones.Count; z++)
        {
            var racks = zones[z].Zone.Racks;
            for (var i = 0; i < racks.Count; i++)
            {
                frameKw[racks[i].Id] = now[z].RackPowerKw[i];
            }
        }

        foreach (var rack in site.AllRacks)
        {
            var kw = Readings.RackKw.TryGetValue(rack.Id, out var given) ? given : frameKw.GetValueOrDefault(rack.Id, double.NaN);
            var (use, why) = RackLoad(rack, kw, Readings.RackReadingAgeS.GetValueOrDefault(rack.Id));
            Readings.RackKw[rack.Id] = use;
            if (why is not null && rack.Feeds.Count > 0)
            {
                Readings.Assumptions.Add(why);
            }
        }
    }

    /// <summary>A rack's power reading older than this is not taken as its load now.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(15);

    /// <summary>
    /// The load to plan with for a rack and, when it is not its measured power, why. A missing, negative or absurd (over
    /// 5 × budget: W reported as kW?) reading counts as the rack's power budget; a stale one as the larger of its last
    /// value and the budget. Counting such a rack as 0 kW (as before) overstated every headroom on its feeds.
    /// </summary>
    public static (double Kw, string? Why) RackLoad(RackConfig rack, double kw, double ageSeconds = 0)
    {
        ArgumentNullException.ThrowIfNull(rack);
        var budget = rack.PowerBudgetKw;
        string Say(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
        if (double.IsNaN(kw))
        {
            return (budget, Say($"{rack.Id}: no power reading (no meter, or none yet); counted at its budget {budget:0.0} kW"));
        }

        if (!double.IsFinite(kw) || kw < 0)
        {
            return (budget, Say($"{rack.Id}: power reading {kw:0.###} kW is not a load; counted at its budget {budget:0.0} kW"));
        }

        if (budget > 0 && kw > 5 * budget)
        {
            return (budget, Say($"{rack.Id}: power reading {kw:0.###} kW is over 5 × its budget {budget:0.0} kW (a meter in W read as kW?); counted at its budget"));
        }

        if (double.IsPositiveInfinity(ageSeconds))
        {
            var part = Math.Max(kw, budget);
            return (part, Say($"{rack.Id}: {kw:0.00} kW is the sum of only some of its power meters (another has never reported); counted at {part:0.0} kW (the larger of it and its budget)"));
        }

        if (ageSeconds > StaleAfter.TotalSeconds)
        {
            var use = Math.Max(kw, budget);
            return (use, Say($"{rack.Id}: last power reading {kw:0.00} kW is {ageSeconds / 60:0} min old; counted at {use:0.0} kW (the larger of it and its budget)"));
        }

        return (kw, null);
    }

    public SiteTopology Site { get; }

    public IReadOnlyList<ZoneThermalModel> Zones { get; }

    public IReadOnlyList<ZoneFrame> Now { get; }

    public PowerModel Power { get; }

    public PowerReadings Readings { get; }

    /// <summary>How long each cooling-failure mitigation takes at this site (<see cref="CoolingFailureOptions.MeasureLeads"/>).</summary>
    public IReadOnlyDictionary<string, TimeSpan> MitigationLeads { get; init; } = CoolingFailureOptions.DefaultMeasureLeads;

    /// <summary>The zone model by id (null: the first zone).</summary>
    public int ZoneIndex(string? id)
    {
        if (id is null)
        {
            return Zones.Count > 0 ? 0 : -1;
        }

        for (var z = 0; z < Zones.Count; z++)
        {
            if (string.Equals(Zones[z].Zone.Id, id, StringComparison.Ordinal))
            {
                return z;
            }
        }

        return -1;
    }

    /// <summary>The zone holding a rack, with the rack's index in it; (-1, -1) when unknown.</summary>
    public (int Zone, int Rack) FindRack(string rackId)
    {
        for (var z = 0; z < Zones.Count; z++)
        {
            var i = Zones[z].Zone.RackIndex(rackId);
            if (i >= 0)
            {
                return (z, i);
            }
        }

        return (-1, -1);
    }

    /// <summary>The zone holding a cooling unit; -1 when unknown.</summary>
    public int FindUnit(string unitId)
    {
        for (var z = 0; z < Zones.Count; z++)
        {
            if (Zones[z].Zone.UnitIndex(unitId) >= 0)
            {
                return z;
            }
        }

        return -1;
    }
}
