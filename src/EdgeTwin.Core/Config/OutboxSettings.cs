namespace EdgeTwin.Core.Config;

/// <summary>The <c>outbox:</c> section: where the store-and-forward buffer lives and how big and old it may grow.</summary>
/// <param name="Path">LiteDB file.</param>
/// <param name="DiskBudgetMb">Disk the outbox may use before it condenses summaries, in MiB.</param>
/// <param name="MaxAge">Entries older than this are dropped (summaries) even if not acknowledged.</param>
public sealed record OutboxSettings(string Path, int DiskBudgetMb, TimeSpan MaxAge)
{
    /// <summary>Defaults: <c>/var/lib/edgetwin/outbox.db</c>, 512 MiB, 7 days, 60 s summaries checkpointed every 10 s.</summary>
    public static OutboxSettings Default { get; } = new("/var/lib/edgetwin/outbox.db", 512, TimeSpan.FromDays(7));

    /// <summary><c>summary_window</c>: the window of the per-series summaries (count, min, max, mean, last, stddev).</summary>
    public TimeSpan SummaryWindow { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// <c>checkpoint_interval</c>: how often the open summary windows are checkpointed into the outbox, so that a crash
    /// or power cut loses at most this much of them (the rest goes out as partial summaries at the next start).
    /// Zero turns it off (a crash then loses every open window).
    /// </summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// <c>commit_interval</c>: how long records made from samples (closed summaries, raw points) may wait for a commit.
    /// Every commit is an fsync and whole LiteDB pages in the journal and again in the data file, whatever it carries, so
    /// a commit per poll was a large part of the flash's wear; a crash loses at most this much of them (within the checkpoint's
    /// <c>data_gap</c> span). Events always commit at once. Zero commits every poll's records as before.
    /// </summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// <c>memory_budget_mb</c>: what the outbox may hold in memory once its file system turns read-only under the agent (a
    /// failing SD card), in MiB; 0 turns the memory fallback off (appends then fail until a restart). The process needs
    /// about 2.7 times it at the full budget (LiteDB's pages and cache; measured 175 MiB of heap at 64).
    /// </summary>
    public int MemoryBudgetMb { get; init; } = 64;

    /// <summary>The outbox's journal next to <paramref name="outboxPath"/>, named as LiteDB names it: <c>outbox.db</c> → <c>outbox-log.db</c>.</summary>
    public static string JournalPath(string outboxPath) =>
        System.IO.Path.Combine(
            System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(outboxPath)) ?? ".",
            System.IO.Path.GetFileNameWithoutExtension(outboxPath) + "-log" + System.IO.Path.GetExtension(outboxPath));

    /// <summary>The file the agent locks so that one process at a time opens the outbox: <c>outbox.db.lock</c>.</summary>
    public static string LockPath(string outboxPath) => outboxPath + ".lock";
}
