using System.Globalization;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;

namespace EdgeTwin.Agent.Alerting;

/// <summary>
/// Turns the outbox's storage state into <c>storage_failed</c> events for the alert rules (an <c>event</c> rule on
/// <c>storage_failed</c>, attribute <c>failed</c>): a gateway whose SD card the kernel remounted read-only, or whose
/// writes keep failing, raised no local alarm before. Handed to the alerting only, not to the hub: the outbox writes
/// its own event for the centre, with the sequences, when it switches to memory.
/// </summary>
internal sealed class StorageAlertFeed(Func<OutboxStorageState?> storage, Action<EdgeEvent> handle, TimeProvider time)
{
    /// <summary>How often the state is looked at.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(15);

    /// <summary>While failing, the event is repeated this often so that a rule's <c>clear_after</c> (≥ this) keeps it firing.</summary>
    public static readonly TimeSpan RepeatInterval = TimeSpan.FromMinutes(1);

    /// <summary>Failing writes are retried (and the callers keep their records): only a failure this long is an alarm.</summary>
    public static readonly TimeSpan FailingGrace = TimeSpan.FromMinutes(1);

    private DateTimeOffset? _lastSent;

    public void Check()
    {
        OutboxStorageState? state;
        try
        {
            state = storage();
        }
        catch (InvalidOperationException)
        {
            return; // the outbox is not open (starting or stopping)
        }

        if (state is null)
        {
            return;
        }

        var now = time.GetUtcNow();
        var failing = state.MemoryOnlySince is not null || (state.FailingSince is { } since && now - since >= FailingGrace);
        if (!failing)
        {
            if (_lastSent is not null)
            {
                _lastSent = null;
                handle(new EdgeEvent(EdgeEventKind.StorageFailed, "outbox", now, EventSeverity.Info, "the outbox writes to its file again",
                    new Dictionary<string, string>(StringComparer.Ordinal) { ["state"] = "resolved" }) { Device = "outbox" });
            }

            return;
        }

        if (_lastSent is { } last && now - last < RepeatInterval)
        {
            return;
        }

        _lastSent = now;
        handle(Failed(state, now));
    }

    private static EdgeEvent Failed(OutboxStorageState state, DateTimeOffset now)
    {
        var memory = state.MemoryOnlySince is not null;
        var since = state.MemoryOnlySince ?? state.FailingSince ?? now;
        var cause = (memory ? state.MemoryOnlyCause : state.FailingCause) ?? "unknown";
        var sinceText = since.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var message = memory
            ? $"gateway storage failed: the outbox's file system turned read-only at {sinceText} ({cause}); data is kept in memory only (at most {state.MemoryBudgetBytes / (1024 * 1024)} MiB) and lost if the agent stops or the power fails; check dmesg, reboot to fsck, or replace the storage"
            : $"gateway storage failed: the outbox cannot write since {sinceText} ({cause}); new data waits in memory and does not reach the uplinks";
        return new EdgeEvent(EdgeEventKind.StorageFailed, "outbox", now, EventSeverity.Critical, message,
            new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["failed"] = "1",
                ["state"] = memory ? "memory_only" : "write_failing",
                ["since"] = WireTime.Instant(since),
                ["cause"] = cause,
            })
        { Device = "outbox" };
    }
}
