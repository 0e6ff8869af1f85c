using System.Buffers.Binary;

namespace EdgeTwin.Snmp.Ber;

/// <summary>
/// Strict BER reader over one packet. Every length is checked against the bytes actually present before
/// anything is read or allocated, so an attacker-chosen length can neither over-read nor over-allocate.
/// All failures are <see cref="SnmpProtocolException"/> carrying the whole packet and the offset.
/// </summary>
public ref struct BerReader
{
    /// <summary>Deepest constructed nesting accepted (an SNMPv3 message needs 6).</summary>
    public const int MaxDepth = 12;

    private readonly ReadOnlySpan<byte> _packet;
    private readonly int _end;
    private readonly int _depth;
    private int _pos;

    public BerReader(ReadOnlySpan<byte> packet) : this(packet, 0, packet.Length, 0) { }

    private BerReader(ReadOnlySpan<byte> packet, int start, int end, int depth)
    {
        _packet = packet;
        _pos = start;
        _end = end;
        _depth = depth;
    }

    public readonly int Position => _pos;
    public readonly bool HasMore => _pos < _end;
    public readonly ReadOnlySpan<byte> Packet => _packet;

    public readonly SnmpProtocolException Error(string reason) => new(reason, _packet, _pos);
    public readonly SnmpProtocolException Error(string reason, int offset) => new(reason, _packet, offset);

    public readonly byte PeekTag() => _pos < _end ? _packet[_pos] : throw Error("truncated: expected a tag");

    /// <summary>Reads tag and length; returns the content range [start, start+length).</summary>
    public int ReadHeader(out byte tag, out int contentStart)
    {
        if (_pos >= _end)
        {
            throw Error("truncated: expected a tag");
        }
        tag = _packet[_pos];
        if ((tag & 0x1f) == 0x1f)
        {
            throw Error($"multi-byte tag 0x{tag:X2} is not used by SNMP");
        }
        var p = _pos + 1;
        if (p >= _end)
        {
            throw Error("truncated: expected a length", p);
        }
        int length = _packet[p++];
        if (length == 0x80)
        {
            throw Error("indefinite length is not allowed", p - 1);
        }
        if (length > 0x80)
        {
            var n = length & 0x7f;
            if (n > 4)
            {
                throw Error($"length of {n} octets is too long", p - 1);
            }
            if (p + n > _end)
            {
                throw Error("truncated inside a length", p);
            }
            long l = 0;
            for (var i = 0; i < n; i++)
            {
                l = (l << 8) | _packet[p++];
            }
            if (l > int.MaxValue)
            {
                throw Error($"length {l} is oversized", p - n);
            }
            length = (int)l;
        }
        if (length > _end - p)
        {
            throw Error($"length {length} exceeds the {_end - p} bytes left", p);
        }
        contentStart = p;
        _pos = p + length;
        return length;
    }

    /// <summary>Reads a tag that must equal <paramref name="expected"/>; returns the content span.</summary>
    public ReadOnlySpan<byte> ReadExpected(byte expected, string what)
    {
        var at = _pos;
        var len = ReadHeader(out var tag, out var start);
        if (tag != expected)
        {
            throw Error($"expected {what} (tag 0x{expected:X2}) but found tag 0x{tag:X2}", at);
        }
        return _packet.Slice(start, len);
    }

    /// <summary>Enters a constructed value with the given tag; returns a reader over its contents.</summary>
    public BerReader ReadConstructed(byte expected, string what)
    {
        var at = _pos;
        var len = ReadHeader(out var tag, out var start);
        if (tag != expected)
        {
            throw Error($"expected {what} (tag 0x{expected:X2}) but found tag 0x{tag:X2}", at);
        }
        return Nested(start, len);
    }

    /// <summary>Enters a constructed value of any context tag (a PDU); returns its tag.</summary>
    public BerReader ReadAnyConstructed(out byte tag)
    {
        var at = _pos;
        var len = ReadHeader(out tag, out var start);
        if ((tag & 0x20) == 0)
        {
            throw Error($"expected a constructed value but found tag 0x{tag:X2}", at);
        }
        return Nested(start, len);
    }

    private readonly BerReader Nested(int start, int len)
    {
        if (_depth + 1 > MaxDepth)
        {
            throw Error($"nesting deeper than {MaxDepth}", start);
        }
        return new BerReader(_packet, start, start + len, _depth + 1);
    }

    public readonly void ExpectEnd(string what)
    {
        if (_pos != _end)
        {
            throw Error($"{_end - _pos} unexpected trailing bytes after {what}");
        }
    }

    public int ReadInt32(string what) => ReadInt32(0x02, what);

    public int ReadInt32(byte expectedTag, string what)
    {
        var at = _pos;
        var c = ReadExpected(expectedTag, what);
        var v = DecodeSigned(c, at, what);
        if (v is < int.MinValue or > int.MaxValue)
        {
            throw Error($"{what} value {v} does not fit in 32 bits", at);
        }
        return (int)v;
    }

    /// <summary>Unsigned32 family (Counter32, Gauge32, TimeTicks): 1..5 content bytes, value below 2^32.</summary>
    public readonly uint DecodeUnsigned32(ReadOnlySpan<byte> c, int at, string what)
    {
        var v = DecodeUnsigned(c, 5, at, what);
        if (v > uint.MaxValue)
        {
            throw Error($"{what} value {v} does not fit in 32 bits", at);
        }
        return (uint)v;
    }

    public readonly ulong DecodeUnsigned(ReadOnlySpan<byte> c, int maxLen, int at, string what)
    {
        if (c.Length == 0)
        {
            throw Error($"{what} has no content octets", at);
        }
        if (c.Length > maxLen)
        {
            throw Error($"{what} is {c.Length} octets long (at most {maxLen})", at);
        }
        if (c.Length == maxLen && c[0] != 0)
        {
            throw Error($"{what} overflows", at);
        }
        ulong v = 0;
        foreach (var b in c)
        {
            v = (v << 8) | b;
        }
        return v;
    }

    public readonly long DecodeSigned(ReadOnlySpan<byte> c, int at, string what)
    {
        if (c.Length == 0)
        {
            throw Error($"{what} has no content octets", at);
        }
        if (c.Length > 8)
        {
            throw Error($"{what} is {c.Length} octets long (at most 8)", at);
        }
        long v = (sbyte)c[0];
        for (var i = 1; i < c.Length; i++)
        {
            v = (v << 8) | c[i];
        }
        return v;
    }

    public ReadOnlySpan<byte> ReadOctetString(string what) => ReadExpected(0x04, what);

    public Oid ReadOid(string what)
    {
        var at = _pos;
        var c = ReadExpected(0x06, what);
        return Oid.Wrap(DecodeOidArcs(c, at, what));
    }

    /// <summary>
    /// Reads an OID and, when it is <paramref name="known"/>, returns that instead of a new array: a GET's answer names
    /// exactly the OIDs asked, and decoding them again was most of what a poll allocated. Checked as strictly as
    /// <see cref="ReadOid(string)"/>.
    /// </summary>
    public Oid ReadOid(string what, Oid known)
    {
        var at = _pos;
        var c = ReadExpected(0x06, what);
        var count = CountOidArcs(c, at, what);
        if (count != known.Length)
        {
            var arcs = new uint[count];
            FillOidArcs(c, at, what, arcs);
            return Oid.Wrap(arcs);
        }
        Span<uint> decoded = stackalloc uint[count]; // at most Oid.MaxArcs, checked by CountOidArcs
        FillOidArcs(c, at, what, decoded);
        return decoded.SequenceEqual(known.Arcs) ? known : Oid.Wrap(decoded.ToArray());
    }

    /// <summary>Decodes OID content; the arc count is bounded by the content length and by 128.</summary>
    public readonly uint[] DecodeOidArcs(ReadOnlySpan<byte> c, int at, string what)
    {
        var arcs = new uint[CountOidArcs(c, at, what)];
        FillOidArcs(c, at, what, arcs);
        return arcs;
    }

    private readonly int CountOidArcs(ReadOnlySpan<byte> c, int at, string what)
    {
        if (c.Length == 0)
        {
            throw Error($"{what}: empty OBJECT IDENTIFIER", at);
        }
        var count = 1; // the first octet(s) carry two arcs
        foreach (var b in c)
        {
            if ((b & 0x80) == 0)
            {
                count++;
            }
        }
        if ((c[^1] & 0x80) != 0)
        {
            throw Error($"{what}: OBJECT IDENTIFIER ends inside a sub-identifier", at);
        }
        if (count > Oid.MaxArcs)
        {
            throw Error($"{what}: OBJECT IDENTIFIER has more than {Oid.MaxArcs} sub-identifiers", at);
        }
        return count;
    }

    /// <summary>Decodes OID content whose arcs <see cref="CountOidArcs"/> counted into <paramref name="arcs"/>.</summary>
    private readonly void FillOidArcs(ReadOnlySpan<byte> c, int at, string what, Span<uint> arcs)
    {
        var n = 0;
        var i = 0;
        while (i < c.Length)
        {
            if (c[i] == 0x80)
            {
                throw Error($"{what}: sub-identifier with a leading 0x80 octet", at);
            }
            ulong v = 0;
            var octets = 0;
            byte b;
            do
            {
                b = c[i++];
                v = (v << 7) | (uint)(b & 0x7f);
                if (++octets > 5 || v > uint.MaxValue)
                {
                    throw Error($"{what}: sub-identifier longer than 32 bits", at);
                }
            }
            while ((b & 0x80) != 0);
            if (n == 0)
            {
                // X.690 8.19.4: first sub-identifier is 40*X+Y.
                if (v < 80)
                {
                    arcs[0] = (uint)(v / 40);
                    arcs[1] = (uint)(v % 40);
                }
                else
                {
                    arcs[0] = 2;
                    arcs[1] = (uint)(v - 80);
                }
                n = 2;
            }
            else
            {
                arcs[n++] = (uint)v;
            }
        }
    }

    public void ReadNull(string what)
    {
        var c = ReadExpected(0x05, what);
        if (c.Length != 0)
        {
            throw Error($"{what}: NULL with {c.Length} content octets");
        }
    }

    /// <summary>Reads one SNMP value of any supported type.</summary>
    public SnmpValue ReadValue()
    {
        var at = _pos;
        var len = ReadHeader(out var tag, out var start);
        var c = _packet.Slice(start, len);
        switch (tag)
        {
            case 0x02:
                {
                    var v = DecodeSigned(c, at, "INTEGER");
                    if (v is < int.MinValue or > int.MaxValue)
                    {
                        throw Error($"INTEGER value {v} does not fit in 32 bits", at);
                    }
                    return SnmpValue.Integer((int)v);
                }
            case 0x04:
                return SnmpValue.OctetString(c.ToArray());
            case 0x05:
                return len == 0 ? SnmpValue.Null : throw Error("NULL with content octets", at);
            case 0x06:
                return SnmpValue.FromOidArcs(DecodeOidArcs(c, at, "OID value"));
            case 0x40:
                return len == 4
                    ? SnmpValue.Unsigned(SnmpType.IpAddress, BinaryPrimitives.ReadUInt32BigEndian(c))
                    : throw Error($"IpAddress with {len} octets (expected 4)", at);
            case 0x41:
            case 0x42:
            case 0x43:
                return SnmpValue.Unsigned((SnmpType)tag, DecodeUnsigned32(c, at, ((SnmpType)tag).ToString()));
            case 0x44:
                return DecodeOpaque(c, at);
            case 0x46:
                return SnmpValue.Counter64(DecodeUnsigned(c, 9, at, "Counter64"));
            case 0x80:
            case 0x81:
            case 0x82:
                return len == 0 ? SnmpValue.Exception((SnmpType)tag) : throw Error("exception value with content octets", at);
            default:
                throw Error($"unknown value tag 0x{tag:X2}", at);
        }
    }

    /// <summary>net-snmp wraps float/double in an Opaque: 9F 78 04 &lt;float&gt; or 9F 79 08 &lt;double&gt;.</summary>
    private readonly SnmpValue DecodeOpaque(ReadOnlySpan<byte> c, int at)
    {
        if (c.Length >= 3 && c[0] == 0x9f && (c[1] == 0x78 || c[1] == 0x79))
        {
            var isFloat = c[1] == 0x78;
            var want = isFloat ? 4 : 8;
            if (c[2] != want || c.Length != 3 + want)
            {
                throw Error($"opaque {(isFloat ? "float" : "double")} with bad length", at);
            }
            return isFloat
                ? SnmpValue.OpaqueFloat(BinaryPrimitives.ReadSingleBigEndian(c[3..]))
                : SnmpValue.OpaqueDouble(BinaryPrimitives.ReadDoubleBigEndian(c[3..]));
        }
        return SnmpValue.Opaque(c.ToArray());
    }
}
