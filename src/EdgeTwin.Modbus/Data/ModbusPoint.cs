using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Data;

/// <summary>
/// One value on a device: where it lives and how to read it. Engineering value = raw × Scale + Offset,
/// where raw is the whole value, or the bit field [BitOffset, BitOffset+BitLength) of it when BitOffset is set.
/// </summary>
public sealed record ModbusPoint
{
    public ModbusPoint(ModbusTable table, int address, ModbusDataType type = ModbusDataType.UInt16)
    {
        Table = table;
        Address = address;
        Type = table.IsBitTable() ? ModbusDataType.Bit : type;
    }

    public ModbusTable Table { get; init; }

    /// <summary>The address as configured (see <see cref="AddressBase"/>).</summary>
    public int Address { get; init; }

    public ModbusAddressBase AddressBase { get; init; } = ModbusAddressBase.Zero;

    public ModbusDataType Type { get; init; }

    public ModbusWordOrder Order { get; init; } = ModbusWordOrder.ABCD;

    public double Scale { get; init; } = 1;

    public double Offset { get; init; }

    /// <summary>First bit of a bit field (0 = least significant), or null for the whole value.</summary>
    public int? BitOffset { get; init; }

    public int BitLength { get; init; } = 1;

    /// <summary>Registers of an ASCII string.</summary>
    public int StringRegisters { get; init; }

    /// <summary>The protocol (0-based) address sent on the wire.</summary>
    public ushort ProtocolAddress => checked((ushort)(Address - (int)AddressBase));

    /// <summary>Registers (or bits, for coils and discrete inputs) the point occupies.</summary>
    public int Length => Table.IsBitTable() ? 1 : Type.RegisterCount(StringRegisters);

    /// <summary>Checks the definition; returns the problems (empty when valid), each naming the field.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        int protocolAddress = Address - (int)AddressBase;
        if (protocolAddress < 0 || protocolAddress > ushort.MaxValue)
        {
            problems.Add($"address {Address} ({AddressBase}-based) is outside 0..65535 on the wire");
        }
        else if (protocolAddress + (Type == ModbusDataType.Ascii && StringRegisters <= 0 ? 1 : Length) > 0x10000)
        {
            problems.Add($"address {Address} + {Length} registers runs past 65535");
        }

        if (Table.IsBitTable() && Type != ModbusDataType.Bit)
        {
            problems.Add($"{Table} hold single bits; type must be bit, not {Type.Name()}");
        }

        if (Type == ModbusDataType.Ascii && StringRegisters <= 0)
        {
            problems.Add("an ASCII string needs a register count (StringRegisters > 0)");
        }

        if (BitOffset is { } bit)
        {
            int width = 16 * (Type == ModbusDataType.Ascii ? 1 : Type.RegisterCount());
            if (Type is ModbusDataType.Float32 or ModbusDataType.Float64 or ModbusDataType.Ascii)
            {
                problems.Add($"bit fields need an integer type, not {Type.Name()}");
            }
            else if (bit < 0 || BitLength < 1 || bit + BitLength > width)
            {
                problems.Add($"bit field {bit}+{BitLength} does not fit in {width} bits");
            }
        }

        if (Scale == 0 || double.IsNaN(Scale) || double.IsInfinity(Scale))
        {
            problems.Add($"scale must be a finite non-zero number, got {Scale}");
        }

        return problems;
    }

    /// <summary>Decodes the engineering value from this point's registers (exactly <see cref="Length"/> of them).</summary>
    public double Decode(ReadOnlySpan<ushort> registers)
    {
        double raw;
        if (BitOffset is { } bit)
        {
            var type = Type == ModbusDataType.Bit ? ModbusDataType.UInt16 : Type;
            raw = ModbusValueCodec.ExtractBits(ModbusValueCodec.DecodeRawBits(registers, type, Order), bit, BitLength);
        }
        else
        {
            raw = ModbusValueCodec.DecodeNumber(registers, Type, Order);
        }

        return ModbusValueCodec.ApplyScale(raw, Scale) + Offset;
    }

    public double DecodeBit(bool bit) => ModbusValueCodec.ApplyScale(bit ? 1 : 0, Scale) + Offset;

    /// <summary>Encodes an engineering value into registers (for servers and writes); not for bit fields.</summary>
    public void Encode(double value, Span<ushort> destination)
    {
        if (BitOffset is not null)
        {
            throw new InvalidOperationException("a bit field cannot be encoded on its own; write the whole register");
        }

        ModbusValueCodec.EncodeNumber((value - Offset) / Scale, Type, Order, destination);
    }
}
