using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Server;

/// <summary>A client wrote to the map (FC 5, 6, 15, 16, 23): the table, first address and item count.</summary>
public sealed class ModbusWriteEventArgs(ModbusTable table, ushort address, int count) : EventArgs
{
    public ModbusTable Table { get; } = table;

    public ushort Address { get; } = address;

    public int Count { get; } = count;
}

/// <summary>
/// The four tables of one unit. Only addresses added with <see cref="AddRange"/> exist; the rest answer
/// ILLEGAL DATA ADDRESS, like a real device's sparse map. Thread-safe: a simulator may write values while
/// the server reads them; one value (all its registers) is written atomically, and <see cref="Update"/>
/// makes several writes one atomic change.
/// </summary>
public sealed class ModbusRegisterMap
{
    private readonly object _gate = new();
    private readonly List<Segment>[] _tables = [[], [], [], []];

    /// <summary>Raised after a Modbus client wrote coils or holding registers (not for local Set calls).</summary>
    public event EventHandler<ModbusWriteEventArgs>? Written;

    /// <summary>Defines addresses [start, start+count) of a table (initially 0); overlapping ranges merge.</summary>
    public ModbusRegisterMap AddRange(ModbusTable table, int start, int count)
    {
        if (start < 0 || count < 1 || start + count > 0x10000)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"range {start}+{count} outside 0..65535");
        }

        lock (_gate)
        {
            var segments = _tables[(int)table];
            int end = start + count;
            var merged = new List<Segment>();
            var values = new Dictionary<int, ushort>();
            foreach (var s in segments)
            {
                if (s.Start <= end && s.End >= start)
                {
                    start = Math.Min(start, s.Start);
                    end = Math.Max(end, s.End);
                    for (int i = 0; i < s.Values.Length; i++)
                    {
                        values[s.Start + i] = s.Values[i];
                    }

                    merged.Add(s);
                }
            }

            var segment = new Segment(start, new ushort[end - start]);
            foreach (var (address, value) in values)
            {
                segment.Values[address - start] = value;
            }

            segments.RemoveAll(merged.Contains);
            segments.Add(segment);
            segments.Sort((a, b) => a.Start.CompareTo(b.Start));
        }

        return this;
    }

    /// <summary>Defines the addresses a point occupies.</summary>
    public ModbusRegisterMap AddPoint(ModbusPoint point) => AddRange(point.Table, point.ProtocolAddress, point.Length);

    /// <summary>Runs <paramref name="changes"/> as one atomic change: no request sees half of it.</summary>
    public void Update(Action<ModbusRegisterMap> changes)
    {
        lock (_gate)
        {
            changes(this);
        }
    }

    public ushort GetRegister(ModbusTable table, int address)
    {
        lock (_gate)
        {
            var s = Find(table, address, 1);
            return s.Values[address - s.Start];
        }
    }

    public void SetRegister(ModbusTable table, int address, ushort value) => SetRegisters(table, address, [value]);

    public void SetRegisters(ModbusTable table, int address, ReadOnlySpan<ushort> values)
    {
        lock (_gate)
        {
            var s = Find(table, address, values.Length);
            values.CopyTo(s.Values.AsSpan(address - s.Start));
        }
    }

    public bool GetBit(ModbusTable table, int address) => GetRegister(table, address) != 0;

    public void SetBit(ModbusTable table, int address, bool value) => SetRegister(table, address, value ? (ushort)1 : (ushort)0);

    /// <summary>Writes an engineering value through the point's type, order, scale and offset.</summary>
    public void SetValue(ModbusPoint point, double value)
    {
        if (point.Table.IsBitTable())
        {
            SetBit(point.Table, point.ProtocolAddress, value != 0);
            return;
        }

        Span<ushort> registers = stackalloc ushort[4];
        int n = point.Length;
        point.Encode(value, registers[..n]);
        SetRegisters(point.Table, point.ProtocolAddress, registers[..n]);
    }

    public void SetString(ModbusPoint point, string value)
    {
        var registers = new ushort[point.Length];
        ModbusValueCodec.EncodeString(value, point.Order, registers);
        SetRegisters(point.Table, point.ProtocolAddress, registers);
    }

    public double GetValue(ModbusPoint point)
    {
        var registers = new ushort[point.Length];
        lock (_gate)
        {
            var s = Find(point.Table, point.ProtocolAddress, point.Length);
            s.Values.AsSpan(point.ProtocolAddress - s.Start, point.Length).CopyTo(registers);
        }

        return point.Table.IsBitTable() ? point.DecodeBit(registers[0] != 0) : point.Decode(registers);
    }

    /// <summary>Copies [address, address+count) or returns ILLEGAL DATA ADDRESS when any of it is undefined.</summary>
    internal ModbusExceptionCode? TryRead(ModbusTable table, int address, int count, Span<ushort> destination)
    {
        lock (_gate)
        {
            var s = TryFind(table, address, count);
            if (s is null)
            {
                return ModbusExceptionCode.IllegalDataAddress;
            }

            s.Values.AsSpan(address - s.Start, count).CopyTo(destination);
            return null;
        }
    }

    internal ModbusExceptionCode? TryWrite(ModbusTable table, int address, ReadOnlySpan<ushort> values)
    {
        lock (_gate)
        {
            var s = TryFind(table, address, values.Length);
            if (s is null)
            {
                return ModbusExceptionCode.IllegalDataAddress;
            }

            values.CopyTo(s.Values.AsSpan(address - s.Start));
        }

        Written?.Invoke(this, new ModbusWriteEventArgs(table, (ushort)address, values.Length));
        return null;
    }

    /// <summary>FC 23 semantics: the write happens before the read, both atomically.</summary>
    internal ModbusExceptionCode? TryWriteThenRead(int writeAddress, ReadOnlySpan<ushort> values, int readAddress, Span<ushort> destination)
    {
        lock (_gate)
        {
            var w = TryFind(ModbusTable.HoldingRegisters, writeAddress, values.Length);
            var r = TryFind(ModbusTable.HoldingRegisters, readAddress, destination.Length);
            if (w is null || r is null)
            {
                return ModbusExceptionCode.IllegalDataAddress;
            }

            values.CopyTo(w.Values.AsSpan(writeAddress - w.Start));
            r.Values.AsSpan(readAddress - r.Start, destination.Length).CopyTo(destination);
        }

        Written?.Invoke(this, new ModbusWriteEventArgs(ModbusTable.HoldingRegisters, (ushort)writeAddress, values.Length));
        return null;
    }

    private Segment Find(ModbusTable table, int address, int count) =>
        TryFind(table, address, count)
        ?? throw new ArgumentOutOfRangeException(nameof(address), $"{table} {address}+{count} is not defined in this register map");

    private Segment? TryFind(ModbusTable table, int address, int count)
    {
        var segments = _tables[(int)table];
        int lo = 0, hi = segments.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            var s = segments[mid];
            if (address < s.Start)
            {
                hi = mid - 1;
            }
            else if (address >= s.End)
            {
                lo = mid + 1;
            }
            else
            {
                return address + count <= s.End ? s : null;
            }
        }

        return null;
    }

    private sealed record Segment(int Start, ushort[] Values)
    {
        public int End => Start + Values.Length;
    }
}
