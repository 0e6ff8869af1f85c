using System.Buffers;
using System.Text.Json;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Outbox.Summaries;

/// <summary>
/// Writes the versioned JSON bodies ("Uplink message bodies v1" in this project's README) that become
/// <see cref="OutboxRecord.Payload"/>. Every body starts with exactly <c>{"v":1,</c> so an uplink may splice its
/// envelope fields (e.g. <c>"seq"</c>) in front without re-parsing.
/// </summary>
public static class UplinkBodies
{
    public const int Version = 1;

    // Escapes what JSON needs and non-ASCII, never printable ASCII (the default encoder wrote '+' as \u002B).
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = false, SkipValidation = false, Encoder = WireJsonEncoder.Instance };

    /// <param name="partial">The agent did not see the whole window (stopped before its end, or started after its start):
    /// another summary of the same series and <c>start_ms</c> may exist, and the centre merges them.</param>
    public static OutboxRecord Summary(UplinkIdentity identity, SeriesDescriptor series, in WindowAccumulator window, bool condensed = false, bool partial = false)
    {
        var buffer = new ArrayBufferWriter<byte>(384);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Header(w, identity, "summary", series.DeviceId, series.Key, series.Metric, series.Unit, series.Tags, series.Role);
            w.WriteNumber("time_ms", window.EndMs);
            w.WriteNumber("start_ms", window.StartMs);
            w.WriteNumber("end_ms", window.EndMs);
            w.WriteNumber("count", window.Count);
            w.WriteNumber("bad", window.Bad);
            Number(w, "min", window.Count > 0 ? window.Min : null);
            Number(w, "max", window.Count > 0 ? window.Max : null);
            Number(w, "mean", window.Count > 0 ? window.Mean : null);
            Number(w, "last", window.Count > 0 ? window.Last : null);
            Number(w, "stddev", window.Count > 0 ? window.StdDev : null);
            if (condensed)
            {
                w.WriteBoolean("condensed", true);
            }

            if (partial)
            {
                // Which stretch of the window this part saw: parts of one window from different runs never overlap.
                w.WriteBoolean("partial", true);
                if (!window.IsEmpty)
                {
                    w.WriteNumber("first_ms", window.FirstTimestampMs);
                    w.WriteNumber("last_ms", window.LastTimestampMs);
                }
            }

            w.WriteEndObject();
        }

        return new OutboxRecord(OutboxKind.Summary, series.DeviceId, window.EndMs, buffer.WrittenMemory.ToArray());
    }

    public static OutboxRecord Raw(UplinkIdentity identity, SeriesDescriptor series, ReadOnlySpan<RawPoint> points)
    {
        if (points.IsEmpty)
        {
            throw new ArgumentException($"A raw body for '{series.Key}' needs at least one point.", nameof(points));
        }

        var buffer = new ArrayBufferWriter<byte>(256 + (points.Length * 40));
        long start = long.MaxValue, end = long.MinValue;
        foreach (var p in points)
        {
            start = Math.Min(start, p.TimestampMs);
            end = Math.Max(end, p.TimestampMs);
        }

        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Header(w, identity, "raw", series.DeviceId, series.Key, series.Metric, series.Unit, series.Tags, series.Role);
            w.WriteNumber("time_ms", end);
            w.WriteNumber("start_ms", start);
            w.WriteNumber("end_ms", end);
            w.WriteStartArray("points");
            foreach (var p in points)
            {
                w.WriteStartArray();
                w.WriteNumberValue(p.TimestampMs);
                if (double.IsFinite(p.Value))
                {
                    w.WriteNumberValue(p.Value);
                }
                else
                {
                    w.WriteNullValue();
                }

                w.WriteNumberValue(p.Quality);
                w.WriteEndArray();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return new OutboxRecord(OutboxKind.Raw, series.DeviceId, end, buffer.WrittenMemory.ToArray());
    }

    /// <param name="series">The series the event is about, when it is about one (adds series key, metric and unit).</param>
    /// <remarks>Device: the series' device, else <see cref="EdgeEvent.Device"/>, else the source up to its first '/'.
    /// Series: the descriptor's key, else <see cref="EdgeEvent.Series"/>.</remarks>
    /// <param name="spanStartMs">For an event about a span of time (a data gap): its start, written as <c>start_ms</c>; the
    /// event's time is its end. Null: an instant (<c>start_ms</c> = <c>end_ms</c> = <c>time_ms</c>).</param>
    public static OutboxRecord Event(UplinkIdentity identity, EdgeEvent edgeEvent, SeriesDescriptor? series = null, long? spanStartMs = null)
    {
        ArgumentNullException.ThrowIfNull(edgeEvent);
        var device = series?.DeviceId ?? edgeEvent.Device ?? DeviceOf(edgeEvent.Source);
        var time = edgeEvent.Time.ToUnixTimeMilliseconds();
        var buffer = new ArrayBufferWriter<byte>(384);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            // A series the registry does not know (yet) still gives its key (an alert restored before its series is seen).
            Header(w, identity, "event", device, series?.Key ?? edgeEvent.Series, series?.Metric, series?.Unit, series?.Tags, series?.Role);
            w.WriteNumber("time_ms", time);
            w.WriteNumber("start_ms", Math.Min(spanStartMs ?? time, time));
            w.WriteNumber("end_ms", time);
            w.WriteString("event", edgeEvent.Kind.ToWireName());
            w.WriteString("severity", SeverityName(edgeEvent.Severity));
            w.WriteString("source", edgeEvent.Source);
            w.WriteString("message", edgeEvent.Message);
            Attributes(w, edgeEvent.Attributes);
            w.WriteEndObject();
        }

        return new OutboxRecord(OutboxKind.Event, device, time, buffer.WrittenMemory.ToArray());
    }

    /// <summary>The device part of an event source: <c>pdu-1/outlet_current{outlet=7}</c> → <c>pdu-1</c>.</summary>
    public static string DeviceOf(string source)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(source);
        var slash = source.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? source[..slash] : source;
    }

    public static string SeverityName(EventSeverity severity) => severity switch
    {
        EventSeverity.Info => "info",
        EventSeverity.Warning => "warning",
        EventSeverity.Critical => "critical",
        _ => throw new ArgumentOutOfRangeException(nameof(severity), severity, null),
    };

    private static void Header(
        Utf8JsonWriter w,
        UplinkIdentity identity,
        string type,
        string device,
        string? seriesKey,
        string? metric,
        string? unit,
        IReadOnlyList<KeyValuePair<string, string>>? tags,
        string? role)
    {
        w.WriteStartObject();
        w.WriteNumber("v", Version);
        w.WriteString("type", type);
        w.WriteString("gateway", identity.GatewayId);
        w.WriteString("site", identity.SiteId);
        w.WriteString("device", device);
        StringOrNull(w, "series", seriesKey);
        if (metric is not null)
        {
            w.WriteString("metric", metric);
        }

        StringOrNull(w, "unit", unit);
        if (role is not null)
        {
            w.WriteString("role", role);
        }

        if (tags is { Count: > 0 })
        {
            w.WriteStartObject("tags");
            foreach (var (k, v) in tags)
            {
                w.WriteString(k, v);
            }

            w.WriteEndObject();
        }
    }

    private static void Attributes(Utf8JsonWriter w, IReadOnlyDictionary<string, string>? attributes)
    {
        w.WriteStartObject("attributes");
        if (attributes is not null)
        {
            foreach (var (k, v) in attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                w.WriteString(k, v);
            }
        }

        w.WriteEndObject();
    }

    private static void StringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
