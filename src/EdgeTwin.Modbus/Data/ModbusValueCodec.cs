using System.Buffers.Binary;
using System.Globalization;

namespace EdgeTwin.Modbus.Data;

/// <summary>
/// Converts between registers and values for every type and word order. Pure; no allocation for numbers.
/// Registers are taken as the wire gives them (big-endian words), then re-ordered to ABCD and read big-endian.
/// </summary>
public static class ModbusValueCodec
{
    /// <summary>
    /// raw × <paramref name="scale"/>, except that a scale whose reciprocal is an integer (0.1, 0.01, 0.05) divides by
    /// that integer: 1234567 × 0.1 is 123456.70000000001, 1234567 / 10 is the double nearest 123456.7. The same rule as
    /// the agent's profiles (ProfileMetric.Convert), so the CLI shows what a profile with that scale will produce.
    /// </summary>
    public static double ApplyScale(double raw, double scale)
    {
        if (scale == 1)
        {
            return raw;
        }

        var divisor = ExactDivisor(scale);
        return divisor != 0 ? raw / divisor : raw * scale;
    }

    /// <summary>The integer n with 1/n == <paramref name="scale"/> exactly (0.1 → 10, 0.05 → 20), or 0 when there is none.</summary>
    public static double ExactDivisor(double scale)
    {
        if (!double.IsFinite(scale) || scale == 0 || Math.Abs(scale) >= 1)
        {
            return 0;
        }

        var n = Math.Round(1 / scale);
        return Math.Abs(n) <= 1e15 && 1 / n == scale ? n : 0;
    }

    public static double DecodeNumber(ReadOnlySpan<ushort> registers, ModbusDataType type, ModbusWordOrder order)
    {
        Span<byte> bytes = stackalloc byte[8];
        int n = type.RegisterCount();
        ToCanonicalBytes(registers[..n], order, bytes[..(2 * n)]);
        return type switch
        {
            ModbusDataType.Bit => BinaryPrimitives.ReadUInt16BigEndian(bytes) != 0 ? 1 : 0,
            ModbusDataType.Int16 => BinaryPrimitives.ReadInt16BigEndian(bytes),
            ModbusDataType.UInt16 => BinaryPrimitives.ReadUInt16BigEndian(bytes),
            ModbusDataType.Int32 => BinaryPrimitives.ReadInt32BigEndian(bytes),
            ModbusDataType.UInt32 => BinaryPrimitives.ReadUInt32BigEndian(bytes),
            ModbusDataType.Int64 => BinaryPrimitives.ReadInt64BigEndian(bytes),
            ModbusDataType.UInt64 => BinaryPrimitives.ReadUInt64BigEndian(bytes),
            ModbusDataType.Float32 => WidenShortest(BinaryPrimitives.ReadSingleBigEndian(bytes)),
            ModbusDataType.Float64 => BinaryPrimitives.ReadDoubleBigEndian(bytes),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a numeric type"),
        };
    }

    /// <summary>
    /// A float32 as the double of its shortest decimal form: the device meant 0.97, the float nearest it is
    /// 0.9700000286102295 as a double, and that is what went on the wire. Narrowing back gives the same float, so
    /// nothing the device said is lost. Formatted into a stack buffer: no allocation.
    /// </summary>
    public static double WidenShortest(float value)
    {
        if (!float.IsFinite(value))
        {
            return value;
        }

        Span<char> text = stackalloc char[32];
        return value.TryFormat(text, out var written, "R", CultureInfo.InvariantCulture)
            ? double.Parse(text[..written], NumberStyles.Float, CultureInfo.InvariantCulture)
            : value;
    }

    /// <summary>The raw bits of an integer value (sign-extended ones kept as two's complement), for bit fields.</summary>
    public static ulong DecodeRawBits(ReadOnlySpan<ushort> registers, ModbusDataType type, ModbusWordOrder order)
    {
        Span<byte> bytes = stackalloc byte[8];
        int n = type.RegisterCount();
        ToCanonicalBytes(registers[..n], order, bytes[..(2 * n)]);
        return n switch
        {
            1 => BinaryPrimitives.ReadUInt16BigEndian(bytes),
            2 => BinaryPrimitives.ReadUInt32BigEndian(bytes),
            _ => BinaryPrimitives.ReadUInt64BigEndian(bytes),
        };
    }

    /// <summary>Writes <paramref name="value"/> as <paramref name="type"/>; integers are rounded and must fit.</summary>
    public static void EncodeNumber(double value, ModbusDataType type, ModbusWordOrder order, Span<ushort> destination)
    {
        Span<byte> bytes = stackalloc byte[8];
        int n = type.RegisterCount();
        switch (type)
        {
            case ModbusDataType.Bit: BinaryPrimitives.WriteUInt16BigEndian(bytes, value != 0 ? (ushort)1 : (ushort)0); break;
            case ModbusDataType.Int16: BinaryPrimitives.WriteInt16BigEndian(bytes, (short)CheckedInteger(value, short.MinValue, short.MaxValue, type)); break;
            case ModbusDataType.UInt16: BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)CheckedInteger(value, 0, ushort.MaxValue, type)); break;
            case ModbusDataType.Int32: BinaryPrimitives.WriteInt32BigEndian(bytes, (int)CheckedInteger(value, int.MinValue, int.MaxValue, type)); break;
            case ModbusDataType.UInt32: BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)CheckedInteger(value, 0, uint.MaxValue, type)); break;
            case ModbusDataType.Int64: BinaryPrimitives.WriteInt64BigEndian(bytes, checked((long)CheckedInteger(value, long.MinValue, long.MaxValue, type))); break;
            case ModbusDataType.UInt64:
                double r = Math.Round(value);
                if (double.IsNaN(r) || r < 0 || r >= 18446744073709551616.0)
                {
                    throw new ArgumentOutOfRangeException(nameof(value), value, "does not fit uint64");
                }

                BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)r);
                break;
            case ModbusDataType.Float32: BinaryPrimitives.WriteSingleBigEndian(bytes, (float)value); break;
            case ModbusDataType.Float64: BinaryPrimitives.WriteDoubleBigEndian(bytes, value); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "not a numeric type");
        }

        FromCanonicalBytes(bytes[..(2 * n)], order, destination[..n]);
    }

    public static void EncodeInt64(long value, ModbusWordOrder order, Span<ushort> destination)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, value);
        FromCanonicalBytes(bytes, order, destination[..4]);
    }

    public static void EncodeUInt64(ulong value, ModbusWordOrder order, Span<ushort> destination)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        FromCanonicalBytes(bytes, order, destination[..4]);
    }

    /// <summary>ASCII, two characters per register (high byte first for ABCD/CDAB); trailing NULs and spaces are dropped.</summary>
    public static string DecodeString(ReadOnlySpan<ushort> registers, ModbusWordOrder order)
    {
        Span<byte> bytes = registers.Length <= 64 ? stackalloc byte[registers.Length * 2] : new byte[registers.Length * 2];
        ToCanonicalBytes(registers, order, bytes);
        int end = bytes.Length;
        while (end > 0 && (bytes[end - 1] == 0 || bytes[end - 1] == (byte)' '))
        {
            end--;
        }

        // Embedded NUL ends the string, as devices pad with NUL after shorter values.
        int nul = bytes[..end].IndexOf((byte)0);
        if (nul >= 0)
        {
            end = nul;
        }

        return System.Text.Encoding.ASCII.GetString(bytes[..end]);
    }

    public static void EncodeString(string value, ModbusWordOrder order, Span<ushort> destination)
    {
        Span<byte> bytes = destination.Length <= 64 ? stackalloc byte[destination.Length * 2] : new byte[destination.Length * 2];
        bytes.Clear();
        if (System.Text.Encoding.ASCII.GetByteCount(value) > bytes.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"longer than {bytes.Length} characters");
        }

        System.Text.Encoding.ASCII.GetBytes(value, bytes);
        FromCanonicalBytes(bytes, order, destination);
    }

    /// <summary>Bits [offset, offset+length) of <paramref name="raw"/> as an unsigned number.</summary>
    public static ulong ExtractBits(ulong raw, int offset, int length)
    {
        if (offset < 0 || length < 1 || offset + length > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"bit field {offset}+{length} outside 0..64");
        }

        ulong mask = length == 64 ? ulong.MaxValue : (1UL << length) - 1;
        return (raw >> offset) & mask;
    }

    /// <summary>Re-orders wire registers into big-endian ABCD bytes.</summary>
    public static void ToCanonicalBytes(ReadOnlySpan<ushort> registers, ModbusWordOrder order, Span<byte> destination)
    {
        bool swapWords = order is ModbusWordOrder.CDAB or ModbusWordOrder.DCBA;
        bool swapBytes = order is ModbusWordOrder.BADC or ModbusWordOrder.DCBA;
        int n = registers.Length;
        for (int i = 0; i < n; i++)
        {
            ushort word = registers[swapWords ? n - 1 - i : i];
            if (swapBytes)
            {
                word = BinaryPrimitives.ReverseEndianness(word);
            }

            BinaryPrimitives.WriteUInt16BigEndian(destination[(2 * i)..], word);
        }
    }

    public static void FromCanonicalBytes(ReadOnlySpan<byte> bytes, ModbusWordOrder order, Span<ushort> destination)
    {
        bool swapWords = order is ModbusWordOrder.CDAB or ModbusWordOrder.DCBA;
        bool swapBytes = order is ModbusWordOrder.BADC or ModbusWordOrder.DCBA;
        int n = bytes.Length / 2;
        for (int i = 0; i < n; i++)
        {
            ushort word = BinaryPrimitives.ReadUInt16BigEndian(bytes[(2 * i)..]);
            if (swapBytes)
            {
                word = BinaryPrimitives.ReverseEndianness(word);
            }

            destination[swapWords ? n - 1 - i : i] = word;
        }
    }

    private static double CheckedInteger(double value, double min, double max, ModbusDataType type)
    {
        double r = Math.Round(value);
        if (double.IsNaN(r) || r < min || r > max)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"does not fit {type.Name()}");
        }

        return r;
    }
}
