using System.Text.Json;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Outbox.Summaries;

/// <summary>What a raw body says about its series, enough to write a condensed summary in its place.</summary>
public sealed record RawBodyHeader(UplinkIdentity Identity, SeriesDescriptor Series);

/// <summary>Reads raw bodies back (the outbox condenses old raw entries into summaries when the disk budget runs low).</summary>
public static class RawBodyReader
{
    /// <summary>Parses a v1 raw body; false (never an exception) when the payload is not one.</summary>
    public static bool TryRead(ReadOnlySpan<byte> payload, out RawBodyHeader? header, List<RawPoint> points)
    {
        header = null;
        var start = points.Count;
        try
        {
            var reader = new Utf8JsonReader(payload);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            string? type = null, gateway = null, site = null, device = null, metric = null, unit = null, role = null;
            long version = 0;
            List<KeyValuePair<string, string>>? tags = null;
            var sawPoints = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "v": version = reader.GetInt64(); break;
                    case "type": type = reader.GetString(); break;
                    case "gateway": gateway = reader.GetString(); break;
                    case "site": site = reader.GetString(); break;
                    case "device": device = reader.GetString(); break;
                    case "metric": metric = reader.GetString(); break;
                    case "unit": unit = reader.TokenType == JsonTokenType.Null ? null : reader.GetString(); break;
                    case "role": role = reader.GetString(); break;
                    case "tags":
                        tags = [];
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var key = reader.GetString()!;
                            reader.Read();
                            tags.Add(new(key, reader.GetString()!));
                        }

                        break;
                    case "points":
                        sawPoints = ReadPoints(ref reader, points);
                        if (!sawPoints)
                        {
                            return Fail(points, start);
                        }

                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (version != UplinkBodies.Version || type != "raw" || !sawPoints || gateway is null || site is null
                || string.IsNullOrWhiteSpace(device) || string.IsNullOrWhiteSpace(metric))
            {
                return Fail(points, start);
            }

            header = new RawBodyHeader(new UplinkIdentity(gateway, site), new SeriesDescriptor(device, metric, unit ?? "1", MetricKind.Gauge, role, tags));
            return true;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            return Fail(points, start);
        }
    }

    private static bool ReadPoints(ref Utf8JsonReader reader, List<RawPoint> points)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.StartArray)
        {
            reader.Read();
            var t = reader.GetInt64();
            reader.Read();
            var v = reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();
            reader.Read();
            var q = reader.GetByte();
            if (!reader.Read() || reader.TokenType != JsonTokenType.EndArray)
            {
                return false;
            }

            points.Add(new RawPoint(t, v, q));
        }

        return reader.TokenType == JsonTokenType.EndArray;
    }

    private static bool Fail(List<RawPoint> points, int start)
    {
        points.RemoveRange(start, points.Count - start);
        return false;
    }
}
