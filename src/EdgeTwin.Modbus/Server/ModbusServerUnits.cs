using System.Collections.Concurrent;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Server;

/// <summary>
/// One unit (slave id) served: its register map, identification and injectable faults for the simulated site
/// (a device that goes dark, answers slowly or garbles its answers). Faults may change while serving.
/// </summary>
public sealed class ModbusServerUnit(byte unitId, ModbusRegisterMap map)
{
    private long _delayTicks;

    public byte UnitId { get; } = unitId;

    public ModbusRegisterMap Map { get; } = map;

    /// <summary>FC 43/14 objects: 0 vendor name, 1 product code, 2 revision, 3 vendor URL, 4 product name, 5 model name.</summary>
    public IReadOnlyDictionary<byte, string> Identification { get; init; } = new Dictionary<byte, string>
    {
        [0] = "EdgeTwin",
        [1] = "EdgeTwin Modbus server",
        [2] = "1.0",
    };

    /// <summary>When set, the unit does not answer at all (a dead or unplugged device).</summary>
    public volatile bool Silent;

    /// <summary>When set, answers are corrupted on the wire (bad CRC for RTU, bad protocol id for TCP).</summary>
    public volatile bool Garble;

    /// <summary>Added before each answer (a slow device).</summary>
    public TimeSpan ResponseDelay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayTicks));
        set => Interlocked.Exchange(ref _delayTicks, value.Ticks);
    }
}

/// <summary>The units one server (one TCP listener or one serial line) answers for. Units may be added while serving.</summary>
public sealed class ModbusServerUnits
{
    private readonly ConcurrentDictionary<byte, ModbusServerUnit> _units = new();

    public ModbusServerUnit Add(byte unitId, ModbusRegisterMap map, IReadOnlyDictionary<byte, string>? identification = null)
    {
        if (unitId is 0 or > 247)
        {
            throw new ArgumentOutOfRangeException(nameof(unitId), unitId, "unit id must be 1..247 (0 is broadcast)");
        }

        var unit = identification is null ? new ModbusServerUnit(unitId, map) : new ModbusServerUnit(unitId, map) { Identification = identification };
        if (!_units.TryAdd(unitId, unit))
        {
            throw new ArgumentException($"unit {unitId} is already served", nameof(unitId));
        }

        return unit;
    }

    public bool Remove(byte unitId) => _units.TryRemove(unitId, out _);

    public bool TryGetUnit(byte unitId, out ModbusServerUnit unit) => _units.TryGetValue(unitId, out unit!);

    public IEnumerable<ModbusServerUnit> All => _units.Values;
}

/// <summary>Executes one request PDU against a unit's map and writes the response PDU. Pure apart from the map.</summary>
public static class ModbusRequestHandler
{
    public static int Handle(ModbusServerUnit unit, ReadOnlySpan<byte> requestPdu, Span<byte> response)
    {
        ModbusRequest request;
        try
        {
            request = ModbusPdu.ParseRequest(requestPdu);
        }
        catch (ModbusProtocolException)
        {
            // Declared lengths contradict the PDU: the spec's answer is ILLEGAL DATA VALUE.
            return requestPdu.IsEmpty ? 0 : ModbusPdu.WriteExceptionResponse(response, requestPdu[0], ModbusExceptionCode.IllegalDataValue);
        }

        byte fc = (byte)request.FunctionCode;
        var map = unit.Map;
        switch (request.FunctionCode)
        {
            case ModbusFunctionCode.ReadCoils:
            case ModbusFunctionCode.ReadDiscreteInputs:
            {
                if (request.Count is < 1 or > ModbusPdu.MaxReadBits)
                {
                    return Fail(response, fc, ModbusExceptionCode.IllegalDataValue);
                }

                Span<ushort> raw = stackalloc ushort[request.Count];
                var table = request.FunctionCode == ModbusFunctionCode.ReadCoils ? ModbusTable.Coils : ModbusTable.DiscreteInputs;
                if (map.TryRead(table, request.Address, request.Count, raw) is { } error)
                {
                    return Fail(response, fc, error);
                }

                Span<bool> bits = stackalloc bool[request.Count];
                for (int i = 0; i < bits.Length; i++)
                {
                    bits[i] = raw[i] != 0;
                }

                return ModbusPdu.WriteReadBitsResponse(response, request.FunctionCode, bits);
            }

            case ModbusFunctionCode.ReadHoldingRegisters:
            case ModbusFunctionCode.ReadInputRegisters:
            {
                if (request.Count is < 1 or > ModbusPdu.MaxReadRegisters)
                {
                    return Fail(response, fc, ModbusExceptionCode.IllegalDataValue);
                }

                Span<ushort> raw = stackalloc ushort[request.Count];
                var table = request.FunctionCode == ModbusFunctionCode.ReadHoldingRegisters ? ModbusTable.HoldingRegisters : ModbusTable.InputRegisters;
                return map.TryRead(table, request.Address, request.Count, raw) is { } error
                    ? Fail(response, fc, error)
                    : ModbusPdu.WriteReadRegistersResponse(response, request.FunctionCode, raw);
            }

            case ModbusFunctionCode.WriteSingleCoil:
                if (request.Count is not (0 or 0xFF00))
                {
                    return Fail(response, fc, ModbusExceptionCode.IllegalDataValue);
                }

                return map.TryWrite(ModbusTable.Coils, request.Address, [request.Count == 0 ? (ushort)0 : (ushort)1]) is { } e5
                    ? Fail(response, fc, e5)
                    : ModbusPdu.WriteWriteResponse(response, request.FunctionCode, request.Address, request.Count);

            case ModbusFunctionCode.WriteSingleRegister:
                return map.TryWrite(ModbusTable.HoldingRegisters, request.Address, [request.Count]) is { } e6
                    ? Fail(response, fc, e6)
                    : ModbusPdu.WriteWriteResponse(response, request.FunctionCode, request.Address, request.Count);

            case ModbusFunctionCode.WriteMultipleCoils:
            {
                if (request.Count is < 1 or > ModbusPdu.MaxWriteCoils || request.Data.Length != (request.Count + 7) / 8)
                {
                    return Fail(response, fc, ModbusExceptionCode.IllegalDataValue);
                }

                Span<bool> bits = stackalloc bool[request.Count];
                ModbusPdu.UnpackBits(request.Data, bits);
                Span<ushort> raw = stackalloc ushort[request.Count];
                for (int i = 0; i < raw.Length; i++)
                {
                    raw[i] = bits[i] ? (ushort)1 : (ushort)0;
                }

                return map.TryWrite(ModbusTable.Coils, request.Address, raw) is { } e15
                    ? Fail(response, fc, e15)
                    : ModbusPdu.WriteWriteResponse(response, request.FunctionCode, request.Address, request.Count);
            }

            case ModbusFunctionCode.WriteMultipleRegisters:
            {
                if (request.Count is < 1 or > ModbusPdu.MaxWriteRegisters || request.Data.Length != request.Count * 2)
                {
                    return Fail(response, fc, ModbusExceptionCode.IllegalDataValue);
                }

                Span<ushort> raw = stackalloc ushort[request.Count];
                ModbusPdu.ReadRegisters(request.Data, raw);
                return map.TryWrite(ModbusTable.HoldingRegisters, request.Address, raw) is { } e16
                    ? Fail(response, fc, e16)
                    : ModbusPdu.WriteWriteResponse(response, request.FunctionCode, request.Address, request.Count);
            }

            case ModbusFunctionCode.ReadWriteMultipleRegisters:
            {
                if (request.Count is < 1 or > ModbusPdu.MaxReadRegisters
                    || request.WriteCount is < 1 or > ModbusPdu.MaxReadWriteWriteRegisters
                    || request.Data.Length != request.WriteCount * 2)
                {
                    return Fail(response, fc, ModbusExceptionCode.IllegalDataValue);
                }

                Span<ushort> write = stackalloc ushort[request.WriteCount];
                ModbusPdu.ReadRegisters(request.Data, write);
                Span<ushort> read = stackalloc ushort[request.Count];
                return map.TryWriteThenRead(request.WriteAddress, write, request.Address, read) is { } e23
                    ? Fail(response, fc, e23)
                    : ModbusPdu.WriteReadRegistersResponse(response, request.FunctionCode, read);
            }

            case ModbusFunctionCode.EncapsulatedInterface when request.MeiType == ModbusPdu.MeiReadDeviceIdentification:
                return DeviceIdentification(unit, request, response);

            default:
                return Fail(response, fc, ModbusExceptionCode.IllegalFunction);
        }

    }

    private static int Fail(Span<byte> response, byte fc, ModbusExceptionCode code) => ModbusPdu.WriteExceptionResponse(response, fc, code);

    private static int DeviceIdentification(ModbusServerUnit unit, ModbusRequest request, Span<byte> response)
    {
        var code = (ReadDeviceIdCode)request.ReadDeviceIdCode;
        if (code is < ReadDeviceIdCode.Basic or > ReadDeviceIdCode.Specific)
        {
            return ModbusPdu.WriteExceptionResponse(response, (byte)request.FunctionCode, ModbusExceptionCode.IllegalDataValue);
        }

        var ids = unit.Identification;
        if (code == ReadDeviceIdCode.Specific)
        {
            if (!ids.TryGetValue(request.ObjectId, out var one))
            {
                return ModbusPdu.WriteExceptionResponse(response, (byte)request.FunctionCode, ModbusExceptionCode.IllegalDataAddress);
            }

            return ModbusPdu.WriteDeviceIdentificationResponse(response,
                new DeviceIdentificationPage(code, 0x83, false, 0, [new(request.ObjectId, one)]));
        }

        byte max = code switch { ReadDeviceIdCode.Basic => 2, ReadDeviceIdCode.Regular => 0x7F, _ => 0xFF };
        byte first = request.ObjectId;
        var objects = ids.Where(kv => kv.Key >= first && kv.Key <= max).OrderBy(kv => kv.Key).ToList();
        // Page so each response fits one PDU.
        var page = new List<KeyValuePair<byte, string>>();
        int size = 7;
        byte next = 0;
        bool more = false;
        foreach (var kv in objects)
        {
            int len = 2 + Math.Min(kv.Value.Length, 200);
            if (size + len > ModbusPdu.MaxLength)
            {
                more = true;
                next = kv.Key;
                break;
            }

            page.Add(new(kv.Key, kv.Value.Length > 200 ? kv.Value[..200] : kv.Value));
            size += len;
        }

        return ModbusPdu.WriteDeviceIdentificationResponse(response, new DeviceIdentificationPage(code, 0x83, more, next, page));
    }
}
