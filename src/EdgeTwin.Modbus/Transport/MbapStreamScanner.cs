using System.Buffers.Binary;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Modbus.Transport;

/// <summary>The requests waiting for an answer on one connection, by transaction id.</summary>
internal interface IWaitingRequests
{
    /// <summary>The unit and request PDU of the request waiting under <paramref name="transactionId"/>, if one is.</summary>
    bool TryGet(ushort transactionId, out byte unitId, out ReadOnlySpan<byte> request);
}

internal enum MbapScan
{
    /// <summary>Not enough bytes to tell what starts at the read position.</summary>
    NeedMore,

    /// <summary>A frame for a waiting transaction (at a frame boundary: any well-formed frame carrying its id, which the dispatcher then checks).</summary>
    Frame,

    /// <summary>A whole, self-consistent frame for no waiting transaction: a late answer to a request given up on.</summary>
    Stale,

    /// <summary>At a frame boundary, a header naming a waiting transaction whose frame is malformed: that request's garbled answer.</summary>
    Garbled,

    /// <summary>The first <c>length</c> bytes cannot start a frame anyone is owed: skip them.</summary>
    Junk,
}

/// <summary>
/// Finds the next MBAP frame in received bytes without trusting a length field it cannot check. At a frame boundary (right
/// after a frame, or on a new connection) a header naming a waiting transaction is taken as its answer as before, garbled or
/// not. Anything else is junk until a position where a whole frame starts that a waiting request owns by every field
/// (transaction id, protocol 0, unit, function or its exception, length and byte count for what was asked, a write's echo),
/// or a whole self-consistent stale answer. Junk is skipped a byte at a time, never by a length it claims: a fake header's
/// length swallowed the next real answer (it timed out). Pure and allocation-free; the transport owns the buffer.
/// </summary>
internal static class MbapStreamScanner
{
    private enum Fit
    {
        No,
        Possible,
        Yes,
    }

    /// <param name="data">The received bytes not yet consumed.</param>
    /// <param name="aligned">The read position is a frame boundary (not inside junk).</param>
    /// <param name="length">Frame, Stale: the frame's length; Garbled: the bytes that belong to the garbled frame so far; Junk: how many bytes to skip.</param>
    public static MbapScan Scan<T>(ReadOnlySpan<byte> data, bool aligned, T waiting, out int length)
        where T : IWaitingRequests
    {
        length = 0;
        if (aligned)
        {
            var atBoundary = AtBoundary(data, waiting, out length);
            // A truncated copy of an answer whose length runs into the whole answer behind it: the whole one is the answer.
            if (atBoundary is not MbapScan.Junk && !(atBoundary is MbapScan.Frame && OwnedInside(data, 0, length, waiting)))
            {
                return atBoundary;
            }
        }

        for (int q = 0; q < data.Length; q++)
        {
            var rest = data[q..];
            var owned = Owned(rest, waiting, out int frame);
            if (owned == Fit.Yes && !OwnedInside(data, q, frame, waiting))
            {
                return Found(MbapScan.Frame, q, frame, out length);
            }

            if (owned == Fit.Possible)
            {
                // A truncated copy of an answer must not hold back the whole answer already received behind it.
                return Waiting(data, q, waiting, out length);
            }

            if (owned == Fit.Yes)
            {
                continue; // a truncated copy whose claimed length runs into a real answer: that answer wins
            }

            var stale = Stale(rest, waiting, out frame);
            if (stale == Fit.Yes)
            {
                var inside = OwnedInside(data, q, frame, waiting, orPossible: true);
                if (inside == Fit.No)
                {
                    return Found(MbapScan.Stale, q, frame, out length);
                }

                if (inside == Fit.Possible)
                {
                    return Waiting(data, q, waiting, out length);
                }

                continue;
            }

            if (stale == Fit.Possible)
            {
                return Waiting(data, q, waiting, out length);
            }
        }

        length = data.Length;
        return data.IsEmpty ? MbapScan.NeedMore : MbapScan.Junk;
    }

    /// <summary>
    /// Today's rule at a frame boundary, unchanged: a header with a waiting transaction id is that request's answer. A
    /// malformed header, or an MBAP length the PDU's own fields contradict, is its garbled answer (the request fails at
    /// once, not at its timeout). Junk means "names no waiting request": scan.
    /// </summary>
    private static MbapScan AtBoundary<T>(ReadOnlySpan<byte> data, T waiting, out int length)
        where T : IWaitingRequests
    {
        length = 0;
        if (data.Length < 2)
        {
            return MbapScan.NeedMore;
        }

        if (!waiting.TryGet(BinaryPrimitives.ReadUInt16BigEndian(data), out _, out _))
        {
            return MbapScan.Junk;
        }

        if (data.Length < MbapFrame.HeaderLength)
        {
            return MbapScan.NeedMore;
        }

        int mbapLength = BinaryPrimitives.ReadUInt16BigEndian(data[4..]);
        if (BinaryPrimitives.ReadUInt16BigEndian(data[2..]) != 0 || mbapLength < 2 || mbapLength > ModbusPdu.MaxLength + 1)
        {
            length = MbapFrame.HeaderLength;
            return MbapScan.Garbled;
        }

        int pdu = mbapLength - 1;
        int head = Math.Min(2, pdu);
        if (data.Length < MbapFrame.HeaderLength + head)
        {
            return MbapScan.NeedMore;
        }

        int implied = ModbusPdu.TryExpectedResponseLength(data.Slice(MbapFrame.HeaderLength, head));
        if (implied > 0 && implied != pdu)
        {
            // Only the bytes both lengths agree on belong to it, for the error's capture.
            length = MbapFrame.HeaderLength + Math.Min(implied, pdu);
            return data.Length < length ? MbapScan.NeedMore : MbapScan.Garbled;
        }

        length = MbapFrame.HeaderLength + pdu;
        return data.Length < length ? MbapScan.NeedMore : MbapScan.Frame;
    }

    private static MbapScan Found(MbapScan kind, int at, int frame, out int length)
    {
        length = at == 0 ? frame : at;
        return at == 0 ? kind : MbapScan.Junk;
    }

    /// <summary>
    /// Something may start at <paramref name="q"/> once more bytes come: skip what is junk before it and wait, unless a whole
    /// owned frame is already there further on, which is then taken (the bytes before it are junk).
    /// </summary>
    private static MbapScan Waiting<T>(ReadOnlySpan<byte> data, int q, T waiting, out int length)
        where T : IWaitingRequests
    {
        for (int r = q + 1; r < data.Length; r++)
        {
            if (Owned(data[r..], waiting, out int frame) == Fit.Yes && !OwnedInside(data, r, frame, waiting))
            {
                length = r;
                return MbapScan.Junk;
            }
        }

        length = q;
        return q == 0 ? MbapScan.NeedMore : MbapScan.Junk;
    }

    private static bool OwnedInside<T>(ReadOnlySpan<byte> data, int at, int frame, T waiting)
        where T : IWaitingRequests => OwnedInside(data, at, frame, waiting, orPossible: false) == Fit.Yes;

    /// <summary>
    /// Whether a whole owned frame starts inside [at + 1, at + frame). With <paramref name="orPossible"/>, Possible when one
    /// may start there whose whole header (7 bytes) is in and fits but whose PDU is still on its way.
    /// </summary>
    private static Fit OwnedInside<T>(ReadOnlySpan<byte> data, int at, int frame, T waiting, bool orPossible)
        where T : IWaitingRequests
    {
        var found = Fit.No;
        for (int r = at + 1; r < at + frame && r < data.Length; r++)
        {
            var fit = Owned(data[r..], waiting, out _);
            if (fit == Fit.Yes)
            {
                return Fit.Yes;
            }

            // Fewer than 7 bytes fitting a header (00 01 00 00 …) are common in register values: waiting on them would
            // hold a stale frame until the next read only, but is not worth it.
            if (orPossible && fit == Fit.Possible && data.Length - r >= MbapFrame.HeaderLength)
            {
                found = Fit.Possible;
            }
        }

        return found;
    }

    /// <summary>Whether a frame that a waiting request owns, by every field that can be checked, starts at <paramref name="d"/>[0].</summary>
    private static Fit Owned<T>(ReadOnlySpan<byte> d, T waiting, out int frame)
        where T : IWaitingRequests
    {
        frame = 0;
        if (d.Length < 2)
        {
            return Fit.Possible;
        }

        // The protocol id first: two byte compares spare the lookup at most positions of junk or of a frame's inside.
        if ((d.Length > 2 && d[2] != 0) || (d.Length > 3 && d[3] != 0)
            || !waiting.TryGet(BinaryPrimitives.ReadUInt16BigEndian(d), out byte unit, out var request) || request.IsEmpty)
        {
            return Fit.No;
        }

        if (d.Length < 4)
        {
            return Fit.Possible;
        }

        int answer = ExpectedAnswerLength(request);
        if (d.Length < 6)
        {
            return d.Length < 5 || d[4] == 0 ? Fit.Possible : Fit.No;
        }

        int pdu = BinaryPrimitives.ReadUInt16BigEndian(d[4..]) - 1;
        if (pdu < 2 || pdu > ModbusPdu.MaxLength || (answer > 0 && pdu != answer && pdu != 2))
        {
            return Fit.No;
        }

        if (d.Length < 7)
        {
            return Fit.Possible;
        }

        if (d[6] != unit)
        {
            return Fit.No;
        }

        if (d.Length < 8)
        {
            return Fit.Possible;
        }

        byte fc = d[7];
        bool exception = fc == (request[0] | 0x80);
        if (!exception && fc != request[0])
        {
            return Fit.No;
        }

        if (exception ? pdu != 2 : answer > 0 && pdu != answer)
        {
            return Fit.No;
        }

        frame = MbapFrame.HeaderLength + pdu;
        if (d.Length < frame)
        {
            // What can be checked already is: a read's byte count against its quantity.
            return d.Length > 8 && !exception && ModbusPdu.HasByteCount(fc) && d[8] != pdu - 2 ? Fit.No : Fit.Possible;
        }

        var body = d.Slice(MbapFrame.HeaderLength, pdu);
        if (exception)
        {
            return body[1] is >= 1 and <= 6 or 8 or 10 or 11 ? Fit.Yes : Fit.No;
        }

        if (ModbusPdu.TryExpectedResponseLength(body) != pdu || !ModbusRtuTransport.AnswersRequest(request, body))
        {
            return Fit.No;
        }

        // FC 43: the MEI type and the read device id code of the request.
        return fc != (byte)ModbusFunctionCode.EncapsulatedInterface || (request.Length >= 3 && body[1] == request[1] && body[2] == request[2]) ? Fit.Yes : Fit.No;
    }

    /// <summary>
    /// Whether a whole frame that carries no waiting transaction id, yet is consistent in itself (protocol 0, a known
    /// function whose own fields give the MBAP length), starts at <paramref name="d"/>[0]: a late answer to a request given up on.
    /// </summary>
    private static Fit Stale<T>(ReadOnlySpan<byte> d, T waiting, out int frame)
        where T : IWaitingRequests
    {
        frame = 0;
        if (d.Length < 2)
        {
            return Fit.Possible;
        }

        if (waiting.TryGet(BinaryPrimitives.ReadUInt16BigEndian(d), out _, out _))
        {
            return Fit.No; // a waiting request's id on a frame that does not fit it: junk, not stale
        }

        if (d.Length < 6)
        {
            return d.Length >= 4 && (d[2] != 0 || d[3] != 0) || d.Length == 3 && d[2] != 0 ? Fit.No : Fit.Possible;
        }

        int pdu = BinaryPrimitives.ReadUInt16BigEndian(d[4..]) - 1;
        if (d[2] != 0 || d[3] != 0 || pdu < 2 || pdu > ModbusPdu.MaxLength)
        {
            return Fit.No;
        }

        frame = MbapFrame.HeaderLength + pdu;
        int available = Math.Min(d.Length, frame) - MbapFrame.HeaderLength;
        if (available < 1)
        {
            return Fit.Possible;
        }

        int implied = ModbusPdu.TryExpectedResponseLength(d.Slice(MbapFrame.HeaderLength, available));
        if (implied < 0 || (implied > 0 && implied != pdu) || (implied == 0 && d.Length >= frame))
        {
            return Fit.No;
        }

        return implied == pdu && d.Length >= frame ? Fit.Yes : Fit.Possible;
    }

    /// <summary>The length of a normal answer to <paramref name="request"/>, or 0 when only its own fields tell (FC 43, others).</summary>
    internal static int ExpectedAnswerLength(ReadOnlySpan<byte> request)
    {
        if (request.Length < 5)
        {
            return 0;
        }

        int quantity = (request[3] << 8) | request[4];
        return (ModbusFunctionCode)request[0] switch
        {
            ModbusFunctionCode.ReadCoils or ModbusFunctionCode.ReadDiscreteInputs => 2 + ((quantity + 7) / 8),
            ModbusFunctionCode.ReadHoldingRegisters or ModbusFunctionCode.ReadInputRegisters or ModbusFunctionCode.ReadWriteMultipleRegisters => 2 + (2 * quantity),
            ModbusFunctionCode.WriteSingleCoil or ModbusFunctionCode.WriteSingleRegister
                or ModbusFunctionCode.WriteMultipleCoils or ModbusFunctionCode.WriteMultipleRegisters => 5,
            _ => 0,
        };
    }
}
