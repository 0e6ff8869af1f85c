using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Planning;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;
using FsCheck;
using FsCheck.Fluent;

namespace EdgeTwin.Modbus.Tests.Planning;

public sealed class PlannerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ModbusPoint Hr(int address, ModbusDataType type = ModbusDataType.UInt16) => new(ModbusTable.HoldingRegisters, address, type);

    [Fact]
    public void Neighbours_within_the_gap_tolerance_share_one_read()
    {
        var points = new[] { Hr(0), Hr(1, ModbusDataType.Float32), Hr(8), Hr(20, ModbusDataType.Float64) };
        var blocks = ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions { RegisterGapTolerance = 11 });
        var block = Assert.Single(blocks);
        Assert.Equal((0, 24), (block.Address, block.Count));

        blocks = ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions { RegisterGapTolerance = 2 });
        Assert.Equal([(0, 3), (8, 1), (20, 4)], blocks.Select(b => ((int)b.Address, (int)b.Count)));
    }

    [Fact]
    public void Reads_never_exceed_125_registers_or_the_device_maximum()
    {
        var points = Enumerable.Range(0, 200).Select(i => Hr(i)).ToArray();
        Assert.Equal([125, 75], ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions()).Select(b => (int)b.Count));
        var small = ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions { MaxRegistersPerRead = 32 });
        Assert.Equal(7, small.Count);
        Assert.All(small, b => Assert.True(b.Count <= 32));
    }

    [Fact]
    public void Multi_register_values_are_never_split_across_reads()
    {
        var points = Enumerable.Range(0, 50).Select(i => Hr(i * 4, ModbusDataType.Float64)).ToArray();
        var blocks = ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions { MaxRegistersPerRead = 10 });
        Assert.All(blocks, b => Assert.Equal(8, b.Count));
        Assert.Equal(25, blocks.Count);
    }

    [Fact]
    public void Bits_use_the_2000_limit_and_tables_are_planned_apart()
    {
        var points = Enumerable.Range(0, 2500).Select(i => new ModbusPoint(ModbusTable.Coils, i))
            .Append(new ModbusPoint(ModbusTable.DiscreteInputs, 0))
            .Append(new ModbusPoint(ModbusTable.InputRegisters, 0))
            .ToArray();
        var blocks = ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions());
        Assert.Equal([(ModbusTable.Coils, 2000), (ModbusTable.Coils, 500), (ModbusTable.DiscreteInputs, 1), (ModbusTable.InputRegisters, 1)],
            blocks.Select(b => (b.Table, (int)b.Count)));
    }

    [Fact]
    public void Bit_fields_of_one_register_share_it()
    {
        var points = new[] { Hr(5) with { BitOffset = 0 }, Hr(5) with { BitOffset = 3 }, Hr(5) };
        var block = Assert.Single(ModbusRequestPlanner.Plan(points, new ModbusPlannerOptions()));
        Assert.Equal((5, 1, 3), (block.Address, block.Count, block.Points.Count));
    }

    [Fact]
    public void A_point_longer_than_one_read_is_refused_naming_it() =>
        Assert.Contains("200", Assert.Throws<ArgumentException>(() =>
            ModbusRequestPlanner.Plan([Hr(200, ModbusDataType.Ascii) with { StringRegisters = 130 }], new ModbusPlannerOptions())).Message, StringComparison.Ordinal);

    [Fact]
    public void Plans_cover_every_point_within_limits_with_maximal_merging()
    {
        var gen = from n in Gen.Choose(1, 80)
                  from addresses in Gen.ArrayOf(Gen.Choose(0, 2000), n)
                  from types in Gen.ArrayOf(Gen.Elements(ModbusDataType.UInt16, ModbusDataType.Float32, ModbusDataType.Int64), n)
                  from max in Gen.Choose(4, 125)
                  from gap in Gen.Choose(0, 30)
                  select (addresses.Zip(types, (a, t) => Hr(a, t)).ToArray(), new ModbusPlannerOptions { MaxRegistersPerRead = max, RegisterGapTolerance = gap });
        Prop.ForAll(gen.ToArbitrary(), input =>
        {
            var (points, options) = input;
            var blocks = ModbusRequestPlanner.Plan(points, options);
            var covered = blocks.SelectMany(b => b.Points).Order().ToArray();
            if (!covered.SequenceEqual(Enumerable.Range(0, points.Length)))
            {
                return false;
            }

            foreach (var b in blocks)
            {
                if (b.Count > options.MaxRegistersPerRead
                    || b.Points.Any(i => points[i].ProtocolAddress < b.Address || points[i].ProtocolAddress + points[i].Length > b.End))
                {
                    return false;
                }
            }

            // Greedy maximality: the next block could not have joined the previous one.
            for (int k = 1; k < blocks.Count; k++)
            {
                var prev = blocks[k - 1];
                var next = blocks[k];
                int nextEnd = next.Points.Min(i => points[i].ProtocolAddress) + next.Points.Where(i => points[i].ProtocolAddress == next.Address).Max(i => points[i].Length);
                if (next.Address - prev.End <= options.RegisterGapTolerance && Math.Max(prev.End, nextEnd) - prev.Address <= options.MaxRegistersPerRead)
                {
                    return false;
                }
            }

            return blocks.Count <= points.Length;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public async Task Sparse_map_falls_back_to_smaller_reads_and_remembers_them()
    {
        // Registers 0..9 and 20..29 exist; 10..19 is a hole that answers ILLEGAL DATA ADDRESS.
        var units = PymodbusServer.Units(
            (1, "hr", 0, Enumerable.Range(100, 10).ToArray()),
            (1, "hr", 20, Enumerable.Range(200, 10).ToArray()));
        await using var server = await PymodbusServer.StartTcpAsync(units);
        await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = server.Port }));
        var points = new[] { Hr(0), Hr(5), Hr(8, ModbusDataType.UInt32), Hr(20), Hr(25), Hr(29), Hr(60) };
        var plan = new ModbusPollPlan(points, new ModbusPlannerOptions { RegisterGapTolerance = 50 });
        Assert.Single(plan.Blocks);

        var first = await plan.ReadAsync(client, 1, Ct);
        Assert.Equal(new double[] { 100, 105, (108 << 16) + 109, 200, 205, 209 }, first[..6].Select(r => r.Value));
        var missing = Assert.IsType<ModbusDeviceException>(first[6].Error);
        Assert.Equal(ModbusExceptionCode.IllegalDataAddress, missing.ExceptionCode);
        Assert.True(plan.LastRequestCount > 3);

        // The split is remembered: the next poll sends just the reads that work (plus the dead point's own read).
        var learned = plan.Blocks.Select(b => ((int)b.Address, (int)b.Count)).ToArray();
        Assert.Equal([(0, 10), (20, 10), (60, 1)], learned);
        var second = await plan.ReadAsync(client, 1, Ct);
        Assert.Equal(3, plan.LastRequestCount);
        Assert.Equal(first[..6].Select(r => r.Value), second[..6].Select(r => r.Value));
    }

    [Fact]
    public async Task Device_rejecting_long_reads_is_served_by_halves()
    {
        // pymodbus refuses a read touching any undefined register, so a 1-register hole at 64 stands in for a length limit.
        var values = Enumerable.Range(0, 64).ToArray();
        var units = PymodbusServer.Units((2, "ir", 0, values), (2, "ir", 65, values));
        await using var server = await PymodbusServer.StartTcpAsync(units);
        await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = server.Port }));
        var points = Enumerable.Range(0, 129).Where(i => i != 64).Select(i => new ModbusPoint(ModbusTable.InputRegisters, i, ModbusDataType.UInt16)).ToArray();
        var plan = new ModbusPollPlan(points);
        Assert.Equal(2, plan.Blocks.Count); // 125 + 3
        var readings = await plan.ReadAsync(client, 2, Ct);
        Assert.All(readings, r => Assert.True(r.Ok, r.Error?.Message));
        Assert.Equal(values.Concat(values).Select(v => (double)v), readings.Select(r => r.Value));
        Assert.All(plan.Blocks, b => Assert.DoesNotContain(64, Enumerable.Range(b.Address, b.Count)));
    }
}
