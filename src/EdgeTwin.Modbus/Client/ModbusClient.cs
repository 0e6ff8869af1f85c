using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Client;

/// <summary>
/// Typed Modbus master API over any transport. Every call takes a CancellationToken; the transport applies
/// its own timeout. Exception responses surface as <see cref="ModbusDeviceException"/> naming the code.
/// Thread-safe: the transport decides how many requests run at once.
/// </summary>
public sealed class ModbusClient : IAsyncDisposable
{
    private readonly bool _ownsTransport;

    public ModbusClient(IModbusTransport transport, bool ownsTransport = true)
    {
        Transport = transport;
        _ownsTransport = ownsTransport;
    }

    public IModbusTransport Transport { get; }

    public string Endpoint => Transport.Endpoint;

    public Task<ushort[]> ReadHoldingRegistersAsync(byte unitId, ushort address, ushort count, CancellationToken cancellationToken = default) =>
        ReadRegistersAsync(unitId, ModbusFunctionCode.ReadHoldingRegisters, address, count, cancellationToken);

    public Task<ushort[]> ReadInputRegistersAsync(byte unitId, ushort address, ushort count, CancellationToken cancellationToken = default) =>
        ReadRegistersAsync(unitId, ModbusFunctionCode.ReadInputRegisters, address, count, cancellationToken);

    public Task<bool[]> ReadCoilsAsync(byte unitId, ushort address, ushort count, CancellationToken cancellationToken = default) =>
        ReadBitsAsync(unitId, ModbusFunctionCode.ReadCoils, address, count, cancellationToken);

    public Task<bool[]> ReadDiscreteInputsAsync(byte unitId, ushort address, ushort count, CancellationToken cancellationToken = default) =>
        ReadBitsAsync(unitId, ModbusFunctionCode.ReadDiscreteInputs, address, count, cancellationToken);

    /// <summary>Reads <paramref name="count"/> items of a table; bits come back as 0/1 registers.</summary>
    public async Task<ushort[]> ReadAsync(byte unitId, ModbusTable table, ushort address, ushort count, CancellationToken cancellationToken = default)
    {
        if (!table.IsBitTable())
        {
            return await ReadRegistersAsync(unitId, table.ReadFunction(), address, count, cancellationToken).ConfigureAwait(false);
        }

        var bits = await ReadBitsAsync(unitId, table.ReadFunction(), address, count, cancellationToken).ConfigureAwait(false);
        return Array.ConvertAll(bits, b => b ? (ushort)1 : (ushort)0);
    }

    public async Task<ushort[]> ReadRegistersAsync(byte unitId, ModbusFunctionCode function, ushort address, ushort count, CancellationToken cancellationToken = default)
    {
        var request = new byte[5];
        ModbusPdu.WriteReadRequest(request, function, address, count);
        var response = await ExchangeAsync(unitId, request, cancellationToken).ConfigureAwait(false);
        var registers = new ushort[count];
        try
        {
            ModbusPdu.ReadRegistersResponse(response, function, count, registers);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request, ex);
        }

        return registers;
    }

    public async Task<bool[]> ReadBitsAsync(byte unitId, ModbusFunctionCode function, ushort address, ushort count, CancellationToken cancellationToken = default)
    {
        var request = new byte[5];
        ModbusPdu.WriteReadRequest(request, function, address, count);
        var response = await ExchangeAsync(unitId, request, cancellationToken).ConfigureAwait(false);
        var bits = new bool[count];
        try
        {
            ModbusPdu.ReadBitsResponse(response, function, count, bits);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request, ex);
        }

        return bits;
    }

    public async Task WriteSingleCoilAsync(byte unitId, ushort address, bool value, CancellationToken cancellationToken = default)
    {
        var request = new byte[5];
        ModbusPdu.WriteWriteSingleCoilRequest(request, address, value);
        var response = await ExchangeAsync(unitId, request, cancellationToken).ConfigureAwait(false);
        if (response.Length == 0)
        {
            return; // a broadcast: nothing answers it
        }

        try
        {
            ModbusPdu.CheckWriteResponse(response, ModbusFunctionCode.WriteSingleCoil, address, value ? (ushort)0xFF00 : (ushort)0);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request, ex);
        }
    }

    public async Task WriteSingleRegisterAsync(byte unitId, ushort address, ushort value, CancellationToken cancellationToken = default)
    {
        var request = new byte[5];
        ModbusPdu.WriteWriteSingleRegisterRequest(request, address, value);
        var response = await ExchangeAsync(unitId, request, cancellationToken).ConfigureAwait(false);
        if (response.Length == 0)
        {
            return; // a broadcast: nothing answers it
        }

        try
        {
            ModbusPdu.CheckWriteResponse(response, ModbusFunctionCode.WriteSingleRegister, address, value);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request, ex);
        }
    }

    public async Task WriteMultipleCoilsAsync(byte unitId, ushort address, bool[] values, CancellationToken cancellationToken = default)
    {
        var request = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteWriteMultipleCoilsRequest(request, address, values);
        var response = await ExchangeAsync(unitId, request.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        if (response.Length == 0)
        {
            return; // a broadcast: nothing answers it
        }

        try
        {
            ModbusPdu.CheckWriteResponse(response, ModbusFunctionCode.WriteMultipleCoils, address, (ushort)values.Length);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request.AsSpan(0, n), ex);
        }
    }

    public async Task WriteMultipleRegistersAsync(byte unitId, ushort address, ushort[] values, CancellationToken cancellationToken = default)
    {
        var request = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteWriteMultipleRegistersRequest(request, address, values);
        var response = await ExchangeAsync(unitId, request.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        if (response.Length == 0)
        {
            return; // a broadcast: nothing answers it
        }

        try
        {
            ModbusPdu.CheckWriteResponse(response, ModbusFunctionCode.WriteMultipleRegisters, address, (ushort)values.Length);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request.AsSpan(0, n), ex);
        }
    }

    /// <summary>FC 23: writes <paramref name="values"/> then reads, in one transaction.</summary>
    public async Task<ushort[]> ReadWriteMultipleRegistersAsync(
        byte unitId, ushort readAddress, ushort readCount, ushort writeAddress, ushort[] values, CancellationToken cancellationToken = default)
    {
        var request = new byte[ModbusPdu.MaxLength];
        int n = ModbusPdu.WriteReadWriteMultipleRegistersRequest(request, readAddress, readCount, writeAddress, values);
        var response = await ExchangeAsync(unitId, request.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        var registers = new ushort[readCount];
        try
        {
            ModbusPdu.ReadRegistersResponse(response, ModbusFunctionCode.ReadWriteMultipleRegisters, readCount, registers);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request.AsSpan(0, n), ex);
        }

        return registers;
    }

    /// <summary>FC 43/14: reads all objects of a category, following "more follows" pages.</summary>
    public async Task<IReadOnlyDictionary<byte, string>> ReadDeviceIdentificationAsync(
        byte unitId, ReadDeviceIdCode code = ReadDeviceIdCode.Basic, CancellationToken cancellationToken = default)
    {
        var objects = new SortedDictionary<byte, string>();
        byte next = 0;
        for (int page = 0; page < 256; page++)
        {
            var request = new byte[4];
            ModbusPdu.WriteReadDeviceIdentificationRequest(request, code, next);
            var response = await ExchangeAsync(unitId, request, cancellationToken).ConfigureAwait(false);
            DeviceIdentificationPage decoded;
            try
            {
                decoded = ModbusPdu.ReadDeviceIdentificationResponse(response);
            }
            catch (ModbusProtocolException ex)
            {
                throw Garbled(unitId, request, ex);
            }

            foreach (var (id, value) in decoded.Objects)
            {
                objects[id] = value;
            }

            if (!decoded.MoreFollows || code == ReadDeviceIdCode.Specific)
            {
                return objects;
            }

            if (decoded.NextObjectId <= next && page > 0)
            {
                throw new ModbusProtocolException($"device identification paging does not advance (next object {decoded.NextObjectId})", response);
            }

            next = decoded.NextObjectId;
        }

        throw new ModbusProtocolException("device identification did not end after 256 pages");
    }

    /// <summary>Sends a raw request PDU; returns the response PDU, throwing on exception responses.</summary>
    public async Task<byte[]> ExchangeAsync(byte unitId, ReadOnlyMemory<byte> request, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[ModbusPdu.MaxLength];
        int n = await Transport.SendAsync(unitId, request, buffer, cancellationToken).ConfigureAwait(false);
        if (n == 0 && unitId == 0 && ModbusPdu.IsWrite(request.Span[0]))
        {
            // An RTU broadcast write: no unit answers one (Serial Line V1.02, 2.1); it failed as "empty response" before.
            return [];
        }

        if (n == 0)
        {
            throw new ModbusProtocolException(unitId == 0
                ? $"{Endpoint}: unit 0 is the broadcast address: no device answers {TransportLink.Describe(request.Span)} sent to it; give the device's own unit id (1..247)"
                : $"{Endpoint}: empty response from unit {unitId}");
        }

        var pdu = buffer[..n];
        string what = TransportLink.Describe(request.Span);
        try
        {
            ModbusPdu.ThrowIfException(unitId, pdu, Endpoint, what);
        }
        catch (ModbusProtocolException ex)
        {
            throw Garbled(unitId, request.Span, ex);
        }

        return pdu;
    }

    /// <summary>A decoder's protocol error with endpoint, unit, function and address (the codec knows only the bytes).</summary>
    private ModbusProtocolException Garbled(byte unitId, ReadOnlySpan<byte> request, ModbusProtocolException ex) =>
        ex.WithContext($"{Endpoint} unit {unitId}: {TransportLink.Describe(request)}");

    public async ValueTask DisposeAsync()
    {
        if (_ownsTransport)
        {
            await Transport.DisposeAsync().ConfigureAwait(false);
        }
    }
}
