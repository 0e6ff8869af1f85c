using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Agent.Twin.Thermal;

/// <summary>What a bound series feeds in a zone frame.</summary>
internal enum ThermalSignal : byte
{
    None,
    Inlet,
    Outlet,
    Power,
    Running,
    FanRunning,
    Fan,
    Supply,
    Return,

    /// <summary>A PDU's phase current (A), for the power twin's phase check; <see cref="ThermalCell.Element"/> names the PDU, Index the phase.</summary>
    PhaseCurrent,

    /// <summary>A UPS's battery charge (%); <see cref="ThermalCell.Element"/> names the UPS.</summary>
    UpsCharge,

    /// <summary>A UPS's reported runtime, in minutes whatever the profile's time unit.</summary>
    UpsRuntime,
}

/// <summary>One bound series: its role in a zone, and how its value converts (power to kW, fan to 0..1, states to running).</summary>
internal sealed class ThermalCell(ThermalSignal signal, int zone, int index, double scale, IReadOnlySet<long>? runningStates, string? element = null)
{
    /// <summary>The power chain element (PDU or UPS id) of a power-chain signal; null for the zone signals (zone −1 then).</summary>
    public string? Element { get; } = element;

    public ThermalSignal Signal { get; } = signal;

    public int Zone { get; } = zone;

    /// <summary>Rack index (rack signals) or unit index (unit signals) in the zone.</summary>
    public int Index { get; } = index;

    /// <summary>Factor to the twin's unit (W → kW, % → 0..1; a PDU feeding n racks gives each 1/n).</summary>
    public double Scale { get; } = scale;

    /// <summary>Raw state values that mean running/on (from the profile's <c>states</c>); null: any value ≥ 0.5 is on.</summary>
    public IReadOnlySet<long>? RunningStates { get; } = runningStates;

    public double Value { get; set; } = double.NaN;

    /// <summary>Sample time (Unix ms) of <see cref="Value"/>; 0 before the first reading.</summary>
    public long LastMs { get; set; }

    public double ToTwin(double value) => Signal is ThermalSignal.Running or ThermalSignal.FanRunning
        ? RunningStates is { } on ? (on.Contains((long)Math.Round(value)) ? 1 : 0) : (value >= 0.5 ? 1 : 0)
        : value * Scale;
}

/// <summary>
/// Maps the agent's series to the thermal twin's inputs by profile role and where the device sits:
/// <list type="bullet">
/// <item><c>rack.inlet_temperature</c> / <c>rack.outlet_temperature</c> on a device at a rack (<c>location.rack</c>) or on
///   a PDU that feeds it; several sensors of one rack are averaged;</item>
/// <item><c>pdu.power</c> (untagged: the PDU total; W or kW) of a PDU device, added to the racks it feeds (split evenly when
///   it feeds several); <c>rack.power</c> / <c>rack.it_power</c> on a rack device;</item>
/// <item>on a cooling unit's device (<c>cooling_units[].device</c> or <c>location.cooling_unit</c>): <c>crac.running</c>,
///   <c>crac.fan_running</c> (both states: running when the profile's label says on/running), <c>crac.fan_speed</c> (% or
///   0..1), <c>crac.supply_temperature</c>, <c>crac.return_temperature</c>, and <c>crac.air_temperature</c> rows whose tags
///   name supply or return air.</item>
/// </list>
/// </summary>
internal sealed class ThermalSeriesMap
{
    private static readonly HashSet<string> OnLabels = new(StringComparer.OrdinalIgnoreCase) { "on", "running", "run", "true", "yes", "cooling", "normal", "ok" };

    private readonly SiteConfig _config;
    private readonly IReadOnlyList<ThermalZone> _zones;
    private readonly Dictionary<string, (int Zone, int Rack)> _racks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Zone, int Unit)> _unitsById = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _racksByPduDevice = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<PduConfig>> _pdusByDevice = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _upsesByDevice = new(StringComparer.Ordinal);

    public ThermalSeriesMap(SiteConfig config, IReadOnlyList<ThermalZone> zones)
    {
        _config = config;
        _zones = zones;
        for (var z = 0; z < zones.Count; z++)
        {
            for (var i = 0; i < zones[z].Racks.Count; i++)
            {
                _racks[zones[z].Racks[i].Id] = (z, i);
            }

            for (var j = 0; j < zones[z].Units.Count; j++)
            {
                _unitsById[zones[z].Units[j].Id] = (z, j);
            }
        }

        var pduDevice = config.Site.Power.Pdus.Where(p => p.Device is not null).ToDictionary(p => p.Id, p => p.Device!, StringComparer.Ordinal);
        foreach (var p in config.Site.Power.Pdus.Where(p => p.Device is not null))
        {
            (_pdusByDevice.TryGetValue(p.Device!, out var l) ? l : _pdusByDevice[p.Device!] = []).Add(p);
        }

        foreach (var u in config.Site.Power.Ups.Where(u => u.Device is not null))
        {
            (_upsesByDevice.TryGetValue(u.Device!, out var l) ? l : _upsesByDevice[u.Device!] = []).Add(u.Id);
        }

        foreach (var rack in config.Site.Rooms.SelectMany(r => r.Rows).SelectMany(r => r.Racks))
        {
            foreach (var feed in rack.Feeds)
            {
                if (pduDevice.TryGetValue(feed, out var device))
                {
                    if (!_racksByPduDevice.TryGetValue(device, out var list))
                    {
                        _racksByPduDevice[device] = list = [];
                    }

                    list.Add(rack.Id);
                }
            }
        }
    }

    /// <summary>The cells a series feeds (a PDU feeding several racks feeds several); empty when the twin does not use it.</summary>
    public IReadOnlyList<ThermalCell> Bind(SeriesDescriptor d)
    {
        var role = d.Role?.ToLowerInvariant();
        if (role is null)
        {
            return [];
        }

        var device = _config.Devices.FirstOrDefault(x => string.Equals(x.Id, d.DeviceId, StringComparison.Ordinal));
        switch (role)
        {
            case "rack.inlet_temperature" or "rack.outlet_temperature":
            {
                var signal = role == "rack.inlet_temperature" ? ThermalSignal.Inlet : ThermalSignal.Outlet;
                return [.. RacksOf(d.DeviceId, device).Select(r => new ThermalCell(signal, r.Zone, r.Rack, 1, null))];
            }

            case "pdu.power" when d.Tags is null || d.Tags.Count == 0:
            {
                // A unit the map cannot convert would be off by 10³ or worse: not used (named at start, see UnusablePower).
                if (PowerScale(d.Unit) is not { } toKw)
                {
                    return [];
                }

                var racks = _racksByPduDevice.TryGetValue(d.DeviceId, out var ids) ? ids.Select(id => _racks.TryGetValue(id, out var r) ? r : (-1, -1)).Where(r => r.Item1 >= 0).ToList() : [];
                var scale = toKw / Math.Max(1, racks.Count);
                return [.. racks.Select(r => new ThermalCell(ThermalSignal.Power, r.Item1, r.Item2, scale, null))];
            }

            case "rack.power" or "rack.it_power":
                return device?.Location.Rack is { } rackId && _racks.TryGetValue(rackId, out var rk) && PowerScale(d.Unit) is { } rackToKw
                    ? [new ThermalCell(ThermalSignal.Power, rk.Zone, rk.Rack, rackToKw, null)]
                    : [];

            // The power twin's phase check and UPS runtime (zone −1: not part of any thermal frame). Before, only the
            // `--history` CSV gave them, so the live what-ifs never saw a phase over its breaker nor a UPS on battery.
            case "pdu.phase_current" or "pdu.current" when _pdusByDevice.TryGetValue(d.DeviceId, out var pdus) && CurrentScale(d.Unit) is { } toA:
                return [.. pdus.Select(p => PhaseOf(d, p) is { } phase ? new ThermalCell(ThermalSignal.PhaseCurrent, -1, phase, toA, null, p.Id) : null).OfType<ThermalCell>()];

            case "ups.battery_charge" when d.Unit == "%" && _upsesByDevice.TryGetValue(d.DeviceId, out var chargeOf):
                return [.. chargeOf.Select(u => new ThermalCell(ThermalSignal.UpsCharge, -1, 0, 1, null, u))];

            case "ups.runtime_remaining" when MinutesScale(d.Unit) is { } toMin && _upsesByDevice.TryGetValue(d.DeviceId, out var runtimeOf):
                return [.. runtimeOf.Select(u => new ThermalCell(ThermalSignal.UpsRuntime, -1, 0, toMin, null, u))];
        }

        if (!role.StartsWith("crac.", StringComparison.Ordinal) && !role.StartsWith("crah.", StringComparison.Ordinal) && !role.StartsWith("cooling.", StringComparison.Ordinal))
        {
            return [];
        }

        var unitId = device is null ? null : _config.CoolingUnitOf(device);
        if (unitId is null || !_unitsById.TryGetValue(unitId, out var unit))
        {
            return [];
        }

        var quantity = role[(role.IndexOf('.', StringComparison.Ordinal) + 1)..];
        var cell = quantity switch
        {
            "running" or "state" or "unit_state" => new ThermalCell(ThermalSignal.Running, unit.Zone, unit.Unit, 1, RunningStates(device, d)),
            "fan_running" => new ThermalCell(ThermalSignal.FanRunning, unit.Zone, unit.Unit, 1, RunningStates(device, d)),
            "fan_speed" => new ThermalCell(ThermalSignal.Fan, unit.Zone, unit.Unit, d.Unit == "%" ? 0.01 : 1, null),
            "supply_temperature" or "supply_air_temperature" => new ThermalCell(ThermalSignal.Supply, unit.Zone, unit.Unit, 1, null),
            "return_temperature" or "return_air_temperature" => new ThermalCell(ThermalSignal.Return, unit.Zone, unit.Unit, 1, null),
            "air_temperature" => AirRow(d) is { } s ? new ThermalCell(s, unit.Zone, unit.Unit, 1, null) : null,
            _ => null,
        };
        return cell is null ? [] : [cell];
    }

    private IEnumerable<(int Zone, int Rack)> RacksOf(string deviceId, DeviceConfig? device)
    {
        if (device?.Location.Rack is { } rackId && _racks.TryGetValue(rackId, out var r))
        {
            return [r];
        }

        // A PDU's environmental probe: the rack it feeds (the first, when it feeds several).
        return _racksByPduDevice.TryGetValue(deviceId, out var ids) && _racks.TryGetValue(ids[0], out var first) ? [first] : [];
    }

    private static ThermalSignal? AirRow(SeriesDescriptor d)
    {
        if (d.Tags is null)
        {
            return null;
        }

        foreach (var (_, v) in d.Tags)
        {
            if (v.Contains("supply", StringComparison.OrdinalIgnoreCase) || v.Contains("discharge", StringComparison.OrdinalIgnoreCase))
            {
                return ThermalSignal.Supply;
            }

            if (v.Contains("return", StringComparison.OrdinalIgnoreCase))
            {
                return ThermalSignal.Return;
            }
        }

        return null;
    }

    private HashSet<long>? RunningStates(DeviceConfig? device, SeriesDescriptor d)
    {
        if (device is null || !_config.Profiles.TryGetValue(device.Profile, out var profile))
        {
            return null;
        }

        var metric = profile.AllMetrics.FirstOrDefault(m => string.Equals(m.Name, d.Metric, StringComparison.Ordinal));
        if (metric?.States is not { Count: > 0 } states)
        {
            return null;
        }

        return [.. states.Where(s => OnLabels.Contains(s.Value.Trim())).Select(s => s.Key)];
    }

    /// <summary>
    /// The enabled devices' metrics that would feed rack power (a PDU's untagged <c>pdu.power</c> when it feeds a rack,
    /// <c>rack.power</c> / <c>rack.it_power</c> at a rack) but whose unit is not W, kW or MW, so they are not used:
    /// one text each, for the warning at start.
    /// </summary>
    public IReadOnlyList<string> UnusablePower()
    {
        var list = new List<string>();
        foreach (var device in _config.Devices.Where(x => x.Enabled))
        {
            if (!_config.Profiles.TryGetValue(device.Profile, out var profile))
            {
                continue;
            }

            var feeds = _racksByPduDevice.ContainsKey(device.Id);
            var atRack = device.Location.Rack is { } rack && _racks.ContainsKey(rack);
            // Table columns carry their row's tags, so only scalar pdu.power is the PDU total the map reads.
            foreach (var m in profile.Metrics.Where(m => feeds && m.Role == "pdu.power").Concat(profile.AllMetrics.Where(m => atRack && m.Role is "rack.power" or "rack.it_power")))
            {
                if (PowerScale(m.Unit) is null)
                {
                    list.Add($"device {device.Id} metric {m.Name} ({m.Role}, profile {profile.Id}) is in '{m.Unit}', not W, kW or MW: not used as rack power");
                }
            }
        }

        return list;
    }

    /// <summary>
    /// The phase (1-based) a current series of a PDU measures: its <c>phase</c>/<c>line</c> tag (a phase table's row), else
    /// <c>_l1</c>..<c>_l3</c> in the metric name (Eaton's scalars); an untagged total (<c>pdu.current</c>) only on a
    /// single-phase feed, where it is the phase. A multi-part row index (Sentry4's unit.cord.line, <c>1.1.2</c>) is the
    /// phase of its last part only for the first unit's first cord (every leading part 1): a link unit of the chain or
    /// a second cord is another feed than the one the site config names. Null: not a phase (a bank or outlet row, a
    /// 3-phase total, the neutral).
    /// </summary>
    private static int? PhaseOf(SeriesDescriptor d, PduConfig pdu)
    {
        if (d.Tags is { Count: > 0 } tags)
        {
            foreach (var (k, v) in tags)
            {
                if (k is "phase" or "line" && LastPartOfFirstFeed(v) is { } n && n >= 1 && n <= pdu.Phases)
                {
                    return n;
                }
            }

            return null;
        }

        for (var p = 1; p <= 3; p++)
        {
            if (d.Metric.EndsWith($"_l{p}", StringComparison.OrdinalIgnoreCase))
            {
                return p <= pdu.Phases ? p : null;
            }
        }

        return pdu.Phases == 1 ? 1 : null;
    }

    // "2" → 2; "1.1.2" → 2; "2.1.1" (a link unit) or "1.2.1" (a second cord) → null.
    private static int? LastPartOfFirstFeed(string index)
    {
        var span = index.AsSpan();
        var dot = span.LastIndexOf('.');
        if (dot >= 0)
        {
            foreach (var range in span[..dot].Split('.'))
            {
                if (!span[range].SequenceEqual("1"))
                {
                    return null;
                }
            }
        }

        return int.TryParse(span[(dot + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;
    }

    private static double? CurrentScale(string unit) => unit switch { "A" => 1, "mA" => 0.001, _ => null };

    // upsEstimatedMinutesRemaining is in minutes, a vendor's runtime may be in s (TimeTicks scaled) or h.
    private static double? MinutesScale(string unit) => unit switch { "min" => 1, "s" => 1.0 / 60, "h" => 60, _ => null };

    // Factor to kW; null for any other unit (a custom profile's 'w' or 'Watt' taken as kW was 1000 times too much).
    private static double? PowerScale(string unit) => unit switch
    {
        "W" => 0.001,
        "kW" => 1,
        "MW" => 1000,
        _ => null,
    };
}
