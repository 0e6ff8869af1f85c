using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox.Summaries;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>Opening, verifying, moving aside and closing the LiteDB files. Writer thread only.</summary>
public sealed partial class LiteDbOutbox
{
    private const string UplinksCollection = "uplinks";
    private const string MetaCollection = "meta";
    private const string StateId = "state";

    /// <summary>Meta documents of <see cref="IOutboxCheckpoints"/> blobs: <c>blob:NAME</c>, the value in <see cref="FieldPayload"/>.</summary>
    private const string BlobIdPrefix = "blob:";

    // Document fields, short because every entry carries them.
    private const string FieldKind = "k";
    private const string FieldDevice = "d";
    private const string FieldTime = "t";
    private const string FieldPayload = "p";
    private const string FieldSize = "n";

    /// <summary>Meta: an append committed in pieces is under way up to this sequence (see <see cref="SaveMeta"/>).</summary>
    private const string FieldPendingTo = "pending_to";

    /// <summary>Meta: drops for the disk not yet written as a data_gap event (see <see cref="RecordGap"/>).</summary>
    private const string FieldGap = "gap";

    // meta.state.format: the file's format, written with every meta update. Files without it (main before this field)
    // are format 1. Raise it only for a change an older build would misread: an older build that finds a higher one keeps
    // the file aside untouched and starts a new one, instead of sending, condensing or dropping entries it does not understand.
    private const string FieldFormat = "format";

    // meta.state.origin_birth_ns / origin_host: the data file's birth time and machine when this file was last opened for
    // writing (StoreOrigin). A file that does not match them is a copy or came from another machine: its count may be
    // behind what the centre has from the original, so new entries are numbered from the clock (LoadState).
    private const string FieldOriginBirth = "origin_birth_ns";
    private const string FieldOriginHost = "origin_host";

    /// <summary>The outbox file format this build writes and reads (<c>meta.state.format</c>).</summary>
    public const int FormatVersion = 1;

    /// <summary>Per-entry bytes on top of payload and device id: BSON field names, _id, index node, page slack.</summary>
    private const int EntryOverhead = 96;

    /// <summary>The data file's origin as this writable open found it; recorded in meta with every meta update.</summary>
    private StoreOrigin _origin;

    private FileStream? _lockFile;
    private FileStream? _dataFile;
    private FileStream? _logFile;
    private LiteDatabase? _db;

    /// <summary>LiteDB's journal name for a file: <c>outbox.db</c> → <c>outbox-log.db</c> (the name the config check keeps state files off).</summary>
    public static string JournalPath(string path) => Core.Config.OutboxSettings.JournalPath(path);

    private ILiteCollection<BsonDocument> Uplinks => _db!.GetCollection(UplinksCollection);

    private ILiteCollection<BsonDocument> Meta => _db!.GetCollection(MetaCollection);

    private void OpenStore()
    {
        var path = _options.Path;

        // Inspection (edgetwin outbox …) reads what it is given: a file that is not LiteDB's is refused before the lock
        // file, the journal or LiteDB touch anything beside or in it.
        if (!_options.MoveCorruptFileAside && NotLiteDbFile(path) is { } notOurs)
        {
            throw new OutboxStorageException($"{path} is not an outbox: {notOurs}; nothing was read or changed (give the agent's outbox.path, e.g. /var/lib/edgetwin/outbox.db; an outbox whose first page is damaged: edgetwin outbox export --salvage --path FILE)");
        }

        try
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }

            _lockFile ??= new FileStream(Core.Config.OutboxSettings.LockPath(path), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        }
        catch (IOException ex) when (Core.StorageErrors.IsReadOnlyFileSystem(ex) && _options.MoveCorruptFileAside && _options.MemoryBudgetBytes > 0)
        {
            // Started on storage that is read-only already: a restart (watchdog, crash, upgrade) after the card failed. The
            // start was refused, and systemd gave up after five, leaving the site watched by nothing until the card was
            // replaced; the outbox goes on in memory as it does when the failure happens under the running agent.
            LockReadOnly(path);
            if (EnterMemoryMode(ex.Message, atOpen: true))
            {
                long firstInMemory;
                lock (_stateLock)
                {
                    firstInMemory = _memoryOnlyFirstSequence;
                }

                // This run begins at the storage_failed event, the first entry in memory: it is stamped by this run's clock.
                FinishOpen(_published, path, runFirst: firstInMemory);
                return;
            }

            throw new OutboxStorageException($"Outbox {path}: its file system is read-only ({ex.Message}) and the outbox could not go on in memory", ex);
        }
        catch (IOException ex)
        {
            throw new OutboxStorageException($"Outbox {path} is in use by another process (cannot lock {path}.lock): {ex.Message}", ex) { InUse = true };
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new OutboxStorageException($"Outbox {path}: no permission to create or lock it: {ex.Message}", ex);
        }

        // Before LiteDB sees the files: a killed write-back's old journal must not meet its new file. The inspection commands
        // (which move nothing aside) do it too: past the commit point the old file lacks its journal, so reading it would
        // show neither its own last commits nor the new file's entries; the lock says no agent is in the middle of one.
        try
        {
            FinishInterruptedWriteBack(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OutboxStorageException($"Outbox {path}: cannot finish the write-back an earlier run left ({WriteBackPath(path)}, {WriteBackMarkerPath(path)}): {ex.Message}", ex);
        }

        StoreState state;
        Dictionary<string, long> positions;
        try
        {
            // The agent's own open: a file that is not LiteDB's is kept aside whole like a damaged one (LiteDB would have
            // re-initialised it, or cut it to whole pages, before finding it is not its own).
            if (_memoryData is null && NotLiteDbFile(path) is { } foreign)
            {
                throw new NotLiteDbException(foreign);
            }

            OpenDatabase();
            (state, positions) = LoadState(NewFileSeed());
            if (state.Created)
            {
                OutboxLog.CreatedNew(_logger, path, state.Last + 1);
            }
        }
        catch (NewerFormatException ex) when (!_options.MoveCorruptFileAside)
        {
            CloseDatabase();
            throw new OutboxStorageException($"Outbox {path} was written by a newer build (file format {ex.Format}; this build reads format {FormatVersion}): not read. Read it with that build's edgetwin.", ex);
        }
        catch (NewerFormatException ex)
        {
            // A rollback over a backlog the newer build stored in a format this build does not know: keep the file whole
            // (that build takes it up again after a re-upgrade, or exports it) and go on collecting into a new file.
            CloseDatabase();
            var movedTo = MoveAside(path, $"format{ex.Format}");
            MovedAsidePath = movedTo;
            OpenDatabase();
            (state, positions) = LoadState(NewFileSeed());
            OutboxLog.NewerFormatMovedAside(_logger, path, ex.Format, FormatVersion, movedTo, state.Last + 1);
            AppendGapEvent(ref state, new GapTracker("newer_format") { MovedTo = movedTo, Incomplete = true });
        }
        catch (Exception ex) when (IsCorruption(ex) && !_options.MoveCorruptFileAside)
        {
            CloseDatabase();
            throw new OutboxStorageException($"Outbox {path} is corrupt ({ex.GetType().Name}: {ex.Message}); the agent will move it aside when it starts.", ex) { Corrupt = true };
        }
        catch (Exception ex) when (IsCorruption(ex))
        {
            CloseDatabase();
            var movedTo = MoveAside(path);
            MovedAsidePath = movedTo;

            // What is still readable goes into the new file with its sequences and times (the centre de-duplicates on
            // them); 32 KiB of damage lost a whole backlog of 1207 entries before.
            OutboxSalvageResult salvage;
            try
            {
                salvage = Salvage(movedTo, movedTo + "-log", _options.SalvageTimeout);
            }
            catch (Exception salvageError) when (salvageError is IOException or UnauthorizedAccessException)
            {
                salvage = new OutboxSalvageResult([], 0, 0, [$"cannot read {movedTo}: {salvageError.Message}"], Incomplete: true);
            }


            // Sequences must never repeat for the centre's de-duplication, but the old high-water mark may be unreadable:
            // continue from a clock-derived value far above any count of records a gateway could have sent.
            var seed = Math.Max(NewFileSeed(), salvage.LastSequence);
            OpenDatabase();
            (state, positions) = LoadState(seed);
            OutboxLog.CorruptMovedAside(_logger, path, movedTo, seed + 1, $"{ex.GetType().Name}: {ex.Message}");
            var salvaged = CopySalvaged(ref state, salvage.Entries);
            LogSalvage(movedTo, salvage, salvaged);
            var gap = new GapTracker("corrupt_file")
            {
                MovedTo = movedTo,
                Salvaged = salvaged,
                Lost = salvage.Lost + (salvage.Entries.Count - salvaged),
                Incomplete = salvage.Incomplete || salvaged < salvage.Entries.Count,
            };
            AppendGapEvent(ref state, gap);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            CloseDatabase();
            throw new OutboxStorageException($"Outbox {path}: cannot open: {ex.Message}", ex);
        }

        lock (_stateLock)
        {
            foreach (var (uplink, position) in positions)
            {
                _positions[uplink] = position;
            }

            _published = state;
        }

        FinishOpen(state, path);
    }

    /// <param name="runFirst">This run's first sequence when entries of this run were appended during the open (the memory
    /// outbox's storage_failed event); by default the one after the last held.</param>
    private void FinishOpen(StoreState state, string path, long? runFirst = null)
    {
        StartAgeClock((runFirst ?? state.Last + 1) - 1);
        FlushGap(); // drops an earlier run recorded in meta but had not written as a data_gap event yet
        _signal.Set(state.Last);
        string positions;
        lock (_stateLock)
        {
            positions = _positions.Count == 0 ? "(none)" : string.Join(", ", _positions.Select(p => $"{p.Key}@{p.Value}"));
        }

        OutboxLog.Opened(_logger, path, state.Depth, state.Last, positions);
    }

    /// <summary>
    /// On a read-only file system the lock file cannot be created or opened for writing; an existing one is still locked
    /// (flock needs no write access), so a second agent on the same outbox is refused as on a writable disk.
    /// </summary>
    private void LockReadOnly(string path)
    {
        var lockPath = Core.Config.OutboxSettings.LockPath(path);
        if (!File.Exists(lockPath))
        {
            return;
        }

        try
        {
            _lockFile = new FileStream(lockPath, FileMode.Open, FileAccess.Read, FileShare.None, 1, FileOptions.None);
        }
        catch (IOException ex) when (!Core.StorageErrors.IsReadOnlyFileSystem(ex))
        {
            throw new OutboxStorageException($"Outbox {path} is in use by another process (cannot lock {path}.lock): {ex.Message}", ex) { InUse = true };
        }
        catch (UnauthorizedAccessException)
        {
            // Not readable by this user: without a lock, as there is none to take.
        }
    }

    private void OpenDatabase()
    {
        if (_memoryData is { } memoryData && _memoryLog is { } memoryLog)
        {
            // Memory mode: reopened after a failure over the same streams (LiteDB leaves a caller's streams open).
            _db = new LiteDatabase(new SyncOnFlushStream(memoryData), new BsonMapper(), _journal = new JournalStream(memoryLog));
            _segments = new SegmentSet(_db, _options.SegmentCapacity);
            _freedInDataFile = 0;
            return;
        }

        var path = _options.Path;
        _dataFile = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 0, FileOptions.None);
        _logFile = new FileStream(JournalPath(path), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 0, FileOptions.None);
        var data = new SyncOnFlushStream(_options.WrapStream?.Invoke(_dataFile) ?? _dataFile);
        var log = _journal = new JournalStream(_options.WrapStream?.Invoke(_logFile) ?? _logFile);
        _db = new LiteDatabase(data, new BsonMapper(), log);

        // Checkpoints copy the journal into the data file (fsynced by SyncOnFlushStream before the journal is reused). Small budgets get a small journal. Set only when
        // it differs: the setting is a header write, and on a full disk that write made the open, and the agent's start, fail.
        // Not for inspection (edgetwin outbox …): its budget differs, and it must not change a file it only reads.
        if (_options.MoveCorruptFileAside)
        {
            SetCheckpointSize(CheckpointPages(ReadFileSystemSpace() is { } space ? Room(space).Room : long.MaxValue));
        }

        _segments = new SegmentSet(_db, _options.SegmentCapacity);
        _freedInDataFile = 0;
    }

    /// <summary>
    /// The last sequence of a newly created file: Unix milliseconds × 1000. The centre de-duplicates on
    /// (gateway, seq) and still holds what this gateway sent from a file that is gone (deleted, re-imaged SD card,
    /// replaced gateway with the same id, moved aside as corrupt); a new file that started at 1 again had its data
    /// discarded there as duplicates. With the clock, sequences only grow as long as the clock is sane: a file would
    /// have to take more than 1000 records per millisecond of its life to reach the next seed, and the value stays
    /// below 2^53 (exact in a JSON double) until the year 2255.
    /// </summary>
    private long NewFileSeed() => Math.Max(0, _time.GetUtcNow().ToUnixTimeMilliseconds()) * 1000;

    /// <summary>Reads meta, positions and the held range, verifying every entry on the way (a corrupt page throws here, not later).</summary>
    /// <param name="seed">The last sequence to start from when the file is new (no meta yet).</param>
    private (StoreState State, Dictionary<string, long> Positions) LoadState(long seed)
    {
        // A commit that failed (a full disk) left its pages in the journal, and they kept the disk full for every later
        // append: a checkpoint moves what was committed into the data file and empties the journal.
        if (_options.MoveCorruptFileAside && _logFile is { Length: > 0 })
        {
            Checkpoint();
        }

        var state = default(StoreState);
        var meta = Meta.FindById(StateId);
        if (meta?[FieldFormat] is { IsNumber: true } format && format.AsInt32 > FormatVersion)
        {
            throw new NewerFormatException(format.AsInt32); // before anything of it is changed (pending pieces, released segments)
        }

        _gapInMeta = meta?[FieldGap] is { IsDocument: true } heldGap ? heldGap.AsDocument : null;
        if (meta is null)
        {
            state.Last = seed;
            state.Created = true;
        }
        else
        {
            state.Last = meta["last"].AsInt64;
            state.Condensed = meta["condensed"].AsInt64;
            state.Dropped = meta["dropped"].AsInt64;
        }

        var ceiling = long.MaxValue;
        if (meta is not null && meta[FieldPendingTo] is { IsInt64: true } pendingTo && pendingTo.AsInt64 > state.Last)
        {
            RemovePendingTail(meta, state.Last, pendingTo.AsInt64);
            if (!_options.MoveCorruptFileAside)
            {
                ceiling = state.Last; // read-only: the pieces stay on disk, hidden
            }
        }

        // A restored backup or an old gateway's file moved onto its replacement continues from its own last sequence, which
        // the original went past before it died or after the backup was taken: the centre held those numbers for other
        // data and de-duplicated the new entries away (835 of them in the audit's restore). Its held entries keep their
        // sequences (they are what the original may not have sent); new ones start from the clock, like a new file's.
        var originChanged = false;
        if (_options.MoveCorruptFileAside)
        {
            _origin = StoreOrigin.Of(_options.Path, _options.Host);
            if (meta is not null)
            {
                var recorded = new StoreOrigin(
                    meta[FieldOriginBirth] is { IsInt64: true } birth ? birth.AsInt64 : 0,
                    meta[FieldOriginHost] is { IsString: true } host ? host.AsString : null);
                originChanged = recorded != _origin;
                if (_origin.DifferenceFrom(recorded) is { } why)
                {
                    var last = state.Last;
                    state.Last = Math.Max(state.Last, seed);
                    OutboxLog.AdoptedCopy(_logger, _options.Path, why, last, state.Last + 1);
                }
            }
        }

        var (depth, bytes, max, pending, pendingBytes) = Segments.Load(meta?["floor"] is { IsInt64: true } floor ? floor.AsInt64 : 0, doc => _ = ToEntry(doc), ceiling); // ToEntry throws on a damaged document

        // Not for inspection: a segment holding only pieces of an unfinished append (one not its last) counts as released,
        // and dropping it changed the file the inspection only reads.
        if (_options.MoveCorruptFileAside)
        {
            Segments.DropReleased();
        }

        RefreshFirst(ref state);
        state.Depth = depth;
        state.Bytes = bytes;
        state.PendingPieces = pending;
        state.PendingBytes = pendingBytes;
        if (pending > 0)
        {
            OutboxLog.PendingPiecesLeft(_logger, _options.Path, pending, pendingBytes, state.Last);
        }
        if (max > state.Last)
        {
            throw new LiteException(0, $"entry {max} is beyond the recorded last sequence {state.Last}");
        }

        var positions = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var doc in Uplinks.FindAll())
        {
            positions[doc["_id"].AsString] = doc["acked"].AsInt64;
        }

        state.FileBytes = FileBytes();
        if (meta is null || originChanged)
        {
            _db!.BeginTrans();
            SaveMeta(state);
            CommitDurably();
        }

        return (state, positions);
    }

    /// <summary>
    /// Removes the pieces of an append that failed (or was killed) before its last piece committed: its caller never
    /// heard "stored" and retries the records, so they must not be sent under these sequences too. A read-only open
    /// (inspection) leaves them and only hides them (the load's ceiling).
    /// </summary>
    private void RemovePendingTail(BsonDocument meta, long last, long pendingTo)
    {
        if (!_options.MoveCorruptFileAside)
        {
            return;
        }

        // A failed piece left its pages in the journal: move out what was committed first, or the removal may not fit.
        if (_logFile is { Length: > 0 })
        {
            Checkpoint();
        }

        var segments = _db!.GetCollectionNames()
            .Where(n => n.StartsWith(SegmentPrefix, StringComparison.Ordinal))
            .Select(n => (Name: n, Start: long.Parse(n.AsSpan(SegmentPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture)))
            .ToList();

        long removed = 0;
        _db.BeginTrans();
        foreach (var (name, start) in segments)
        {
            removed += start > last
                ? _db.GetCollection(name).Count()
                : _db.GetCollection(name).DeleteMany(BsonExpression.Create("_id > @0", new BsonValue(last)));
        }

        meta.Remove(FieldPendingTo);
        Meta.Update(meta);
        CommitDurably();
        foreach (var (name, start) in segments)
        {
            if (start > last)
            {
                _db.DropCollection(name); // LiteDB drops a collection in its own transaction
            }
        }

        OutboxLog.PendingTailRemoved(_logger, _options.Path, removed, last + 1, pendingTo);
    }

    /// <summary>
    /// Copies salvaged entries into the new file, 1000 per transaction. A failed commit (a full disk) stops there: the rest
    /// stays in the moved-aside file, for <c>edgetwin outbox export --salvage</c>. Returns how many were copied.
    /// </summary>
    private long CopySalvaged(ref StoreState state, IReadOnlyList<OutboxEntry> entries)
    {
        long copied = 0;
        for (var i = 0; i < entries.Count; i += 1000)
        {
            var next = state;
            try
            {
                _db!.BeginTrans();
                foreach (var entry in entries.Skip(i).Take(1000))
                {
                    Segments.Insert(entry.Sequence, ToDocument(entry.Sequence, entry.Record, out var size), size, fillHoles: true);
                    next.Depth++;
                    next.Bytes += size;
                }

                RefreshFirst(ref next);
                SaveMeta(next);
                CommitDurably();
            }
            catch (Exception ex) when (ex is IOException or LiteException)
            {
                OutboxLog.WriteFailed(_logger, _options.Path, entries.Count - i, $"copying salvaged entries failed, the rest stays in the moved-aside file: {ex.Message}", ex);
                try
                {
                    _db?.Rollback();
                }
                catch (Exception rollbackError) when (rollbackError is IOException or LiteException)
                {
                    // Reopened below from what was committed.
                }

                if (_db is not null)
                {
                    LiteDbQuirks.ForgetBrokenTransactions(_db);
                }

                CloseDatabase();
                OpenDatabase();
                (state, _) = LoadState(state.Last);
                return copied;
            }

            state = next;
            copied += Math.Min(1000, entries.Count - i);
        }

        state.FileBytes = FileBytes();
        return copied;
    }

    private void LogSalvage(string movedTo, OutboxSalvageResult salvage, long copied)
    {
        var first = salvage.Entries.Count > 0 ? salvage.Entries[0].Sequence : 0;
        var last = salvage.Entries.Count > 0 ? salvage.Entries[^1].Sequence : 0;
        var problems = salvage.Problems.Count == 0 ? "none" : string.Join("; ", salvage.Problems.Take(5));
        OutboxLog.Salvaged(_logger, movedTo, copied, first, last, salvage.Lost + (salvage.Entries.Count - copied), salvage.Incomplete ? " (a lower bound: part of the file could not be read)" : "", problems);
        if (salvage.PendingDropped > 0)
        {
            OutboxLog.PendingPiecesNotSalvaged(_logger, movedTo, salvage.PendingDropped, salvage.PendingBytes, salvage.LastSequence);
        }
    }

    /// <summary>
    /// Why the existing file at <paramref name="path"/> is not a LiteDB data file; null when it is one, is empty (a new
    /// outbox) or is absent. LiteDB itself re-initialised a file shorter than a page and cut a longer one to whole pages
    /// before it failed on it: <c>edgetwin outbox stats --path /etc/passwd</c> replaced the file with an empty outbox.
    /// </summary>
    internal static string? NotLiteDbFile(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // a directory, no permission: the open that follows says so as before
        }

        using (stream)
        {
            if (stream.Length == 0)
            {
                return null;
            }

            Span<byte> head = stackalloc byte[LiteDbHeaderOffset + LiteDbHeader.Length];
            var read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return read == head.Length && head[LiteDbHeaderOffset..].SequenceEqual(LiteDbHeader)
                ? null
                : string.Create(CultureInfo.InvariantCulture, $"it does not begin with LiteDB's header ({stream.Length} bytes of something else, or a damaged first page)");
        }
    }

    // LiteDB 5's header page: a 32-byte page header, then this text.
    private const int LiteDbHeaderOffset = 32;

    private static ReadOnlySpan<byte> LiteDbHeader => "** This is a LiteDB file **"u8;

    /// <summary>The file at the outbox's path is not a LiteDB data file (<see cref="NotLiteDbFile"/>): kept aside like a damaged one.</summary>
    private sealed class NotLiteDbException(string why) : Exception(why);

    /// <summary>meta.state.format is above <see cref="FormatVersion"/>: the file is a newer build's, not damaged.</summary>
    private sealed class NewerFormatException(int format) : Exception($"file format {format}")
    {
        public int Format { get; } = format;
    }

    private static bool IsCorruption(Exception ex) => ex switch
    {
        OutboxStorageException => false,
        UnauthorizedAccessException => false,
        EndOfStreamException => true,
        IOException => false,
        OperationCanceledException => false,
        OutOfMemoryException => false,
        _ => true, // LiteException and the InvalidCast/IndexOutOfRange/Overflow a damaged page can cause.
    };

    private string MoveAside(string path, string why = "corrupt")
    {
        var stamp = _time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var target = $"{path}.{why}-{stamp}";
        for (var i = 1; File.Exists(target); i++)
        {
            target = $"{path}.{why}-{stamp}-{i}";
        }

        File.Move(path, target);
        var journal = JournalPath(path);
        if (File.Exists(journal))
        {
            File.Move(journal, target + "-log");
        }

        return target;
    }

    private void CloseDatabase()
    {
        try
        {
            _db?.Dispose();
        }
        catch (Exception ex) when (ex is IOException or LiteException or ObjectDisposedException)
        {
            // Closing after a failure: the journal on disk is what counts, and the next open replays it.
        }

        _db = null;
        _segments = null;
        _dataFile?.Dispose();
        _logFile?.Dispose();
        _dataFile = null;
        _logFile = null;
    }

    private void CloseStore()
    {
        CloseDatabase();
        _lockFile?.Dispose();
        _lockFile = null;
    }

    private long FileBytes() => _memoryData is { } memory ? memory.Length + (_memoryLog?.Length ?? 0) : (_dataFile?.Length ?? 0) + (_logFile?.Length ?? 0);

    /// <param name="state">What to record; its <c>Last</c> is the last sequence acknowledged to a caller.</param>
    /// <param name="pendingTo">An append committed in pieces is under way up to this sequence: entries above
    /// <c>Last</c> are its earlier pieces, removed at the next open unless the last piece commits (0: none).</param>
    private void SaveMeta(in StoreState state, long pendingTo = 0)
    {
        var meta = new BsonDocument
        {
            ["_id"] = StateId,
            ["last"] = state.Last,
            ["condensed"] = state.Condensed,
            ["dropped"] = state.Dropped,
            ["floor"] = Segments.Floor,
            [FieldFormat] = FormatVersion,
        };
        if (pendingTo > 0)
        {
            meta[FieldPendingTo] = pendingTo;
        }

        if (_gapInMeta is not null)
        {
            meta[FieldGap] = _gapInMeta;
        }

        if (_origin.BirthNs != 0)
        {
            meta[FieldOriginBirth] = _origin.BirthNs;
        }

        if (_origin.Host is not null)
        {
            meta[FieldOriginHost] = _origin.Host;
        }

        Meta.Upsert(meta);
    }

    /// <summary>Sets or (empty value) removes a blob, inside the caller's transaction.</summary>
    private void SetBlob(string name, byte[] value)
    {
        var id = BlobIdPrefix + name;
        if (value.Length == 0)
        {
            Meta.Delete(id);
        }
        else
        {
            Meta.Upsert(new BsonDocument { ["_id"] = id, [FieldPayload] = value });
        }
    }

    /// <summary>Commits and, unless configured otherwise, fsyncs the journal: only then is anything "durable".</summary>
    private void CommitDurably()
    {
        _db!.Commit();
        if (_options.FlushToDisk && _logFile is not null)
        {
            _logFile!.Flush(flushToDisk: true);
        }
    }

    /// <summary>Inserts <paramref name="record"/> under the next sequence, inside the caller's transaction; returns its stored size.</summary>
    private long InsertEntry(ref StoreState state, in OutboxRecord record)
    {
        var sequence = ++state.Last;
        Segments.Insert(sequence, ToDocument(sequence, record, out var size), size);
        if (state.Depth == 0)
        {
            state.First = sequence;
            state.OldestTimestamp = record.TimestampUnixMs;
        }

        state.Depth++;
        state.Bytes += size;
        return size;
    }

    private static BsonDocument ToDocument(long sequence, in OutboxRecord record, out long size)
    {
        size = record.Payload.Length + (record.DeviceId.Length * 2L) + EntryOverhead;
        return new BsonDocument
        {
            ["_id"] = sequence,
            [FieldKind] = (int)record.Kind,
            [FieldDevice] = record.DeviceId,
            [FieldTime] = record.TimestampUnixMs,
            [FieldPayload] = record.Payload.ToArray(),
            [FieldSize] = size,
        };
    }

    private static OutboxEntry ToEntry(BsonDocument doc) =>
        new(doc["_id"].AsInt64, new OutboxRecord((OutboxKind)doc[FieldKind].AsInt32, doc[FieldDevice].AsString, doc[FieldTime].AsInt64, doc[FieldPayload].AsBinary));

    /// <summary>Inserts the data-gap event describing what was condensed or dropped (inside the caller's transaction).</summary>
    private void AppendGapEvent(ref StoreState state, GapTracker gap)
    {
        var now = _time.GetUtcNow();
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["reason"] = gap.Reason,
            ["condensed"] = gap.Condensed.ToString(CultureInfo.InvariantCulture),
            ["dropped"] = gap.Dropped.ToString(CultureInfo.InvariantCulture),
        };
        if (gap.FirstSeq > 0)
        {
            attributes["first_seq"] = gap.FirstSeq.ToString(CultureInfo.InvariantCulture);
            attributes["last_seq"] = gap.LastSeq.ToString(CultureInfo.InvariantCulture);
            attributes["from_ms"] = gap.FromMs.ToString(CultureInfo.InvariantCulture);
            attributes["to_ms"] = gap.ToMs.ToString(CultureInfo.InvariantCulture);
            attributes["devices"] = string.Join(',', gap.Devices);
        }

        if (gap.MovedTo is not null)
        {
            attributes["moved_to"] = gap.MovedTo;
        }

        if (gap.MovedTo is not null && gap.Reason == "corrupt_file")
        {
            attributes["salvaged"] = gap.Salvaged.ToString(CultureInfo.InvariantCulture);
            attributes["lost"] = gap.Lost.ToString(CultureInfo.InvariantCulture);
            attributes["lost_exact"] = gap.Incomplete ? "false" : "true";
        }

        var message = gap.Reason switch
        {
            "corrupt_file" => $"Outbox file was corrupt and moved aside to {gap.MovedTo}; {gap.Salvaged} readable entries were salvaged into the new outbox (sent with their sequences), {gap.Lost} unreadable entries were lost{(gap.Incomplete ? ", and part of the file could not be read at all, so more may be lost" : "")}.",
            "newer_format" => $"Outbox file was written by a newer build in a format this build does not read; it is kept untouched in {gap.MovedTo} with its entries (not sent by this build) and a new outbox was started.",
            _ => $"Outbox {gap.Reason}: condensed {gap.Condensed} raw entries into summaries and dropped {gap.Dropped} entries.",
        };
        AppendOwnEvent(ref state, UplinkBodies.Event(_options.Identity, new EdgeEvent(EdgeEventKind.DataGap, "outbox", now, EventSeverity.Warning, message, attributes)));
    }

    /// <summary>Appends an event the outbox writes itself (data_gap, storage_failed), committed at once unless the caller's transaction is open.</summary>
    private void AppendOwnEvent(ref StoreState state, in OutboxRecord record)
    {
        var inTransaction = _db!.BeginTrans();
        var sequence = ++state.Last;
        Segments.Insert(sequence, ToDocument(sequence, record, out var size), size);
        state.Depth++;
        state.Bytes += size;
        if (state.First == 0)
        {
            state.First = sequence;
            state.OldestTimestamp = record.TimestampUnixMs;
        }

        SaveMeta(state);
        if (inTransaction)
        {
            CommitDurably();
            state.FileBytes = FileBytes();
        }
    }

    /// <summary>What one condensation/drop round did, for the data-gap event, the log line and the counters.</summary>
    private sealed class GapTracker(string reason)
    {
        private const int MaxDevices = 20;

        public string Reason { get; } = reason;

        public string? MovedTo { get; init; }

        /// <summary>corrupt_file: entries copied from the moved-aside file into the new one.</summary>
        public long Salvaged { get; init; }

        /// <summary>corrupt_file: entries known to be unreadable.</summary>
        public long Lost { get; init; }

        /// <summary>corrupt_file: part of the file could not be read at all; <see cref="Lost"/> is a lower bound.</summary>
        public bool Incomplete { get; init; }

        public long Condensed { get; private set; }

        public long Dropped { get; private set; }

        public long FirstSeq { get; private set; }

        public long LastSeq { get; private set; }

        public long FromMs { get; private set; } = long.MaxValue;

        public long ToMs { get; private set; } = long.MinValue;

        public SortedSet<string> Devices { get; } = new(StringComparer.Ordinal);

        public bool Any => Condensed > 0 || Dropped > 0;

        public BsonDocument ToBson() => new()
        {
            ["reason"] = Reason,
            ["condensed"] = Condensed,
            ["dropped"] = Dropped,
            ["first"] = FirstSeq,
            ["last"] = LastSeq,
            ["from"] = FromMs,
            ["to"] = ToMs,
            ["devices"] = new BsonArray(Devices.Select(d => new BsonValue(d))),
        };

        /// <summary>Adds what another round (as <see cref="ToBson"/> wrote it) did.</summary>
        public GapTracker Add(BsonDocument other)
        {
            Condensed += other["condensed"].AsInt64;
            Dropped += other["dropped"].AsInt64;
            var first = other["first"].AsInt64;
            if (first > 0)
            {
                FirstSeq = FirstSeq == 0 ? first : Math.Min(FirstSeq, first);
                LastSeq = Math.Max(LastSeq, other["last"].AsInt64);
                FromMs = Math.Min(FromMs, other["from"].AsInt64);
                ToMs = Math.Max(ToMs, other["to"].AsInt64);
            }

            foreach (var device in other["devices"].AsArray)
            {
                if (Devices.Count < MaxDevices)
                {
                    Devices.Add(device.AsString);
                }
            }

            return this;
        }

        public void Track(long sequence, long timeMs, string device, bool condensed)
        {
            if (condensed)
            {
                Condensed++;
            }
            else
            {
                Dropped++;
            }

            FirstSeq = FirstSeq == 0 ? sequence : Math.Min(FirstSeq, sequence);
            LastSeq = Math.Max(LastSeq, sequence);
            FromMs = Math.Min(FromMs, timeMs);
            ToMs = Math.Max(ToMs, timeMs);
            if (Devices.Count < MaxDevices)
            {
                Devices.Add(device);
            }
        }
    }
}
