using EdgeTwin.Uplink.Delivery;
using System.Buffers;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Payloads;

/// <summary>
/// The versioned JSON envelope around an outbox body (schema in the Uplink README):
/// <c>{"v":1,"site":…,"gateway":…,"seq":…,"kind":…,"device":…,"time":…,"historical":…,"body":{…}}</c>.
/// The body is the outbox payload, copied verbatim after a validity check.
/// </summary>
public static class JsonEnvelope
{
    /// <summary>Bumped on any incompatible change of the envelope; additive fields keep the version.</summary>
    public const int SchemaVersion = 1;

    // Escapes what JSON needs and non-ASCII, never printable ASCII (the default encoder wrote '+' as \u002B).
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = false, SkipValidation = false, Encoder = EdgeTwin.Core.Events.WireJsonEncoder.Instance };

    // One writer and buffer per thread: a replay encodes tens of thousands of envelopes a second.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Encodes one entry; throws <see cref="InvalidBodyException"/> when the body is not one JSON value.</summary>
    public static byte[] Encode(UplinkIdentity identity, OutboxEntry entry, bool historical)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        writer.Reset(buffer);
        try
        {
            Write(writer, identity, entry, historical);
        }
        catch (InvalidBodyException)
        {
            writer.Reset(); // a half-written envelope must not leak into the next one
            throw;
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void Write(Utf8JsonWriter writer, UplinkIdentity identity, OutboxEntry entry, bool historical)
    {
        writer.WriteStartObject();
        writer.WriteNumber("v"u8, SchemaVersion);
        writer.WriteString("site"u8, identity.Site);
        writer.WriteString("gateway"u8, identity.Gateway);
        writer.WriteNumber("seq"u8, entry.Sequence);
        writer.WriteString("kind"u8, UplinkIdentity.KindName(entry.Record.Kind));
        writer.WriteString("device"u8, entry.Record.DeviceId);
        Span<byte> time = stackalloc byte[32];
        writer.WriteString("time"u8, time[..FormatTime(entry.Record.TimestampUnixMs, time)]);
        writer.WriteBoolean("historical"u8, historical);
        writer.WritePropertyName("body"u8);
        try
        {
            writer.WriteRawValue(entry.Record.Payload.Span, skipInputValidation: false);
        }
        catch (JsonException ex)
        {
            throw new InvalidBodyException($"Outbox entry {entry.Sequence} ({entry.Record.Kind}, device {entry.Record.DeviceId}) has a body that is not valid JSON", ex);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidBodyException($"Outbox entry {entry.Sequence} ({entry.Record.Kind}, device {entry.Record.DeviceId}) has an empty or oversized body", ex);
        }

        writer.WriteEndObject();
        writer.Flush();
    }

    /// <summary>
    /// The birth (<c>online</c>, with time and the gateway's <paramref name="facts"/>) or will (<c>offline</c>, no time:
    /// it is fixed at connect) on the status topic.
    /// </summary>
    public static byte[] Status(UplinkIdentity identity, bool online, DateTimeOffset? time, GatewayFacts? facts = null) =>
        Status(identity, online, time, facts, progress: null);

    /// <summary>
    /// The birth again with the uplink's progress (additive members, schema version unchanged): <c>acked_through_seq</c>
    /// (every sequence up to it was acknowledged by the broker), <c>replay_through_seq</c> (the outbox head when this
    /// connection came up: the backlog replayed as historical ends there) and <c>backlog</c> (backlog entries not yet
    /// acknowledged; 0 = the replay is complete). <paramref name="server"/>: with an MQTT <c>hosts:</c> list, the broker
    /// (<c>host:port</c>) this connection is on, as additive member <c>server</c>.
    /// </summary>
    internal static byte[] Status(UplinkIdentity identity, bool online, DateTimeOffset? time, GatewayFacts? facts, UplinkProgress? progress, string? server = null)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteNumber("v"u8, SchemaVersion);
            writer.WriteString("site"u8, identity.Site);
            writer.WriteString("gateway"u8, identity.Gateway);
            // Additive: a consumer that files every message by `kind` (one stream for all of a gateway's topics, as an
            // MQTT-to-Kafka bridge makes) could not tell a status from data without guessing from its members.
            writer.WriteString("kind"u8, "status"u8);
            writer.WriteString("state"u8, online ? "online" : "offline");
            if (time is { } t)
            {
                writer.WriteString("time"u8, FormatTime(t.ToUnixTimeMilliseconds()));
            }

            if (facts is not null)
            {
                // Additive field: schema version unchanged.
                writer.WriteStartObject("facts"u8);
                writer.WriteString("version"u8, facts.Version);
                writer.WriteString("arch"u8, facts.Architecture);
                writer.WriteString("config_sha256"u8, facts.ConfigSha256);
                if (facts.Instance is { } instance)
                {
                    writer.WriteString("instance"u8, instance);
                }

                writer.WriteStartArray("models"u8);
                foreach (var model in facts.Models)
                {
                    writer.WriteStartObject();
                    writer.WriteString("name"u8, model.Name);
                    writer.WriteString("version"u8, model.Version);
                    if (model.State is { } state)
                    {
                        writer.WriteString("state"u8, state);
                    }

                    if (model.Error is { } error)
                    {
                        writer.WriteString("error"u8, error);
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            if (progress is { } p)
            {
                writer.WriteNumber("acked_through_seq"u8, p.AckedThroughSeq);
                writer.WriteNumber("replay_through_seq"u8, p.ReplayThroughSeq);
                writer.WriteNumber("backlog"u8, p.Backlog);
            }

            if (server is not null)
            {
                writer.WriteString("server"u8, server);
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    /// <summary>ISO 8601 UTC with milliseconds, e.g. <c>2026-11-30T11:06:45.123Z</c>.</summary>
    public static string FormatTime(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    /// <summary>The same as UTF-8 into <paramref name="destination"/> (24 bytes); returns the length.</summary>
    private static int FormatTime(long unixMs, Span<byte> destination) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.TryFormat(destination, out var written, TimeFormat, CultureInfo.InvariantCulture)
            ? written
            : throw new InvalidOperationException($"time {unixMs} ms does not format as ISO 8601");
}

/// <summary>An outbox body that cannot be encoded; the entry is passed over (counted as rejected), never retried.</summary>
public sealed class InvalidBodyException(string message, Exception inner) : Exception(message, inner);
