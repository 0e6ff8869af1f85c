namespace EdgeTwin.Core.Profiles;

/// <summary>Modbus data table.</summary>
public enum ModbusTable
{
    /// <summary>Coils (FC 1 read, FC 5/15 write), one bit each.</summary>
    Coil,
    /// <summary>Discrete inputs (FC 2), one bit each.</summary>
    Discrete,
    /// <summary>Input registers (FC 4), 16 bits each.</summary>
    Input,
    /// <summary>Holding registers (FC 3), 16 bits each.</summary>
    Holding,
}

/// <summary>How consecutive registers are decoded.</summary>
public enum ModbusDataType
{
    /// <summary>One bit: a coil/discrete input, or bit <see cref="ModbusRegister.Bit"/> of a register.</summary>
    Bit,
    /// <summary>Signed 16-bit.</summary>
    Int16,
    /// <summary>Unsigned 16-bit.</summary>
    UInt16,
    /// <summary>Signed 32-bit, 2 registers.</summary>
    Int32,
    /// <summary>Unsigned 32-bit, 2 registers.</summary>
    UInt32,
    /// <summary>Signed 64-bit, 4 registers.</summary>
    Int64,
    /// <summary>Unsigned 64-bit, 4 registers.</summary>
    UInt64,
    /// <summary>IEEE 754 single, 2 registers.</summary>
    Float32,
    /// <summary>IEEE 754 double, 4 registers.</summary>
    Float64,
    /// <summary>ASCII, <see cref="ModbusRegister.Length"/> bytes, 2 per register.</summary>
    String,
}

/// <summary>
/// Byte order of a multi-register value, named by where the big-endian bytes A (most significant) … D land.
/// For 64-bit types the same rule extends to four registers (word swap reverses register order).
/// </summary>
public enum WordOrder
{
    /// <summary>Big-endian registers, big-endian bytes (Modbus default).</summary>
    ABCD,
    /// <summary>Low word first, big-endian bytes ("word swap", common in meters).</summary>
    CDAB,
    /// <summary>High word first, bytes swapped inside each register.</summary>
    BADC,
    /// <summary>Fully little-endian.</summary>
    DCBA,
}

/// <summary>Helpers for <see cref="WordOrder"/> and <see cref="ModbusDataType"/>.</summary>
public static class ModbusTypeInfo
{
    /// <summary>True when the low-order register comes first.</summary>
    public static bool SwapsWords(this WordOrder order) => order is WordOrder.CDAB or WordOrder.DCBA;

    /// <summary>True when the two bytes inside each register are swapped.</summary>
    public static bool SwapsBytes(this WordOrder order) => order is WordOrder.BADC or WordOrder.DCBA;

    /// <summary>Registers (or bits, for coil/discrete) one value occupies.</summary>
    public static int RegisterCount(this ModbusDataType type, int stringLength = 0) => type switch
    {
        ModbusDataType.Bit or ModbusDataType.Int16 or ModbusDataType.UInt16 => 1,
        ModbusDataType.Int32 or ModbusDataType.UInt32 or ModbusDataType.Float32 => 2,
        ModbusDataType.Int64 or ModbusDataType.UInt64 or ModbusDataType.Float64 => 4,
        ModbusDataType.String => (stringLength + 1) / 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>True for the single-bit tables.</summary>
    public static bool IsBitTable(this ModbusTable table) => table is ModbusTable.Coil or ModbusTable.Discrete;
}

/// <summary>Where a Modbus metric lives and how to decode it.</summary>
/// <param name="Table">Data table.</param>
/// <param name="Address">Protocol (PDU) address, 0-based: the loader has already applied the profile's <c>addressing</c>.</param>
/// <param name="Type">Data type.</param>
public sealed record ModbusRegister(ModbusTable Table, int Address, ModbusDataType Type)
{
    /// <summary>Byte/word order; null means the profile's <see cref="ModbusProfileSettings.ByteOrder"/>.</summary>
    public WordOrder? Order { get; init; }

    /// <summary>For <see cref="ModbusDataType.Bit"/> in a register table: the bit number 0–15 (0 = least significant).</summary>
    public int? Bit { get; init; }

    /// <summary>For <see cref="ModbusDataType.String"/>: length in bytes.</summary>
    public int? Length { get; init; }

    /// <summary>Registers (or bits) this value spans.</summary>
    public int Count => Table.IsBitTable() ? 1 : Type.RegisterCount(Length ?? 0);
}

/// <summary>The <c>modbus:</c> section of a profile: addressing and request planning.</summary>
/// <param name="Addressing">0 when the register map lists protocol addresses, 1 when it lists 1-based register numbers.</param>
/// <param name="MaxRegistersPerRead">Largest read the device accepts (≤125 registers, ≤2000 bits).</param>
/// <param name="GapTolerance">Unused registers a single read may span to merge two ranges (0 = never read unlisted registers).</param>
/// <param name="ByteOrder">Default order of multi-register values.</param>
public sealed record ModbusProfileSettings(int Addressing = 0, int MaxRegistersPerRead = 125, int GapTolerance = 10, WordOrder ByteOrder = WordOrder.ABCD)
{
    /// <summary>Modbus defaults.</summary>
    public static ModbusProfileSettings Default { get; } = new();
}
