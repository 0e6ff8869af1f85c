using System.Diagnostics;
using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox.Summaries;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>
/// Back to the file once its storage is writable again (an admin's <c>mount -o remount,rw</c>, a bind-mounted or overlay
/// state directory remounted, a re-seated USB/SD state disk). Before, the outbox stayed in memory until the agent stopped:
/// a later power cut lost everything since the failure, and after a reboot entries acknowledged in memory were sent again.
/// While in memory the writer probes the directory (creating the new file is the probe: on a read-only mount it fails
/// without a write) every <see cref="LiteDbOutboxOptions.WriteBackProbeInterval"/>. When it can, it writes the memory
/// database (entries, each uplink's position, the last sequence, the format) to <c>PATH.writeback</c> on another thread,
/// fsyncs it, and replaces <c>PATH</c> by a rename; the writer goes on in memory meanwhile and then adds what came in
/// during the write. The commit point is the old journal moved to <c>PATH.writeback-oldlog</c> (LiteDB would replay an old
/// journal onto the new file): a kill before it leaves the old file and journal whole (the next open removes the partial
/// new file), a kill after it leaves the new file complete (the next open finishes the rename).
/// </summary>
public sealed partial class LiteDbOutbox
{
    private long _probeFrom;
    private TimeSpan _probeDelay;
    private WriteBackJob? _writeBack;
    private string? _writeBackFailure;

    // For the stats (under _stateLock): the last failed write-back and when the writer tries again (monotonic).
    private DateTimeOffset? _writeBackFailedAt;
    private string? _writeBackFailureShown;
    private long _writeBackNextFrom;
    private TimeSpan _writeBackNextDelay;

    /// <summary>The data file being written back (complete once <see cref="WriteBackMarkerPath"/> exists).</summary>
    public static string WriteBackPath(string path) => path + ".writeback";

    /// <summary>The write-back's commit point: the old journal moved here (an empty file when there was none).</summary>
    public static string WriteBackMarkerPath(string path) => path + ".writeback-oldlog";

    /// <summary>How long the writer may wait for its queue: while in memory, no longer than until the next probe.</summary>
    private TimeSpan WriteBackWait(TimeSpan wait)
    {
        if (!MemoryOnly || !_options.MoveCorruptFileAside)
        {
            return wait;
        }

        // A write in flight is looked at often: its end switches the store to the file.
        var next = _writeBack is not null ? TimeSpan.FromMilliseconds(20) : _probeDelay - _time.GetElapsedTime(_probeFrom);
        return next < wait ? next : wait;
    }

    /// <summary>Writer thread, after each batch and each idle wait: starts a due write-back or finishes one that completed.</summary>
    private void TickWriteBack()
    {
        if (!MemoryOnly || !_options.MoveCorruptFileAside)
        {
            return;
        }

        if (_writeBack is { } job)
        {
            if (job.Task.IsCompleted)
            {
                _writeBack = null;
                FinishWriteBack(job);
            }

            return;
        }

        if (_time.GetElapsedTime(_probeFrom) < _probeDelay)
        {
            return;
        }

        _probeFrom = _time.GetTimestamp();
        if (_writeBackFailedAt is not null)
        {
            // A probe that finds the file system read-only again says nothing new, but the next try moves on.
            lock (_stateLock)
            {
                _writeBackNextFrom = _probeFrom;
            }
        }

        StartWriteBack();
    }

    /// <summary>Memory mode starts: the first probe after one interval.</summary>
    private void StartProbing()
    {
        _probeFrom = _time.GetTimestamp();
        _probeDelay = _options.WriteBackProbeInterval;
        _writeBackFailure = null;
        ClearWriteBackFailure();
    }

    private void ClearWriteBackFailure()
    {
        lock (_stateLock)
        {
            _writeBackFailedAt = null;
            _writeBackFailureShown = null;
        }
    }

    private void StartWriteBack()
    {
        if (_db is null)
        {
            return; // the memory database is reopened by the next operation; the probe comes again
        }

        var path = _options.Path;
        var target = WriteBackPath(path);
        FileStream file;
        try
        {
            FinishInterruptedWriteBack(path); // an earlier attempt's committed file goes in first, its partial one away
            file = new FileStream(target, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Still read-only (or not ours to write): the probe's normal answer, not logged; a new cause is said once.
            if (!Core.StorageErrors.IsReadOnlyFileSystem(ex))
            {
                WriteBackFailed(ex.Message);
            }

            return;
        }

        try
        {
            // Room for the whole file first: on a full disk the write would fail after filling it.
            var need = _memoryData!.Length + _memoryLog!.Length;
            if (StatFileSystem() is { Available: var free } && free < need + (1 << 20))
            {
                throw new IOException($"not enough free space for the write-back: it needs {need} bytes, {free} are free", Core.StorageErrors.NoSpace);
            }

            // The new file's birth time and machine go into its meta, or its next open would take it for a copy and number
            // new entries from the clock (a jump the centre would read as a new file).
            var origin = StoreOrigin.Of(target, _options.Host);
            StoreState state;
            lock (_stateLock)
            {
                state = _published;
            }

            var stopwatch = Stopwatch.StartNew();
            var previous = _origin;
            _origin = origin;
            try
            {
                _db!.BeginTrans();
                SaveMeta(state);
                CommitDurably();
            }
            finally
            {
                _origin = previous;
            }

            _db.Checkpoint(); // everything into the data stream: the journal stays out of the new file
            var snapshot = _memoryData.Snapshot();
            var copied = stopwatch.Elapsed;
            var step = _options.WriteBackStep;
            _writeBack = new WriteBackJob(Task.Run(() => WriteFiles(file, snapshot, path, step)), state.Last, copied, Stopwatch.StartNew());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or LiteException)
        {
            file.Dispose();
            TryDelete(target);
            WriteBackFailed(ex.Message);
        }
    }

    /// <summary>Another thread: the snapshot to <c>PATH.writeback</c>, fsynced, then swapped in for <c>PATH</c>.</summary>
    private static void WriteFiles(FileStream file, List<ReadOnlyMemory<byte>> snapshot, string path, Action<string>? step)
    {
        var target = WriteBackPath(path);
        var directory = StoreDirectory(path);
        try
        {
            using (file)
            {
                for (var i = 0; i < snapshot.Count; i++)
                {
                    file.Write(snapshot[i].Span);
                    if (i == snapshot.Count / 2)
                    {
                        step?.Invoke("writing");
                    }
                }

                file.Flush(flushToDisk: true);
            }

            Core.DurableDirectory.Sync(directory);
            step?.Invoke("written");
        }
        catch
        {
            TryDelete(target);
            throw;
        }

        // The commit point: LiteDB would replay the old journal onto the new file, so it leaves first. Until this rename the
        // old file and journal are whole; after it the new file is, and an open finishes the swap (FinishInterruptedWriteBack).
        var journal = JournalPath(path);
        var marker = WriteBackMarkerPath(path);
        if (File.Exists(journal))
        {
            File.Move(journal, marker, overwrite: true);
        }
        else
        {
            using (new FileStream(marker, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
            }
        }

        Core.DurableDirectory.Sync(directory);
        step?.Invoke("committed");
        File.Move(target, path, overwrite: true);
        Core.DurableDirectory.Sync(directory);
        step?.Invoke("replaced");
        File.Delete(marker);
        Core.DurableDirectory.Sync(directory);
    }

    /// <summary>
    /// A write-back a kill or a failure interrupted: past its commit point (the marker exists) the new file is complete and
    /// goes in; before it the partial new file is removed and the old file, whole, stays. Every open that holds the lock (the agent and the inspection commands).
    /// </summary>
    private void FinishInterruptedWriteBack(string path)
    {
        var target = WriteBackPath(path);
        var marker = WriteBackMarkerPath(path);
        var directory = StoreDirectory(path);
        if (File.Exists(marker))
        {
            if (File.Exists(target))
            {
                File.Move(target, path, overwrite: true);
                Core.DurableDirectory.Sync(directory);
                OutboxLog.WriteBackCompletedAtOpen(_logger, path, target);
            }

            File.Delete(marker);
            Core.DurableDirectory.Sync(directory);
        }
        else if (File.Exists(target))
        {
            File.Delete(target);
            OutboxLog.WriteBackPartialRemoved(_logger, path, target);
        }
    }

    /// <summary>
    /// Writer thread, the files written: closes the memory database, opens the new file, adds what came in during the write
    /// (entries, positions, checkpoint blobs) and goes on from the file. Any failure goes back to memory, nothing lost.
    /// </summary>
    private void FinishWriteBack(WriteBackJob job)
    {
        if (job.Task.Exception is { } failed)
        {
            WriteBackFailed(failed.GetBaseException().Message);
            return;
        }

        if (_db is null)
        {
            WriteBackFailed("the memory database was closed after a failure during the write");
            return;
        }

        var stopwatch = Stopwatch.StartNew();
        var path = _options.Path;
        StoreState memoryState;
        Dictionary<string, long> positions;
        lock (_stateLock)
        {
            memoryState = _published;
            positions = new Dictionary<string, long>(_positions, StringComparer.Ordinal);
        }

        List<BsonDocument> added;
        List<BsonDocument> uplinks;
        List<BsonDocument> blobs;
        try
        {
            // A read-only open at start locked the lock file read-only (or found none): a writable agent's lock now. The old
            // descriptor goes first: a second flock of this process on the same file would refuse it.
            if (_lockFile is not { CanWrite: true })
            {
                _lockFile?.Dispose();
                _lockFile = null;
                _lockFile = new FileStream(Core.Config.OutboxSettings.LockPath(path), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }

            added = [.. Segments.Scan(job.LastSequence, where: null, select: null, int.MaxValue)];
            uplinks = [.. Uplinks.FindAll()];
            blobs = [.. Meta.Find(Query.StartsWith("_id", BlobIdPrefix))];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or LiteException)
        {
            WriteBackFailed(ex.Message);
            return;
        }

        var memoryData = _memoryData;
        var memoryLog = _memoryLog;
        CloseDatabase();
        _memoryData = null;
        _memoryLog = null;
        StoreState state;
        try
        {
            OpenDatabase();
            (state, _) = LoadState(NewFileSeed());
            if (state.Last != job.LastSequence)
            {
                throw new IOException($"the written file ends at sequence {state.Last}, the memory outbox was at {job.LastSequence} when it was copied");
            }

            _db!.BeginTrans();
            foreach (var doc in added)
            {
                var sequence = doc["_id"].AsInt64;
                var size = doc[FieldSize].AsInt64;
                Segments.Insert(sequence, doc, size);
                if (state.Depth == 0)
                {
                    state.First = sequence;
                    state.OldestTimestamp = doc[FieldTime].AsInt64;
                }

                state.Depth++;
                state.Bytes += size;
            }

            // Uplinks and blobs as memory has them now: registered, moved on, removed or cleared during the write.
            var uplinkNames = uplinks.Select(u => u["_id"].AsString).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in Uplinks.FindAll().Where(u => !uplinkNames.Contains(u["_id"].AsString)).Select(u => u["_id"]).ToList())
            {
                Uplinks.Delete(gone);
            }

            foreach (var uplink in uplinks)
            {
                Uplinks.Upsert(uplink);
            }

            var blobIds = blobs.Select(b => b["_id"].AsString).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in Meta.Find(Query.StartsWith("_id", BlobIdPrefix)).Where(b => !blobIds.Contains(b["_id"].AsString)).Select(b => b["_id"]).ToList())
            {
                Meta.Delete(gone);
            }

            foreach (var blob in blobs)
            {
                Meta.Upsert(blob);
            }

            state.Last = memoryState.Last;
            state.Condensed = memoryState.Condensed;
            state.Dropped = memoryState.Dropped;
            if (positions.Count > 0)
            {
                RemoveAcknowledged(ref state, positions.Values.Min());
            }

            SaveMeta(state);
            CommitDurably();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or LiteException or InvalidOperationException)
        {
            // Back to memory as it was: the file on disk may be the new one, which the next attempt simply replaces.
            try
            {
                _db?.Rollback();
            }
            catch (Exception rollbackError) when (rollbackError is IOException or LiteException or ObjectDisposedException)
            {
                // Closed below.
            }

            CloseDatabase();
            _memoryData = memoryData;
            _memoryLog = memoryLog;
            OpenDatabase();
            _ = LoadState(memoryState.Last);
            WriteBackFailed(ex.Message);
            return;
        }

        DateTimeOffset since;
        long firstInMemory;
        lock (_stateLock)
        {
            since = _memoryOnlySince ?? _time.GetUtcNow();
            firstInMemory = _memoryOnlyFirstSequence;
            _memoryOnlySince = null;
            _memoryOnlyCause = null;
            _memoryOnlyFirstSequence = 0;
        }

        var lastInMemory = state.Last;
        var held = state.Depth;
        try
        {
            AppendRecoveredEvent(ref state, since, firstInMemory, lastInMemory, held);
        }
        catch (Exception ex) when (ex is IOException or LiteException)
        {
            // On the file already (committed above): only the centre's notice is missing; the next operation reopens.
            OutboxLog.WriteFailed(_logger, path, 1, $"writing the storage_failed (resolved) event failed: {ex.Message}", ex);
            CloseDatabase();
        }

        if (_db is not null)
        {
            DropReleasedSegments();
        }

        state.FileBytes = FileBytes();
        Publish(state, null);
        _signal.Set(state.Last);
        _metrics.WrittenBack(held);
        _writeBackFailure = null;
        ClearWriteBackFailure();
        NoteStorageWorking();
        OutboxLog.WrittenBack(_logger, path, since, held, lastInMemory, job.Copy.TotalMilliseconds, job.Write.Elapsed.TotalMilliseconds, stopwatch.Elapsed.TotalMilliseconds, added.Count);
    }

    /// <summary>
    /// A clean stop during a write: waits for it (bounded) and switches, so what came in meanwhile is on disk too. A stop that
    /// cannot wait leaves the written file (complete or removed at the next open); what only memory held is lost, as before.
    /// </summary>
    private void FinishWriteBackAtStop()
    {
        if (_writeBack is not { } job)
        {
            return;
        }

        _writeBack = null;
        try
        {
            job.Task.Wait(WriteBackStopWait);
        }
        catch (AggregateException)
        {
            // Its failure is reported by FinishWriteBack.
        }

        if (job.Task.IsCompleted)
        {
            FinishWriteBack(job);
        }
    }

    private static readonly TimeSpan WriteBackStopWait = TimeSpan.FromSeconds(30);

    /// <summary>Tells the centre, in the stream, that the entries are on disk again (the <c>storage_failed</c> episode ends).</summary>
    private void AppendRecoveredEvent(ref StoreState state, DateTimeOffset since, long firstInMemory, long lastInMemory, long held)
    {
        var now = _time.GetUtcNow();
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["state"] = "resolved",
            ["failed"] = "0",
            ["path"] = _options.Path,
            ["since"] = WireTime.Instant(since),
            ["recovered_at"] = WireTime.Instant(now),
            ["first_seq_in_memory"] = firstInMemory.ToString(CultureInfo.InvariantCulture),
            ["last_seq_in_memory"] = lastInMemory.ToString(CultureInfo.InvariantCulture),
            ["written_back"] = held.ToString(CultureInfo.InvariantCulture),
        };
        var message = $"Outbox {_options.Path}: its file system is writable again; the {held} entries held in memory since {WireTime.Instant(since)} are on disk again (sequences unchanged, the next continues above {lastInMemory}).";
        AppendOwnEvent(ref state, UplinkBodies.Event(_options.Identity, new EdgeEvent(EdgeEventKind.StorageFailed, "outbox", now, EventSeverity.Info, message, attributes)));
    }

    /// <summary>The write-back failed: stays in memory, says why once per cause, tries again after a longer wait (up to 5 min).</summary>
    private void WriteBackFailed(string cause)
    {
        _probeFrom = _time.GetTimestamp();
        _probeDelay = TimeSpan.FromTicks(Math.Min(_probeDelay.Ticks * 2, Math.Max(_options.WriteBackProbeInterval.Ticks, TimeSpan.FromMinutes(5).Ticks)));
        lock (_stateLock)
        {
            _writeBackFailedAt = _time.GetUtcNow();
            _writeBackFailureShown = cause;
            _writeBackNextFrom = _probeFrom;
            _writeBackNextDelay = _probeDelay;
        }

        if (!string.Equals(cause, _writeBackFailure, StringComparison.Ordinal))
        {
            _writeBackFailure = cause;
            OutboxLog.WriteBackFailed(_logger, _options.Path, cause, _probeDelay.TotalSeconds);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Removed by the next open's FinishInterruptedWriteBack (no marker: a partial file).
        }
    }

    /// <param name="LastSequence">The memory outbox's last sequence when it was copied: later entries are added at the switch.</param>
    /// <param name="Copy">How long the writer took to copy the memory database (appends waited that long).</param>
    /// <param name="Write">Since the write started (on another thread).</param>
    private sealed record WriteBackJob(Task Task, long LastSequence, TimeSpan Copy, Stopwatch Write);
}
