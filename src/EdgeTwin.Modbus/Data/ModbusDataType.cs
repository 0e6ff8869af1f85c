namespace EdgeTwin.Modbus.Data;

/// <summary>How the registers (or bit) of a point are interpreted.</summary>
public enum ModbusDataType
{
    Bit,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float32,
    Float64,
    Ascii,
}

/// <summary>
/// Byte order of a multi-register value, written as the position of the value's bytes (A = most significant)
/// on the wire. ABCD is the Modbus standard big-endian; CDAB swaps words; BADC swaps bytes in each word; DCBA both.
/// </summary>
public enum ModbusWordOrder
{
    ABCD,
    CDAB,
    BADC,
    DCBA,
}

/// <summary>Whether configured addresses count from 0 (protocol addresses) or from 1 (most vendor manuals).</summary>
public enum ModbusAddressBase
{
    Zero = 0,
    One = 1,
}

public static class ModbusDataTypes
{
    /// <summary>Registers a value of this type occupies (strings: <paramref name="stringRegisters"/>).</summary>
    public static int RegisterCount(this ModbusDataType type, int stringRegisters = 0) => type switch
    {
        ModbusDataType.Bit or ModbusDataType.Int16 or ModbusDataType.UInt16 => 1,
        ModbusDataType.Int32 or ModbusDataType.UInt32 or ModbusDataType.Float32 => 2,
        ModbusDataType.Int64 or ModbusDataType.UInt64 or ModbusDataType.Float64 => 4,
        ModbusDataType.Ascii => stringRegisters > 0 ? stringRegisters : throw new ArgumentOutOfRangeException(nameof(stringRegisters), "an ASCII string needs a register count"),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown Modbus data type"),
    };

    public static bool IsNumeric(this ModbusDataType type) => type is not ModbusDataType.Ascii;

    /// <summary>Parses names as written in profiles and on the command line: uint16, INT32, float, double, string, bool ...</summary>
    public static bool TryParse(string? text, out ModbusDataType type)
    {
        type = default;
        switch (text?.Trim().ToUpperInvariant())
        {
            case "BIT" or "BOOL" or "BOOLEAN" or "COIL": type = ModbusDataType.Bit; return true;
            case "INT16" or "SHORT": type = ModbusDataType.Int16; return true;
            case "UINT16" or "WORD": type = ModbusDataType.UInt16; return true;
            case "INT32": type = ModbusDataType.Int32; return true;
            case "UINT32" or "DWORD": type = ModbusDataType.UInt32; return true;
            case "INT64": type = ModbusDataType.Int64; return true;
            case "UINT64": type = ModbusDataType.UInt64; return true;
            case "FLOAT32" or "FLOAT" or "REAL": type = ModbusDataType.Float32; return true;
            case "FLOAT64" or "DOUBLE": type = ModbusDataType.Float64; return true;
            case "ASCII" or "STRING": type = ModbusDataType.Ascii; return true;
            default: return false;
        }
    }

    public static bool TryParseOrder(string? text, out ModbusWordOrder order) =>
        Enum.TryParse(text?.Trim(), ignoreCase: true, out order) && Enum.IsDefined(order);

    public static string Name(this ModbusDataType type) => type.ToString().ToLowerInvariant();
}
