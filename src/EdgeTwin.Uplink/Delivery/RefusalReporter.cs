using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using EdgeTwin.Core;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Uplink.Delivery;

/// <summary>What an uplink's peer refused for good since the agent started (for <c>edgetwin status</c>).</summary>
/// <param name="Count">Entries refused since start (also counted in <c>edgetwin.uplink.rejected</c>).</param>
/// <param name="LastSequence">The last refused entry's outbox sequence, null when none was refused.</param>
/// <param name="LastReason">What the peer said about it (reason code and text), null when none was refused.</param>
/// <param name="LastAt">When it was refused, null when none was refused.</param>
public sealed record UplinkRejections(long Count, long? LastSequence, string? LastReason, DateTimeOffset? LastAt)
{
    public static readonly UplinkRejections None = new(0, null, null, null);

    /// <summary>
    /// Since when the peer closes the connection on every entry sent (after <see cref="UplinkPump.RefusedOnCloseInARowLimit"/>
    /// refused so in a row, nothing delivered): no more are refused, they wait in the outbox. Null when not so.
    /// </summary>
    public DateTimeOffset? ClosesOnEveryEntrySince { get; init; }
}

/// <summary>
/// Sessions the broker ended because another connection took over the client id, since start (<see cref="UplinkTakenOverException"/>):
/// a second gateway with this identity. For <c>edgetwin status</c>.
/// </summary>
public sealed record UplinkTakeovers(long Count, DateTimeOffset? LastAt, string? LastReason)
{
    public static readonly UplinkTakeovers None = new(0, null, null);
}

/// <summary>One entry a peer refused for good, as its data_gap event describes it.</summary>
internal readonly record struct Refusal(OutboxEntry Entry, string Reason, string? Topic, long Size, DateTimeOffset At);

/// <summary>
/// Turns the entries one uplink's peer refused for good into <c>data_gap</c> events (reason <c>rejected_by_peer</c>)
/// appended to the outbox, so the centre sees why a <c>seq</c> is missing instead of a bare hole. Refusals that come
/// close together (within <see cref="DeliveryOptions.RefusalBatchDelay"/>) share one event, at most
/// <see cref="MaxPerEvent"/> entries each. A refused entry counts as done for the uplink only once its event is durable
/// in the outbox: a crash in between sends the entry again after the restart, the peer refuses it again, and it is
/// reported then. A refused <c>data_gap</c> is never reported by another one (<see cref="IsDataGap"/>): that could loop.
/// </summary>
internal sealed class RefusalReporter
{
    public const string GapReason = "rejected_by_peer";

    /// <summary>Entries named by one event: bounded so the event stays small (a few KB) next to brokers' size limits.</summary>
    public const int MaxPerEvent = 16;

    private static readonly TimeSpan RetryMin = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(30);

    private readonly IOutbox _outbox;
    private readonly string _uplink;
    private readonly string _peer;
    private readonly UplinkIdentity _identity;
    private readonly DeliveryOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action<IReadOnlyList<long>> _reported;
    private readonly RepeatedFailureLog _failures;
    private readonly Lock _gate = new();
    private readonly List<Refusal> _pending = []; // under _gate, in arrival order
    private readonly HashSet<long> _pendingSequences = []; // under _gate: a resend refused again is not named twice
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private long _count;
    private UplinkRejections _last = UplinkRejections.None; // under _gate

    /// <param name="reported">Called with the sequences an event named once it is durable in the outbox.</param>
    public RefusalReporter(IOutbox outbox, string uplink, string peer, UplinkIdentity identity, DeliveryOptions options, TimeProvider time, ILogger logger, Action<IReadOnlyList<long>> reported)
    {
        _outbox = outbox;
        _uplink = uplink;
        _peer = peer;
        _identity = identity;
        _options = options;
        _time = time;
        _logger = logger;
        _reported = reported;
        _failures = new RepeatedFailureLog(time);
    }

    /// <summary>Refusals since start and the last one.</summary>
    public UplinkRejections Rejections
    {
        get { lock (_gate) { return _last; } }
    }

    /// <summary>Entries waiting for their event (for tests).</summary>
    public int Pending
    {
        get { lock (_gate) { return _pending.Count; } }
    }

    /// <summary>True while <paramref name="sequence"/> was refused and its data_gap is not yet in the outbox.</summary>
    public bool IsWaiting(long sequence)
    {
        lock (_gate)
        {
            return _pendingSequences.Contains(sequence);
        }
    }

    /// <summary>
    /// True for a <c>data_gap</c> event body (the outbox's own, or one of these): a refusal of it is logged and counted but
    /// not reported by yet another data_gap, which the peer would likely refuse the same way, for ever.
    /// </summary>
    public static bool IsDataGap(OutboxEntry entry) =>
        entry.Record.Kind == OutboxKind.Event && entry.Record.Payload.Span.IndexOf("\"event\":\"data_gap\""u8) >= 0;

    /// <summary>Counts a refusal; unless <paramref name="report"/> is false, queues it for a data_gap event.</summary>
    public void Add(Refusal refusal, bool report)
    {
        lock (_gate)
        {
            _count++;
            _last = new UplinkRejections(_count, refusal.Entry.Sequence, refusal.Reason, refusal.At);
            if (!report || !_pendingSequences.Add(refusal.Entry.Sequence))
            {
                return;
            }

            _pending.Add(refusal);
        }

        _signal.Writer.TryWrite(true);
    }

    /// <summary>Writes the events as refusals come, until cancelled; then the caller flushes what is left.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var retry = RetryMin;
        while (true)
        {
            await _signal.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);

            // Refusals come in bursts (a window of messages to a forbidden topic): wait for the rest of the burst.
            if (_options.RefusalBatchDelay > TimeSpan.Zero)
            {
                await Task.Delay(_options.RefusalBatchDelay, _time, cancellationToken).ConfigureAwait(false);
            }

            while (Pending > 0)
            {
                if (await FlushOnceAsync(cancellationToken).ConfigureAwait(false))
                {
                    retry = RetryMin;
                    continue;
                }

                await Task.Delay(retry, _time, cancellationToken).ConfigureAwait(false);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, RetryMax.Ticks));
            }
        }
    }

    /// <summary>At stop: one try to write what waits (bounded by the outbox timeout); what fails is reported after the restart.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (Pending > 0 && await FlushOnceAsync(cancellationToken).ConfigureAwait(false))
        {
        }
    }

    /// <summary>Appends one event for up to <see cref="MaxPerEvent"/> waiting refusals; false when the append failed.</summary>
    private async Task<bool> FlushOnceAsync(CancellationToken cancellationToken)
    {
        Refusal[] batch;
        lock (_gate)
        {
            batch = [.. _pending.Take(MaxPerEvent)];
        }

        if (batch.Length == 0)
        {
            return true;
        }

        var record = Event(batch);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.OutboxTimeout);
        long sequence;
        try
        {
            sequence = await _outbox.AppendAsync([record], timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            var line = _failures.Failed(ex.GetType().Name + ": " + ex.Message);
            if (line.Kind == FailureLineKind.Log)
            {
                Log.RefusalGapFailed(_logger, ex, _uplink, batch.Length, line.Failures);
            }

            return false;
        }

        _failures.Succeeded();
        var sequences = batch.Select(r => r.Entry.Sequence).ToArray();
        lock (_gate)
        {
            _pending.RemoveRange(0, batch.Length);
            _pendingSequences.ExceptWith(sequences);
        }

        Log.RefusalGapWritten(_logger, _uplink, sequence, string.Join(',', sequences));
        _reported(sequences);
        return true;
    }

    /// <summary>The data_gap event naming <paramref name="batch"/> (Outbox README, "event"; Uplink README, "Refused entries").</summary>
    internal OutboxRecord Event(IReadOnlyList<Refusal> batch)
    {
        var sequences = batch.Select(r => r.Entry.Sequence).Order().ToArray();
        var devices = new SortedSet<string>(StringComparer.Ordinal);
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["reason"] = GapReason,
            ["uplink"] = _uplink,
            ["peer"] = _peer,
            ["rejected"] = Invariant(batch.Count),
            ["seqs"] = string.Join(',', sequences.Select(Invariant)),
            ["first_seq"] = Invariant(sequences[0]),
            ["last_seq"] = Invariant(sequences[^1]),
            ["from_ms"] = Invariant(batch.Min(r => r.Entry.Record.TimestampUnixMs)),
            ["to_ms"] = Invariant(batch.Max(r => r.Entry.Record.TimestampUnixMs)),
        };
        foreach (var r in batch)
        {
            var record = r.Entry.Record;
            var prefix = "entry." + Invariant(r.Entry.Sequence) + ".";
            attributes[prefix + "kind"] = Payloads.UplinkIdentity.KindName(record.Kind);
            attributes[prefix + "device"] = record.DeviceId;
            attributes[prefix + "size_bytes"] = Invariant(r.Size);
            attributes[prefix + "peer_reason"] = r.Reason;
            attributes[prefix + "time_ms"] = Invariant(record.TimestampUnixMs);
            if (r.Topic is { } topic)
            {
                attributes[prefix + "topic"] = topic;
            }

            if (SeriesOf(record.Payload.Span) is { } series)
            {
                attributes[prefix + "series"] = series;
            }

            devices.Add(record.DeviceId);
        }

        attributes["devices"] = string.Join(',', devices.Take(20));
        var first = batch[0];
        var message = batch.Count == 1
            ? $"Uplink {_uplink}: {_peer} refused outbox entry {first.Entry.Sequence} ({Payloads.UplinkIdentity.KindName(first.Entry.Record.Kind)}, device {first.Entry.Record.DeviceId}, {first.Size} bytes) for good: {first.Reason}. It was passed over and is missing from this uplink's stream."
            : $"Uplink {_uplink}: {_peer} refused {batch.Count} outbox entries for good (sequences {attributes["seqs"]}; first: {first.Reason}). They were passed over and are missing from this uplink's stream.";
        var now = _time.GetUtcNow();
        return UplinkBodies.Event(_identity, new EdgeEvent(EdgeEventKind.DataGap, "outbox", now, EventSeverity.Warning, message, attributes));
    }

    /// <summary>The body's top-level <c>series</c> (summaries, raw points, events about a series); null when it has none or is not JSON.</summary>
    internal static string? SeriesOf(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isSeries = reader.ValueTextEquals("series"u8);
                reader.Read();
                if (isSeries)
                {
                    return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
            // A body that is not JSON (the reason it was refused, maybe): no series to name.
        }

        return null;
    }

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}
