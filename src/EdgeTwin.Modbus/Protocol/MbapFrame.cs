using System.Buffers.Binary;

namespace EdgeTwin.Modbus.Protocol;

/// <summary>Modbus TCP application header: transaction id, protocol id 0, length (unit id + PDU), unit id.</summary>
public readonly record struct MbapHeader(ushort TransactionId, byte UnitId, int PduLength);

public static class MbapFrame
{
    public const int HeaderLength = 7;
    public const int MaxFrameLength = HeaderLength + ModbusPdu.MaxLength;

    public static int Write(Span<byte> destination, ushort transactionId, byte unitId, ReadOnlySpan<byte> pdu)
    {
        if (pdu.IsEmpty || pdu.Length > ModbusPdu.MaxLength)
        {
            throw new ArgumentException($"PDU must be 1..{ModbusPdu.MaxLength} bytes, got {pdu.Length}", nameof(pdu));
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination, transactionId);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)(pdu.Length + 1));
        destination[6] = unitId;
        pdu.CopyTo(destination[HeaderLength..]);
        return HeaderLength + pdu.Length;
    }

    /// <summary>Validates the 7 header bytes: protocol id must be 0, the length must leave a 1..253 byte PDU.</summary>
    public static MbapHeader ReadHeader(ReadOnlySpan<byte> header)
    {
        if (header.Length < HeaderLength)
        {
            throw new ModbusProtocolException($"MBAP header needs {HeaderLength} bytes, got {header.Length}", header);
        }

        ushort protocol = BinaryPrimitives.ReadUInt16BigEndian(header[2..]);
        if (protocol != 0)
        {
            throw new ModbusProtocolException($"MBAP protocol id must be 0, got {protocol}", header[..HeaderLength]);
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(header[4..]);
        if (length < 2 || length > ModbusPdu.MaxLength + 1)
        {
            throw new ModbusProtocolException($"MBAP length must be 2..{ModbusPdu.MaxLength + 1}, got {length}", header[..HeaderLength]);
        }

        return new MbapHeader(BinaryPrimitives.ReadUInt16BigEndian(header), header[6], length - 1);
    }

    /// <summary>Decodes one complete frame; the returned PDU points into <paramref name="frame"/>.</summary>
    public static ReadOnlySpan<byte> Read(ReadOnlySpan<byte> frame, out MbapHeader header)
    {
        header = ReadHeader(frame);
        if (frame.Length != HeaderLength + header.PduLength)
        {
            throw new ModbusProtocolException($"MBAP frame length {frame.Length} does not match header ({HeaderLength + header.PduLength})", frame);
        }

        return frame[HeaderLength..];
    }
}
