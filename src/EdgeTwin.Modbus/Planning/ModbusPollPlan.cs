using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Planning;

/// <summary>The value of one point from one poll: a number, a string (ASCII points) or the error that hid it.</summary>
public readonly record struct ModbusPointReading(double Value, string? Text, Exception? Error)
{
    public bool Ok => Error is null;

    /// <summary>
    /// The registers (or the bit, as 0/1) the value was decoded from, as the device sent them: a slice of the read's
    /// answer, so keeping it costs no copy. Empty when the read failed. Shows a wrong word order or scale at a glance.
    /// </summary>
    public ReadOnlyMemory<ushort> Registers { get; init; }
}

/// <summary>
/// A device's read plan, executed each poll. When the device answers ILLEGAL DATA ADDRESS (a hole in its map
/// inside a merged read) or ILLEGAL DATA VALUE (a read longer than it accepts), the read is split at its widest gap
/// until the reads succeed or a single point is left; the plan keeps the split, so later polls do not retry the
/// failing read. Timeouts and connection errors fail the whole poll (the device is away; the scheduler backs off).
/// </summary>
public sealed class ModbusPollPlan
{
    private readonly ModbusPlannerOptions _options;
    private readonly object _gate = new();
    private IReadOnlyList<ModbusReadBlock> _blocks;

    public ModbusPollPlan(IReadOnlyList<ModbusPoint> points, ModbusPlannerOptions? options = null)
    {
        for (int i = 0; i < points.Count; i++)
        {
            var problems = points[i].Validate();
            if (problems.Count > 0)
            {
                throw new ArgumentException($"point {i} ({points[i].Table} {points[i].Address}): {string.Join("; ", problems)}", nameof(points));
            }
        }

        Points = points;
        _options = options ?? new ModbusPlannerOptions();
        _blocks = ModbusRequestPlanner.Plan(points, _options);
    }

    public IReadOnlyList<ModbusPoint> Points { get; }

    public IReadOnlyList<ModbusReadBlock> Blocks
    {
        get
        {
            lock (_gate)
            {
                return _blocks;
            }
        }
    }

    /// <summary>Requests sent in the last poll (including the failed ones that caused a split), also when it failed.</summary>
    public int LastRequestCount { get; private set; }

    /// <summary>
    /// Requests of the last poll the unit answered (a value or a Modbus exception), also when a later request of the
    /// same poll timed out: a unit that answered is there, only slower than the poll's budget. A gateway's 0x0A/0x0B is
    /// not the unit's answer and is not counted; after one, the rest of the poll is not sent (each point gets it).
    /// </summary>
    public int LastAnsweredCount { get; private set; }

    /// <summary>Reads every point once. Returns one reading per point, in the order of <see cref="Points"/>.</summary>
    public async Task<ModbusPointReading[]> ReadAsync(ModbusClient client, byte unitId, CancellationToken cancellationToken)
    {
        var readings = new ModbusPointReading[Points.Count];
        var blocks = Blocks;
        var learned = new List<ModbusReadBlock>(blocks.Count);
        bool changed = false;
        int requests = 0, answered = 0;
        ModbusDeviceException? unreachable = null;
        try
        {
            foreach (var block in blocks)
            {
                var pending = new Stack<ModbusReadBlock>();
                pending.Push(block);
                while (pending.Count > 0)
                {
                    var current = pending.Pop();
                    if (unreachable is not null)
                    {
                        // The gateway could not reach the unit: asking again costs the gateway's own timeout per read,
                        // the gateway held for the other units behind it, for the same answer.
                        foreach (int i in current.Points)
                        {
                            readings[i] = new ModbusPointReading(double.NaN, null, unreachable);
                        }

                        learned.Add(current);
                        continue;
                    }

                    requests++;
                    try
                    {
                        var raw = await client.ReadAsync(unitId, current.Table, current.Address, current.Count, cancellationToken).ConfigureAwait(false);
                        answered++;
                        Decode(current, raw, readings);
                        learned.Add(current);
                    }
                    catch (ModbusDeviceException ex) when (ex.ExceptionCode is ModbusExceptionCode.IllegalDataAddress or ModbusExceptionCode.IllegalDataValue)
                    {
                        answered++;
                        if (!TrySplit(current, out var first, out var second))
                        {
                            foreach (int i in current.Points)
                            {
                                readings[i] = new ModbusPointReading(double.NaN, null, ex);
                            }

                            learned.Add(current);
                            continue;
                        }

                        changed = true;
                        pending.Push(second);
                        pending.Push(first);
                    }
                    catch (ModbusDeviceException ex) when (IsGatewayUnreachable(ex))
                    {
                        // 0x0A / 0x0B come from a gateway, not from the unit: the unit has not answered.
                        unreachable = ex;
                        foreach (int i in current.Points)
                        {
                            readings[i] = new ModbusPointReading(double.NaN, null, ex);
                        }

                        learned.Add(current);
                    }
                    catch (ModbusDeviceException ex)
                    {
                        answered++;
                        foreach (int i in current.Points)
                        {
                            readings[i] = new ModbusPointReading(double.NaN, null, ex);
                        }

                        learned.Add(current);
                    }
                    catch (ModbusProtocolException ex)
                    {
                        foreach (int i in current.Points)
                        {
                            readings[i] = new ModbusPointReading(double.NaN, null, ex);
                        }

                        learned.Add(current);
                    }
                }
            }
        }
        finally
        {
            LastRequestCount = requests;
            LastAnsweredCount = answered;
        }

        if (changed)
        {
            lock (_gate)
            {
                _blocks = learned;
            }
        }

        return readings;
    }

    /// <summary>
    /// A gateway's GATEWAY PATH UNAVAILABLE (0x0A) or GATEWAY TARGET DEVICE FAILED TO RESPOND (0x0B): the gateway is up,
    /// the unit behind it is not reachable. Not a refusal of the read, so never a reason to split it.
    /// </summary>
    public static bool IsGatewayUnreachable(Exception? error) =>
        error is ModbusDeviceException { ExceptionCode: ModbusExceptionCode.GatewayPathUnavailable or ModbusExceptionCode.GatewayTargetDeviceFailedToRespond };

    /// <summary>Splits a block's points in two halves by address and re-plans each half tightly (no gap merging).</summary>
    private bool TrySplit(ModbusReadBlock block, out ModbusReadBlock first, out ModbusReadBlock second)
    {
        first = second = block;
        // Points at one address (bit fields of one register) stay together.
        var groups = block.Points.GroupBy(i => Points[i].ProtocolAddress).OrderBy(g => g.Key).ToList();
        if (groups.Count <= 1)
        {
            return false;
        }

        // Cut at the widest gap between points: holes in a device's map sit between the registers it documents.
        // With no gaps (a device refusing long reads) cut in the middle.
        int cut = 1, widest = int.MinValue, reach = 0;
        for (int k = 1; k < groups.Count; k++)
        {
            reach = Math.Max(reach, groups[k - 1].Max(i => Points[i].ProtocolAddress + Points[i].Length));
            int gap = groups[k].Key - reach;
            bool better = gap > widest || (gap == widest && Math.Abs(k - (groups.Count / 2)) < Math.Abs(cut - (groups.Count / 2)));
            if (better)
            {
                widest = gap;
                cut = k;
            }
        }

        first = Tight(block.Table, groups.Take(cut).SelectMany(g => g).ToList());
        second = Tight(block.Table, groups.Skip(cut).SelectMany(g => g).ToList());
        return true;
    }

    private ModbusReadBlock Tight(ModbusTable table, List<int> members)
    {
        int start = members.Min(i => Points[i].ProtocolAddress);
        int end = members.Max(i => Points[i].ProtocolAddress + Points[i].Length);
        return new ModbusReadBlock(table, (ushort)start, (ushort)(end - start), members);
    }

    private void Decode(ModbusReadBlock block, ushort[] raw, ModbusPointReading[] readings)
    {
        foreach (int i in block.Points)
        {
            var p = Points[i];
            var registers = raw.AsMemory(p.ProtocolAddress - block.Address, p.Length);
            var slice = registers.Span;
            try
            {
                readings[i] = (p.Table.IsBitTable()
                    ? new ModbusPointReading(p.DecodeBit(slice[0] != 0), null, null)
                    : p.Type == ModbusDataType.Ascii
                        ? new ModbusPointReading(double.NaN, ModbusValueCodec.DecodeString(slice, p.Order), null)
                        : new ModbusPointReading(p.Decode(slice), null, null)) with { Registers = registers };
            }
            catch (ArgumentException ex)
            {
                readings[i] = new ModbusPointReading(double.NaN, null, ex) { Registers = registers };
            }
        }
    }
}
