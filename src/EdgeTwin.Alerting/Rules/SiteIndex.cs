using EdgeTwin.Core.Config;

namespace EdgeTwin.Alerting.Rules;

/// <summary>Where a device sits: rack, room and line, from the site topology. Used for scopes and group labels.</summary>
public sealed record DevicePlace(string? Rack, string? Room, string? Line, string? Machine, string? CoolingUnit);

/// <summary>Device → rack → room (and machine → line) from the site config, looked up once per new series.</summary>
public sealed class SiteIndex
{
    private readonly Dictionary<string, DevicePlace> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Device, string Metric), IReadOnlyDictionary<long, string>> _states = [];
    private readonly Dictionary<string, double> _breakers = new(StringComparer.Ordinal);

    // Places that are not devices (racks, rooms, lines, machines), for the labels of combined and event alerts.
    private readonly Dictionary<string, string?> _rackRoom = new(StringComparer.Ordinal);
    private readonly HashSet<string> _rooms = new(StringComparer.Ordinal);
    private readonly HashSet<string> _lines = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> _machineLine = new(StringComparer.Ordinal);

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
            _rooms.Add(room.Id);
            foreach (var rack in room.Rows.SelectMany(r => r.Racks))
            {
                rackRoom[rack.Id] = room.Id;
                _rackRoom[rack.Id] = room.Id;
            }
        }

        // A device metering several feeds (rare) is held to the smallest breaker: the safe side.
        foreach (var pdu in config.Site.Power.Pdus)
        {
            if (pdu.Device is { } dev && pdu.BreakerA > 0)
            {
                _breakers[dev] = Math.Min(pdu.BreakerA, _breakers.GetValueOrDefault(dev, double.PositiveInfinity));
            }
        }

        var unitRoom = config.Site.CoolingUnits.ToDictionary(u => u.Id, u => u.Room, StringComparer.Ordinal);
        var machineLine = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in config.Site.Lines)
        {
            _lines.Add(line.Id);
            foreach (var m in line.Machines)
            {
                machineLine[m.Id] = line.Id;
                _machineLine[m.Id] = line.Id;
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

    /// <summary>The breaker rating (A) of the PDU/feed a device meters (<c>site.power.pdus[].device</c>); null when it meters none.</summary>
    public double? BreakerA(string device) => _breakers.TryGetValue(device, out var a) ? a : null;

    /// <summary>Sets the breaker rating of the feed a device meters (sites built in code, tests).</summary>
    public void AddBreaker(string device, double amps) => _breakers[device] = amps;

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
            if (place.Rack is not null)
            {
                _rackRoom[place.Rack] = place.Room ?? _rackRoom.GetValueOrDefault(place.Rack);
            }

            if (place.Room is not null)
            {
                _rooms.Add(place.Room);
            }

            if (place.Line is not null)
            {
                _lines.Add(place.Line);
            }

            if (place.Machine is not null)
            {
                _machineLine[place.Machine] = place.Line ?? _machineLine.GetValueOrDefault(place.Machine);
            }
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

    /// <summary>
    /// The labels of a combined alert: its scope and what contains it (rack → rack and room), not the first member's
    /// device or rack (a room-wide alert was labelled rack A01, device pdu-a01-a).
    /// </summary>
    public Dictionary<string, string> ScopeLabels(Scope scope, string value)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (scope)
        {
            case Scope.Device:
                AddPlaceLabels(value, labels);
                break;
            case Scope.Rack:
                AddRack(value, labels);
                break;
            case Scope.Room:
                labels["room"] = value;
                break;
            case Scope.Line:
                labels["line"] = value;
                break;
        }

        return labels;
    }

    /// <summary>
    /// The labels of an event alert: the place the event names (attributes <c>device</c>, <c>rack</c>, <c>zone</c> or
    /// <c>room</c>, <c>line</c>, <c>machine</c>), else the first segment of its source when that is a known device, rack,
    /// room, line or machine. Never an unknown segment as a device (the thermal twin's <c>room1/cooling_failure</c> gave
    /// device=room1 and no room, so its group was <c>room=</c>).
    /// </summary>
    public Dictionary<string, string> EventPlaceLabels(string source, IReadOnlyDictionary<string, string>? attributes)
    {
        ArgumentNullException.ThrowIfNull(source);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (attributes is not null)
        {
            if (attributes.TryGetValue("device", out var device) && device.Length > 0)
            {
                AddPlaceLabels(device, labels);
            }
            else if (attributes.TryGetValue("rack", out var rack) && rack.Length > 0)
            {
                AddRack(rack, labels);
            }
            else if ((attributes.TryGetValue("zone", out var room) || attributes.TryGetValue("room", out room)) && room.Length > 0)
            {
                labels["room"] = room;
            }
            else if (attributes.TryGetValue("machine", out var machine) && machine.Length > 0)
            {
                AddMachine(machine, labels);
            }
            else if (attributes.TryGetValue("line", out var line) && line.Length > 0)
            {
                labels["line"] = line;
            }

            if (labels.Count > 0)
            {
                return labels;
            }
        }

        var slash = source.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? source : source[..slash];
        if (_devices.ContainsKey(first))
        {
            AddPlaceLabels(first, labels);
        }
        else if (_rackRoom.ContainsKey(first))
        {
            AddRack(first, labels);
        }
        else if (_rooms.Contains(first))
        {
            labels["room"] = first;
        }
        else if (_machineLine.ContainsKey(first))
        {
            AddMachine(first, labels);
        }
        else if (_lines.Contains(first))
        {
            labels["line"] = first;
        }

        return labels;
    }

    private void AddRack(string rack, Dictionary<string, string> labels)
    {
        labels["rack"] = rack;
        if (_rackRoom.GetValueOrDefault(rack) is { } room)
        {
            labels["room"] = room;
        }
    }

    private void AddMachine(string machine, Dictionary<string, string> labels)
    {
        labels["machine"] = machine;
        if (_machineLine.GetValueOrDefault(machine) is { } line)
        {
            labels["line"] = line;
        }
    }
}
