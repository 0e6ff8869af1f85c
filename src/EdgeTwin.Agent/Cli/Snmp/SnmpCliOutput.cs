using System.Text.Json;
using EdgeTwin.Snmp;

namespace EdgeTwin.Agent.Cli.Snmp;

/// <summary>Prints varbinds as net-snmp does with -On, or as JSON.</summary>
internal static class SnmpCliOutput
{
    public const int ExitOk = 0;
    public const int ExitSnmpError = 1;
    public const int ExitTimeout = 2;
    public const int ExitUsage = 3;

    public static void Write(TextWriter output, IReadOnlyList<VarBind> varBinds, bool json)
    {
        if (!json)
        {
            foreach (var vb in varBinds)
            {
                output.WriteLine(vb.ToString());
            }
            return;
        }
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteStartArray("varbinds");
            foreach (var vb in varBinds)
            {
                w.WriteStartObject();
                w.WriteString("oid", vb.Oid.ToNumericString());
                w.WriteString("type", JsonType(vb.Value));
                WriteValue(w, vb.Value);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static string JsonType(SnmpValue v) => v.Type switch
    {
        SnmpType.OpaqueFloat => "Opaque-Float",
        SnmpType.OpaqueDouble => "Opaque-Double",
        _ => SnmpFormatter.TypeName(v),
    };

    private static void WriteValue(Utf8JsonWriter w, SnmpValue v)
    {
        switch (v.Type)
        {
            case SnmpType.Integer:
                w.WriteNumber("value", v.AsInt32());
                break;
            case SnmpType.Counter32:
            case SnmpType.Gauge32:
            case SnmpType.TimeTicks:
                w.WriteNumber("value", v.AsUInt32());
                break;
            case SnmpType.Counter64:
                w.WriteNumber("value", v.AsUInt64());
                break;
            case SnmpType.OpaqueFloat:
                w.WriteNumber("value", v.AsFloat());
                break;
            case SnmpType.OpaqueDouble:
                w.WriteNumber("value", v.AsDouble());
                break;
            case SnmpType.OctetString:
                var bytes = v.AsBytes().Span;
                if (SnmpFormatter.IsPrintable(bytes))
                {
                    w.WriteString("value", System.Text.Encoding.ASCII.GetString(bytes).TrimEnd('\0'));
                }
                else
                {
                    w.WriteString("hex", Convert.ToHexString(bytes));
                }
                break;
            case SnmpType.Opaque:
                w.WriteString("hex", Convert.ToHexString(v.AsBytes().Span));
                break;
            case SnmpType.ObjectIdentifier:
                w.WriteString("value", v.AsOid().ToNumericString());
                break;
            case SnmpType.IpAddress:
                w.WriteString("value", v.AsIPAddress().ToString());
                break;
            default:
                w.WriteNull("value");
                break;
        }
    }

    public static int Fail(TextWriter error, TextWriter output, bool json, string kind, string reason, int exitCode)
    {
        var line = reason.ReplaceLineEndings(" ");
        error.WriteLine($"edgetwin snmp: {line}");
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["error"] = kind, ["reason"] = line }));
        }
        return exitCode;
    }
}
