using System.Globalization;
using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>What <see cref="LiteDbOutbox.Salvage"/> could read from a damaged outbox file.</summary>
/// <param name="Entries">Readable held entries (above the file's acknowledged floor), in sequence order.</param>
/// <param name="Lost">Entries known to be held but unreadable (a document or index page that throws).</param>
/// <param name="LastSequence">The highest sequence the file is known to have used (meta or the highest id read), 0 if none.</param>
/// <param name="Problems">What failed, one line each (segment name and cause), for the log and the CLI.</param>
/// <param name="Incomplete">A whole part could not be read (collection list, a segment's range, or the read budget ran out): more may be lost than <paramref name="Lost"/> says.</param>
/// <param name="PendingDropped">Readable entries of an append that was committed in pieces and never finished (killed or
/// failed part-way; meta's <c>pending_to</c>): never accepted, so not salvaged. Its caller retries the records (or, after a
/// kill, the open-window recovery accounts for them); salvaged too, they would be sent twice.</param>
/// <param name="PendingBytes">Entry bytes of <paramref name="PendingDropped"/>.</param>
public sealed record OutboxSalvageResult(IReadOnlyList<OutboxEntry> Entries, long Lost, long LastSequence, IReadOnlyList<string> Problems, bool Incomplete, long PendingDropped = 0, long PendingBytes = 0)
{
    /// <summary>Each uplink's acknowledged position as the file recorded it (empty when unreadable).</summary>
    public IReadOnlyDictionary<string, long> Positions { get; init; } = new Dictionary<string, long>(StringComparer.Ordinal);
}

/// <summary>
/// Reading what is still readable from a damaged outbox file (the agent's move-aside path and <c>outbox export --salvage</c>).
/// The file is opened through a copy-on-write view: LiteDB's own writes at open (journal replay, header) go to memory,
/// never to the damaged file. Each segment collection is read on its own; when a scan throws, its remaining sequences
/// are read one by one by id, so one bad page costs the documents on it, not the segment. Every read is bounded: by a
/// deadline and by a budget of bytes read from disk (a damaged page can link back to itself and loop).
/// </summary>
public sealed partial class LiteDbOutbox
{
    /// <summary>At most this many ids are probed one by one after a segment's scan failed (a segment holds 8192 normally).</summary>
    private const long MaxProbesPerSegment = 1 << 20;

    /// <summary>After this many unreadable ids in a row a segment's index is taken as broken and the segment given up.</summary>
    private const int MaxFailedProbesInARow = 512;

    /// <summary>
    /// Reads every readable held entry of <paramref name="path"/> (journal <paramref name="journalPath"/>, if it exists)
    /// without changing either file. Bounded by <paramref name="timeout"/>; what was read until then is returned, with
    /// <see cref="OutboxSalvageResult.Incomplete"/> set.
    /// </summary>
    public static OutboxSalvageResult Salvage(string path, string? journalPath, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var data = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var log = journalPath is not null && File.Exists(journalPath) ? new FileStream(journalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite) : null;
        var budget = new SalvageBudget(DateTime.UtcNow + timeout, Math.Max(64L << 20, 8 * (data.Length + (log?.Length ?? 0))), cancellationToken);
        var collector = new SalvageCollector();

        // LiteDB runs on its own thread so that a loop inside it (on cached pages, where no read budget applies) cannot hold
        // the caller past the deadline; the budget makes its next disk read throw, and the thread is a background one.
        var thread = new Thread(() => SalvageCore(data, log, budget, collector)) { IsBackground = true, Name = "edgetwin-outbox-salvage" };
        thread.Start();
        if (!thread.Join(timeout + TimeSpan.FromSeconds(1)))
        {
            budget.Expire();
            collector.Problem($"reading took longer than {timeout.TotalSeconds:0} s; stopped there");
            collector.Incomplete = true;
            thread.Join(TimeSpan.FromSeconds(2));
        }

        return collector.Result();
    }

    private static void SalvageCore(FileStream data, FileStream? log, SalvageBudget budget, SalvageCollector collector)
    {
        try
        {
            using var dataView = new Core.CopyOnWriteFileStream(data, budget.Charge);
            using var logView = new Core.CopyOnWriteFileStream(log, budget.Charge);
            using var session = new SalvageSession(dataView, logView);
            long floor = 0, last = 0;
            var ceiling = long.MaxValue;
            try
            {
                if (session.Db.GetCollection(MetaCollection).FindById(StateId) is { } meta)
                {
                    last = meta["last"].AsInt64;
                    floor = meta["floor"] is { IsInt64: true } f ? f.AsInt64 : 0;
                    if (meta[FieldPendingTo] is { IsInt64: true } pendingTo && pendingTo.AsInt64 > last)
                    {
                        // Entries above last are the committed pieces of an append that never finished: its caller was never
                        // told "stored". Salvaged, they were sent and then sent again by the caller's retry.
                        ceiling = last;
                    }
                }
            }
            catch (Exception ex) when (IsSalvageable(ex) && ex is not SalvageBudgetException)
            {
                collector.Problem($"meta: {ex.GetType().Name}: {ex.Message} (entries acknowledged before may be sent again)");
                session.Reopen();
            }

            collector.Last = last;
            try
            {
                foreach (var uplink in session.Db.GetCollection(UplinksCollection).FindAll())
                {
                    if (uplink["_id"] is { IsString: true } name && uplink["acked"] is { IsNumber: true } acked)
                    {
                        collector.Position(name.AsString, acked.AsInt64);
                    }
                }
            }
            catch (Exception ex) when (IsSalvageable(ex) && ex is not SalvageBudgetException)
            {
                collector.Problem($"uplink positions: {ex.GetType().Name}: {ex.Message} (entries acknowledged before may be sent again)");
                session.Reopen();
            }

            List<(string Name, long Start)> segments;
            try
            {
                segments = session.Db.GetCollectionNames()
                    .Where(n => n.StartsWith(SegmentPrefix, StringComparison.Ordinal) || n == "entries")
                    .Select(n => (n, n == "entries" ? 0 : long.TryParse(n.AsSpan(SegmentPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1))
                    .Where(s => s.Item2 >= 0)
                    .OrderBy(s => s.Item2)
                    .ToList();
            }
            catch (Exception ex) when (IsSalvageable(ex))
            {
                collector.Problem($"collection list: {ex.GetType().Name}: {ex.Message}; nothing could be read");
                collector.Incomplete = true;
                return;
            }

            for (var i = 0; i < segments.Count; i++)
            {
                budget.Check();
                var (name, start) = segments[i];
                var end = i + 1 < segments.Count ? segments[i + 1].Start - 1 : last > start ? last : start + 8191;
                if (start <= ceiling)
                {
                    end = Math.Min(end, ceiling);
                    SalvageSegment(session, name, start, end, last > 0 ? end : 0, floor, ceiling, collector, budget);
                }

                if (ceiling != long.MaxValue && (i + 1 == segments.Count ? long.MaxValue : segments[i + 1].Start - 1) > ceiling)
                {
                    CountPendingPieces(session, name, ceiling, collector, budget);
                }
            }
        }
        catch (Exception ex) when (IsSalvageable(ex))
        {
            collector.Problem($"{ex.GetType().Name}: {ex.Message}");
            collector.Incomplete = true;
        }
    }

    private static void SalvageSegment(SalvageSession session, string name, long start, long end, long knownLast, long floor, long ceiling, SalvageCollector collector, SalvageBudget budget)
    {
        long lastRead = Math.Max(start, floor + 1) - 1;
        try
        {
            foreach (var doc in session.Db.GetCollection(name).Query().Where(BsonExpression.Create("_id > @0", new BsonValue(lastRead))).OrderBy("_id").ToEnumerable())
            {
                budget.Check();
                var id = doc["_id"].AsInt64;
                if (id > ceiling)
                {
                    return; // in _id order: the rest are pieces of the unfinished append, counted on their own
                }

                if (id <= lastRead)
                {
                    throw new LiteException(0, $"index order broken at {id} after {lastRead} (a damaged page links back)");
                }

                var entry = ToEntry(doc);
                lastRead = id;
                collector.Add(entry);
            }

            return;
        }
        catch (Exception ex) when (IsSalvageable(ex) && ex is not SalvageBudgetException)
        {
            collector.Problem($"{name}: scan stopped after sequence {lastRead}: {ex.GetType().Name}: {ex.Message}; reading the rest one by one");
            session.Reopen();
        }

        // One by one: a bad data page costs its own documents; a bad index page may hide some (counted only when they throw).
        var to = Math.Min(end, lastRead + MaxProbesPerSegment);
        if (to < end)
        {
            collector.Incomplete = true;
        }

        int failedInARow = 0, lostInARow = 0;
        for (var id = lastRead + 1; id <= to; id++)
        {
            budget.Check();
            try
            {
                if (session.Db.GetCollection(name).FindById(id) is { } doc)
                {
                    collector.Add(ToEntry(doc));
                }

                failedInARow = 0;
                lostInARow = 0;
            }
            catch (Exception ex) when (IsSalvageable(ex) && ex is not SalvageBudgetException)
            {
                session.Reopen();
                if (++failedInARow > MaxFailedProbesInARow)
                {
                    // The index itself is broken: every id throws, held or not. What it hid is not counted.
                    collector.Lost -= lostInARow;
                    collector.Problem($"{name}: {failedInARow} ids in a row from {id - failedInARow + 1} unreadable (its index is damaged); the rest of the segment, up to {end}, is not read");
                    collector.Incomplete = true;
                    return;
                }

                // Only ids the file is known to have used count as lost; beyond its recorded last, nothing is known.
                if (id <= knownLast)
                {
                    collector.Lost++;
                    lostInARow++;
                }
                else
                {
                    collector.Incomplete = true;
                }
            }
        }
    }

    /// <summary>
    /// Counts the readable pieces of the unfinished append in one segment (entries above <paramref name="ceiling"/>), for
    /// the log and the CLI. Unreadable ones are not lost (they were never accepted): only the problem is noted.
    /// </summary>
    private static void CountPendingPieces(SalvageSession session, string name, long ceiling, SalvageCollector collector, SalvageBudget budget)
    {
        try
        {
            foreach (var doc in session.Db.GetCollection(name).Query().Where(BsonExpression.Create("_id > @0", new BsonValue(ceiling))).OrderBy("_id").ToEnumerable())
            {
                budget.Check();
                collector.AddPending(doc[FieldSize] is { IsNumber: true } size ? size.AsInt64 : 0);
            }
        }
        catch (Exception ex) when (IsSalvageable(ex) && ex is not SalvageBudgetException)
        {
            collector.Problem($"{name}: counting the pieces of the unfinished append above sequence {ceiling} stopped: {ex.GetType().Name}: {ex.Message} (they are not salvaged either way)");
            session.Reopen();
        }
    }

    /// <summary>
    /// The LiteDatabase over the copy-on-write views, opened anew after every failed read: LiteDB leaves the failed
    /// query's transaction on the thread, and every later read on that instance failed with the same error.
    /// </summary>
    private sealed class SalvageSession(Stream data, Stream log) : IDisposable
    {
        private LiteDatabase? _db;

        public LiteDatabase Db => _db ??= new LiteDatabase(data, new BsonMapper(), log);

        public void Reopen()
        {
            if (_db is { } db)
            {
                LiteDbQuirks.ForgetBrokenTransactions(db);
                try
                {
                    db.Dispose();
                }
                catch (Exception ex) when (IsSalvageable(ex))
                {
                    // A damaged file may fail its close too; the views are memory, nothing is written to disk.
                }
            }

            _db = null;
        }

        public void Dispose() => Reopen();
    }

    private static bool IsSalvageable(Exception ex) => ex is not OutOfMemoryException;

    private sealed class SalvageCollector
    {
        private readonly Lock _lock = new();
        private readonly List<OutboxEntry> _entries = [];
        private readonly List<string> _problems = [];
        private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
        private long _lost;
        private long _last;
        private long _pending;
        private long _pendingBytes;
        private bool _incomplete;

        public long Lost
        {
            get { lock (_lock) { return _lost; } }
            set { lock (_lock) { _lost = value; } }
        }

        public long Last
        {
            set { lock (_lock) { _last = value; } }
        }

        public bool Incomplete
        {
            set { lock (_lock) { _incomplete |= value; } }
        }

        public void Add(OutboxEntry entry)
        {
            lock (_lock)
            {
                _entries.Add(entry);
            }
        }

        public void Position(string uplink, long acked)
        {
            lock (_lock)
            {
                _positions[uplink] = acked;
            }
        }

        public void AddPending(long bytes)
        {
            lock (_lock)
            {
                _pending++;
                _pendingBytes += bytes;
            }
        }

        public void Problem(string problem)
        {
            lock (_lock)
            {
                if (_problems.Count < 50)
                {
                    _problems.Add(problem);
                }
            }
        }

        public OutboxSalvageResult Result()
        {
            lock (_lock)
            {
                // Sorted and de-duplicated: a damaged index can return an id twice, or out of order across segments.
                var entries = _entries.GroupBy(e => e.Sequence).Select(g => g.First()).OrderBy(e => e.Sequence).ToList();
                var last = Math.Max(_last, entries.Count > 0 ? entries[^1].Sequence : 0);
                return new OutboxSalvageResult(entries, _lost, last, _problems.ToList(), _incomplete, _pending, _pendingBytes)
                {
                    Positions = new Dictionary<string, long>(_positions, StringComparer.Ordinal),
                };
            }
        }
    }

    private sealed class SalvageBudgetException(string message) : IOException(message);

    /// <summary>The deadline and the bytes a salvage may read; checked on every disk read and every document.</summary>
    private sealed class SalvageBudget(DateTime deadline, long maxBytes, CancellationToken cancellationToken)
    {
        private long _read;
        private int _expired;

        public void Expire() => Volatile.Write(ref _expired, 1);

        public void Charge(int bytes)
        {
            if (Interlocked.Add(ref _read, bytes) > maxBytes)
            {
                throw new SalvageBudgetException($"read budget of {maxBytes} bytes spent (a damaged page may loop)");
            }

            Check();
        }

        public void Check()
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Volatile.Read(ref _expired) != 0 || DateTime.UtcNow > deadline)
            {
                Expire();
                throw new SalvageBudgetException("time budget spent");
            }
        }
    }
}
