namespace EdgeTwin.Core.Config;

/// <summary>The physical site: rooms with rows of racks, cooling, the power chain and production lines.</summary>
/// <param name="Id">Site id, e.g. <c>dc1</c>; part of every uplink topic.</param>
/// <param name="GatewayId">This gateway's id, unique within the site.</param>
/// <param name="Rooms">Rooms with their rows and racks.</param>
/// <param name="CoolingUnits">CRAC/CRAH/in-row units and the racks each one serves.</param>
/// <param name="Power">UPS units and PDUs (UPS → PDU → rack feed).</param>
/// <param name="Lines">Production lines and their machines.</param>
public sealed record SiteTopology(
    string Id,
    string GatewayId,
    IReadOnlyList<RoomConfig> Rooms,
    IReadOnlyList<CoolingUnitConfig> CoolingUnits,
    PowerChainConfig Power,
    IReadOnlyList<LineConfig> Lines)
{
    /// <summary>Every rack of every row of every room, in file order.</summary>
    public IEnumerable<RackConfig> AllRacks => Rooms.SelectMany(r => r.Rows).SelectMany(r => r.Racks);

    /// <summary>Every machine of every line, in file order.</summary>
    public IEnumerable<MachineConfig> AllMachines => Lines.SelectMany(l => l.Machines);

    /// <summary>
    /// The IT power of <paramref name="room"/>'s partial PUE: the devices of every PDU feeding one of its racks (category
    /// 2's measurement point, role <c>pdu.power</c>), or null with <c>Short</c> saying what is missing: a room without
    /// racks, a rack without a feed, a PDU without a device reading <c>pdu.power</c>, or a PDU that also feeds a rack of
    /// another room (its power is not this room's alone). A partial or shared IT sum would give a wrong pPUE.
    /// </summary>
    /// <param name="room">One of <see cref="Rooms"/>.</param>
    /// <param name="profileOf">The profile of an (enabled) device id, null when there is none.</param>
    public (IReadOnlyList<string>? Devices, string? Short) RoomItPower(RoomConfig room, Func<string, Profiles.DeviceProfile?> profileOf)
    {
        ArgumentNullException.ThrowIfNull(room);
        ArgumentNullException.ThrowIfNull(profileOf);
        var racks = room.Rows.SelectMany(r => r.Racks).ToList();
        if (racks.Count == 0)
        {
            return (null, $"room {room.Id} has no racks");
        }

        if (racks.FirstOrDefault(r => r.Feeds.Count == 0) is { } unfed)
        {
            return (null, $"rack {unfed.Id} has no feed, so its power is not measured");
        }

        var feeds = racks.SelectMany(r => r.Feeds).Distinct(StringComparer.Ordinal).ToList();
        foreach (var other in Rooms.Where(r => !ReferenceEquals(r, room)))
        {
            if (other.Rows.SelectMany(r => r.Racks).FirstOrDefault(r => r.Feeds.Any(feeds.Contains)) is { } shared)
            {
                return (null, $"{shared.Feeds.First(feeds.Contains)} also feeds rack {shared.Id} in room {other.Id}");
            }
        }

        var pdus = Power.Pdus.ToDictionary(p => p.Id, StringComparer.Ordinal);
        var elements = feeds.Select(f => (f, pdus.TryGetValue(f, out var p) ? p.Device : null));
        var whole = PowerChainConfig.Whole(elements, "pdu.power", profileOf);
        return (whole.Ids, whole.Short);
    }
}

/// <summary>A room (white space) with its rows of racks.</summary>
/// <param name="Id">Room id, unique in the site.</param>
/// <param name="VolumeM3">Air volume in m³ (thermal mass of the room air), or null when unknown.</param>
/// <param name="Rows">Rows of racks.</param>
/// <param name="InfrastructureMeters">Device ids of the sub-meters of the room's own non-IT loads (cooling units'
/// feeds, lighting; <c>power.infrastructure_meters</c>), whose <c>meter.power_total</c> is the infrastructure power of
/// the room's partial PUE; null or empty when the room has none.</param>
public sealed record RoomConfig(string Id, double? VolumeM3, IReadOnlyList<RowConfig> Rows, IReadOnlyList<string>? InfrastructureMeters = null)
{
    /// <summary>Role of the live partial PUE series the agent derives for a room with infrastructure meters (<c>{site}/ppue{room=…}</c>).</summary>
    public const string PartialPueRole = "room.ppue";
}

/// <summary>A row of racks.</summary>
public sealed record RowConfig(string Id, IReadOnlyList<RackConfig> Racks);

/// <summary>A rack.</summary>
/// <param name="Id">Rack id, unique in the site.</param>
/// <param name="Position">Position in the row (1 = first), used for hot-spot neighbourhoods.</param>
/// <param name="PowerBudgetKw">Power the rack is provisioned for, in kW.</param>
/// <param name="Feeds">Ids of the PDUs feeding the rack (A and B feed), from <c>site.power.pdus</c>.</param>
/// <param name="Servers">Number of servers in the rack (0 when unknown).</param>
public sealed record RackConfig(string Id, int Position, double PowerBudgetKw, IReadOnlyList<string> Feeds, int Servers);

/// <summary>A cooling unit (CRAC/CRAH/in-row).</summary>
/// <param name="Id">Unit id, unique among cooling units.</param>
/// <param name="Room">Room the unit stands in.</param>
/// <param name="CapacityKw">Rated sensible cooling capacity in kW.</param>
/// <param name="Serves">Rack ids the unit cools.</param>
/// <param name="Device">Device id that monitors the unit, or null when unmonitored.</param>
public sealed record CoolingUnitConfig(string Id, string Room, double CapacityKw, IReadOnlyList<string> Serves, string? Device);

/// <summary>The power chain of the site.</summary>
/// <param name="Ups">UPS units.</param>
/// <param name="Pdus">PDUs (rack feeds).</param>
/// <param name="FacilityMeter">Device id of the utility-side meter of the whole site (<c>facility_meter</c>), whose
/// <c>meter.power_total</c> is the facility power of the live PUE; null when the site has none.</param>
public sealed record PowerChainConfig(IReadOnlyList<UpsConfig> Ups, IReadOnlyList<PduConfig> Pdus, string? FacilityMeter = null)
{
    /// <summary>Role of the facility meter's total real power (the PUE's numerator).</summary>
    public const string FacilityPowerRole = "meter.power_total";

    /// <summary>Role of the live PUE series the agent derives when <see cref="FacilityMeter"/> is set (<c>{site}/pue</c>).</summary>
    public const string PueRole = "site.pue";

    /// <summary>True for the power units the PUE reads (W, kW, MW).</summary>
    public static bool IsPowerUnit(string unit) => unit is "W" or "kW" or "MW";

    /// <summary>
    /// Where the PUE's IT power can be measured: category 1 when every UPS has a device whose profile reads
    /// <c>ups.output_power</c>, else 2 when every PDU has one reading <c>pdu.power</c>, else 0 with <c>UpsShort</c> and <c>PduShort</c>
    /// naming the first UPS and PDU short of it. Only a whole chain counts: a partial IT sum would overstate the PUE.
    /// </summary>
    /// <param name="profileOf">The profile of an (enabled) device id, null when there is none.</param>
    public (int Category, string? Role, IReadOnlyList<string> Devices, string? UpsShort, string? PduShort) PueItPower(Func<string, Profiles.DeviceProfile?> profileOf)
    {
        ArgumentNullException.ThrowIfNull(profileOf);
        var ups = Whole(Ups.Select(u => (u.Id, u.Device)), "ups.output_power", profileOf);
        if (ups.Ids is not null)
        {
            return (1, "ups.output_power", ups.Ids, null, null);
        }

        var pdus = Whole(Pdus.Select(p => (p.Id, p.Device)), "pdu.power", profileOf);
        return pdus.Ids is not null ? (2, "pdu.power", pdus.Ids, ups.Short, null) : (0, null, [], ups.Short, pdus.Short);
    }

    /// <summary>
    /// The devices of every element, when each has a device whose profile reads <paramref name="role"/> in W, kW or MW;
    /// else null and the first element short of it.
    /// </summary>
    internal static (string[]? Ids, string? Short) Whole(IEnumerable<(string Id, string? Device)> elements, string role, Func<string, Profiles.DeviceProfile?> profileOf)
    {
        var list = elements.ToList();
        foreach (var (id, device) in list)
        {
            if (device is null)
            {
                return (null, $"{id} has no device");
            }

            if (profileOf(device) is not { } p || !p.AllMetrics.Any(m => m.Role == role && IsPowerUnit(m.Unit)))
            {
                return (null, $"{id}'s device {device} reads no {role}");
            }
        }

        return list.Count == 0 ? (null, "none configured") : ([.. list.Select(e => e.Device!).Distinct(StringComparer.Ordinal)], null);
    }

    /// <summary>An empty power chain.</summary>
    public static PowerChainConfig Empty { get; } = new([], []);
}

/// <summary>A UPS.</summary>
/// <param name="Id">UPS id, unique in the power chain.</param>
/// <param name="Device">Device id that monitors it, or null.</param>
/// <param name="CapacityKw">Rated output power in kW.</param>
public sealed record UpsConfig(string Id, string? Device, double CapacityKw);

/// <summary>A PDU (rack feed).</summary>
/// <param name="Id">PDU id, unique in the power chain; racks name it in <c>feeds</c>.</param>
/// <param name="Device">Device id that monitors it, or null.</param>
/// <param name="Upstream">UPS id it is fed from, or null when fed straight from the utility.</param>
/// <param name="BreakerA">Rating of the breaker protecting the feed, in A.</param>
/// <param name="Phases">1 or 3.</param>
/// <param name="VoltageV">Nominal line-to-neutral voltage in V.</param>
public sealed record PduConfig(string Id, string? Device, string? Upstream, double BreakerA, int Phases, double VoltageV);

/// <summary>A production line.</summary>
public sealed record LineConfig(string Id, IReadOnlyList<MachineConfig> Machines);

/// <summary>A machine on a line.</summary>
/// <param name="Id">Machine id, unique in the site.</param>
/// <param name="Device">Device id that monitors it (drive, meter), or null.</param>
public sealed record MachineConfig(string Id, string? Device);
