using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Planning;

public sealed record ModbusPlannerOptions
{
    /// <summary>Most registers per read for this device (the protocol allows 125; some devices fewer).</summary>
    public int MaxRegistersPerRead { get; init; } = ModbusPdu.MaxReadRegisters;

    /// <summary>Most coils or inputs per read (the protocol allows 2000).</summary>
    public int MaxBitsPerRead { get; init; } = ModbusPdu.MaxReadBits;

    /// <summary>Unused registers a read may span to merge two neighbours: reading a few extra beats another round trip.</summary>
    public int RegisterGapTolerance { get; init; } = 10;

    /// <summary>Unused bits a read may span to merge two neighbours.</summary>
    public int BitGapTolerance { get; init; } = 64;

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (MaxRegistersPerRead is < 1 or > ModbusPdu.MaxReadRegisters)
        {
            problems.Add($"max registers per read must be 1..{ModbusPdu.MaxReadRegisters}, got {MaxRegistersPerRead}");
        }

        if (MaxBitsPerRead is < 1 or > ModbusPdu.MaxReadBits)
        {
            problems.Add($"max bits per read must be 1..{ModbusPdu.MaxReadBits}, got {MaxBitsPerRead}");
        }

        if (RegisterGapTolerance < 0 || BitGapTolerance < 0)
        {
            problems.Add("gap tolerances must not be negative");
        }

        return problems;
    }
}

/// <summary>One read request: a contiguous range of a table and the points it serves.</summary>
public sealed record ModbusReadBlock(ModbusTable Table, ushort Address, ushort Count, IReadOnlyList<int> Points)
{
    public int End => Address + Count;
}

/// <summary>
/// Merges the points a device profile needs into the fewest reads: points sorted by address are taken greedily
/// into the current read while the gap to it stays within the tolerance and the read within the size limit.
/// For intervals on a line this greedy sweep is optimal.
/// </summary>
public static class ModbusRequestPlanner
{
    public static IReadOnlyList<ModbusReadBlock> Plan(IReadOnlyList<ModbusPoint> points, ModbusPlannerOptions options) =>
        Plan(points, Enumerable.Range(0, points.Count), options);

    public static IReadOnlyList<ModbusReadBlock> Plan(IReadOnlyList<ModbusPoint> points, IEnumerable<int> subset, ModbusPlannerOptions options)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(options));
        }

        var blocks = new List<ModbusReadBlock>();
        foreach (var table in subset.GroupBy(i => points[i].Table).OrderBy(g => g.Key))
        {
            int max = table.Key.IsBitTable() ? options.MaxBitsPerRead : options.MaxRegistersPerRead;
            int gap = table.Key.IsBitTable() ? options.BitGapTolerance : options.RegisterGapTolerance;
            var sorted = table.OrderBy(i => points[i].ProtocolAddress).ThenBy(i => points[i].Length).ToList();
            int start = -1, end = -1;
            var members = new List<int>();
            foreach (int i in sorted)
            {
                var p = points[i];
                int pStart = p.ProtocolAddress, pEnd = pStart + p.Length;
                if (p.Length > max)
                {
                    throw new ArgumentException($"point at {table.Key} {p.Address} needs {p.Length} items, more than one read allows ({max})", nameof(points));
                }

                if (members.Count > 0 && pStart - end <= gap && Math.Max(end, pEnd) - start <= max)
                {
                    end = Math.Max(end, pEnd);
                    members.Add(i);
                    continue;
                }

                if (members.Count > 0)
                {
                    blocks.Add(new ModbusReadBlock(table.Key, (ushort)start, (ushort)(end - start), members));
                }

                start = pStart;
                end = pEnd;
                members = [i];
            }

            if (members.Count > 0)
            {
                blocks.Add(new ModbusReadBlock(table.Key, (ushort)start, (ushort)(end - start), members));
            }
        }

        return blocks;
    }
}
