namespace EdgeTwin.Modbus.Protocol;

/// <summary>Public function codes we speak (Modbus Application Protocol V1.1b3, section 6).</summary>
public enum ModbusFunctionCode : byte
{
    ReadCoils = 0x01,
    ReadDiscreteInputs = 0x02,
    ReadHoldingRegisters = 0x03,
    ReadInputRegisters = 0x04,
    WriteSingleCoil = 0x05,
    WriteSingleRegister = 0x06,
    WriteMultipleCoils = 0x0F,
    WriteMultipleRegisters = 0x10,
    ReadWriteMultipleRegisters = 0x17,
    EncapsulatedInterface = 0x2B,
}

/// <summary>Exception codes a device returns in an exception response (section 7).</summary>
public enum ModbusExceptionCode : byte
{
    IllegalFunction = 0x01,
    IllegalDataAddress = 0x02,
    IllegalDataValue = 0x03,
    ServerDeviceFailure = 0x04,
    Acknowledge = 0x05,
    ServerDeviceBusy = 0x06,
    MemoryParityError = 0x08,
    GatewayPathUnavailable = 0x0A,
    GatewayTargetDeviceFailedToRespond = 0x0B,
}

/// <summary>The four data tables of the Modbus data model.</summary>
public enum ModbusTable : byte
{
    Coils,
    DiscreteInputs,
    HoldingRegisters,
    InputRegisters,
}

public static class ModbusTableExtensions
{
    public static bool IsBitTable(this ModbusTable table) => table is ModbusTable.Coils or ModbusTable.DiscreteInputs;

    public static ModbusFunctionCode ReadFunction(this ModbusTable table) => table switch
    {
        ModbusTable.Coils => ModbusFunctionCode.ReadCoils,
        ModbusTable.DiscreteInputs => ModbusFunctionCode.ReadDiscreteInputs,
        ModbusTable.HoldingRegisters => ModbusFunctionCode.ReadHoldingRegisters,
        ModbusTable.InputRegisters => ModbusFunctionCode.ReadInputRegisters,
        _ => throw new ArgumentOutOfRangeException(nameof(table), table, "unknown Modbus table"),
    };

    /// <summary>Most items one read may return (coils/inputs: 2000 bits; registers: 125).</summary>
    public static int MaxReadCount(this ModbusTable table) => table.IsBitTable() ? ModbusPdu.MaxReadBits : ModbusPdu.MaxReadRegisters;
}
