using System.Buffers.Binary;

namespace EdgeTwin.Modbus.Protocol;

/// <summary>
/// RTU ADU: unit id, PDU, CRC-16 (low byte first). Frame ends are found from the function code and byte-count
/// fields (the 3.5-character silence is the transport's job), so a reader knows how many bytes to wait for.
/// </summary>
public static class RtuFrame
{
    public const int MaxFrameLength = 256;
    public const int MinFrameLength = 4;

    public static int Write(Span<byte> destination, byte unitId, ReadOnlySpan<byte> pdu)
    {
        if (pdu.IsEmpty || pdu.Length > ModbusPdu.MaxLength)
        {
            throw new ArgumentException($"PDU must be 1..{ModbusPdu.MaxLength} bytes, got {pdu.Length}", nameof(pdu));
        }

        destination[0] = unitId;
        pdu.CopyTo(destination[1..]);
        ushort crc = Crc16.Compute(destination[..(1 + pdu.Length)]);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[(1 + pdu.Length)..], crc);
        return pdu.Length + 3;
    }

    /// <summary>Checks length and CRC; returns the PDU (pointing into <paramref name="frame"/>).</summary>
    public static ReadOnlySpan<byte> Read(ReadOnlySpan<byte> frame, out byte unitId)
    {
        if (frame.Length < MinFrameLength || frame.Length > MaxFrameLength)
        {
            throw new ModbusProtocolException($"RTU frame must be {MinFrameLength}..{MaxFrameLength} bytes, got {frame.Length}", frame);
        }

        ushort expected = Crc16.Compute(frame[..^2]);
        ushort actual = BinaryPrimitives.ReadUInt16LittleEndian(frame[^2..]);
        if (expected != actual)
        {
            throw new ModbusProtocolException($"RTU CRC mismatch: computed {expected:X4}, frame carries {actual:X4}", frame);
        }

        unitId = frame[0];
        return frame[1..^2];
    }

    /// <summary>
    /// Total length of the response frame that starts with <paramref name="buffered"/>, or 0 when more bytes
    /// are needed to tell. Throws when the function code cannot start a response.
    /// </summary>
    public static int ExpectedResponseLength(ReadOnlySpan<byte> buffered)
    {
        if (buffered.Length < 2)
        {
            return 0;
        }

        byte fc = buffered[1];
        if ((fc & 0x80) != 0)
        {
            return 5;
        }

        switch ((ModbusFunctionCode)fc)
        {
            case ModbusFunctionCode.ReadCoils:
            case ModbusFunctionCode.ReadDiscreteInputs:
            case ModbusFunctionCode.ReadHoldingRegisters:
            case ModbusFunctionCode.ReadInputRegisters:
            case ModbusFunctionCode.ReadWriteMultipleRegisters:
                return buffered.Length < 3 ? 0 : 3 + buffered[2] + 2;
            case ModbusFunctionCode.WriteSingleCoil:
            case ModbusFunctionCode.WriteSingleRegister:
            case ModbusFunctionCode.WriteMultipleCoils:
            case ModbusFunctionCode.WriteMultipleRegisters:
                return 8;
            case ModbusFunctionCode.EncapsulatedInterface:
                return DeviceIdResponseLength(buffered);
            default:
                throw new ModbusProtocolException($"RTU response with unsupported function code 0x{fc:X2}", buffered);
        }
    }

    /// <summary>Total length of the request frame that starts with <paramref name="buffered"/>, or 0 when unknown yet.</summary>
    public static int ExpectedRequestLength(ReadOnlySpan<byte> buffered)
    {
        if (buffered.Length < 2)
        {
            return 0;
        }

        switch ((ModbusFunctionCode)buffered[1])
        {
            case ModbusFunctionCode.ReadCoils:
            case ModbusFunctionCode.ReadDiscreteInputs:
            case ModbusFunctionCode.ReadHoldingRegisters:
            case ModbusFunctionCode.ReadInputRegisters:
            case ModbusFunctionCode.WriteSingleCoil:
            case ModbusFunctionCode.WriteSingleRegister:
                return 8;
            case ModbusFunctionCode.WriteMultipleCoils:
            case ModbusFunctionCode.WriteMultipleRegisters:
                return buffered.Length < 7 ? 0 : 7 + buffered[6] + 2;
            case ModbusFunctionCode.ReadWriteMultipleRegisters:
                return buffered.Length < 11 ? 0 : 11 + buffered[10] + 2;
            case ModbusFunctionCode.EncapsulatedInterface:
                return 7;
            default:
                // Unknown function: the server falls back to the inter-frame silence to find the end.
                return -1;
        }
    }

    private static int DeviceIdResponseLength(ReadOnlySpan<byte> buffered)
    {
        // unit, 2B, 0E, code, conformity, more, next, count, then (id, len, value) per object, then CRC.
        const int headerLength = 8;
        if (buffered.Length < headerLength)
        {
            return 0;
        }

        int count = buffered[7];
        int offset = headerLength;
        for (int i = 0; i < count; i++)
        {
            if (buffered.Length < offset + 2)
            {
                return 0;
            }

            offset += 2 + buffered[offset + 1];
            if (offset > MaxFrameLength)
            {
                throw new ModbusProtocolException("RTU device identification response longer than 256 bytes", buffered);
            }
        }

        return offset + 2;
    }
}
