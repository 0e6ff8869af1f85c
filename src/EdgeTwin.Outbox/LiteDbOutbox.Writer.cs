using System.Diagnostics;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>The writer thread: the only code that touches the LiteDatabase.</summary>
public sealed partial class LiteDbOutbox
{
    private const int MaxOpsPerBatch = 512;

    private string? _lastWriteFailure;
    private long _lastWriteFailureLoggedAt;
    // When the last open failed (monotonic) and how long the next one waits: a wall-clock deadline stepped back an hour
    // kept the outbox closed for that hour.
    private long _reopenFrom;
    private TimeSpan _reopenDelay;
    private int _consecutiveFailures;
    private string? _lastReopenFailure;
    private long _lastReopenFailureLoggedAt;

    // Acknowledgements waiting to ride on the next commit (at most AckCommitInterval): with the broker up every append
    // was followed within milliseconds by its acknowledgement's own fsynced commit, doubling the flash writes.
    private readonly List<WriterOp> _deferredAcks = [];
    private long _deferredSince;

    /// <summary>
    /// After the second failure in a row, the next open waits 1 s, doubling to 30 s: on a full disk every batch reopened
    /// and failed, several times a second, and each failed LiteDB instance kept its memory (RSS grew about 10 MB a second
    /// to 1.3 GB). The first failure is retried at once (a transient error costs nothing).
    /// </summary>
    private void BackOff(string cause)
    {
        _lastReopenFailure = cause;
        NoteStorageFailing(cause);
        if (++_consecutiveFailures >= 2)
        {
            _reopenFrom = _time.GetTimestamp();
            _reopenDelay = TimeSpan.FromMilliseconds(Math.Min(30_000, 1000L << Math.Min(_consecutiveFailures - 2, 5)));
        }
    }

    private void WriterMain()
    {
        try
        {
            OpenStore();
            _opened.TrySetResult();
        }
        catch (Exception ex)
        {
            CloseStore();
            _opened.TrySetException(ex);
            DrainAfterStop();
            return;
        }

        try
        {
            // On the monotonic clock: with the wall clock, a backward step of an hour held maintenance (budget, max_age) that long.
            var lastMaintenance = _time.GetTimestamp();
            var batch = new List<WriterOp>(MaxOpsPerBatch);
            while (!_queue.IsCompleted)
            {
                var wait = _options.MaintenanceInterval - _time.GetElapsedTime(lastMaintenance);
                if (_deferredAcks.Count > 0)
                {
                    var ackWait = _options.AckCommitInterval - _time.GetElapsedTime(_deferredSince);
                    wait = ackWait < wait ? ackWait : wait;
                }

                wait = WriteBackWait(wait);
                var waitMs = (int)Math.Clamp(wait.TotalMilliseconds, 0, int.MaxValue);
                if (!_queue.TryTake(out var op, waitMs))
                {
                    TickWriteBack();
                    if (DeferredAcksDue())
                    {
                        CommitDeferredAcks();
                    }

                    if (_time.GetElapsedTime(lastMaintenance) >= _options.MaintenanceInterval)
                    {
                        RunMaintenance();
                        lastMaintenance = _time.GetTimestamp();
                    }

                    continue;
                }

                batch.Add(op);
                while (batch.Count < MaxOpsPerBatch && _queue.TryTake(out var more))
                {
                    batch.Add(more);
                }

                ProcessBatch(batch);
                batch.Clear();
                TickWriteBack();
            }
        }
        finally
        {
            FinishWriteBackAtStop();
            CommitDeferredAcks(); // a clean stop loses no acknowledgement (a crash re-sends at most AckCommitInterval's)
            FlushGap(); // what the disk cost since the last data_gap event goes into one before closing
            CloseStore();
            DrainAfterStop();
        }
    }

    private void DrainAfterStop()
    {
        _queue.CompleteAdding();
        while (_queue.TryTake(out var op))
        {
            op.Fail(new ObjectDisposedException(nameof(LiteDbOutbox), $"Outbox {_options.Path} was closed before this operation ran."));
        }

        _stopped.TrySetResult();
    }

    private void ProcessBatch(List<WriterOp> batch)
    {
        var writes = new List<WriterOp>(batch.Count);
        var reads = new List<ReadOp>();
        var blobReads = new List<BlobReadOp>();
        var maintenance = new List<MaintenanceOp>();
        foreach (var op in batch)
        {
            if (op.CancellationToken.IsCancellationRequested)
            {
                op.Cancel(); // Not started: nothing was stored, so "cancelled" is the truth.
                continue;
            }

            switch (op)
            {
                case ReadOp read: reads.Add(read); break;
                case BlobReadOp blobRead: blobReads.Add(blobRead); break;
                case MaintenanceOp m: maintenance.Add(m); break;
                default: writes.Add(op); break;
            }
        }

        if (writes.Count > 0 && _options.AckCommitInterval > TimeSpan.Zero && writes.TrueForAll(w => w is AckOp))
        {
            if (_deferredAcks.Count == 0)
            {
                _deferredSince = _time.GetTimestamp();
            }

            _deferredAcks.AddRange(writes);
            writes.Clear();
            if (DeferredAcksDue())
            {
                CommitDeferredAcks();
            }
        }
        else if (writes.Count > 0 && _deferredAcks.Count > 0)
        {
            writes.InsertRange(0, _deferredAcks); // first: they acknowledge entries that exist before these appends
            _deferredAcks.Clear();
        }

        if (writes.Count > 0)
        {
            ExecuteWrites(writes);
        }

        // Reads run after the commit, so an uplink never sees an entry that might still be rolled back.
        foreach (var read in reads)
        {
            ExecuteRead(read);
        }

        foreach (var blobRead in blobReads)
        {
            ExecuteBlobRead(blobRead);
        }

        if (maintenance.Count > 0)
        {
            RunMaintenance(flushGap: true);
            foreach (var m in maintenance)
            {
                m.Done.TrySetResult(true);
            }
        }
    }

    private bool DeferredAcksDue() =>
        _deferredAcks.Count > 0 && _time.GetElapsedTime(_deferredSince) >= _options.AckCommitInterval;

    /// <summary>Commits the acknowledgements that found no commit to ride on within <see cref="LiteDbOutboxOptions.AckCommitInterval"/>.</summary>
    private void CommitDeferredAcks()
    {
        if (_deferredAcks.Count == 0)
        {
            return;
        }

        var acks = new List<WriterOp>(_deferredAcks);
        _deferredAcks.Clear();
        ExecuteWrites(acks);
    }

    private bool EnsureOpen(IEnumerable<WriterOp> ops)
    {
        if (_db is not null)
        {
            return true;
        }

        var left = _reopenDelay - _time.GetElapsedTime(_reopenFrom);
        if (left > TimeSpan.Zero)
        {
            var waiting = new OutboxStorageException($"Outbox {_options.Path} is not usable after an earlier failure ({_lastReopenFailure}); next attempt in {left.TotalSeconds:0.#} s");
            foreach (var op in ops)
            {
                op.Fail(waiting);
            }

            return false;
        }

        try
        {
            OpenDatabase();
            var (state, positions) = LoadState(NewFileSeed()); // a file deleted under a running agent starts from the clock too
            CheckAgeClock(state.Last);
            lock (_stateLock)
            {
                _published = state;
                foreach (var (uplink, position) in positions)
                {
                    if (_positions.TryGetValue(uplink, out var current) && position > current)
                    {
                        _positions[uplink] = position;
                    }
                }
            }

            FlushGap();
            if (_db is null)
            {
                // Writing the held data_gap event failed (and closed the database): these operations did not run.
                var failed = new OutboxStorageException($"Outbox {_options.Path} is not usable after an earlier failure ({_lastWriteFailure})");
                foreach (var op in ops)
                {
                    op.Fail(failed);
                }

                return false;
            }

            return true;
        }
        catch (Exception ex)
        {
            CloseDatabase();
            if (Core.StorageErrors.IsReadOnlyFileSystem(ex) && EnterMemoryMode(ex.Message))
            {
                return true;
            }

            // The stack once per cause and minute, as for failed writes: an I/O error that persists reopened every 30 s.
            var now = Environment.TickCount64;
            var repeat = ex.Message == _lastReopenFailure && now - _lastReopenFailureLoggedAt < 60_000;
            if (!repeat)
            {
                _lastReopenFailureLoggedAt = now;
            }

            BackOff(ex.Message);
            OutboxLog.ReopenFailed(_logger, _options.Path, ex.Message, repeat ? null : ex);
            var error = new OutboxStorageException($"Outbox {_options.Path} is not usable after an earlier failure: {ex.Message}", ex);
            foreach (var op in ops)
            {
                op.Fail(error);
            }

            return false;
        }
    }

    private void ExecuteWrites(List<WriterOp> ops)
    {
        if (!EnsureOpen(ops))
        {
            return;
        }

        // A commit writes all its pages to the journal first: on a small disk that did not fit (ENOSPC on outbox-log.db).
        if (JournalRoomShort(ops) is { } room)
        {
            ExecuteWritesInPieces(ops, room);
            return;
        }

        CommitGroup(ops);
    }

    /// <summary>Commits <paramref name="ops"/> in one transaction; false (ops failed, database closed) on a failure.</summary>
    private bool CommitGroup(List<WriterOp> ops)
    {
        StoreState state;
        Dictionary<string, long> positions;
        lock (_stateLock)
        {
            state = _published;
            positions = new Dictionary<string, long>(_positions, StringComparer.Ordinal);
        }

        var changed = new Dictionary<string, long>(StringComparer.Ordinal);
        var firstAppended = state.Last + 1;
        var completions = new List<Action>(ops.Count);
        var appended = 0;
        var blobBytes = 0L;
        var entryBytes = 0L;
        var stopwatch = Stopwatch.StartNew();
        try
        {
            var journalBefore = JournalWritten;
            _db!.BeginTrans();
            foreach (var op in ops)
            {
                switch (op)
                {
                    case AppendOp append:
                        foreach (var record in append.Records)
                        {
                            entryBytes += InsertEntry(ref state, record);
                        }

                        foreach (var (name, value) in append.Blobs)
                        {
                            SetBlob(name, value);
                            blobBytes += value.Length;
                        }

                        appended += append.Records.Length;
                        var last = state.Last;
                        completions.Add(() => append.Done.TrySetResult(last));
                        break;

                    case RegisterOp register:
                        if (Uplinks.FindById(register.Uplink) is null)
                        {
                            Uplinks.Insert(new BsonDocument { ["_id"] = register.Uplink, ["acked"] = register.Position });
                        }

                        completions.Add(() => register.Done.TrySetResult(true));
                        break;

                    case RemoveUplinkOp remove:
                        Uplinks.Delete(remove.Uplink);
                        positions.Remove(remove.Uplink);
                        changed.Remove(remove.Uplink);
                        completions.Add(() => remove.Done.TrySetResult(true));
                        break;

                    case AckOp ack:
                        if (ack.Sequence > state.Last)
                        {
                            ack.Fail(AckBeyondEnd(ack.Uplink, ack.Sequence, state.Last));
                            break;
                        }

                        if (positions.TryGetValue(ack.Uplink, out var current) && ack.Sequence > current)
                        {
                            positions[ack.Uplink] = ack.Sequence;
                            changed[ack.Uplink] = ack.Sequence;
                            Uplinks.Upsert(new BsonDocument { ["_id"] = ack.Uplink, ["acked"] = ack.Sequence });
                        }

                        completions.Add(() => ack.Done.TrySetResult(true));
                        break;

                    default:
                        throw new InvalidOperationException($"Unexpected outbox operation {op.GetType().Name}.");
                }
            }

            if (changed.Count > 0 && positions.Count > 0)
            {
                RemoveAcknowledged(ref state, positions.Values.Min());
            }

            CommitEntries(state, journalBefore, entryBytes);
            _consecutiveFailures = 0;
            NoteStorageWorking();
        }
        catch (Exception ex)
        {
            FailWrites(ops, ex);
            return false;
        }

        DropReleasedSegments();
        FinishCommit(state, changed, appended, firstAppended, blobBytes, stopwatch, completions);
        return true;
    }

    /// <summary>After a committed write: publish, count, wake the uplinks, keep the budget, then tell the callers.</summary>
    private void FinishCommit(StoreState state, Dictionary<string, long>? changed, int appended, long firstAppended, long blobBytes, Stopwatch stopwatch, List<Action> completions)
    {
        state.FileBytes = FileBytes();
        Publish(state, changed);
        _metrics.Commit(stopwatch.Elapsed);
        if (blobBytes > 0)
        {
            _metrics.BlobBytes(blobBytes);
        }

        if (appended > 0)
        {
            NoteAccepted(firstAppended);
            Interlocked.Add(ref _appendedSinceOpen, appended);
            _metrics.Appended(appended);
            _signal.Set(state.Last);
        }

        // Before the callers hear back, so that after an append returns the store is within its budget again.
        if (state.Bytes > BudgetInForce(state.Bytes) * _options.HighWatermark)
        {
            EnforceBudget();
        }

        foreach (var complete in completions)
        {
            complete();
        }
    }

    /// <summary>Deletes every entry that all uplinks have acknowledged (inside the caller's transaction).</summary>
    private void RemoveAcknowledged(ref StoreState state, long upTo)
    {
        if (state.Depth == 0 || upTo < state.First)
        {
            return;
        }

        var (count, bytes) = Segments.RemoveThrough(upTo);
        state.Depth -= count;
        state.Bytes -= bytes;
        RefreshFirst(ref state);
    }

    private void RefreshFirst(ref StoreState state)
    {
        var firstSequence = Segments.FirstHeld();
        var first = firstSequence == 0 ? null : Segments.FindById(firstSequence);
        if (first is null)
        {
            state.First = 0;
            state.OldestTimestamp = 0;
            state.Depth = 0;
            state.Bytes = 0;
        }
        else
        {
            state.First = first["_id"].AsInt64;
            state.OldestTimestamp = first[FieldTime].AsInt64;
        }
    }

    /// <summary>Drops the segments the committed transaction released; a failure only leaves them for the next open.</summary>
    private void DropReleasedSegments()
    {
        try
        {
            Segments.DropReleased();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Nothing held is lost: the floor is committed, and the next open drops what is below it.
            OutboxLog.WriteFailed(_logger, _options.Path, 0, $"dropping acknowledged segments failed: {ex.Message}", ex);
            CloseDatabase();
        }
    }

    private static ArgumentOutOfRangeException AckBeyondEnd(string uplink, long sequence, long last) =>
        new(nameof(sequence), sequence, $"Uplink '{uplink}' acknowledged sequence {sequence}, but the outbox has only reached {last}.");

    private void FailWrites(List<WriterOp> ops, Exception ex)
    {
        try
        {
            _db?.Rollback();
        }
        catch (Exception rollbackError) when (rollbackError is IOException or LiteException or ObjectDisposedException)
        {
            // The database is closed below; the journal decides what survived.
        }

        if (_db is not null)
        {
            LiteDbQuirks.ForgetBrokenTransactions(_db);
        }

        var records = ops.OfType<AppendOp>().Sum(a => a.Records.Length);

        // The stack once per cause and minute: a full disk failed every batch, several times a second, 2 KB each.
        var now = Environment.TickCount64;
        var repeat = ex.Message == _lastWriteFailure && now - _lastWriteFailureLoggedAt < 60_000;
        if (!repeat)
        {
            _lastWriteFailure = ex.Message;
            _lastWriteFailureLoggedAt = now;
        }

        OutboxLog.WriteFailed(_logger, _options.Path, records, ex.Message, repeat ? null : ex);
        _metrics.WriteError();
        var error = new OutboxStorageException($"Outbox {_options.Path}: could not store the batch ({records} records): {ex.Message}", ex);
        foreach (var op in ops)
        {
            op.Fail(error); // No-op for an ack already failed for its own reason.
        }

        // LiteDB may be half-way through a page write: reopen from the files on the next operation.
        CloseDatabase();
        BackOff(ex.Message);
    }

    private void ExecuteBlobRead(BlobReadOp op)
    {
        if (!EnsureOpen([op]))
        {
            return;
        }

        try
        {
            op.Done.TrySetResult(Meta.FindById(BlobIdPrefix + op.Name)?[FieldPayload] is { IsBinary: true } value ? value.AsBinary : null);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            OutboxLog.BlobReadFailed(_logger, _options.Path, op.Name, ex.Message, ex);
            op.Fail(new OutboxStorageException($"Outbox {_options.Path}: reading its '{op.Name}' record failed: {ex.Message}", ex));
            CloseDatabase();
        }
    }

    private void ExecuteRead(ReadOp op)
    {
        if (!EnsureOpen([op]))
        {
            return;
        }

        try
        {
            var list = new List<OutboxEntry>(Math.Min(op.Max, 1024));
            foreach (var doc in Segments.Scan(op.After, where: null, select: null, op.Max))
            {
                list.Add(ToEntry(doc));
            }

            op.Done.TrySetResult(list);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            OutboxLog.ReadFailed(_logger, _options.Path, "-", ex.Message, ex);
            op.Fail(new OutboxStorageException($"Outbox {_options.Path}: reading entries after sequence {op.After} failed: {ex.Message}", ex));
            CloseDatabase();
        }
    }
}
