using System.Buffers.Binary;

namespace EdgeTwin.Modbus.Protocol;

/// <summary>
/// Pure PDU codec (function code + data, no framing). Writers fill a caller's span and return the length;
/// readers validate every length and count field and throw <see cref="ModbusProtocolException"/> with the bytes.
/// Limits are from the Modbus Application Protocol V1.1b3, section 6.
/// </summary>
public static class ModbusPdu
{
    public const int MaxLength = 253;
    public const int MaxReadBits = 2000;
    public const int MaxReadRegisters = 125;
    public const int MaxWriteCoils = 1968;
    public const int MaxWriteRegisters = 123;
    public const int MaxReadWriteWriteRegisters = 121;
    public const byte MeiReadDeviceIdentification = 0x0E;
    private const ushort CoilOn = 0xFF00;

    // ---------------------------------------------------------------- requests (client side)

    /// <summary>FC 1, 2, 3 or 4: read <paramref name="count"/> items starting at <paramref name="address"/>.</summary>
    public static int WriteReadRequest(Span<byte> destination, ModbusFunctionCode function, ushort address, ushort count)
    {
        int max = function switch
        {
            ModbusFunctionCode.ReadCoils or ModbusFunctionCode.ReadDiscreteInputs => MaxReadBits,
            ModbusFunctionCode.ReadHoldingRegisters or ModbusFunctionCode.ReadInputRegisters => MaxReadRegisters,
            _ => throw new ArgumentOutOfRangeException(nameof(function), function, "not a read function"),
        };
        CheckCount(count, max);
        CheckAddressRange(address, count);
        destination[0] = (byte)function;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], count);
        return 5;
    }

    public static int WriteWriteSingleCoilRequest(Span<byte> destination, ushort address, bool value)
    {
        destination[0] = (byte)ModbusFunctionCode.WriteSingleCoil;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], value ? CoilOn : (ushort)0);
        return 5;
    }

    public static int WriteWriteSingleRegisterRequest(Span<byte> destination, ushort address, ushort value)
    {
        destination[0] = (byte)ModbusFunctionCode.WriteSingleRegister;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], value);
        return 5;
    }

    public static int WriteWriteMultipleCoilsRequest(Span<byte> destination, ushort address, ReadOnlySpan<bool> values)
    {
        CheckCount(values.Length, MaxWriteCoils);
        CheckAddressRange(address, values.Length);
        int byteCount = (values.Length + 7) / 8;
        destination[0] = (byte)ModbusFunctionCode.WriteMultipleCoils;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], (ushort)values.Length);
        destination[5] = (byte)byteCount;
        PackBits(values, destination.Slice(6, byteCount));
        return 6 + byteCount;
    }

    public static int WriteWriteMultipleRegistersRequest(Span<byte> destination, ushort address, ReadOnlySpan<ushort> values)
    {
        CheckCount(values.Length, MaxWriteRegisters);
        CheckAddressRange(address, values.Length);
        destination[0] = (byte)ModbusFunctionCode.WriteMultipleRegisters;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], (ushort)values.Length);
        destination[5] = (byte)(values.Length * 2);
        WriteRegisters(values, destination[6..]);
        return 6 + (values.Length * 2);
    }

    /// <summary>FC 23: write first, then read, in one transaction.</summary>
    public static int WriteReadWriteMultipleRegistersRequest(
        Span<byte> destination, ushort readAddress, ushort readCount, ushort writeAddress, ReadOnlySpan<ushort> values)
    {
        CheckCount(readCount, MaxReadRegisters);
        CheckCount(values.Length, MaxReadWriteWriteRegisters);
        CheckAddressRange(readAddress, readCount);
        CheckAddressRange(writeAddress, values.Length);
        destination[0] = (byte)ModbusFunctionCode.ReadWriteMultipleRegisters;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], readAddress);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], readCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[5..], writeAddress);
        BinaryPrimitives.WriteUInt16BigEndian(destination[7..], (ushort)values.Length);
        destination[9] = (byte)(values.Length * 2);
        WriteRegisters(values, destination[10..]);
        return 10 + (values.Length * 2);
    }

    /// <summary>FC 43 / MEI 14: read device identification (code 1 basic, 2 regular, 3 extended, 4 one object).</summary>
    public static int WriteReadDeviceIdentificationRequest(Span<byte> destination, ReadDeviceIdCode code, byte objectId)
    {
        if (code is < ReadDeviceIdCode.Basic or > ReadDeviceIdCode.Specific)
        {
            throw new ArgumentOutOfRangeException(nameof(code), code, "read device id code must be 1..4");
        }

        destination[0] = (byte)ModbusFunctionCode.EncapsulatedInterface;
        destination[1] = MeiReadDeviceIdentification;
        destination[2] = (byte)code;
        destination[3] = objectId;
        return 4;
    }

    // ---------------------------------------------------------------- requests (server side)

    /// <summary>
    /// Decodes a request PDU. Throws <see cref="ModbusProtocolException"/> only when the PDU contradicts its own
    /// length fields; out-of-range quantities are left to the server, which answers ILLEGAL DATA VALUE.
    /// Unknown function codes decode with only <see cref="ModbusRequest.FunctionCode"/> set.
    /// </summary>
    public static ModbusRequest ParseRequest(ReadOnlySpan<byte> pdu)
    {
        if (pdu.IsEmpty)
        {
            throw new ModbusProtocolException("empty request PDU", pdu);
        }

        var fc = (ModbusFunctionCode)pdu[0];
        switch (fc)
        {
            case ModbusFunctionCode.ReadCoils:
            case ModbusFunctionCode.ReadDiscreteInputs:
            case ModbusFunctionCode.ReadHoldingRegisters:
            case ModbusFunctionCode.ReadInputRegisters:
            case ModbusFunctionCode.WriteSingleCoil:
            case ModbusFunctionCode.WriteSingleRegister:
                RequireLength(pdu, 5, fc);
                return new ModbusRequest(fc, U16(pdu, 1), U16(pdu, 3), 0, 0, default, 0, 0);
            case ModbusFunctionCode.WriteMultipleCoils:
            case ModbusFunctionCode.WriteMultipleRegisters:
            {
                if (pdu.Length < 6)
                {
                    throw new ModbusProtocolException($"{fc} request shorter than 6 bytes", pdu);
                }

                int byteCount = pdu[5];
                RequireLength(pdu, 6 + byteCount, fc);
                return new ModbusRequest(fc, U16(pdu, 1), U16(pdu, 3), 0, 0, pdu.Slice(6, byteCount), 0, 0);
            }

            case ModbusFunctionCode.ReadWriteMultipleRegisters:
            {
                if (pdu.Length < 10)
                {
                    throw new ModbusProtocolException("ReadWriteMultipleRegisters request shorter than 10 bytes", pdu);
                }

                int byteCount = pdu[9];
                RequireLength(pdu, 10 + byteCount, fc);
                return new ModbusRequest(fc, U16(pdu, 1), U16(pdu, 3), U16(pdu, 5), U16(pdu, 7), pdu.Slice(10, byteCount), 0, 0);
            }

            case ModbusFunctionCode.EncapsulatedInterface:
                if (pdu.Length < 2)
                {
                    throw new ModbusProtocolException("encapsulated interface request without MEI type", pdu);
                }

                if (pdu[1] != MeiReadDeviceIdentification)
                {
                    return new ModbusRequest(fc, 0, 0, 0, 0, pdu[2..], 0, 0) { MeiType = pdu[1] };
                }

                RequireLength(pdu, 4, fc);
                return new ModbusRequest(fc, 0, 0, 0, 0, default, pdu[2], pdu[3]) { MeiType = pdu[1] };
            default:
                return new ModbusRequest(fc, 0, 0, 0, 0, pdu[1..], 0, 0);
        }
    }

    // ---------------------------------------------------------------- responses (server side)

    public static int WriteExceptionResponse(Span<byte> destination, byte functionCode, ModbusExceptionCode code)
    {
        destination[0] = (byte)(functionCode | 0x80);
        destination[1] = (byte)code;
        return 2;
    }

    public static int WriteReadBitsResponse(Span<byte> destination, ModbusFunctionCode function, ReadOnlySpan<bool> bits)
    {
        int byteCount = (bits.Length + 7) / 8;
        destination[0] = (byte)function;
        destination[1] = (byte)byteCount;
        PackBits(bits, destination.Slice(2, byteCount));
        return 2 + byteCount;
    }

    /// <summary>FC 3, 4 and 23 responses: byte count then big-endian registers.</summary>
    public static int WriteReadRegistersResponse(Span<byte> destination, ModbusFunctionCode function, ReadOnlySpan<ushort> registers)
    {
        destination[0] = (byte)function;
        destination[1] = (byte)(registers.Length * 2);
        WriteRegisters(registers, destination[2..]);
        return 2 + (registers.Length * 2);
    }

    /// <summary>FC 5, 6, 15, 16 responses: function, address, then value or quantity.</summary>
    public static int WriteWriteResponse(Span<byte> destination, ModbusFunctionCode function, ushort address, ushort valueOrCount)
    {
        destination[0] = (byte)function;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], address);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], valueOrCount);
        return 5;
    }

    public static int WriteDeviceIdentificationResponse(Span<byte> destination, DeviceIdentificationPage page)
    {
        destination[0] = (byte)ModbusFunctionCode.EncapsulatedInterface;
        destination[1] = MeiReadDeviceIdentification;
        destination[2] = (byte)page.Code;
        destination[3] = page.ConformityLevel;
        destination[4] = page.MoreFollows ? (byte)0xFF : (byte)0;
        destination[5] = page.NextObjectId;
        destination[6] = (byte)page.Objects.Count;
        int offset = 7;
        foreach (var (id, value) in page.Objects)
        {
            int len = System.Text.Encoding.ASCII.GetByteCount(value);
            if (len > 255 || offset + 2 + len > MaxLength)
            {
                throw new ArgumentException($"device identification object 0x{id:X2} does not fit in one PDU", nameof(page));
            }

            destination[offset] = id;
            destination[offset + 1] = (byte)len;
            System.Text.Encoding.ASCII.GetBytes(value, destination.Slice(offset + 2, len));
            offset += 2 + len;
        }

        return offset;
    }

    // ---------------------------------------------------------------- responses (client side)

    /// <summary>
    /// Length of the response PDU that starts with <paramref name="start"/>, as its own fields tell it (function code and
    /// byte count; FC 43/14: its objects): 0 when more bytes are needed to tell, -1 when no response can start so (an
    /// unknown function code, or longer than a PDU can be). RTU frames end by it; MBAP checks its length field against it.
    /// </summary>
    public static int TryExpectedResponseLength(ReadOnlySpan<byte> start)
    {
        if (start.IsEmpty)
        {
            return 0;
        }

        byte fc = start[0];
        if ((fc & 0x80) != 0)
        {
            return 2;
        }

        switch ((ModbusFunctionCode)fc)
        {
            case ModbusFunctionCode.ReadCoils:
            case ModbusFunctionCode.ReadDiscreteInputs:
            case ModbusFunctionCode.ReadHoldingRegisters:
            case ModbusFunctionCode.ReadInputRegisters:
            case ModbusFunctionCode.ReadWriteMultipleRegisters:
                return start.Length < 2 ? 0 : 2 + start[1];
            case ModbusFunctionCode.WriteSingleCoil:
            case ModbusFunctionCode.WriteSingleRegister:
            case ModbusFunctionCode.WriteMultipleCoils:
            case ModbusFunctionCode.WriteMultipleRegisters:
                return 5;
            case ModbusFunctionCode.EncapsulatedInterface:
                return DeviceIdResponseLength(start);
            default:
                return -1;
        }
    }

    /// <summary>True for the responses whose second byte is a byte count (FC 1 to 4 and 23).</summary>
    public static bool HasByteCount(byte functionCode) => functionCode is 1 or 2 or 3 or 4 or 23;

    /// <summary>The write functions a unit may receive as a broadcast (FC 5, 6, 15, 16).</summary>
    public static bool IsWrite(byte functionCode) => functionCode is 5 or 6 or 15 or 16;

    private static int DeviceIdResponseLength(ReadOnlySpan<byte> pdu)
    {
        // 2B, 0E, code, conformity, more, next, count, then (id, len, value) per object.
        const int headerLength = 7;
        if (pdu.Length < headerLength)
        {
            return 0;
        }

        int count = pdu[6];
        int offset = headerLength;
        for (int i = 0; i < count; i++)
        {
            if (pdu.Length < offset + 2)
            {
                return 0;
            }

            offset += 2 + pdu[offset + 1];
            if (offset > MaxLength)
            {
                return -1;
            }
        }

        return offset;
    }

    /// <summary>Throws <see cref="ModbusDeviceException"/> when the PDU is an exception response.</summary>
    public static void ThrowIfException(byte unitId, ReadOnlySpan<byte> pdu) => ThrowIfException(unitId, pdu, null, null);

    /// <summary>As <see cref="ThrowIfException(byte, ReadOnlySpan{byte})"/>, the message naming <paramref name="endpoint"/> and <paramref name="request"/> (<c>ReadHoldingRegisters at 30</c>).</summary>
    public static void ThrowIfException(byte unitId, ReadOnlySpan<byte> pdu, string? endpoint, string? request)
    {
        if (pdu.IsEmpty)
        {
            throw new ModbusProtocolException("empty response PDU", pdu);
        }

        if ((pdu[0] & 0x80) != 0)
        {
            if (pdu.Length != 2)
            {
                throw new ModbusProtocolException($"exception response must be 2 bytes, got {pdu.Length}", pdu);
            }

            var function = (ModbusFunctionCode)(pdu[0] & 0x7F);
            throw new ModbusDeviceException(unitId, function, (ModbusExceptionCode)pdu[1], endpoint, request ?? function.ToString());
        }
    }

    /// <summary>Decodes an FC 3/4/23 response of exactly <paramref name="expectedCount"/> registers.</summary>
    public static void ReadRegistersResponse(ReadOnlySpan<byte> pdu, ModbusFunctionCode function, int expectedCount, Span<ushort> destination)
    {
        RequireFunction(pdu, function);
        if (pdu.Length < 2 || pdu[1] != expectedCount * 2 || pdu.Length != 2 + (expectedCount * 2))
        {
            throw new ModbusProtocolException($"{function} response must carry {expectedCount} registers", pdu);
        }

        for (int i = 0; i < expectedCount; i++)
        {
            destination[i] = BinaryPrimitives.ReadUInt16BigEndian(pdu[(2 + (2 * i))..]);
        }
    }

    /// <summary>Decodes an FC 1/2 response of <paramref name="expectedCount"/> bits.</summary>
    public static void ReadBitsResponse(ReadOnlySpan<byte> pdu, ModbusFunctionCode function, int expectedCount, Span<bool> destination)
    {
        RequireFunction(pdu, function);
        int byteCount = (expectedCount + 7) / 8;
        if (pdu.Length < 2 || pdu[1] != byteCount || pdu.Length != 2 + byteCount)
        {
            throw new ModbusProtocolException($"{function} response must carry {byteCount} bytes for {expectedCount} bits", pdu);
        }

        UnpackBits(pdu.Slice(2, byteCount), destination[..expectedCount]);
    }

    /// <summary>Checks the echo of FC 5, 6, 15 and 16.</summary>
    public static void CheckWriteResponse(ReadOnlySpan<byte> pdu, ModbusFunctionCode function, ushort address, ushort valueOrCount)
    {
        RequireFunction(pdu, function);
        if (pdu.Length != 5)
        {
            throw new ModbusProtocolException($"{function} response must be 5 bytes, got {pdu.Length}", pdu);
        }

        if (U16(pdu, 1) != address || U16(pdu, 3) != valueOrCount)
        {
            throw new ModbusProtocolException($"{function} response does not echo address {address} / value {valueOrCount}", pdu);
        }
    }

    public static DeviceIdentificationPage ReadDeviceIdentificationResponse(ReadOnlySpan<byte> pdu)
    {
        RequireFunction(pdu, ModbusFunctionCode.EncapsulatedInterface);
        if (pdu.Length < 7 || pdu[1] != MeiReadDeviceIdentification)
        {
            throw new ModbusProtocolException("read device identification response too short or wrong MEI type", pdu);
        }

        var code = (ReadDeviceIdCode)pdu[2];
        byte conformity = pdu[3];
        bool more = pdu[4] switch
        {
            0x00 => false,
            0xFF => true,
            _ => throw new ModbusProtocolException($"read device identification 'more follows' must be 00 or FF, got {pdu[4]:X2}", pdu),
        };
        byte next = pdu[5];
        int count = pdu[6];
        var objects = new List<KeyValuePair<byte, string>>(count);
        int offset = 7;
        for (int i = 0; i < count; i++)
        {
            if (offset + 2 > pdu.Length || offset + 2 + pdu[offset + 1] > pdu.Length)
            {
                throw new ModbusProtocolException($"read device identification object {i} runs past the end of the PDU", pdu);
            }

            int len = pdu[offset + 1];
            objects.Add(new(pdu[offset], System.Text.Encoding.ASCII.GetString(pdu.Slice(offset + 2, len))));
            offset += 2 + len;
        }

        if (offset != pdu.Length)
        {
            throw new ModbusProtocolException($"read device identification response has {pdu.Length - offset} trailing bytes", pdu);
        }

        return new DeviceIdentificationPage(code, conformity, more, next, objects);
    }

    // ---------------------------------------------------------------- helpers

    public static void PackBits(ReadOnlySpan<bool> bits, Span<byte> destination)
    {
        destination.Clear();
        for (int i = 0; i < bits.Length; i++)
        {
            if (bits[i])
            {
                destination[i >> 3] |= (byte)(1 << (i & 7));
            }
        }
    }

    public static void UnpackBits(ReadOnlySpan<byte> packed, Span<bool> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (packed[i >> 3] & (1 << (i & 7))) != 0;
        }
    }

    public static void WriteRegisters(ReadOnlySpan<ushort> registers, Span<byte> destination)
    {
        for (int i = 0; i < registers.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[(2 * i)..], registers[i]);
        }
    }

    public static void ReadRegisters(ReadOnlySpan<byte> source, Span<ushort> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = BinaryPrimitives.ReadUInt16BigEndian(source[(2 * i)..]);
        }
    }

    private static ushort U16(ReadOnlySpan<byte> pdu, int offset) => BinaryPrimitives.ReadUInt16BigEndian(pdu[offset..]);

    private static void RequireLength(ReadOnlySpan<byte> pdu, int length, ModbusFunctionCode fc)
    {
        if (pdu.Length != length)
        {
            throw new ModbusProtocolException($"{fc} request must be {length} bytes, got {pdu.Length}", pdu);
        }
    }

    private static void RequireFunction(ReadOnlySpan<byte> pdu, ModbusFunctionCode function)
    {
        if (pdu.IsEmpty || pdu[0] != (byte)function)
        {
            throw new ModbusProtocolException($"expected a {function} response", pdu);
        }
    }

    private static void CheckCount(int count, int max)
    {
        if (count < 1 || count > max)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"quantity must be 1..{max}");
        }
    }

    private static void CheckAddressRange(ushort address, int count)
    {
        if (address + count > 0x10000)
        {
            throw new ArgumentOutOfRangeException(nameof(address), address, $"address {address} + {count} items runs past 65535");
        }
    }
}

public enum ReadDeviceIdCode : byte
{
    Basic = 1,
    Regular = 2,
    Extended = 3,
    Specific = 4,
}

/// <summary>One decoded FC 43/14 response: possibly one page of several (<see cref="MoreFollows"/>).</summary>
public sealed record DeviceIdentificationPage(
    ReadDeviceIdCode Code,
    byte ConformityLevel,
    bool MoreFollows,
    byte NextObjectId,
    IReadOnlyList<KeyValuePair<byte, string>> Objects);

/// <summary>A decoded request PDU; <see cref="Data"/> points into the caller's buffer.</summary>
public readonly ref struct ModbusRequest
{
    public ModbusRequest(
        ModbusFunctionCode functionCode, ushort address, ushort count, ushort writeAddress, ushort writeCount,
        ReadOnlySpan<byte> data, byte readDeviceIdCode, byte objectId)
    {
        FunctionCode = functionCode;
        Address = address;
        Count = count;
        WriteAddress = writeAddress;
        WriteCount = writeCount;
        Data = data;
        ReadDeviceIdCode = readDeviceIdCode;
        ObjectId = objectId;
        MeiType = 0;
    }

    public ModbusFunctionCode FunctionCode { get; }

    /// <summary>Start address (for FC 5/6 the written address).</summary>
    public ushort Address { get; }

    /// <summary>Quantity for reads and multi-writes; the value for FC 5/6.</summary>
    public ushort Count { get; }

    public ushort WriteAddress { get; }

    public ushort WriteCount { get; }

    public ReadOnlySpan<byte> Data { get; }

    public byte MeiType { get; init; }

    public byte ReadDeviceIdCode { get; }

    public byte ObjectId { get; }
}
