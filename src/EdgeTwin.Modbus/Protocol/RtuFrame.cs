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
        int length = TryExpectedResponseLength(buffered);
        return length >= 0 ? length
            : throw new ModbusProtocolException(buffered[1] is 0x2B
                ? "RTU device identification response longer than 256 bytes"
                : $"RTU response with unsupported function code 0x{buffered[1]:X2}", buffered);
    }

    /// <summary>
    /// As <see cref="ExpectedResponseLength"/>, but -1 instead of an exception when no response can start here (unknown
    /// function code, or a length beyond 256 bytes): cheap enough to try at every offset of line noise.
    /// </summary>
    public static int TryExpectedResponseLength(ReadOnlySpan<byte> buffered)
    {
        if (buffered.Length < 2)
        {
            return 0;
        }

        // unit id, PDU, CRC
        int pdu = ModbusPdu.TryExpectedResponseLength(buffered[1..]);
        return pdu <= 0 ? pdu : 1 + pdu + 2;
    }

    /// <summary>
    /// Finds the first complete response frame with a valid CRC in <paramref name="buffered"/>, skipping line noise, frames
    /// cut short or garbled, and the echo of <paramref name="sent"/> (RS-485 converters that hear their own transmission;
    /// pass an empty span where the answer is the echo, FC 5 and 6). <paramref name="garbage"/> is how many leading bytes
    /// can never start a frame (the caller drops them); <paramref name="echo"/> tells an echo from an answer.
    /// False when no frame is complete yet. Never throws.
    /// </summary>
    public static bool TryFindResponse(ReadOnlySpan<byte> buffered, ReadOnlySpan<byte> sent, out int start, out int length, out bool echo, out int garbage)
    {
        garbage = 0;
        bool settled = true;
        for (int k = 0; k < buffered.Length; k++)
        {
            var rest = buffered[k..];
            if (!sent.IsEmpty && rest.StartsWith(sent))
            {
                (start, length, echo) = (k, sent.Length, true);
                return true;
            }

            int expected = TryExpectedResponseLength(rest);
            bool complete = expected > 0 && expected <= rest.Length;
            if (complete && expected <= MaxFrameLength
                && Crc16.Compute(rest[..(expected - 2)]) == BinaryPrimitives.ReadUInt16LittleEndian(rest[(expected - 2)..]))
            {
                (start, length, echo) = (k, expected, false);
                return true;
            }

            // A byte is garbage once no frame can start there whatever follows; the first that still might (a frame, or
            // the echo, still arriving) keeps itself and everything after it in the buffer.
            bool mightStart = expected == 0 || (expected > 0 && expected <= MaxFrameLength && !complete)
                || (!sent.IsEmpty && sent.StartsWith(rest));
            if (settled && !mightStart)
            {
                garbage = k + 1;
            }
            else
            {
                settled = false;
            }
        }

        (start, length, echo) = (0, 0, false);
        return false;
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
}
