using System.Diagnostics;

namespace EdgeTwin.Outbox;

/// <summary>
/// Keeping a commit's journal within the disk. LiteDB writes every page a transaction touches to its journal
/// (<c>outbox-log.db</c>) before the commit, and copies them into the data file at a checkpoint. On a 2 MB disk the
/// data file held 1.65 MB when a group commit of 973 summaries wrote ~0.6 MB of journal: ENOSPC, and the journal's
/// failed pages then kept the disk full for every later append (50–54 of 60 failed; audit F5). The pressure rounds
/// freed pages inside the data file, which the journal cannot use.
/// <para>
/// Now, before a commit whose journal (estimated from the journal bytes measured per entry byte) and the data file's
/// possible growth by as much again would not fit the room above the reserve: the journal is checkpointed; if that is
/// not enough, the oldest summaries/raw entries are dropped (data_gap, as the pressure rounds do) until the data file
/// can take the append without growing, and the append is committed in pieces whose journal fits half the room, each
/// checkpointed. The pieces of one append are one append toward its caller: meta keeps the last acknowledged sequence
/// and <c>pending_to</c> until the last piece commits, readers see nothing of it before, and a failure (or a kill)
/// part-way removes the earlier pieces at the next open — the caller was told the append failed and retries it whole.
/// </para>
/// </summary>
public sealed partial class LiteDbOutbox
{
    /// <summary>A commit's journal beyond its entries: header, meta, collection and index pages.</summary>
    private const long JournalCommitOverhead = 4 * 8192;

    /// <summary>Below this room above the reserve nothing is dropped for the journal: the disk is full (others' files).</summary>
    private const long MinJournalRoom = 64 * 1024;

    private const long MinPieceBytes = 16 * 1024;

    /// <summary>Commits this small say little about the journal per entry byte (meta and index pages dominate).</summary>
    private const long MinJournalSampleBytes = 16 * 1024;

    /// <summary>
    /// Journal bytes written per entry byte (<see cref="ToDocument"/>'s size), measured on every commit of at least
    /// <see cref="MinJournalSampleBytes"/>; the start value is what a 2 MB tmpfs measured for commits of 440 and 973
    /// summaries (1.9–3.0: about 900 journal bytes per 425-byte summary entry; index pages and page slack).
    /// </summary>
    private double _journalPerEntryByte = 2.0;

    private JournalStream? _journal;

    /// <summary>
    /// Entry bytes dropped or condensed since appends last used them up: pages free inside the data file that the next
    /// appends reuse (it does not grow for them). 0 at open (unknown, so the first large append on a small disk drops).
    /// </summary>
    private long _freedInDataFile;

    private void NoteFreed(long bytes) => _freedInDataFile = Math.Max(0, _freedInDataFile + bytes);

    private long JournalWritten => _journal?.Written ?? 0;

    private long JournalNeed(long entryBytes) => (long)(entryBytes * _journalPerEntryByte) + JournalCommitOverhead;

    /// <summary>Learns the journal's bytes per entry byte from one commit (a moving average, quick to go up).</summary>
    private void NoteJournal(long journalBytes, long entryBytes)
    {
        if (entryBytes < MinJournalSampleBytes || journalBytes <= 0)
        {
            return;
        }

        var sample = (double)Math.Max(0, journalBytes - JournalCommitOverhead) / entryBytes;
        _journalPerEntryByte = sample > _journalPerEntryByte ? sample : (0.8 * _journalPerEntryByte) + (0.2 * sample);
    }

    /// <summary>
    /// Saves meta and commits durably, then learns from the commit: its journal bytes per entry byte, and that the entries
    /// used up as many freed pages of the data file.
    /// </summary>
    private void CommitEntries(in StoreState state, long journalBefore, long entryBytes, long pendingTo = 0)
    {
        SaveMeta(state, pendingTo);
        CommitDurably();
        NoteJournal(JournalWritten - journalBefore, entryBytes);
        NoteFreed(-entryBytes);
    }

    private static long EntryBytes(in OutboxRecord record) => record.Payload.Length + (record.DeviceId.Length * 2L) + EntryOverhead;

    /// <summary>
    /// The room above the reserve when the batch's journal, plus the data file growing by as much at the checkpoint,
    /// would not fit it even after a checkpoint; null when one transaction fits (or the free space is unknown, or so
    /// small that only another's files can be the cause: then the commit is tried and fails naming the disk).
    /// </summary>
    private long? JournalRoomShort(List<WriterOp> ops)
    {
        long bytes = 0;
        foreach (var op in ops)
        {
            if (op is AppendOp append)
            {
                foreach (var record in append.Records)
                {
                    bytes += EntryBytes(record);
                }
            }
        }

        if (bytes == 0 || ReadFileSystemSpace() is not { } space)
        {
            return null;
        }

        // The journal, and the data file's growth at the checkpoint by what its free pages cannot take.
        var need = JournalNeed(bytes) + JournalNeed(Math.Max(0, bytes - _freedInDataFile));
        var room = Room(space).Room;
        if (need <= room)
        {
            return null;
        }

        if (_logFile is { Length: > 0 })
        {
            Checkpoint(); // the journal's committed pages go into the data file and the journal is emptied
            room = ReadFileSystemSpace() is { } after ? Room(after).Room : room;
            if (need <= room)
            {
                return null;
            }
        }

        return room < MinJournalRoom ? null : room;
    }

    /// <summary>Registrations and acknowledgements in one transaction, then each append on its own, in pieces if need be.</summary>
    private void ExecuteWritesInPieces(List<WriterOp> ops, long room)
    {
        var others = ops.Where(op => op is not AppendOp).ToList();
        if (others.Count > 0 && !CommitGroup(others))
        {
            FailRest(ops.OfType<AppendOp>());
            return;
        }

        var appends = ops.OfType<AppendOp>().ToList();
        for (var i = 0; i < appends.Count; i++)
        {
            if (i > 0)
            {
                room = ReadFileSystemSpace() is { } space ? Room(space).Room : room;
            }

            if (!EnsureOpen([appends[i]]) || !AppendInPieces(appends[i], room))
            {
                FailRest(appends.Skip(i + 1));
                return;
            }
        }
    }

    /// <summary>After a failure the database is closed: the rest of the batch fails with the same cause, not stored.</summary>
    private void FailRest(IEnumerable<AppendOp> rest)
    {
        var error = new OutboxStorageException($"Outbox {_options.Path}: could not store the batch: an earlier part of the same group commit failed ({_lastWriteFailure})");
        foreach (var op in rest)
        {
            op.Fail(error);
        }
    }

    private bool AppendInPieces(AppendOp op, long room)
    {
        long bytes = 0;
        foreach (var record in op.Records)
        {
            bytes += EntryBytes(record);
        }

        // One of several appends of a group that did not fit as a whole may fit alone.
        if (JournalNeed(bytes) + JournalNeed(Math.Max(0, bytes - _freedInDataFile)) <= room)
        {
            return CommitGroup([op]);
        }

        // The data file must not grow into the room the journal needs (it never shrinks: letting it take half the room
        // per append filled the disk after 32 appends). So the append's entry bytes and a quarter more (pages that also
        // hold an event, never dropped, do not come free) are dropped first, and the freed pages take it.
        var deficit = (bytes * 5 / 4) - _freedInDataFile;
        if (deficit > 0)
        {
            MakeRoom(deficit, room);
            if (_db is null)
            {
                op.Fail(new OutboxStorageException($"Outbox {_options.Path}: could not store the batch ({op.Records.Length} records): making room for its journal failed: {_lastWriteFailure}"));
                return false;
            }

            room = ReadFileSystemSpace() is { } space ? Room(space).Room : room;
        }

        // At least 16 KiB of entries a piece: smaller ones cost an fsync each for a few entries, and fail anyway when
        // even that does not fit.
        var pieceBytes = Math.Max(MinPieceBytes, (long)(((room / 2) - JournalCommitOverhead) / _journalPerEntryByte));
        if (bytes <= pieceBytes)
        {
            return CommitGroup([op]);
        }

        return CommitInPieces(op, bytes, pieceBytes, room);
    }

    /// <summary>Drops (condenses raw first) the oldest droppable entries by <paramref name="bytes"/>, in steps whose journal fits.</summary>
    private void MakeRoom(long bytes, long room)
    {
        StoreState after;
        lock (_stateLock)
        {
            after = _published;
        }

        var target = Math.Max(0, after.Bytes - bytes);
        // As large as half the room takes (each step is a transaction with its own data_gap event: events are never
        // dropped, and each pins a page that could otherwise be reused), at least 16 KiB.
        var step = Math.Max(16 * 1024, (long)(((room / 2) - JournalCommitOverhead) / _journalPerEntryByte));
        while (after.Bytes > target)
        {
            var stepTarget = Math.Max(target, after.Bytes - step);
            var next = RunRound("disk_budget", (ref StoreState state, GapTracker gap) =>
            {
                CondenseRaw(ref state, gap, stepTarget);
                if (state.Bytes > stepTarget)
                {
                    DropOldest(ref state, gap, stepTarget);
                }
            });
            if (next.Bytes >= after.Bytes || _db is null)
            {
                return; // nothing left to condense or drop (events stay), or the round failed
            }

            after = next;
            Checkpoint();
        }
    }

    /// <summary>
    /// One append in transactions of at most <paramref name="pieceBytes"/> entry bytes, each checkpointed. Meta records
    /// the last sequence acknowledged so far and <c>pending_to</c> until the last piece, so the append is durable and
    /// visible only as a whole.
    /// </summary>
    private bool CommitInPieces(AppendOp op, long bytes, long pieceBytes, long room)
    {
        StoreState state;
        lock (_stateLock)
        {
            state = _published;
        }

        var stopwatch = Stopwatch.StartNew();
        var acknowledged = state.Last;
        var firstAppended = state.Last + 1;
        var pendingTo = state.Last + op.Records.Length;
        var blobBytes = 0L;
        var pieces = 0;
        try
        {
            for (var i = 0; i < op.Records.Length;)
            {
                var journalBefore = JournalWritten;
                var entryBytes = 0L;
                _db!.BeginTrans();
                for (; i < op.Records.Length && (entryBytes == 0 || entryBytes + EntryBytes(op.Records[i]) <= pieceBytes); i++)
                {
                    entryBytes += InsertEntry(ref state, op.Records[i]);
                }

                pieces++;
                if (i < op.Records.Length)
                {
                    var meta = state;
                    meta.Last = acknowledged;
                    CommitEntries(meta, journalBefore, entryBytes, pendingTo);
                    Checkpoint();
                    continue;
                }

                foreach (var (name, value) in op.Blobs)
                {
                    SetBlob(name, value);
                    blobBytes += value.Length;
                }

                CommitEntries(state, journalBefore, entryBytes);
            }

            _consecutiveFailures = 0;
            NoteStorageWorking();
        }
        catch (Exception ex)
        {
            FailWrites([op], ex);
            return false;
        }

        var need = JournalNeed(bytes);
        OutboxLog.AppendInPieces(_logger, _options.Path, op.Records.Length, bytes, need, room, pieces);
        Checkpoint();
        var last = state.Last;
        FinishCommit(state, null, op.Records.Length, firstAppended, blobBytes, stopwatch, [() => op.Done.TrySetResult(last)]);
        return true;
    }

    /// <summary>The journal stream LiteDB writes to (on its own writer task), counting the bytes written.</summary>
    private sealed class JournalStream(Stream inner) : SyncOnFlushStream(inner)
    {
        private long _written;

        public long Written => Interlocked.Read(ref _written);

        public override void Write(byte[] buffer, int offset, int count)
        {
            base.Write(buffer, offset, count);
            Interlocked.Add(ref _written, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            base.Write(buffer);
            Interlocked.Add(ref _written, buffer.Length);
        }
    }

    /// <summary>
    /// A file LiteDB writes whose <see cref="Flush()"/> reaches the disk (fsync). LiteDB 5.0.21 ends its writes with a plain
    /// Flush: for the journal that was the commit, and for the data file the end of a checkpoint's copy, after which the
    /// journal is written from its start again. Unsynced, a power cut within the kernel's writeback delay (~30 s) lost
    /// entries acknowledged durable (test <c>Regression_a_checkpoint_left_the_data_file_unsynced_while_the_journal_was_reused</c>).
    /// </summary>
    private class SyncOnFlushStream(Stream inner) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush()
        {
            if (inner is FileStream file)
            {
                file.Flush(flushToDisk: true);
            }
            else
            {
                inner.Flush();
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => inner.SetLength(value);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    }
}
