using EdgeTwin.Tests.Shared;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Modbus.Tests.Data;

public sealed class ValueCodecTests
{
    [Fact]
    public void Regression_scale_0_1_decoded_1234567_as_123456_70000000001()
    {
        // 1234567 × 0.1 is 123456.70000000001; the profiles divide by 10 (ProfileMetric.Convert) and get 123456.7.
        var point = new ModbusPoint(ModbusTable.HoldingRegisters, 10, ModbusDataType.Int32) { Order = ModbusWordOrder.CDAB, Scale = 0.1 };
        ushort[] regs = [0xD687, 0x0012];
        Assert.Equal("123456.7", point.Decode(regs).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("0.05", new ModbusPoint(ModbusTable.HoldingRegisters, 0) { Scale = 0.05 }.Decode([1]).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    // 230.5f = 0x43668000, so the bytes are A=43 B=66 C=80 D=00.
    [Theory]
    [InlineData(ModbusWordOrder.ABCD, 0x4366, 0x8000)]
    [InlineData(ModbusWordOrder.CDAB, 0x8000, 0x4366)]
    [InlineData(ModbusWordOrder.BADC, 0x6643, 0x0080)]
    [InlineData(ModbusWordOrder.DCBA, 0x0080, 0x6643)]
    public void Float32_in_every_order(ModbusWordOrder order, int r0, int r1)
    {
        ushort[] regs = [(ushort)r0, (ushort)r1];
        Assert.Equal(230.5, ModbusValueCodec.DecodeNumber(regs, ModbusDataType.Float32, order));
        var back = new ushort[2];
        ModbusValueCodec.EncodeNumber(230.5, ModbusDataType.Float32, order, back);
        Assert.Equal(regs, back);
    }

    [Theory]
    [InlineData(ModbusWordOrder.ABCD, new ushort[] { 0x0102, 0x0304, 0x0506, 0x0708 })]
    [InlineData(ModbusWordOrder.CDAB, new ushort[] { 0x0708, 0x0506, 0x0304, 0x0102 })]
    [InlineData(ModbusWordOrder.BADC, new ushort[] { 0x0201, 0x0403, 0x0605, 0x0807 })]
    [InlineData(ModbusWordOrder.DCBA, new ushort[] { 0x0807, 0x0605, 0x0403, 0x0201 })]
    public void UInt64_in_every_order(ModbusWordOrder order, ushort[] regs)
    {
        Assert.Equal(0x0102030405060708UL, ModbusValueCodec.DecodeRawBits(regs, ModbusDataType.UInt64, order));
        var back = new ushort[4];
        ModbusValueCodec.EncodeUInt64(0x0102030405060708UL, order, back);
        Assert.Equal(regs, back);
    }

    [Fact]
    public void Signed_types_sign_extend()
    {
        Assert.Equal(-2, ModbusValueCodec.DecodeNumber([0xFFFE], ModbusDataType.Int16, ModbusWordOrder.ABCD));
        Assert.Equal(65534, ModbusValueCodec.DecodeNumber([0xFFFE], ModbusDataType.UInt16, ModbusWordOrder.ABCD));
        Assert.Equal(-2, ModbusValueCodec.DecodeNumber([0xFFFF, 0xFFFE], ModbusDataType.Int32, ModbusWordOrder.ABCD));
        Assert.Equal(-2, ModbusValueCodec.DecodeNumber([0xFFFE, 0xFFFF], ModbusDataType.Int32, ModbusWordOrder.CDAB));
        Assert.Equal(4294967294, ModbusValueCodec.DecodeNumber([0xFFFF, 0xFFFE], ModbusDataType.UInt32, ModbusWordOrder.ABCD));
        Assert.Equal(-1, ModbusValueCodec.DecodeNumber([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], ModbusDataType.Int64, ModbusWordOrder.ABCD));
        // int16 byte-swapped: 0xFEFF on the wire is -2 in BADC.
        Assert.Equal(-2, ModbusValueCodec.DecodeNumber([0xFEFF], ModbusDataType.Int16, ModbusWordOrder.BADC));
    }

    [Fact]
    public void Float64_known_value()
    {
        // 1.5 = 0x3FF8000000000000
        Assert.Equal(1.5, ModbusValueCodec.DecodeNumber([0x3FF8, 0, 0, 0], ModbusDataType.Float64, ModbusWordOrder.ABCD));
        Assert.Equal(1.5, ModbusValueCodec.DecodeNumber([0, 0, 0, 0x3FF8], ModbusDataType.Float64, ModbusWordOrder.CDAB));
    }

    [Fact]
    public void Ascii_strings_high_byte_first_and_swapped()
    {
        ushort[] regs = [0x504D, 0x2D31, 0x0000]; // "PM-1" then NUL padding
        Assert.Equal("PM-1", ModbusValueCodec.DecodeString(regs, ModbusWordOrder.ABCD));
        Assert.Equal("MP1-", ModbusValueCodec.DecodeString(regs, ModbusWordOrder.BADC));
        var back = new ushort[3];
        ModbusValueCodec.EncodeString("PM-1", ModbusWordOrder.ABCD, back);
        Assert.Equal(regs, back);
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusValueCodec.EncodeString("too long!", ModbusWordOrder.ABCD, new ushort[2]));
    }

    [Fact]
    public void Integer_encoding_refuses_values_that_do_not_fit()
    {
        var regs = new ushort[4];
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusValueCodec.EncodeNumber(70000, ModbusDataType.UInt16, ModbusWordOrder.ABCD, regs));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusValueCodec.EncodeNumber(-1, ModbusDataType.UInt32, ModbusWordOrder.ABCD, regs));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModbusValueCodec.EncodeNumber(double.NaN, ModbusDataType.Int16, ModbusWordOrder.ABCD, regs));
    }

    [Fact]
    public void Bit_fields_scale_and_offset()
    {
        // Status word 0b1011_0100: bit 2 set, bits 4..7 = 0b1011 = 11.
        var alarm = new ModbusPoint(ModbusTable.HoldingRegisters, 10, ModbusDataType.Bit) { BitOffset = 2 };
        var nibble = new ModbusPoint(ModbusTable.HoldingRegisters, 10, ModbusDataType.UInt16) { BitOffset = 4, BitLength = 4 };
        Assert.Equal(1, alarm.Decode([0b1011_0100]));
        Assert.Equal(0, alarm.Decode([0b1011_0000]));
        Assert.Equal(11, nibble.Decode([0b1011_0100]));

        var temperature = new ModbusPoint(ModbusTable.InputRegisters, 0, ModbusDataType.Int16) { Scale = 0.1, Offset = -40 };
        Assert.Equal(-40 + 23.5, temperature.Decode([235]), 9);
        var regs = new ushort[1];
        temperature.Encode(-16.5, regs);
        Assert.Equal(235, regs[0]);
    }

    [Fact]
    public void One_based_addresses_map_to_protocol_addresses()
    {
        var p = new ModbusPoint(ModbusTable.HoldingRegisters, 1, ModbusDataType.Float32) { AddressBase = ModbusAddressBase.One };
        Assert.Equal(0, p.ProtocolAddress);
        Assert.Empty(p.Validate());
        var bad = p with { Address = 0 };
        Assert.Contains(bad.Validate(), s => s.Contains("outside 0..65535", StringComparison.Ordinal));
    }

    [Fact]
    public void Validation_names_every_problem()
    {
        var p = new ModbusPoint(ModbusTable.HoldingRegisters, 65535, ModbusDataType.Float32) { BitOffset = 3, Scale = 0 };
        var problems = p.Validate();
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, s => s.Contains("runs past", StringComparison.Ordinal));
        Assert.Contains(problems, s => s.Contains("bit fields need an integer", StringComparison.Ordinal));
        Assert.Contains(problems, s => s.Contains("scale", StringComparison.Ordinal));
        Assert.Contains(new ModbusPoint(ModbusTable.InputRegisters, 0, ModbusDataType.Ascii).Validate(), s => s.Contains("register count", StringComparison.Ordinal));
    }

    [Fact]
    public void Coil_points_are_bits() =>
        Assert.Equal(ModbusDataType.Bit, new ModbusPoint(ModbusTable.Coils, 3, ModbusDataType.Float32).Type);

    [Theory]
    [InlineData("uint16", ModbusDataType.UInt16)]
    [InlineData("FLOAT", ModbusDataType.Float32)]
    [InlineData("double", ModbusDataType.Float64)]
    [InlineData("string", ModbusDataType.Ascii)]
    public void Type_names_parse(string text, ModbusDataType expected)
    {
        Assert.True(ModbusDataTypes.TryParse(text, out var t));
        Assert.Equal(expected, t);
        Assert.False(ModbusDataTypes.TryParse("int128", out _));
        Assert.True(ModbusDataTypes.TryParseOrder("cdab", out var o));
        Assert.Equal(ModbusWordOrder.CDAB, o);
        Assert.False(ModbusDataTypes.TryParseOrder("ABDC", out _));
    }

    private static readonly ModbusDataType[] IntegerTypes =
        [ModbusDataType.Int16, ModbusDataType.UInt16, ModbusDataType.Int32, ModbusDataType.UInt32, ModbusDataType.Int64];

    [Property]
    public bool Integers_round_trip_in_every_order(int value, bool negative)
    {
        long v = negative ? -(long)Math.Abs((long)value) : Math.Abs((long)value);
        foreach (var type in IntegerTypes)
        {
            foreach (var order in Enum.GetValues<ModbusWordOrder>())
            {
                var regs = new ushort[4];
                bool fits = type switch
                {
                    ModbusDataType.Int16 => v is >= short.MinValue and <= short.MaxValue,
                    ModbusDataType.UInt16 => v is >= 0 and <= ushort.MaxValue,
                    ModbusDataType.Int32 => v is >= int.MinValue and <= int.MaxValue,
                    ModbusDataType.UInt32 => v is >= 0 and <= uint.MaxValue,
                    _ => true,
                };
                if (!fits)
                {
                    continue;
                }

                ModbusValueCodec.EncodeNumber(v, type, order, regs);
                if (ModbusValueCodec.DecodeNumber(regs, type, order) != v)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// Regression: a float32 register holding 0.97 went on the wire as 0.9700000286102295 (the float widened to double
    /// as is). It is now the double nearest 0.97, and decoding allocates nothing.
    /// </summary>
    [Fact]
    public void Regression_a_float32_register_decodes_to_its_shortest_decimal_without_allocating()
    {
        var regs = new ushort[2];
        ModbusValueCodec.EncodeNumber(0.97f, ModbusDataType.Float32, ModbusWordOrder.ABCD, regs);
        Assert.Equal(0.97, ModbusValueCodec.DecodeNumber(regs, ModbusDataType.Float32, ModbusWordOrder.ABCD));
        Assert.Equal(230.5, ModbusValueCodec.WidenShortest(230.5f));
        Assert.Equal(1e-7, ModbusValueCodec.WidenShortest(1e-7f));
        Assert.Equal(3.4028235E+38, ModbusValueCodec.WidenShortest(float.MaxValue)); // narrows back to float.MaxValue
        Assert.True(double.IsNaN(ModbusValueCodec.WidenShortest(float.NaN)));
        Assert.Equal(double.NegativeInfinity, ModbusValueCodec.WidenShortest(float.NegativeInfinity));

        double sum = 0;
        sum += ModbusValueCodec.DecodeNumber(regs, ModbusDataType.Float32, ModbusWordOrder.ABCD); // warm up
        Allocations.AssertSomeRoundAllocatesNothing(
            () =>
            {
                for (var i = 0; i < 10_000; i++)
                {
                    sum += ModbusValueCodec.DecodeNumber(regs, ModbusDataType.Float32, ModbusWordOrder.ABCD);
                }
            },
            "10,000 float32 decodes");
        Assert.True(sum > 0);
    }

    [Property]
    public bool Floats_round_trip_bit_exact_in_every_order(NormalFloat value)
    {
        foreach (var order in Enum.GetValues<ModbusWordOrder>())
        {
            var regs = new ushort[4];
            ModbusValueCodec.EncodeNumber(value.Get, ModbusDataType.Float64, order, regs);
            if (ModbusValueCodec.DecodeNumber(regs, ModbusDataType.Float64, order) != value.Get)
            {
                return false;
            }

            // A float32 is widened through its shortest decimal form (0.97f → 0.97, not 0.9700000286102295): narrowing
            // it back gives the device's float bit for bit.
            float f = (float)value.Get;
            ModbusValueCodec.EncodeNumber(f, ModbusDataType.Float32, order, regs);
            var decoded = ModbusValueCodec.DecodeNumber(regs, ModbusDataType.Float32, order);
            if (BitConverter.SingleToInt32Bits((float)decoded) != BitConverter.SingleToInt32Bits(f)
                || decoded.ToString("R", System.Globalization.CultureInfo.InvariantCulture) != f.ToString("R", System.Globalization.CultureInfo.InvariantCulture))
            {
                return false;
            }
        }

        return true;
    }

    [Property]
    public bool Orders_are_permutations_that_differ_from_abcd_unless_symmetric(ushort a, ushort b)
    {
        // Decoding CDAB registers equals decoding the swapped registers as ABCD.
        ushort[] regs = [a, b];
        double cdab = ModbusValueCodec.DecodeNumber(regs, ModbusDataType.UInt32, ModbusWordOrder.CDAB);
        double abcdSwapped = ModbusValueCodec.DecodeNumber([b, a], ModbusDataType.UInt32, ModbusWordOrder.ABCD);
        double dcba = ModbusValueCodec.DecodeNumber(regs, ModbusDataType.UInt32, ModbusWordOrder.DCBA);
        double badcSwapped = ModbusValueCodec.DecodeNumber([b, a], ModbusDataType.UInt32, ModbusWordOrder.BADC);
        return cdab == abcdSwapped && dcba == badcSwapped;
    }

    [Fact]
    public void Strings_round_trip_for_generated_ascii()
    {
        var gen = Gen.ArrayOf(Gen.Choose(0x21, 0x7E).Select(c => (char)c)).Select(cs => new string(cs.Take(20).ToArray()));
        Prop.ForAll(gen.ToArbitrary(), s =>
        {
            foreach (var order in Enum.GetValues<ModbusWordOrder>())
            {
                var regs = new ushort[10];
                ModbusValueCodec.EncodeString(s, order, regs);
                if (ModbusValueCodec.DecodeString(regs, order) != s)
                {
                    return false;
                }
            }

            return true;
        }).QuickCheckThrowOnFailure();
    }
}
