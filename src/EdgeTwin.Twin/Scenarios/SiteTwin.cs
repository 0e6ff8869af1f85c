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
        for (var z = 0; z < zones.Count; z++)
        {
            var racks = zones[z].Zone.Racks;
            for (var i = 0; i < racks.Count; i++)
            {
                if (!Readings.RackKw.ContainsKey(racks[i].Id) && !double.IsNaN(now[z].RackPowerKw[i]))
                {
                    Readings.RackKw[racks[i].Id] = now[z].RackPowerKw[i];
                }
            }
        }
    }

    public SiteTopology Site { get; }

    public IReadOnlyList<ZoneThermalModel> Zones { get; }

    public IReadOnlyList<ZoneFrame> Now { get; }

    public PowerModel Power { get; }

    public PowerReadings Readings { get; }

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
