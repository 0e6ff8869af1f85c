using EdgeTwin.Core.Config;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.Outbox;

/// <summary>Settings of <see cref="LiteDbOutbox"/>; site config <c>outbox: { path, disk_budget_mb, max_age }</c>.</summary>
public sealed class LiteDbOutboxOptions
{
    /// <summary>The database file, e.g. <c>/var/lib/edgetwin/outbox.db</c>. LiteDB keeps its journal beside it (<c>outbox-log.db</c>).</summary>
    public required string Path { get; init; }

    /// <summary>Upper bound of what the stored entries may take. Raw data is condensed, then old summaries dropped, to stay under it.</summary>
    public long DiskBudgetBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>
    /// Free space left to everyone else on the outbox's filesystem; the budget in force shrinks so that the outbox stops
    /// growing there (null: 5 % of the filesystem, at most 64 MiB). The disk filling up is then condensation and a
    /// data_gap event, not failed appends: a full disk also blocked the deletes that acknowledgements need.
    /// </summary>
    public long? DiskReserveBytes { get; init; }

    /// <summary>
    /// What the outbox may hold in memory once its file system has turned read-only (a failing SD card remounted by the
    /// kernel): it goes on in memory instead of failing every append (README "Failure modes"); the budget rounds condense
    /// and drop against the smaller of this and <see cref="DiskBudgetBytes"/>. 0: no memory fallback.
    /// </summary>
    public long MemoryBudgetBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Summaries and raw entries older than this are dropped (events and predictions are kept).</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>fsync the journal after every commit, so an acknowledged append survives power loss, not just a crash.</summary>
    public bool FlushToDisk { get; init; } = true;

    /// <summary>
    /// How long an acknowledgement may wait to ride on the next commit (an append's, normally) instead of starting its
    /// own fsynced one; <see cref="IOutbox.AcknowledgeAsync"/> completes when it is committed. Zero: each commits at once.
    /// A crash re-sends at most this much of what was delivered (at-least-once); nothing undelivered is touched.
    /// The agent sets it with <see cref="AckCommitIntervalFor"/>.
    /// </summary>
    public TimeSpan AckCommitInterval { get; init; }

    /// <summary>The longest <see cref="AckCommitIntervalFor"/> gives: well inside the uplink's 10 s outbox timeout, which an acknowledgement's wait counts against.</summary>
    public static readonly TimeSpan MaxAckCommitInterval = TimeSpan.FromSeconds(4);

    /// <summary>
    /// Twice <paramref name="commitInterval"/> (raw points come every ~1.1 s at 10 s polling, so waiting exactly one
    /// interval just missed the next append and committed alone: 29 lone ack commits a minute measured), at most
    /// <see cref="MaxAckCommitInterval"/>: with <c>commit_interval: 30s</c> an acknowledgement waited a minute and the
    /// uplink gave it up after its 10 s outbox timeout, logging a failed acknowledgement each time.
    /// </summary>
    public static TimeSpan AckCommitIntervalFor(TimeSpan commitInterval) =>
        TimeSpan.FromTicks(Math.Min(Math.Max(0, commitInterval.Ticks) * 2, MaxAckCommitInterval.Ticks));

    /// <summary>Gateway and site written into the data-gap events the outbox emits.</summary>
    public UplinkIdentity Identity { get; init; } = new("unknown", "unknown");

    /// <summary>Window of the summaries that condensation makes from raw entries.</summary>
    public TimeSpan CondenseWindow { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often the maximum age is enforced.</summary>
    public TimeSpan MaintenanceInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Above this share of the budget, condensation starts…</summary>
    public double HighWatermark { get; init; } = 0.9;

    /// <summary>…and goes on until the stored entries are below this share.</summary>
    public double LowWatermark { get; init; } = 0.75;

    /// <summary>
    /// Move a corrupt file aside and start a new one (the agent). False for inspection (<c>edgetwin outbox</c>):
    /// a corrupt file is then an <see cref="OutboxStorageException"/> and stays where it is.
    /// </summary>
    public bool MoveCorruptFileAside { get; init; } = true;

    /// <summary>How long reading what is left of a corrupt file (before it is replaced) may take; a damaged page can loop.</summary>
    public TimeSpan SalvageTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// This machine (<see cref="StoreOrigin.ThisHost"/>, a digest of <c>/etc/machine-id</c>; null: unknown). The file records
    /// it with its birth time; a file found on another machine or as a copy (a restored backup, an old gateway's file moved
    /// in) numbers new entries from the clock, since its own count may be behind what the centre has (README "Sequence numbers").
    /// </summary>
    public string? Host { get; init; } = StoreOrigin.ThisHost();

    /// <summary>Options from the site config's <c>outbox:</c> section.</summary>
    public static LiteDbOutboxOptions From(OutboxSettings settings, string siteId, string gatewayId)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new LiteDbOutboxOptions
        {
            Path = settings.Path,
            DiskBudgetBytes = settings.DiskBudgetMb * 1024L * 1024L,
            MemoryBudgetBytes = settings.MemoryBudgetMb * 1024L * 1024L,
            MaxAge = settings.MaxAge,
            AckCommitInterval = AckCommitIntervalFor(settings.CommitInterval),
            Identity = new UplinkIdentity(gatewayId, siteId),
        };
    }

    /// <summary>
    /// While the outbox is in memory (its file system turned read-only), how often it tries to write back to its file
    /// (a remount read-write, a re-seated state disk). The try on a read-only mount is one failed file creation, no write;
    /// a write-back that fails otherwise (a full disk) doubles the wait up to 5 min.
    /// </summary>
    public TimeSpan WriteBackProbeInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Test hook: called by the write-back at each step (<c>writing</c>, <c>written</c>, <c>committed</c>, <c>replaced</c>) on its thread.</summary>
    internal Action<string>? WriteBackStep { get; init; }

    /// <summary>Test hook: wraps the data and journal streams (fault injection). Production leaves it null.</summary>
    internal Func<FileStream, Stream>? WrapStream { get; init; }

    /// <summary>Test hook: (available, total) bytes of the outbox's filesystem instead of the real ones; null = unknown.</summary>
    internal Func<(long Available, long Total)?>? FileSystemSpace { get; init; }

    /// <summary>Sequences per segment collection (tests use small ones to cross segment boundaries often).</summary>
    internal int SegmentCapacity { get; init; } = 8192;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Path))
        {
            throw new ArgumentException("Outbox path is empty (outbox.path).");
        }

        if (DiskBudgetBytes < 256 * 1024)
        {
            throw new ArgumentException($"Outbox disk budget {DiskBudgetBytes} bytes is below the 256 KiB minimum (outbox.disk_budget_mb).");
        }

        if (MaxAge <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Outbox max age {MaxAge} must be positive (outbox.max_age).");
        }

        if (AckCommitInterval < TimeSpan.Zero || AckCommitInterval > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentException($"Outbox acknowledgement commit interval {AckCommitInterval} must be between 0 and 1 min (outbox.commit_interval).");
        }

        if (WriteBackProbeInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Outbox write-back probe interval {WriteBackProbeInterval} must be positive.");
        }

        if (CondenseWindow <= TimeSpan.Zero || MaintenanceInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("Outbox condense window and maintenance interval must be positive.");
        }

        if (!(LowWatermark > 0 && LowWatermark < HighWatermark && HighWatermark <= 1))
        {
            throw new ArgumentException($"Outbox watermarks must satisfy 0 < low ({LowWatermark}) < high ({HighWatermark}) <= 1.");
        }
    }
}

/// <summary>An append, acknowledgement or read failed on disk. The whole batch was not stored; the caller keeps it.</summary>
public sealed class OutboxStorageException(string message, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>Another process (normally the running agent) holds the outbox.</summary>
    public bool InUse { get; init; }

    /// <summary>The file is corrupt and <see cref="LiteDbOutboxOptions.MoveCorruptFileAside"/> was off.</summary>
    public bool Corrupt { get; init; }
}
