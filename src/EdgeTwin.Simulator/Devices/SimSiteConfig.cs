using EdgeTwin.Core.Config;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// Builds the site config an agent needs to poll a simulated site: the topology as the site's operators
/// would describe it (never the hidden physics), and one device per simulated device at its endpoint.
/// </summary>
public static class SimSiteConfig
{
    public const string Credentials = "sim-public";

    public static SiteConfig Build(
        SiteSpec spec,
        IEnumerable<(SimDeviceBinding Device, DeviceAddress Address)> endpoints,
        TimeSpan interval,
        string community = "public",
        string? profilesDir = null,
        TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(endpoints);
        var list = endpoints.ToList();
        string? DeviceFor(SimEntityKind kind, string entity) =>
            list.FirstOrDefault(e => e.Device.Kind == kind && e.Device.EntityId == entity).Device?.DeviceId;

        // Each room with its rows of racks; a sub-metered room names its sub-meter as its infrastructure meter (its pPUE).
        List<RowConfig> Rows(RoomSpec room) => [.. spec.Racks
            .Where(r => (r.Room ?? spec.Room.Id) == room.Id)
            .GroupBy(r => r.Row)
            .Select(g => new RowConfig(g.Key, [.. g.Select(r => new RackConfig(
                r.Id,
                r.Position,
                r.PowerBudgetKw > 0 ? r.PowerBudgetKw : Math.Ceiling(r.DesignKw),
                [.. spec.Pdus.Where(p => p.Rack == r.Id).Select(p => p.Id)],
                r.Servers))]))];
        var topology = new SiteTopology(
            spec.SiteId,
            spec.GatewayId,
            [.. spec.AllRooms.Select(room => new RoomConfig(
                room.Id,
                room.VolumeM3,
                Rows(room),
                room.InfrastructureMeter && DeviceFor(SimEntityKind.RoomMeter, room.Id) is { } meter ? [meter] : null))],
            [.. spec.CoolingUnits.Select(u => new CoolingUnitConfig(u.Id, u.Room ?? spec.Room.Id, u.CapacityKw, u.Serves, DeviceFor(SimEntityKind.CoolingUnit, u.Id)))],
            new PowerChainConfig(
                [.. spec.Upses.Select(u => new UpsConfig(u.Id, DeviceFor(SimEntityKind.Ups, u.Id), u.CapacityKw))],
                [.. spec.Pdus.Select(p => new PduConfig(p.Id, DeviceFor(SimEntityKind.Pdu, p.Id), p.Upstream, p.BreakerA, p.Phases, p.VoltageV))],
                DeviceFor(SimEntityKind.Meter, spec.Room.Id)),
            [.. spec.Machines.GroupBy(m => m.Line).Select(g => new LineConfig(g.Key, [.. g.Select(m => new MachineConfig(m.Id, DeviceFor(SimEntityKind.Machine, m.Id)))]))]);

        var devices = list.Select(e =>
        {
            var snmp = e.Address.Scheme is AddressScheme.Udp or AddressScheme.Udp6;
            return new DeviceConfig(e.Device.DeviceId, e.Device.Profile, e.Address)
            {
                Credentials = snmp ? Credentials : null,
                UnitId = snmp ? null : (byte)1,
                Interval = interval,
                Timeout = timeout ?? DeviceConfig.DefaultTimeout,
                Location = e.Device.Kind switch
                {
                    SimEntityKind.Pdu => new DeviceLocation(Rack: spec.Pdus.First(p => p.Id == e.Device.EntityId).Rack),
                    SimEntityKind.Rack or SimEntityKind.RackProbe => new DeviceLocation(Rack: e.Device.EntityId),
                    SimEntityKind.CoolingUnit => new DeviceLocation(CoolingUnit: e.Device.EntityId),
                    SimEntityKind.Machine => new DeviceLocation(Machine: e.Device.EntityId),
                    SimEntityKind.RoomMeter => new DeviceLocation(Room: e.Device.EntityId),
                    _ => new DeviceLocation(Room: spec.Room.Id),
                },
            };
        }).ToList();

        return new SiteConfig(
            topology,
            devices,
            new Dictionary<string, CredentialsConfig>(StringComparer.Ordinal) { [Credentials] = CredentialsConfig.V2c(Credentials, community) },
            OutboxSettings.Default)
        {
            ProfilesDir = profilesDir,
            Sections = spec.Line is null ? new Dictionary<string, ConfigMapping>(StringComparer.Ordinal) : new Dictionary<string, ConfigMapping>(StringComparer.Ordinal) { ["line"] = Line.SimLineConfig.Section(spec.Line) },
        };
    }
}
