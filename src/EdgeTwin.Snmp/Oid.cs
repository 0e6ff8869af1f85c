using System.Globalization;
using System.Text;

namespace EdgeTwin.Snmp;

/// <summary>An OBJECT IDENTIFIER: an immutable array of sub-identifiers, ordered lexicographically.</summary>
public readonly struct Oid : IEquatable<Oid>, IComparable<Oid>
{
    /// <summary>SNMP limits OIDs to 128 sub-identifiers (RFC 2578 section 3.5).</summary>
    public const int MaxArcs = 128;

    private readonly uint[]? _arcs;

    public Oid(params uint[] arcs)
    {
        if (arcs.Length > MaxArcs)
        {
            throw new ArgumentException($"an OID has at most {MaxArcs} sub-identifiers, got {arcs.Length}", nameof(arcs));
        }
        _arcs = arcs;
    }

    /// <summary>Wraps an array without copying (the caller gives up ownership).</summary>
    internal static Oid Wrap(uint[] arcs) => new(arcs, 0);

    private Oid(uint[] arcs, int _) => _arcs = arcs;

    public ReadOnlySpan<uint> Arcs => _arcs;
    public int Length => _arcs?.Length ?? 0;
    public uint this[int index] => Arcs[index];
    public bool IsEmpty => Length == 0;

    /// <summary>Parses "1.3.6.1.2.1.1.1.0" or ".1.3.6.1.2.1.1.1.0".</summary>
    public static Oid Parse(string text)
    {
        if (!TryParse(text, out var oid))
        {
            throw new FormatException($"'{text}' is not a numeric OID (expected e.g. .1.3.6.1.2.1.1.1.0)");
        }
        return oid;
    }

    public static bool TryParse(string? text, out Oid oid)
    {
        oid = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var s = text.AsSpan().Trim();
        if (s.StartsWith('.'))
        {
            s = s[1..];
        }
        var list = new List<uint>();
        foreach (var range in s.Split('.'))
        {
            if (!uint.TryParse(s[range], NumberStyles.None, CultureInfo.InvariantCulture, out var arc))
            {
                return false;
            }
            list.Add(arc);
        }
        if (list.Count is < 1 or > MaxArcs)
        {
            return false;
        }
        oid = new Oid([.. list]);
        return true;
    }

    public Oid Append(params ReadOnlySpan<uint> more)
    {
        var arcs = new uint[Length + more.Length];
        Arcs.CopyTo(arcs);
        more.CopyTo(arcs.AsSpan(Length));
        return new Oid(arcs);
    }

    /// <summary>True when this OID lies strictly below <paramref name="root"/>.</summary>
    public bool IsChildOf(Oid root) => Length > root.Length && Arcs[..root.Length].SequenceEqual(root.Arcs);

    /// <summary>True when this OID equals or lies below <paramref name="root"/>.</summary>
    public bool StartsWith(Oid root) => Length >= root.Length && Arcs[..root.Length].SequenceEqual(root.Arcs);

    public int CompareTo(Oid other) => Arcs.SequenceCompareTo(other.Arcs);

    public bool Equals(Oid other) => Arcs.SequenceEqual(other.Arcs);
    public override bool Equals(object? obj) => obj is Oid o && Equals(o);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var a in Arcs)
        {
            h.Add(a);
        }
        return h.ToHashCode();
    }

    public static bool operator ==(Oid left, Oid right) => left.Equals(right);
    public static bool operator !=(Oid left, Oid right) => !left.Equals(right);
    public static bool operator <(Oid left, Oid right) => left.CompareTo(right) < 0;
    public static bool operator >(Oid left, Oid right) => left.CompareTo(right) > 0;
    public static bool operator <=(Oid left, Oid right) => left.CompareTo(right) <= 0;
    public static bool operator >=(Oid left, Oid right) => left.CompareTo(right) >= 0;

    /// <summary>Dotted form without the leading dot: 1.3.6.1.2.1.1.1.0.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(Length * 3);
        for (var i = 0; i < Length; i++)
        {
            if (i > 0)
            {
                sb.Append('.');
            }
            sb.Append(Arcs[i]);
        }
        return sb.ToString();
    }

    /// <summary>Dotted form with a leading dot, as <c>snmpwalk -On</c> prints it.</summary>
    public string ToNumericString() => "." + ToString();
}
