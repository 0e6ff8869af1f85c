using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Simulator.Physics;
using CoreDataType = EdgeTwin.Core.Profiles.ModbusDataType;
using CoreTable = EdgeTwin.Core.Profiles.ModbusTable;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// The register map of one simulated Modbus device, built from its device profile: each metric's
/// registers (or coil) hold the simulated value encoded with the Modbus library's codec in the
/// profile's type and word order, as the inverse of its scale and offset; bit fields are packed into
/// their register. Reads inside the mapped span of a table return zeros for unmapped gaps (as real
/// meters do); reads outside it fail with "illegal data address".
/// </summary>
public sealed class ModbusDeviceImage
{
    private readonly SimulatedSite _site;
    private readonly Dictionary<LibTable, List<Entry>> _tables;
    private readonly Dictionary<LibTable, (int Start, int End)> _spans;

    private ModbusDeviceImage(SimulatedSite site, SimDeviceBinding device, Dictionary<LibTable, List<Entry>> tables, IReadOnlyList<string> unsupported)
    {
        _site = site;
        Device = device;
        _tables = tables;
        _spans = tables.ToDictionary(t => t.Key, t => (t.Value.Min(e => e.Address), t.Value.Max(e => e.Address + e.Point.Length)));
        Unsupported = unsupported;
    }

    public SimDeviceBinding Device { get; }

    /// <summary>Profile metrics the simulator has no value for (their registers read as zero).</summary>
    public IReadOnlyList<string> Unsupported { get; }

    /// <summary>The mapped addresses: contiguous runs per table (points that share a register merge).</summary>
    public IReadOnlyList<(LibTable Table, int Start, int Count)> Ranges()
    {
        var ranges = new List<(LibTable, int, int)>();
        foreach (var (table, entries) in _tables)
        {
            var start = -1;
            var end = -1;
            foreach (var e in entries.OrderBy(e => e.Address))
            {
                if (start >= 0 && e.Address <= end)
                {
                    end = Math.Max(end, e.Address + e.Point.Length);
                    continue;
                }

                if (start >= 0)
                {
                    ranges.Add((table, start, end - start));
                }

                start = e.Address;
                end = e.Address + e.Point.Length;
            }

            if (start >= 0)
            {
                ranges.Add((table, start, end - start));
            }
        }

        return ranges;
    }

    public static ModbusDeviceImage Build(SimulatedSite site, SimDeviceBinding device, DeviceProfile profile)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(profile);
        var settings = profile.Modbus ?? ModbusProfileSettings.Default;
        var tables = new Dictionary<LibTable, List<Entry>>();
        var unsupported = new List<string>();
        foreach (var metric in profile.AllMetrics)
        {
            if (metric.Register is not { } register)
            {
                continue;
            }

            var table = register.Table switch
            {
                CoreTable.Coil => LibTable.Coils,
                CoreTable.Discrete => LibTable.DiscreteInputs,
                CoreTable.Input => LibTable.InputRegisters,
                _ => LibTable.HoldingRegisters,
            };
            // The loader has already turned the profile's addressing into protocol (0-based) addresses.
            var point = new ModbusPoint(table, register.Address, Map(register.Type))
            {
                Order = (WordOrder)(int)(register.Order ?? settings.ByteOrder) switch
                {
                    WordOrder.CDAB => ModbusWordOrder.CDAB,
                    WordOrder.BADC => ModbusWordOrder.BADC,
                    WordOrder.DCBA => ModbusWordOrder.DCBA,
                    _ => ModbusWordOrder.ABCD,
                },
                Scale = metric.Scale == 0 ? 1 : metric.Scale,
                Offset = metric.Offset,
                BitOffset = register.Table.IsBitTable() ? null : register.Bit,
                StringRegisters = register.Type == CoreDataType.String ? register.Count : 0,
            };
            var supported = register.Type == CoreDataType.String || RoleValues.TryRead(site, device, metric.Role, null, out _, metric.Name);
            if (!supported)
            {
                unsupported.Add(metric.Name);
            }

            if (!tables.TryGetValue(table, out var list))
            {
                tables[table] = list = [];
            }

            list.Add(new Entry(point.Address, point, metric, supported, profile.Model));
        }

        return new ModbusDeviceImage(site, device, tables, unsupported);
    }

    /// <summary>Fills <paramref name="destination"/> with registers [start, start + count) of a register table.</summary>
    /// <returns>False when the range is not inside the device's map (answer with exception 2, illegal data address).</returns>
    public bool TryReadRegisters(LibTable table, int start, Span<ushort> destination)
    {
        if (!InSpan(table, start, destination.Length))
        {
            return false;
        }

        destination.Clear();
        Span<ushort> scratch = stackalloc ushort[64];
        lock (_site.SyncRoot)
        {
            foreach (var entry in _tables[table])
            {
                var length = entry.Point.Length;
                if (entry.Address + length <= start || entry.Address >= start + destination.Length || length > scratch.Length)
                {
                    continue;
                }

                var registers = scratch[..length];
                registers.Clear();
                if (entry.Point.BitOffset is { } bit)
                {
                    // A bit field shares its register with others: OR its bits in.
                    var v = (ulong)Math.Max(0, Math.Round(Raw(entry)));
                    var mask = ((1UL << entry.Point.BitLength) - 1) << bit;
                    var word = (ushort)((v << bit) & mask);
                    registers[0] = word;
                }
                else if (entry.Point.Type == Modbus.Data.ModbusDataType.Ascii)
                {
                    ModbusValueCodec.EncodeString(entry.Model, entry.Point.Order, registers);
                }
                else
                {
                    // A real device saturates a value its register cannot hold rather than wrapping.
                    var raw = Math.Clamp(Raw(entry), RawMin(entry.Point.Type), RawMax(entry.Point.Type));
                    entry.Point.Encode((raw * entry.Point.Scale) + entry.Point.Offset, registers);
                }

                for (var i = 0; i < length; i++)
                {
                    var at = entry.Address + i - start;
                    if (at >= 0 && at < destination.Length)
                    {
                        destination[at] |= registers[i];
                    }
                }
            }
        }

        return true;
    }

    /// <summary>
    /// A client wrote <paramref name="count"/> coils or holding registers at <paramref name="start"/> into <paramref name="map"/>:
    /// each writable metric the write covers whole is decoded (the profile's type, order, scale, offset) and applied to the
    /// simulated unit. The register then shows the value in force at once — the refused value replaced, an accepted one
    /// as the unit holds it — so a read-back shows what the unit did even when a refresh read the unit before the write
    /// reached it and copied the old value over the written one.
    /// </summary>
    public void ApplyWrite(LibTable table, int start, int count, Modbus.Server.ModbusRegisterMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (!_tables.TryGetValue(table, out var entries))
        {
            return;
        }

        foreach (var entry in entries)
        {
            if (!entry.Metric.Writable || entry.Address < start || entry.Address + entry.Point.Length > start + count)
            {
                continue;
            }

            double value;
            if (table is LibTable.Coils)
            {
                value = entry.Point.DecodeBit(map.GetBit(table, entry.Address));
            }
            else
            {
                var registers = new ushort[entry.Point.Length];
                for (var i = 0; i < registers.Length; i++)
                {
                    registers[i] = map.GetRegister(table, entry.Address + i);
                }

                value = entry.Point.Decode(registers);
            }

            lock (_site.SyncRoot)
            {
                RoleValues.TryWrite(_site, Device, entry.Metric.Role, null, value, entry.Metric.Unit);
            }

            if (table is LibTable.HoldingRegisters)
            {
                var registers = new ushort[entry.Point.Length];
                if (TryReadRegisters(table, entry.Address, registers))
                {
                    map.SetRegisters(table, entry.Address, registers);
                }
            }
        }
    }

    /// <summary>Fills <paramref name="destination"/> with coils or discrete inputs [start, start + count).</summary>
    public bool TryReadBits(LibTable table, int start, Span<bool> destination)
    {
        if (!InSpan(table, start, destination.Length))
        {
            return false;
        }

        destination.Clear();
        lock (_site.SyncRoot)
        {
            foreach (var entry in _tables[table])
            {
                var at = entry.Address - start;
                if (at >= 0 && at < destination.Length)
                {
                    destination[at] = Math.Round(Raw(entry)) != 0;
                }
            }
        }

        return true;
    }

    private bool InSpan(LibTable table, int start, int count) =>
        count > 0 && _spans.TryGetValue(table, out var span) && start >= span.Start && start + count <= span.End;

    private double Engineering(Entry entry)
    {
        if (!entry.Supported || !RoleValues.TryRead(_site, Device, entry.Metric.Role, null, out var value, entry.Metric.Name))
        {
            return entry.Point.Offset; // raw zero
        }

        // Engineering value in the metric's unit (the point applies scale and offset itself).
        return RawValue.TryEncode(value, entry.Metric.Unit, 1, 0, entry.Metric.States, out var converted) ? converted : entry.Point.Offset;
    }

    private double Raw(Entry entry) => (Engineering(entry) - entry.Point.Offset) / entry.Point.Scale;

    private static double RawMin(Modbus.Data.ModbusDataType type) => type switch
    {
        Modbus.Data.ModbusDataType.Int16 => short.MinValue,
        Modbus.Data.ModbusDataType.Int32 => int.MinValue,
        Modbus.Data.ModbusDataType.Int64 => -9.2e18,
        Modbus.Data.ModbusDataType.Float32 => float.MinValue,
        Modbus.Data.ModbusDataType.Float64 => double.MinValue,
        _ => 0,
    };

    private static double RawMax(Modbus.Data.ModbusDataType type) => type switch
    {
        Modbus.Data.ModbusDataType.Bit => 1,
        Modbus.Data.ModbusDataType.Int16 => short.MaxValue,
        Modbus.Data.ModbusDataType.UInt16 => ushort.MaxValue,
        Modbus.Data.ModbusDataType.Int32 => int.MaxValue,
        Modbus.Data.ModbusDataType.UInt32 => uint.MaxValue,
        Modbus.Data.ModbusDataType.Int64 => 9.2e18,
        Modbus.Data.ModbusDataType.UInt64 => 1.8e19,
        Modbus.Data.ModbusDataType.Float32 => float.MaxValue,
        _ => double.MaxValue,
    };

    private static Modbus.Data.ModbusDataType Map(CoreDataType type) => type switch
    {
        CoreDataType.Bit => Modbus.Data.ModbusDataType.Bit,
        CoreDataType.Int16 => Modbus.Data.ModbusDataType.Int16,
        CoreDataType.UInt16 => Modbus.Data.ModbusDataType.UInt16,
        CoreDataType.Int32 => Modbus.Data.ModbusDataType.Int32,
        CoreDataType.UInt32 => Modbus.Data.ModbusDataType.UInt32,
        CoreDataType.Int64 => Modbus.Data.ModbusDataType.Int64,
        CoreDataType.UInt64 => Modbus.Data.ModbusDataType.UInt64,
        CoreDataType.Float32 => Modbus.Data.ModbusDataType.Float32,
        CoreDataType.Float64 => Modbus.Data.ModbusDataType.Float64,
        _ => Modbus.Data.ModbusDataType.Ascii,
    };

    private sealed record Entry(int Address, ModbusPoint Point, ProfileMetric Metric, bool Supported, string Model);
}
