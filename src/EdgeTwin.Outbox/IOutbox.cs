namespace EdgeTwin.Outbox;

/// <summary>What an outbox entry carries. Events (alerts and predictions among them) are never condensed or dropped.</summary>
public enum OutboxKind : byte
{
    Summary = 0,
    Raw = 1,
    Event = 2,

    /// <summary>Reserved, never written by this version: forecasts go as <see cref="Event"/>s with <c>event: prediction</c>.
    /// Kept so the stored numbers stay stable and an entry of this kind would still be forwarded and never dropped.</summary>
    Prediction = 3,

    /// <summary>Reserved, never written by this version (the line twin's state goes as a <c>prediction</c> event).</summary>
    TwinState = 4,
}

/// <summary>
/// A message waiting for the uplinks. <paramref name="Payload"/> is the versioned JSON body documented in the
/// Uplink README; encoders for other formats (Sparkplug B) derive from it.
/// </summary>
/// <param name="Kind">What it is; decides topic and whether it may be condensed.</param>
/// <param name="DeviceId">The device (or model/rule) it concerns: Kafka key, per-device order.</param>
/// <param name="TimestampUnixMs">The time the message describes, not when it was sent.</param>
/// <param name="Payload">UTF-8 JSON body.</param>
public readonly record struct OutboxRecord(OutboxKind Kind, string DeviceId, long TimestampUnixMs, ReadOnlyMemory<byte> Payload);

/// <summary>A stored record with its gap-free, ever-increasing sequence number.</summary>
public readonly record struct OutboxEntry(long Sequence, OutboxRecord Record);

/// <summary>
/// Durable store-and-forward between the pipeline and the uplinks. One writer appends; every uplink has its own
/// read position and acknowledges independently; an entry goes only when every registered uplink has acknowledged it
/// (or the disk budget forces condensation, never for events and predictions).
/// </summary>
public interface IOutbox : IAsyncDisposable
{
    /// <summary>Appends a batch; durable on disk when the task completes. Returns the sequence of the last record.</summary>
    ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken);

    /// <summary>Registers an uplink (idempotent); a new uplink starts at the oldest entry still held.</summary>
    void RegisterUplink(string uplink);

    /// <summary>Up to <paramref name="max"/> entries after <paramref name="afterSequence"/> (use the uplink's acknowledged position to start).</summary>
    ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken);

    /// <summary>The highest sequence this uplink has acknowledged (0 when none).</summary>
    long GetAcknowledged(string uplink);

    /// <summary>Marks every entry up to and including <paramref name="sequence"/> acknowledged by this uplink.</summary>
    ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken);

    /// <summary>Completes when entries beyond <paramref name="afterSequence"/> exist, so uplinks need not poll.</summary>
    ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken);
}
