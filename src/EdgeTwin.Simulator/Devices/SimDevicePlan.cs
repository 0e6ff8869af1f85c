using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Devices;

/// <summary>Which device profile each kind of simulated device speaks (ids of files in <c>device-profiles/</c>).</summary>
public sealed record SimProfiles
{
    public string Pdu { get; init; } = "apc-rpdu2";

    /// <summary>Profiles for UPS units, used in turn (ups1 the first, ups2 the second, …).</summary>
    public IReadOnlyList<string> Ups { get; init; } = ["ietf-ups-mib", "apc-smart-ups"];

    public string CoolingUnit { get; init; } = "liebert-gp-crac";

    public string Drive { get; init; } = "abb-acs580";

    /// <summary>The site's main meter (Modbus), or null for none.</summary>
    public string? Meter { get; init; } = "eastron-sdm630";

    /// <summary>The PLC of each production-line station (Modbus).</summary>
    public string LineStation { get; init; } = "generic-packml-plc";

    /// <summary>
    /// A probe at every rack's inlet (device <c>probe-RACK</c>, located at its rack), or null for none. One per rack, not per
    /// row: a probe device's readings are its rack's inlet in the thermal twin (the device's location.rack), so a row's probes
    /// on one device would be averaged into one rack.
    /// </summary>
    public string? RackProbe { get; init; }

    /// <summary>
    /// The infrastructure sub-meter of each room that has one (<see cref="RoomSpec.InfrastructureMeter"/>), or null (the
    /// default) for the main meter's profile; with both null the site has no meters.
    /// </summary>
    public string? RoomMeter { get; init; }

    /// <summary>The profile the rooms' sub-meters speak: <see cref="RoomMeter"/>, else <see cref="Meter"/>.</summary>
    public string? RoomMeterProfile => RoomMeter ?? Meter;
}

/// <summary>
/// The devices a simulated site exposes: one per PDU, UPS, cooling unit and machine, the main meter, the infrastructure
/// sub-meter of each room that has one (<c>meter-ROOM</c>), and with <see cref="SimProfiles.RackProbe"/> one inlet probe per rack.
/// </summary>
public static class SimDevicePlan
{
    public static IReadOnlyList<SimDeviceBinding> For(SiteSpec spec, SimProfiles? profiles = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        profiles ??= new SimProfiles();
        var devices = new List<SimDeviceBinding>();
        devices.AddRange(spec.Pdus.Select(p => new SimDeviceBinding(p.Id, profiles.Pdu, SimEntityKind.Pdu, p.Id)));
        devices.AddRange(spec.Upses.Select((u, i) => new SimDeviceBinding(u.Id, profiles.Ups[i % profiles.Ups.Count], SimEntityKind.Ups, u.Id)));
        devices.AddRange(spec.CoolingUnits.Select(u => new SimDeviceBinding(u.Id, profiles.CoolingUnit, SimEntityKind.CoolingUnit, u.Id)));
        devices.AddRange(spec.Machines.Select((m, i) => new SimDeviceBinding($"drive{i + 1}", profiles.Drive, SimEntityKind.Machine, m.Id)));
        devices.AddRange((spec.Line?.Stations ?? []).Select(s => new SimDeviceBinding(LineStationDevice(s.Id), profiles.LineStation, SimEntityKind.LineStation, s.Id)));
        if (profiles.Meter is not null)
        {
            devices.Add(new SimDeviceBinding("meter1", profiles.Meter, SimEntityKind.Meter, spec.Room.Id));
        }

        if (profiles.RoomMeterProfile is { } roomMeter)
        {
            devices.AddRange(spec.AllRooms.Where(r => r.InfrastructureMeter).Select(r => new SimDeviceBinding(RoomMeterDevice(r.Id), roomMeter, SimEntityKind.RoomMeter, r.Id)));
        }

        if (profiles.RackProbe is not null)
        {
            devices.AddRange(spec.Racks.Select(r => new SimDeviceBinding(RackProbeDevice(r.Id), profiles.RackProbe, SimEntityKind.RackProbe, r.Id)));
        }

        return devices;
    }

    /// <summary>Device id of a room's infrastructure sub-meter.</summary>
    public static string RoomMeterDevice(string roomId) => "meter-" + roomId.ToLowerInvariant();

    /// <summary>Device id of a rack's inlet probe.</summary>
    public static string RackProbeDevice(string rackId) => "probe-" + rackId.ToLowerInvariant();

    /// <summary>Device id of a line station's PLC.</summary>
    public static string LineStationDevice(string stationId) => "plc-" + stationId.ToLowerInvariant();
}
