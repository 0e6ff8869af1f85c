using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;

namespace EdgeTwin.Snmp;

/// <summary>SNMP value types; the number is the BER tag (or the net-snmp opaque sub-tag for float/double).</summary>
public enum SnmpType : ushort
{
    Integer = 0x02,
    OctetString = 0x04,
    Null = 0x05,
    ObjectIdentifier = 0x06,
    IpAddress = 0x40,
    Counter32 = 0x41,
    Gauge32 = 0x42,
    TimeTicks = 0x43,
    Opaque = 0x44,
    Counter64 = 0x46,
    NoSuchObject = 0x80,
    NoSuchInstance = 0x81,
    EndOfMibView = 0x82,
    /// <summary>net-snmp's float inside an Opaque (ASN_OPAQUE_FLOAT, 0x9f78).</summary>
    OpaqueFloat = 0x9f78,
    /// <summary>net-snmp's double inside an Opaque (ASN_OPAQUE_DOUBLE, 0x9f79).</summary>
    OpaqueDouble = 0x9f79,
}

/// <summary>One SNMP value. A small struct: numbers live inline, strings/OIDs in one reference.</summary>
public readonly struct SnmpValue : IEquatable<SnmpValue>
{
    private readonly long _number;
    private readonly object? _ref;

    private SnmpValue(SnmpType type, long number, object? reference)
    {
        Type = type;
        _number = number;
        _ref = reference;
    }

    public SnmpType Type { get; }

    public static SnmpValue Null => new(SnmpType.Null, 0, null);
    public static SnmpValue NoSuchObject => new(SnmpType.NoSuchObject, 0, null);
    public static SnmpValue NoSuchInstance => new(SnmpType.NoSuchInstance, 0, null);
    public static SnmpValue EndOfMibView => new(SnmpType.EndOfMibView, 0, null);

    public static SnmpValue Integer(int value) => new(SnmpType.Integer, value, null);
    public static SnmpValue OctetString(byte[] value) => new(SnmpType.OctetString, 0, value);
    public static SnmpValue OctetString(string value) => new(SnmpType.OctetString, 0, Encoding.UTF8.GetBytes(value));
    public static SnmpValue ObjectIdentifier(Oid value) => new(SnmpType.ObjectIdentifier, 0, value.Arcs.ToArray());
    public static SnmpValue IpAddress(IPAddress value)
    {
        var b = value.GetAddressBytes();
        if (b.Length != 4)
        {
            throw new ArgumentException("IpAddress is IPv4 only", nameof(value));
        }
        return new(SnmpType.IpAddress, BinaryPrimitives.ReadUInt32BigEndian(b), null);
    }
    public static SnmpValue Counter32(uint value) => new(SnmpType.Counter32, value, null);
    public static SnmpValue Gauge32(uint value) => new(SnmpType.Gauge32, value, null);
    public static SnmpValue TimeTicks(uint value) => new(SnmpType.TimeTicks, value, null);
    public static SnmpValue Counter64(ulong value) => new(SnmpType.Counter64, unchecked((long)value), null);
    public static SnmpValue Opaque(byte[] raw) => new(SnmpType.Opaque, 0, raw);
    public static SnmpValue OpaqueFloat(float value) => new(SnmpType.OpaqueFloat, BitConverter.SingleToInt32Bits(value), null);
    public static SnmpValue OpaqueDouble(double value) => new(SnmpType.OpaqueDouble, BitConverter.DoubleToInt64Bits(value), null);

    internal static SnmpValue FromOidArcs(uint[] arcs) => new(SnmpType.ObjectIdentifier, 0, arcs);
    internal static SnmpValue Unsigned(SnmpType type, uint value) => new(type, value, null);
    internal static SnmpValue Exception(SnmpType type) => new(type, 0, null);

    /// <summary>True for noSuchObject, noSuchInstance and endOfMibView.</summary>
    public bool IsException => Type is SnmpType.NoSuchObject or SnmpType.NoSuchInstance or SnmpType.EndOfMibView;

    public int AsInt32() => Type == SnmpType.Integer ? (int)_number : throw Wrong(nameof(AsInt32));
    public uint AsUInt32() => Type is SnmpType.Counter32 or SnmpType.Gauge32 or SnmpType.TimeTicks or SnmpType.IpAddress
        ? (uint)_number : throw Wrong(nameof(AsUInt32));
    public ulong AsUInt64() => Type == SnmpType.Counter64 ? unchecked((ulong)_number) : throw Wrong(nameof(AsUInt64));
    public ReadOnlyMemory<byte> AsBytes() => Type is SnmpType.OctetString or SnmpType.Opaque ? (byte[])_ref! : throw Wrong(nameof(AsBytes));
    public Oid AsOid() => Type == SnmpType.ObjectIdentifier ? Oid.Wrap((uint[])_ref!) : throw Wrong(nameof(AsOid));
    public float AsFloat() => Type == SnmpType.OpaqueFloat ? BitConverter.Int32BitsToSingle((int)_number) : throw Wrong(nameof(AsFloat));
    public double AsDouble() => Type == SnmpType.OpaqueDouble ? BitConverter.Int64BitsToDouble(_number) : throw Wrong(nameof(AsDouble));
    public IPAddress AsIPAddress()
    {
        if (Type != SnmpType.IpAddress)
        {
            throw Wrong(nameof(AsIPAddress));
        }
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)_number);
        return new IPAddress(b);
    }

    /// <summary>The value as a number, for numeric types (what a poller turns into a sample).</summary>
    public bool TryGetNumber(out double value)
    {
        value = Type switch
        {
            SnmpType.Integer => (int)_number,
            SnmpType.Counter32 or SnmpType.Gauge32 or SnmpType.TimeTicks => (uint)_number,
            SnmpType.Counter64 => unchecked((ulong)_number),
            SnmpType.OpaqueFloat => AsFloat(),
            SnmpType.OpaqueDouble => AsDouble(),
            SnmpType.OctetString => ParseNumericString(),
            _ => double.NaN,
        };
        return !double.IsNaN(value);
    }

    // Parsed from the bytes, without a string: a gauge that reads a text OID fails every poll, and must not allocate each time.
    private double ParseNumericString()
    {
        var bytes = ((byte[])_ref!).AsSpan();
        bytes = bytes[Ascii.Trim(bytes)];
        return Ascii.IsValid(bytes) && double.TryParse(bytes, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.NaN;
    }

    private InvalidOperationException Wrong(string what) => new($"{what}() on an SNMP value of type {Type}");

    internal long RawNumber => _number;
    internal object? RawRef => _ref;

    public bool Equals(SnmpValue other)
    {
        if (Type != other.Type || _number != other._number)
        {
            return false;
        }
        return _ref switch
        {
            null => other._ref is null,
            byte[] b => other._ref is byte[] ob && b.AsSpan().SequenceEqual(ob),
            uint[] a => other._ref is uint[] oa && a.AsSpan().SequenceEqual(oa),
            _ => false,
        };
    }

    public override bool Equals(object? obj) => obj is SnmpValue v && Equals(v);
    public override int GetHashCode() => HashCode.Combine(Type, _number, _ref is byte[] b ? b.Length : 0);
    public static bool operator ==(SnmpValue left, SnmpValue right) => left.Equals(right);
    public static bool operator !=(SnmpValue left, SnmpValue right) => !left.Equals(right);

    public override string ToString() => SnmpFormatter.Format(this);
}

/// <summary>An OID and its value.</summary>
public readonly record struct VarBind(Oid Oid, SnmpValue Value)
{
    public static VarBind Null(Oid oid) => new(oid, SnmpValue.Null);
    public override string ToString() => $"{Oid.ToNumericString()} = {SnmpFormatter.Format(Value)}";
}

/// <summary>error-status values of RFC 3416.</summary>
public enum SnmpErrorStatus
{
    NoError = 0,
    TooBig = 1,
    NoSuchName = 2,
    BadValue = 3,
    ReadOnly = 4,
    GenErr = 5,
    NoAccess = 6,
    WrongType = 7,
    WrongLength = 8,
    WrongEncoding = 9,
    WrongValue = 10,
    NoCreation = 11,
    InconsistentValue = 12,
    ResourceUnavailable = 13,
    CommitFailed = 14,
    UndoFailed = 15,
    AuthorizationError = 16,
    NotWritable = 17,
    InconsistentName = 18,
}
