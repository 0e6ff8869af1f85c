using System.Buffers;
using System.Buffers.Binary;

namespace EdgeTwin.Snmp.Ber;

/// <summary>
/// Forward BER writer with minimal (DER-style) lengths. Constructed values reserve one length octet and
/// shift their contents if a longer length is needed, so output is byte-identical to net-snmp's.
/// Uses a pooled buffer: call <see cref="Dispose"/> (or <see cref="ToArray"/> then Dispose).
/// </summary>
public sealed class BerWriter : IDisposable
{
    private byte[] _buf;
    private int _len;
    private readonly int[] _open = new int[BerReader.MaxDepth];
    private int _depth;

    public BerWriter(int capacity = 512) => _buf = ArrayPool<byte>.Shared.Rent(capacity);

    public int Length => _len;
    public ReadOnlySpan<byte> WrittenSpan => _buf.AsSpan(0, _len);
    public Span<byte> WrittenSpanMutable => _buf.AsSpan(0, _len);
    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Reset()
    {
        _len = 0;
        _depth = 0;
    }

    private Span<byte> Grow(int n)
    {
        if (_len + n > _buf.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buf.Length * 2, _len + n));
            _buf.AsSpan(0, _len).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = bigger;
        }
        var span = _buf.AsSpan(_len, n);
        _len += n;
        return span;
    }

    public static int LengthOfLength(int length) => length < 0x80 ? 1 : length <= 0xff ? 2 : length <= 0xffff ? 3 : length <= 0xffffff ? 4 : 5;

    private static void WriteLength(Span<byte> dst, int length)
    {
        if (length < 0x80)
        {
            dst[0] = (byte)length;
            return;
        }
        var n = dst.Length - 1;
        dst[0] = (byte)(0x80 | n);
        for (var i = n; i >= 1; i--)
        {
            dst[i] = (byte)length;
            length >>= 8;
        }
    }

    public void WriteHeader(byte tag, int length)
    {
        var span = Grow(1 + LengthOfLength(length));
        span[0] = tag;
        WriteLength(span[1..], length);
    }

    public void WriteTlv(byte tag, ReadOnlySpan<byte> content)
    {
        WriteHeader(tag, content.Length);
        content.CopyTo(Grow(content.Length));
    }

    public void BeginConstructed(byte tag)
    {
        if (_depth == _open.Length)
        {
            throw new InvalidOperationException($"BER nesting deeper than {_open.Length}");
        }
        var span = Grow(2);
        span[0] = tag;
        _open[_depth++] = _len; // content starts here; length octet at _len-1
    }

    public void EndConstructed()
    {
        var start = _open[--_depth];
        var length = _len - start;
        var lol = LengthOfLength(length);
        if (lol > 1)
        {
            Grow(lol - 1);
            _buf.AsSpan(start, length).CopyTo(_buf.AsSpan(start + lol - 1));
        }
        WriteLength(_buf.AsSpan(start - 1, lol), length);
    }

    public void WriteInteger(long value, byte tag = 0x02)
    {
        Span<byte> tmp = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(tmp, value);
        var i = 0;
        // Drop redundant leading octets: 0x00 before a clear high bit, 0xFF before a set one.
        while (i < 7 && ((tmp[i] == 0 && (tmp[i + 1] & 0x80) == 0) || (tmp[i] == 0xff && (tmp[i + 1] & 0x80) != 0)))
        {
            i++;
        }
        WriteTlv(tag, tmp[i..]);
    }

    public void WriteUnsigned(ulong value, byte tag)
    {
        Span<byte> tmp = stackalloc byte[9];
        BinaryPrimitives.WriteUInt64BigEndian(tmp[1..], value);
        var i = 0;
        while (i < 8 && tmp[i] == 0 && (tmp[i + 1] & 0x80) == 0)
        {
            i++;
        }
        WriteTlv(tag, tmp[i..]);
    }

    public void WriteOctetString(ReadOnlySpan<byte> value) => WriteTlv(0x04, value);

    public void WriteNull() => WriteHeader(0x05, 0);

    public void WriteOid(ReadOnlySpan<uint> arcs, byte tag = 0x06)
    {
        if (arcs.Length < 2)
        {
            // net-snmp encodes a one-arc OID as if the second arc were 0.
            Span<uint> two = [arcs.Length == 1 ? arcs[0] : 0, 0];
            WriteOid(two, tag);
            return;
        }
        if (arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40))
        {
            throw new ArgumentException($"OID {Oid.Wrap(arcs.ToArray())} cannot be encoded: bad first two arcs");
        }
        Span<byte> tmp = stackalloc byte[(arcs.Length * 5) + 5];
        var n = EncodeArc(tmp, (arcs[0] * 40UL) + arcs[1]);
        for (var i = 2; i < arcs.Length; i++)
        {
            n += EncodeArc(tmp[n..], arcs[i]);
        }
        WriteTlv(tag, tmp[..n]);
    }

    private static int EncodeArc(Span<byte> dst, ulong v)
    {
        var n = 1;
        for (var t = v >> 7; t != 0; t >>= 7)
        {
            n++;
        }
        for (var i = n - 1; i >= 0; i--)
        {
            dst[i] = (byte)((v & 0x7f) | (i == n - 1 ? 0u : 0x80u));
            v >>= 7;
        }
        return n;
    }

    public void WriteValue(SnmpValue value)
    {
        switch (value.Type)
        {
            case SnmpType.Integer:
                WriteInteger(value.AsInt32());
                break;
            case SnmpType.OctetString:
                WriteOctetString(value.AsBytes().Span);
                break;
            case SnmpType.Null:
                WriteNull();
                break;
            case SnmpType.ObjectIdentifier:
                WriteOid(value.AsOid().Arcs);
                break;
            case SnmpType.IpAddress:
                {
                    Span<byte> ip = stackalloc byte[4];
                    BinaryPrimitives.WriteUInt32BigEndian(ip, value.AsUInt32());
                    WriteTlv(0x40, ip);
                    break;
                }
            case SnmpType.Counter32:
            case SnmpType.Gauge32:
            case SnmpType.TimeTicks:
                WriteUnsigned(value.AsUInt32(), (byte)value.Type);
                break;
            case SnmpType.Counter64:
                WriteUnsigned(value.AsUInt64(), 0x46);
                break;
            case SnmpType.Opaque:
                WriteTlv(0x44, value.AsBytes().Span);
                break;
            case SnmpType.OpaqueFloat:
                {
                    Span<byte> c = stackalloc byte[7];
                    c[0] = 0x9f;
                    c[1] = 0x78;
                    c[2] = 4;
                    BinaryPrimitives.WriteSingleBigEndian(c[3..], value.AsFloat());
                    WriteTlv(0x44, c);
                    break;
                }
            case SnmpType.OpaqueDouble:
                {
                    Span<byte> c = stackalloc byte[11];
                    c[0] = 0x9f;
                    c[1] = 0x79;
                    c[2] = 8;
                    BinaryPrimitives.WriteDoubleBigEndian(c[3..], value.AsDouble());
                    WriteTlv(0x44, c);
                    break;
                }
            case SnmpType.NoSuchObject:
            case SnmpType.NoSuchInstance:
            case SnmpType.EndOfMibView:
                WriteHeader((byte)value.Type, 0);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(value), value.Type, "unknown SNMP type");
        }
    }

    public void Dispose()
    {
        if (_buf.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buf);
            _buf = [];
        }
    }
}
