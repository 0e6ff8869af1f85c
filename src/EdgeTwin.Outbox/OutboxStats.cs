namespace EdgeTwin.Outbox;

/// <summary>A point-in-time view of an outbox, for <c>edgetwin outbox stats</c> and health checks.</summary>
/// <param name="Depth">Entries held (not yet acknowledged by every uplink).</param>
/// <param name="FirstSequence">Sequence of the oldest entry held, or 0 when empty.</param>
/// <param name="LastSequence">Sequence of the newest entry ever appended (0 before the first append).</param>
/// <param name="OldestTimestampUnixMs">The time the oldest held entry describes, or null when empty.</param>
/// <param name="Bytes">Payload bytes held (memory) or the database file size (LiteDB).</param>
/// <param name="UplinkPositions">Highest acknowledged sequence per registered uplink.</param>
/// <param name="Appended">Records appended since this instance opened.</param>
/// <param name="Condensed">Raw entries condensed into summaries to respect the budget (lifetime of the store).</param>
/// <param name="Dropped">Summary/raw entries dropped for the budget or the maximum age (lifetime of the store).</param>
public sealed record OutboxStats(
    long Depth,
    long FirstSequence,
    long LastSequence,
    long? OldestTimestampUnixMs,
    long Bytes,
    IReadOnlyDictionary<string, long> UplinkPositions,
    long Appended,
    long Condensed,
    long Dropped)
{
    /// <summary>Estimated bytes of the entries themselves (what the disk budget is measured against).</summary>
    public long EntryBytes { get; init; } = Bytes;

    /// <summary>
    /// Entries of an append committed in pieces that never finished (killed or failed part-way), still on disk: not held,
    /// never sent, removed by the next open that may write (the agent's). Only a read-only open (<c>edgetwin outbox</c>)
    /// sees them; 0 otherwise.
    /// </summary>
    public long PendingEntries { get; init; }

    /// <summary>Entry bytes of <see cref="PendingEntries"/>.</summary>
    public long PendingBytes { get; init; }

    /// <summary>
    /// The sequence the first entry this instance appended got, or would get (the last sequence at open, plus one; after a
    /// file recreated under the running agent, its first). Entries below it are from earlier runs. 0 when unknown.
    /// </summary>
    public long RunFirstSequence { get; init; }

    /// <summary>Whether the storage works: failing writes, or entries kept in memory only after the file system turned read-only.</summary>
    public OutboxStorageState Storage { get; init; } = OutboxStorageState.Healthy;

    /// <summary>Age of the oldest held entry relative to <paramref name="now"/>, or null when empty.</summary>
    public TimeSpan? OldestAge(DateTimeOffset now) =>
        OldestTimestampUnixMs is { } ts ? now - DateTimeOffset.FromUnixTimeMilliseconds(ts) : null;
}

/// <summary>Implemented by every outbox so the CLI and metrics can inspect it without knowing the store.</summary>
public interface IOutboxStatistics
{
    OutboxStats GetStats();
}

/// <summary>Raised when an uplink names itself wrongly: it must <see cref="IOutbox.RegisterUplink"/> first.</summary>
public sealed class UnknownUplinkException(string uplink)
    : InvalidOperationException($"Outbox uplink '{uplink}' is not registered; call RegisterUplink(\"{uplink}\") first.")
{
    public string Uplink { get; } = uplink;
}
