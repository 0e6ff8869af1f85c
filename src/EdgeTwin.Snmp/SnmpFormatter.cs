using System.Globalization;
using System.Text;

namespace EdgeTwin.Snmp;

/// <summary>Formats values the way net-snmp's tools print them (no MIBs loaded), so outputs compare side by side.</summary>
public static class SnmpFormatter
{
    /// <summary>net-snmp's type label: INTEGER, STRING, Hex-STRING, OID, Timeticks, ...</summary>
    public static string TypeName(SnmpValue value) => value.Type switch
    {
        SnmpType.Integer => "INTEGER",
        SnmpType.OctetString => IsPrintable(value.AsBytes().Span) ? "STRING" : "Hex-STRING",
        SnmpType.Null => "NULL",
        SnmpType.ObjectIdentifier => "OID",
        SnmpType.IpAddress => "IpAddress",
        SnmpType.Counter32 => "Counter32",
        SnmpType.Gauge32 => "Gauge32",
        SnmpType.TimeTicks => "Timeticks",
        SnmpType.Opaque => "OPAQUE",
        SnmpType.OpaqueFloat or SnmpType.OpaqueDouble => "Opaque",
        SnmpType.Counter64 => "Counter64",
        SnmpType.NoSuchObject => "noSuchObject",
        SnmpType.NoSuchInstance => "noSuchInstance",
        SnmpType.EndOfMibView => "endOfMibView",
        _ => value.Type.ToString(),
    };

    /// <summary>The value part only, as net-snmp prints it after "TYPE: ".</summary>
    public static string ValueText(SnmpValue value) => value.Type switch
    {
        SnmpType.Integer => value.AsInt32().ToString(CultureInfo.InvariantCulture),
        SnmpType.OctetString => IsPrintable(value.AsBytes().Span) ? Quote(value.AsBytes().Span) : Hex(value.AsBytes().Span),
        SnmpType.Null => "",
        SnmpType.ObjectIdentifier => value.AsOid().ToNumericString(),
        SnmpType.IpAddress => value.AsIPAddress().ToString(),
        SnmpType.Counter32 or SnmpType.Gauge32 => value.AsUInt32().ToString(CultureInfo.InvariantCulture),
        SnmpType.TimeTicks => Ticks(value.AsUInt32()),
        SnmpType.Opaque => Hex(value.AsBytes().Span),
        SnmpType.OpaqueFloat => "Float: " + value.AsFloat().ToString("F6", CultureInfo.InvariantCulture),
        SnmpType.OpaqueDouble => "Double: " + value.AsDouble().ToString("F6", CultureInfo.InvariantCulture),
        SnmpType.Counter64 => value.AsUInt64().ToString(CultureInfo.InvariantCulture),
        _ => "",
    };

    /// <summary>The right-hand side of a net-snmp output line: "INTEGER: 5", "No Such Object available on this agent at this OID", ...</summary>
    public static string Format(SnmpValue value) => value.Type switch
    {
        SnmpType.Null => "NULL",
        SnmpType.NoSuchObject => "No Such Object available on this agent at this OID",
        SnmpType.NoSuchInstance => "No Such Instance currently exists at this OID",
        SnmpType.EndOfMibView => "No more variables left in this MIB View (It is past the end of the MIB tree)",
        SnmpType.OctetString when value.AsBytes().Length == 0 => "\"\"",
        _ => TypeName(value) + ": " + ValueText(value),
    };

    /// <summary>Like net-snmp: printable when every byte is printable ASCII or whitespace (a trailing NUL is allowed).</summary>
    public static bool IsPrintable(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > 0 && bytes[^1] == 0)
        {
            bytes = bytes[..^1];
        }
        foreach (var b in bytes)
        {
            var printable = b is >= 0x20 and < 0x7f || b is (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0b or 0x0c;
            if (!printable)
            {
                return false;
            }
        }
        return true;
    }

    private static string Quote(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length + 2).Append('"');
        foreach (var b in bytes)
        {
            if (b == 0)
            {
                continue;
            }
            if (b is (byte)'"' or (byte)'\\')
            {
                sb.Append('\\');
            }
            sb.Append((char)b);
        }
        return sb.Append('"').ToString();
    }

    /// <summary>"00 1A 2B" upper-case pairs, 16 per line, as net-snmp prints Hex-STRING.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length * 3);
        for (var i = 0; i < bytes.Length; i++)
        {
            sb.Append(bytes[i].ToString("X2", CultureInfo.InvariantCulture)).Append(' ');
            if (i % 16 == 15 && i != bytes.Length - 1)
            {
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>"(123456) 0:20:34.56" or "(9000000) 1 day, 1:00:00.00".</summary>
    public static string Ticks(uint ticks)
    {
        var days = ticks / 8_640_000;
        var rest = ticks % 8_640_000;
        var h = rest / 360_000;
        rest %= 360_000;
        var m = rest / 6_000;
        rest %= 6_000;
        var s = rest / 100;
        var cs = rest % 100;
        var time = string.Create(CultureInfo.InvariantCulture, $"{h}:{m:00}:{s:00}.{cs:00}");
        var prefix = days switch
        {
            0 => "",
            1 => "1 day, ",
            _ => string.Create(CultureInfo.InvariantCulture, $"{days} days, "),
        };
        return string.Create(CultureInfo.InvariantCulture, $"({ticks}) {prefix}{time}");
    }
}
