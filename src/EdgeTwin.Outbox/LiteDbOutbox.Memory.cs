using System.Globalization;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox.Summaries;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>
/// The file system under the outbox turned read-only while the agent runs (ext4 <c>errors=remount-ro</c> on a failing
/// SD card or eMMC: the kernel remounts it at the first I/O error and it stays so until a reboot and fsck). Before, every
/// append and reopen failed from then on: nothing more reached the uplinks although the broker was up, a stack trace was
/// logged every few seconds, and <c>edgetwin status</c> still said "nothing unsent". Now the outbox goes on in memory:
/// what the file holds is read through a copy-on-write view (reading still works on a read-only mount) into an in-memory
/// database, new entries are numbered from the clock, and the uplinks keep delivering. Once the storage is writable again
/// it is written back (LiteDbOutbox.WriteBack.cs); only what is not yet delivered when the agent stops or the gateway loses
/// power before that is lost. The budget in memory is <see cref="LiteDbOutboxOptions.MemoryBudgetBytes"/>.
/// </summary>
public sealed partial class LiteDbOutbox
{

    private ChunkedMemoryStream? _memoryData;
    private ChunkedMemoryStream? _memoryLog;
    private DateTimeOffset? _memoryOnlySince;
    private string? _memoryOnlyCause;
    private long _memoryOnlyFirstSequence;

    // The store has failed to write since (cleared by the next good commit): status names it instead of "nothing unsent".
    private DateTimeOffset? _failingSince;
    private string? _failingCause;

    private bool MemoryOnly => _memoryData is not null;

    private void NoteStorageFailing(string cause)
    {
        lock (_stateLock)
        {
            _failingSince ??= _time.GetUtcNow();
            _failingCause = cause;
        }
    }

    private void NoteStorageWorking()
    {
        if (_failingSince is null)
        {
            return;
        }

        lock (_stateLock)
        {
            _failingSince = null;
            _failingCause = null;
        }
    }

    /// <summary>
    /// Replaces the file store by an in-memory one holding what the file held (read without writing to it). False when
    /// this is not the agent's outbox (inspection never switches) or memory mode is already on.
    /// </summary>
    /// <param name="cause">The error of the failed write or open.</param>
    /// <param name="atOpen">The file system was read-only already when the agent started (it restarted after the failure:
    /// the watchdog, a crash, an upgrade): the uplinks' positions come from the file, not from this run.</param>
    private bool EnterMemoryMode(string cause, bool atOpen = false)
    {
        if (!_options.MoveCorruptFileAside || MemoryOnly || _options.MemoryBudgetBytes <= 0)
        {
            return false;
        }

        CloseDatabase();
        var path = _options.Path;
        OutboxSalvageResult held;
        try
        {
            // A write-back killed past its commit point: the complete new file holds the state (the old one lacks its journal).
            var committed = File.Exists(WriteBackMarkerPath(path)) && File.Exists(WriteBackPath(path));
            held = committed ? Salvage(WriteBackPath(path), null, _options.SalvageTimeout)
                : File.Exists(path) ? Salvage(path, JournalPath(path), _options.SalvageTimeout)
                : new OutboxSalvageResult([], 0, 0, [], Incomplete: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            held = new OutboxSalvageResult([], 0, 0, [$"cannot read {path}: {ex.Message}"], Incomplete: true);
        }

        long lastKnown;
        Dictionary<string, long> positions;
        lock (_stateLock)
        {
            lastKnown = _published.Last;
            positions = new Dictionary<string, long>(atOpen ? held.Positions : _positions, StringComparer.Ordinal);
        }

        // From the clock, like a new file: the file keeps its own last sequence, and the next start (after the fsck) goes on
        // from there; numbers handed out in memory must never be handed out again then, or the centre drops those entries as
        // duplicates.
        var seed = Math.Max(Math.Max(NewFileSeed(), held.LastSequence), lastKnown);
        _memoryData = new ChunkedMemoryStream();
        _memoryLog = new ChunkedMemoryStream();
        StoreState state;
        long copied;
        try
        {
            OpenDatabase();
            (state, _) = LoadState(seed);
            _db!.BeginTrans();
            foreach (var (uplink, position) in positions)
            {
                Uplinks.Upsert(new BsonDocument { ["_id"] = uplink, ["acked"] = position });
            }

            CommitDurably();
            var floor = positions.Count == 0 ? 0 : positions.Values.Min();
            copied = CopySalvaged(ref state, held.Entries.Where(e => e.Sequence > floor).ToList());
        }
        catch (Exception ex) when (ex is LiteException or IOException or InvalidOperationException)
        {
            CloseDatabase();
            _memoryData = null;
            _memoryLog = null;
            OutboxLog.MemoryOnlyFailed(_logger, _options.Path, ex.Message, ex);
            return false;
        }

        var since = _time.GetUtcNow();
        lock (_stateLock)
        {
            _memoryOnlySince = since;
            _memoryOnlyCause = cause;
            _memoryOnlyFirstSequence = seed + 1;
            if (atOpen)
            {
                foreach (var (uplink, position) in positions)
                {
                    _positions[uplink] = position;
                }
            }
        }

        AppendStorageEvent(ref state, since, cause, copied, held);
        StartProbing();
        Publish(state, null);
        _signal.Set(state.Last);
        OutboxLog.MemoryOnly(_logger, path, cause, copied, seed + 1, _options.MemoryBudgetBytes / (1024 * 1024));
        if (held.Problems.Count > 0 || held.Lost > 0)
        {
            OutboxLog.MemoryOnlyUnreadable(_logger, path, held.Lost, string.Join("; ", held.Problems.Take(5)));
        }

        return true;
    }

    /// <summary>Tells the centre, in the stream itself, that from here on this gateway's entries live in memory only.</summary>
    private void AppendStorageEvent(ref StoreState state, DateTimeOffset since, string cause, long copied, OutboxSalvageResult held)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["state"] = "memory_only",
            ["failed"] = "1",
            ["path"] = _options.Path,
            ["cause"] = cause,
            ["since"] = WireTime.Instant(since),
            ["first_seq_in_memory"] = (state.Last + 1).ToString(CultureInfo.InvariantCulture),
            ["held_from_file"] = copied.ToString(CultureInfo.InvariantCulture),
            ["memory_budget_bytes"] = _options.MemoryBudgetBytes.ToString(CultureInfo.InvariantCulture),
        };
        if (held.Lost > 0 || held.Incomplete)
        {
            attributes["unreadable_in_file"] = held.Lost.ToString(CultureInfo.InvariantCulture);
        }

        var message = $"Outbox {_options.Path}: its file system is read-only ({cause}); the outbox goes on in memory (at most {_options.MemoryBudgetBytes / (1024 * 1024)} MiB): what is not delivered when the agent stops or the gateway loses power is lost. Check the storage (dmesg) and reboot to fsck it, or replace it.";
        var record = UplinkBodies.Event(_options.Identity, new EdgeEvent(EdgeEventKind.StorageFailed, "outbox", since, EventSeverity.Critical, message, attributes));
        AppendOwnEvent(ref state, record);
    }

    /// <summary>The storage state <see cref="GetStats"/> reports (under <c>_stateLock</c>).</summary>
    /// <remarks>
    /// A write-back failure is reported only while in memory: the switch back to the file ends memory mode under this lock
    /// before the writer clears the failure, and a reader between the two saw the outbox on its file with a failing
    /// write-back (the full-disk write-back test failed so, now and then, on a busy machine).
    /// </remarks>
    private OutboxStorageState StorageState()
    {
        var writeBackFailedAt = _memoryOnlySince is null ? null : _writeBackFailedAt;
        return new(_memoryOnlySince, _memoryOnlyCause, _memoryOnlyFirstSequence, _memoryOnlySince is null ? 0 : _options.MemoryBudgetBytes, _failingSince, _failingCause)
        {
            WriteBackFailedAt = writeBackFailedAt,
            WriteBackFailure = writeBackFailedAt is null ? null : _writeBackFailureShown,
            NextWriteBackIn = writeBackFailedAt is null ? null : Max(TimeSpan.Zero, _writeBackNextDelay - _time.GetElapsedTime(_writeBackNextFrom)),
        };
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}

/// <summary>Whether the outbox's storage works (<see cref="OutboxStats.Storage"/>).</summary>
/// <param name="MemoryOnlySince">Since when the outbox keeps its entries in memory only (its file system turned read-only), or null.</param>
/// <param name="MemoryOnlyCause">Why (the error of the failed write or open).</param>
/// <param name="FirstSequenceInMemory">The first sequence numbered in memory (from the clock).</param>
/// <param name="MemoryBudgetBytes">The budget in force in memory (0 when on disk).</param>
/// <param name="FailingSince">Since when writes fail without a fallback (the callers keep their records), or null.</param>
/// <param name="FailingCause">The last failure's text.</param>
public sealed record OutboxStorageState(DateTimeOffset? MemoryOnlySince, string? MemoryOnlyCause, long FirstSequenceInMemory, long MemoryBudgetBytes, DateTimeOffset? FailingSince, string? FailingCause)
{
    public static readonly OutboxStorageState Healthy = new(null, null, 0, 0, null, null);

    /// <summary>
    /// In memory: when the last write-back to the file failed for a cause other than the still read-only file system (a
    /// full disk, a lost directory, a failed fsync or rename), or null (none failed since memory mode began, or one
    /// succeeded since). The log says each cause once (event 40); this says it as long as it lasts.
    /// </summary>
    public DateTimeOffset? WriteBackFailedAt { get; init; }

    /// <summary>The last failed write-back's error, with <see cref="WriteBackFailedAt"/>.</summary>
    public string? WriteBackFailure { get; init; }

    /// <summary>
    /// With <see cref="WriteBackFailedAt"/>: how long until the next attempt (zero: due, or under way). The wait doubles
    /// after each failure up to 5 minutes.
    /// </summary>
    public TimeSpan? NextWriteBackIn { get; init; }
}
