using EdgeTwin.Outbox.Summaries;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>
/// Keeping within the disk budget and the maximum age. Order of sacrifice: condense old raw entries into summaries,
/// then drop the oldest summaries (and raw entries that could not be condensed, and twin-state snapshots).
/// Events and predictions are never touched. Every round that changes anything appends one data_gap event.
/// </summary>
public sealed partial class LiteDbOutbox
{
    private const int ScanChunk = 2000;

    private bool _diskPressure;
    private long _dataFileAtPressureRound;

    private static bool IsDroppable(OutboxKind kind) => kind is OutboxKind.Summary or OutboxKind.Raw or OutboxKind.TwinState;

    /// <param name="flushGap">Write the disk_budget gap held in meta as its data_gap event now (an explicit
    /// <see cref="RunMaintenanceAsync"/>), not only once it is <see cref="GapCoalesceInterval"/> old.</param>
    private void RunMaintenance(bool flushGap = false)
    {
        if (_writeBack is not null)
        {
            return; // the write-back adds only new entries to the file it wrote: nothing may leave memory meanwhile (runs after)
        }

        if (_db is null && !EnsureOpen([]))
        {
            return;
        }

        RunRound("max_age", DropExpired);
        EnforceBudget();
        if (_gapInMeta is not null && (flushGap || _time.GetElapsedTime(_lastGapEventAt) >= GapCoalesceInterval))
        {
            FlushGap();
        }
    }

    private void EnforceBudget()
    {
        if (_writeBack is not null)
        {
            return; // as RunMaintenance: for the seconds of the write the budget may be passed by what comes in
        }

        StoreState before;
        lock (_stateLock)
        {
            before = _published;
        }

        var budget = BudgetInForce(before.Bytes);
        long high = (long)(budget * _options.HighWatermark);
        long low = (long)(budget * _options.LowWatermark);
        if (before.Bytes <= high)
        {
            return;
        }

        StoreState after;
        if (!_diskPressure)
        {
            after = RunRound("disk_budget", (ref StoreState state, GapTracker gap) =>
            {
                CondenseRaw(ref state, gap, low);
                if (state.Bytes > low)
                {
                    DropOldest(ref state, gap, low);
                }
            });
        }
        else
        {
            // In steps of 64 KiB of entries, each its own transaction followed by a checkpoint: a round is written to the
            // journal whole before it commits, and one round of a quarter of the entries took the last 400 KB of a small disk.
            after = before;
            while (after.Bytes > low)
            {
                var target = Math.Max(low, after.Bytes - (64 * 1024));
                var next = RunRound("disk_budget", (ref StoreState state, GapTracker gap) =>
                {
                    CondenseRaw(ref state, gap, target);
                    if (state.Bytes > target)
                    {
                        DropOldest(ref state, gap, target);
                    }
                });
                if (next.Bytes >= after.Bytes || _db is null)
                {
                    break; // nothing left to condense or drop, or the round failed
                }

                after = next;
                Checkpoint();
            }

            _dataFileAtPressureRound = _dataFile?.Length ?? 0;
        }

        if (after.Bytes > high)
        {
            OutboxLog.OverBudgetWithProtected(_logger, _options.Path, after.Bytes, budget);
        }
    }

    /// <summary>
    /// The configured budget, or, under disk pressure, the entries' present size (so the caller condenses them by a
    /// quarter, to the low watermark). Pressure: the free space above the reserve is less than a quarter of the outbox's
    /// files (at least 64 KiB), i.e. the files could not grow by a quarter more. A round is due once per growth of the data
    /// file: condensing frees pages that later appends reuse, so the file stops growing, and no further round (and no
    /// further data_gap event) follows until it grows again. The free space is read on every call (one statvfs).
    /// </summary>
    private long BudgetInForce(long storedBytes)
    {
        if (MemoryOnly)
        {
            return Math.Min(_options.DiskBudgetBytes, _options.MemoryBudgetBytes);
        }

        // Not throttled: a small disk filled between two reads a second apart.
        if (ReadFileSystemSpace() is not { } space)
        {
            return _options.DiskBudgetBytes;
        }

        var (reserve, room) = Room(space);

        // The journal grows by every page written until a checkpoint: keep it within a quarter of the room.
        SetCheckpointSize(CheckpointPages(room));
        // Enter below a quarter of the files, leave above half of them: at the edge the flag flipped off after a round,
        // and the files grew into the last of the room before the next check.
        var pressure = room < Math.Max(FileBytes() / (_diskPressure ? 2 : 4), 64 * 1024);
        if (pressure && !_diskPressure)
        {
            OutboxLog.DiskPressure(_logger, _options.Path, space.Available, reserve, FileBytes());
        }

        _diskPressure = pressure;
        var dataFile = _dataFile?.Length ?? 0;
        return pressure && dataFile > _dataFileAtPressureRound ? Math.Min(_options.DiskBudgetBytes, storedBytes) : _options.DiskBudgetBytes;
    }

    /// <summary>The reserve left to others, and the room above it.</summary>
    private (long Reserve, long Room) Room((long Available, long Total) space)
    {
        var reserve = _options.DiskReserveBytes ?? Math.Min(64L << 20, space.Total / 20);
        return (reserve, Math.Max(0, space.Available - reserve));
    }

    /// <summary>Journal pages before a checkpoint: 1/16 of the budget, at most a quarter of the free room, as a power of two (fewer header writes).</summary>
    private int CheckpointPages(long room)
    {
        var pages = Math.Clamp(Math.Min(_options.DiskBudgetBytes / 16, room / 4) / 8192, 8, 1000);
        return (int)Math.Max(8, 1L << (int)(63 - long.LeadingZeroCount(pages)));
    }

    /// <summary>Moves the journal into the data file and empties it; a failure leaves it for LiteDB's own next checkpoint.</summary>
    private void Checkpoint()
    {
        try
        {
            _db?.Checkpoint();
        }
        catch (Exception ex) when (ex is IOException or LiteException)
        {
            OutboxLog.WriteFailed(_logger, _options.Path, 0, $"checkpoint failed: {ex.Message}", null);
        }
    }

    /// <summary>LiteDB writes the setting into its header: only on a change, and a failure (a full disk) leaves the old one.</summary>
    private void SetCheckpointSize(int pages)
    {
        try
        {
            if (_db is not null && _db.CheckpointSize != pages)
            {
                _db.CheckpointSize = pages;
            }
        }
        catch (Exception ex) when (ex is IOException or LiteException)
        {
            OutboxLog.WriteFailed(_logger, _options.Path, 0, $"setting the journal's checkpoint size failed: {ex.Message}", null);
        }
    }

    private (long Available, long Total)? ReadFileSystemSpace()
    {
        // In memory the disk is not written: its space bounds nothing (the memory budget does).
        return MemoryOnly ? null : StatFileSystem();
    }

    /// <summary>Free and total bytes of the outbox directory's file system (one statvfs), or null when unknown.</summary>
    private (long Available, long Total)? StatFileSystem()
    {
        if (_options.FileSystemSpace is { } hook)
        {
            return hook();
        }

        try
        {
            var drive = new DriveInfo(StoreDirectory(_options.Path));
            return (drive.AvailableFreeSpace, drive.TotalSize);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null; // unknown: the configured budget alone
        }
    }

    /// <summary>The directory that holds the outbox's files.</summary>
    private static string StoreDirectory(string path) => System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? "/";

    private delegate void Round(ref StoreState state, GapTracker gap);

    /// <summary>One transaction: run <paramref name="round"/>, add the gap event if it did anything, commit, publish.</summary>
    private StoreState RunRound(string reason, Round round)
    {
        StoreState state;
        lock (_stateLock)
        {
            state = _published;
        }

        var gap = new GapTracker(reason);
        var bytesBefore = state.Bytes;
        var previousGap = _gapInMeta;
        try
        {
            _db!.BeginTrans();
            round(ref state, gap);
            if (!gap.Any)
            {
                _db.Rollback();
                return state;
            }

            state.Condensed += gap.Condensed;
            state.Dropped += gap.Dropped;
            RefreshFirst(ref state);
            previousGap = _gapInMeta;
            RecordGap(ref state, gap);
            CommitDurably();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _gapInMeta = previousGap;
            FailWrites([], ex);
            lock (_stateLock)
            {
                return _published;
            }
        }

        DropReleasedSegments();
        NoteFreed(bytesBefore - state.Bytes);
        state.FileBytes = FileBytes();
        Publish(state, null);
        _metrics.Condensed(gap.Condensed);
        _metrics.Dropped(gap.Dropped);
        _signal.Set(state.Last);
        if (reason == "max_age")
        {
            // Not a budget matter: "near its disk budget (640 of 536870912 bytes, reason max_age)" misled.
            OutboxLog.MaxAgeEnforced(_logger, _options.Path, Core.Config.Durations.Approximate(_options.MaxAge), gap.Dropped, gap.FirstSeq, gap.LastSeq);
        }
        else
        {
            OutboxLog.BudgetEnforced(_logger, _options.Path, state.Bytes, BudgetInForce(state.Bytes), reason, gap.Condensed, gap.Dropped, gap.FirstSeq, gap.LastSeq);
        }
        return state;
    }

    /// <summary>Replaces old raw entries, per series and condense window, by one condensed summary each.</summary>
    private void CondenseRaw(ref StoreState state, GapTracker gap, long target)
    {
        var windowMs = (long)_options.CondenseWindow.TotalMilliseconds;
        var points = new List<RawPoint>();
        long cursor = 0;
        while (state.Bytes > target)
        {
            var chunk = Segments.Scan(cursor, BsonExpression.Create("k = @0", new BsonValue((int)OutboxKind.Raw)), select: null, ScanChunk).ToList();
            if (chunk.Count == 0)
            {
                return;
            }

            cursor = chunk[^1]["_id"].AsInt64;
            var groups = new Dictionary<(string Series, long Bucket), CondenseGroup>();
            foreach (var doc in chunk)
            {
                points.Clear();
                if (!RawBodyReader.TryRead(doc[FieldPayload].AsBinary, out var header, points) || header is null)
                {
                    continue; // Not condensable: the drop phase may take it.
                }

                var time = doc[FieldTime].AsInt64;
                var bucket = Math.DivRem(time, windowMs, out var rem) - (rem < 0 ? 1 : 0);
                if (!groups.TryGetValue((header.Series.Key, bucket), out var group))
                {
                    group = new CondenseGroup(header, bucket * windowMs, (bucket + 1) * windowMs);
                    groups.Add((header.Series.Key, bucket), group);
                }

                foreach (var p in points)
                {
                    group.Accumulator.Add(p.Value, p.TimestampMs, p.Quality == 0);
                }

                group.Members.Add((doc["_id"].AsInt64, time, doc[FieldSize].AsInt64));
            }

            foreach (var group in groups.Values)
            {
                var summary = UplinkBodies.Summary(group.Header.Identity, group.Header.Series, group.Accumulator, condensed: true);
                var keep = group.Members.Max(m => m.Sequence);
                var doc = ToDocument(keep, summary, out var size);
                var freed = group.Members.Sum(m => m.Size);
                if (size >= freed)
                {
                    continue; // A summary of one small raw entry would be bigger than the entry.
                }

                foreach (var (sequence, time, _) in group.Members)
                {
                    if (sequence != keep)
                    {
                        Segments.Delete(sequence);
                    }

                    gap.Track(sequence, time, group.Header.Series.DeviceId, condensed: true);
                }

                Segments.Update(keep, doc, size);
                state.Bytes += size - freed;
                state.Depth -= group.Members.Count - 1;
            }
        }
    }

    /// <summary>Drops the oldest droppable entries until the store is under <paramref name="target"/>.</summary>
    private void DropOldest(ref StoreState state, GapTracker gap, long target)
    {
        long cursor = 0;
        while (state.Bytes > target)
        {
            var chunk = Segments.Scan(cursor, where: null, BsonExpression.Create("{ _id: $._id, k: $.k, d: $.d, t: $.t, n: $.n }"), ScanChunk).ToList();
            if (chunk.Count == 0)
            {
                return;
            }

            cursor = chunk[^1]["_id"].AsInt64;
            foreach (var doc in chunk)
            {
                if (TryDrop(ref state, gap, doc) && state.Bytes <= target)
                {
                    return;
                }
            }
        }
    }

    private sealed class CondenseGroup
    {
        public CondenseGroup(RawBodyHeader header, long startMs, long endMs)
        {
            Header = header;
            Accumulator.Reset(startMs, endMs);
        }

        public RawBodyHeader Header { get; }

        public WindowAccumulator Accumulator;

        public List<(long Sequence, long Time, long Size)> Members { get; } = [];
    }
}
