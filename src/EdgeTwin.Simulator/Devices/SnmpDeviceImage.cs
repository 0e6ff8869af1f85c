using System.Globalization;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Snmp;

namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// The MIB view of one simulated SNMP device, built from its device profile: every scalar metric at its
/// OID, every table column at <c>column.row</c> for the rows the simulated thing has (outlets, phases,
/// sensors), row labels at the table's label OID, plus sysDescr/sysObjectID/sysUpTime/sysName.
/// Values are computed from the site when asked and encoded as the inverse of the profile's scale and
/// offset (gauges and states as INTEGER, counters as Counter32/Counter64).
/// </summary>
public sealed class SnmpDeviceImage
{
    private static readonly Oid SysDescr = Oid.Parse("1.3.6.1.2.1.1.1.0");
    private static readonly Oid SysObjectId = Oid.Parse("1.3.6.1.2.1.1.2.0");
    private static readonly Oid SysUpTime = Oid.Parse("1.3.6.1.2.1.1.3.0");
    private static readonly Oid SysName = Oid.Parse("1.3.6.1.2.1.1.5.0");
    private readonly SimulatedSite _site;
    private readonly Oid[] _oids;
    private readonly Func<SnmpValue>[] _values;
    private readonly Dictionary<Oid, (ProfileMetric Metric, int? Row)> _writable;

    private SnmpDeviceImage(SimulatedSite site, SimDeviceBinding device, List<(Oid Oid, Func<SnmpValue> Value)> entries, IReadOnlyList<string> unsupported, Dictionary<Oid, (ProfileMetric, int?)> writable)
    {
        _writable = writable;
        _site = site;
        Device = device;
        entries.Sort((a, b) => a.Oid.CompareTo(b.Oid));
        _oids = [.. entries.Select(e => e.Oid)];
        _values = [.. entries.Select(e => e.Value)];
        Unsupported = unsupported;
    }

    public SimDeviceBinding Device { get; }

    /// <summary>Profile metrics the simulator has no value for (not served, so a poll reports them missing).</summary>
    public IReadOnlyList<string> Unsupported { get; }

    public int Count => _oids.Length;

    public static SnmpDeviceImage Build(SimulatedSite site, SimDeviceBinding device, DeviceProfile profile)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(profile);
        var entries = new List<(Oid, Func<SnmpValue>)>
        {
            (SysDescr, () => SnmpValue.OctetString($"EdgeTwin simulated {profile.Vendor} {profile.Model} ({device.Kind} {device.EntityId})")),
            (SysObjectId, () => SnmpValue.ObjectIdentifier(Oid.Parse("1.3.6.1.4.1.8072.3.2.10"))),
            (SysUpTime, () => SnmpValue.TimeTicks((uint)Math.Min(uint.MaxValue, Math.Max(0, (site.Now - site.Spec.Start + site.Spec.WarmUp).TotalMilliseconds / 10)))),
            (SysName, () => SnmpValue.OctetString(device.DeviceId)),
        };
        var unsupported = new List<string>();
        var writable = new Dictionary<Oid, (ProfileMetric, int?)>();
        var seen = new HashSet<Oid>(entries.Select(e => e.Item1));

        void Add(Oid oid, Func<SnmpValue> value)
        {
            if (seen.Add(oid))
            {
                entries.Add((oid, value));
            }
        }

        foreach (var metric in profile.Metrics)
        {
            if (metric.Oid is null || !Oid.TryParse(metric.Oid.TrimStart('.'), out var oid))
            {
                continue;
            }

            if (RoleValues.TryRead(site, device, metric.Role, null, out _, metric.Name))
            {
                Add(oid, () => Encode(site, device, metric, null));
                if (metric.Writable)
                {
                    writable[oid] = (metric, null);
                }
            }
            else
            {
                unsupported.Add(metric.Name);
            }
        }

        foreach (var table in profile.Tables)
        {
            var rows = RowCount(site, device, table);
            var anyRow = false;
            foreach (var column in table.Columns)
            {
                if (column.Oid is null || !Oid.TryParse(column.Oid.TrimStart('.'), out var columnOid))
                {
                    continue;
                }

                if (!RoleValues.TryRead(site, device, column.Role, 1, out _, column.Name))
                {
                    unsupported.Add(table.Name + "." + column.Name);
                    continue;
                }

                anyRow = true;
                for (var row = 1; row <= rows; row++)
                {
                    var r = row;
                    Add(columnOid.Append((uint)row), () => Encode(site, device, column, r));
                    if (column.Writable)
                    {
                        writable[columnOid.Append((uint)row)] = (column, r);
                    }
                }
            }

            if (anyRow && table.LabelOid is { } labelText && Oid.TryParse(labelText.TrimStart('.'), out var labelOid))
            {
                for (var row = 1; row <= rows; row++)
                {
                    // A column of OIDs (label_names) answers with the OID the profile names so, as the device's MIB does.
                    var label = RowLabel(device, table, row);
                    var named = table.LabelNames.FirstOrDefault(n => string.Equals(n.Value, label, StringComparison.OrdinalIgnoreCase)).Key;
                    var value = named is not null && Oid.TryParse(named.TrimStart('.'), out var nameOid) ? SnmpValue.ObjectIdentifier(nameOid) : SnmpValue.OctetString(label);
                    Add(labelOid.Append((uint)row), () => value);
                }
            }
        }

        return new SnmpDeviceImage(site, device, entries, unsupported, writable);
    }

    /// <summary>
    /// SET of one OID: only the profile's writable metrics the simulator models (set points) accept it; the value is decoded
    /// with the metric's scale and offset and applied to the simulated unit. Returns the SNMP error status (noError when applied).
    /// </summary>
    public SnmpErrorStatus TrySet(Oid oid, SnmpValue value)
    {
        if (!_writable.TryGetValue(oid, out var target))
        {
            return Array.BinarySearch(_oids, oid) >= 0 ? SnmpErrorStatus.NotWritable : SnmpErrorStatus.NoCreation;
        }

        if (value.Type is not (SnmpType.Integer or SnmpType.Gauge32) || !value.TryGetNumber(out var raw))
        {
            return SnmpErrorStatus.WrongType;
        }

        var engineering = target.Metric.Convert(raw);
        lock (_site.SyncRoot)
        {
            return RoleValues.TryWrite(_site, Device, target.Metric.Role, target.Row, engineering, target.Metric.Unit)
                ? SnmpErrorStatus.NoError
                : SnmpErrorStatus.WrongValue;
        }
    }

    /// <summary>GET: the value at exactly <paramref name="oid"/>, or false (noSuchObject).</summary>
    public bool TryGet(Oid oid, out SnmpValue value)
    {
        var index = Array.BinarySearch(_oids, oid);
        if (index < 0)
        {
            value = SnmpValue.NoSuchObject;
            return false;
        }

        lock (_site.SyncRoot)
        {
            value = _values[index]();
        }

        return true;
    }

    /// <summary>GETNEXT: the first OID after <paramref name="oid"/> and its value, or false (endOfMibView).</summary>
    public bool TryGetNext(Oid oid, out VarBind next)
    {
        var index = Array.BinarySearch(_oids, oid);
        index = index >= 0 ? index + 1 : ~index;
        if (index >= _oids.Length)
        {
            next = new VarBind(oid, SnmpValue.EndOfMibView);
            return false;
        }

        lock (_site.SyncRoot)
        {
            next = new VarBind(_oids[index], _values[index]());
        }

        return true;
    }

    /// <summary>Every OID served, in order (for tests and <c>edgetwin sim</c>'s listing).</summary>
    public IReadOnlyList<Oid> Oids => _oids;

    private static SnmpValue Encode(SimulatedSite site, SimDeviceBinding device, ProfileMetric metric, int? row)
    {
        if (!RoleValues.TryRead(site, device, metric.Role, row, out var value, metric.Name)
            || !RawValue.TryEncode(value, metric.Unit, metric.Scale, metric.Offset, metric.States, out var raw)
            || double.IsNaN(raw))
        {
            return SnmpValue.NoSuchInstance;
        }

        var rounded = Math.Round(raw);
        if (metric.Kind == MetricKind.Counter)
        {
            return rounded <= uint.MaxValue
                ? SnmpValue.Counter32((uint)Math.Max(0, rounded))
                : SnmpValue.Counter64((ulong)rounded);
        }

        return rounded is >= int.MinValue and <= int.MaxValue
            ? SnmpValue.Integer((int)rounded)
            : SnmpValue.Gauge32((uint)Math.Clamp(rounded, 0, uint.MaxValue));
    }

    /// <summary>How many rows a table has on this device, from what its index names.</summary>
    private static int RowCount(SimulatedSite site, SimDeviceBinding device, ProfileTable table)
    {
        var tag = table.IndexTag.ToLowerInvariant();
        var count = device.Kind switch
        {
            SimEntityKind.Pdu when tag.Contains("outlet", StringComparison.Ordinal) => site.Pdu(device.EntityId).OutletCount,
            SimEntityKind.Pdu when tag.Contains("phase", StringComparison.Ordinal) || tag.Contains("line", StringComparison.Ordinal) || tag.Contains("bank", StringComparison.Ordinal) => site.Pdu(device.EntityId).PhaseCount,
            SimEntityKind.Pdu or SimEntityKind.Rack or SimEntityKind.CoolingUnit when tag.Contains("sensor", StringComparison.Ordinal) || tag.Contains("probe", StringComparison.Ordinal) => 2,
            _ => 1,
        };
        return Math.Min(count, table.MaxRows);
    }

    private static string RowLabel(SimDeviceBinding device, ProfileTable table, int row) =>
        device.Kind == SimEntityKind.RackProbe ? $"{device.EntityId} inlet"
        : table.IndexTag.Contains("sensor", StringComparison.OrdinalIgnoreCase) || table.IndexTag.Contains("probe", StringComparison.OrdinalIgnoreCase)
            ? device.Kind == SimEntityKind.CoolingUnit
                ? (row == 1 ? "Supply air" : "Return air")
                : (row == 1 ? "Front (inlet)" : "Rear (outlet)")
            : string.Create(CultureInfo.InvariantCulture, $"{table.IndexTag} {row}");
}
