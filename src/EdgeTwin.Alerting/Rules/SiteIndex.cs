using EdgeTwin.Core.Config;

namespace EdgeTwin.Alerting.Rules;

/// <summary>Where a device sits: rack, room and line, from the site topology. Used for scopes and group labels.</summary>
public sealed record DevicePlace(string? Rack, string? Room, string? Line, string? Machine, string? CoolingUnit);

/// <summary>Device → rack → room (and machine → line) from the site config, looked up once per new series.</summary>
public sealed class SiteIndex
{
    private readonly Dictionary<string, DevicePlace> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Device, string Metric), IReadOnlyDictionary<long, string>> _states = [];

    public SiteIndex(SiteConfig? config)
    {
        SiteId = config?.Site.Id ?? "site";
        GatewayId = config?.Site.GatewayId ?? "gateway";
        if (config is null)
        {
            return;
        }

        var rackRoom = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var room in config.Site.Rooms)
        {
            foreach (var rack in room.Rows.SelectMany(r => r.Racks))
            {
                rackRoom[rack.Id] = room.Id;
            }
        }

        var unitRoom = config.Site.CoolingUnits.ToDictionary(u => u.Id, u => u.Room, StringComparer.Ordinal);
        var machineLine = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in config.Site.Lines)
        {
            foreach (var m in line.Machines)
            {
                machineLine[m.Id] = line.Id;
            }
        }

        foreach (var d in config.Devices)
        {
            var loc = d.Location;
            var room = loc.Room
                ?? (loc.Rack is { } rk ? rackRoom.GetValueOrDefault(rk) : null)
                ?? (loc.CoolingUnit is { } cu ? unitRoom.GetValueOrDefault(cu) : null);
            var lineId = loc.Machine is { } mc ? machineLine.GetValueOrDefault(mc) : null;
            _devices[d.Id] = new DevicePlace(loc.Rack, room, lineId, loc.Machine, loc.CoolingUnit);
            if (config.Profiles.GetValueOrDefault(d.Profile) is { } profile)
            {
                foreach (var m in profile.AllMetrics)
                {
                    if (m.States is { Count: > 0 } states)
                    {
                        _states[(d.Id, m.Name)] = states;
                    }
                }
            }
        }
    }

    /// <summary>The state names of a state series, from its device's profile (<c>states:</c>); null when it has none.</summary>
    public IReadOnlyDictionary<long, string>? StateNames(string device, string metric) => _states.GetValueOrDefault((device, metric));

    /// <summary>Adds a state map for a series (sites built in code, tests).</summary>
    public void AddStateNames(string device, string metric, IReadOnlyDictionary<long, string> states) => _states[(device, metric)] = states;

    /// <summary>An index from explicit places (tests, benchmarks, sites built in code).</summary>
    public SiteIndex(string siteId, string gatewayId, IReadOnlyDictionary<string, DevicePlace> places)
    {
        ArgumentNullException.ThrowIfNull(places);
        SiteId = siteId;
        GatewayId = gatewayId;
        foreach (var (device, place) in places)
        {
            _devices[device] = place;
        }
    }

    public string SiteId { get; }

    public string GatewayId { get; }

    public DevicePlace Place(string device) => _devices.GetValueOrDefault(device) ?? new DevicePlace(null, null, null, null, null);

    /// <summary>The scope value a device falls in; null when the topology does not place it (it then forms its own scope).</summary>
    public string? ScopeValue(Scope scope, string device) => scope switch
    {
        Scope.Device => device,
        Scope.Rack => Place(device).Rack,
        Scope.Room => Place(device).Room,
        Scope.Line => Place(device).Line,
        Scope.Site => SiteId,
        _ => null,
    };

    /// <summary>The labels every alert of a device carries: device, rack, room, line, machine (those known).</summary>
    public void AddPlaceLabels(string device, Dictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        labels["device"] = device;
        var p = Place(device);
        if (p.Rack is not null)
        {
            labels["rack"] = p.Rack;
        }

        if (p.Room is not null)
        {
            labels["room"] = p.Room;
        }

        if (p.Line is not null)
        {
            labels["line"] = p.Line;
        }

        if (p.Machine is not null)
        {
            labels["machine"] = p.Machine;
        }

        if (p.CoolingUnit is not null)
        {
            labels["cooling_unit"] = p.CoolingUnit;
        }
    }
}
