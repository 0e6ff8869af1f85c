using System.Collections.Concurrent;
using System.Diagnostics;
using EdgeTwin.Core.Events;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.State;

/// <summary>What the store keeps of an alert: enough to restore it after a restart without notifying it twice.</summary>
internal sealed record StoredAlert(
    long Id,
    string Rule,
    string Key,
    AlertState State,
    double Value,
    DateTimeOffset? FiredAt,
    DateTimeOffset? ResolvedAt,
    DateTimeOffset? AckedAt,
    bool NotifiedFiring);

/// <summary>A history line not yet handed to the event sink (outbox).</summary>
internal sealed record UnpublishedEntry(AlertHistoryEntry Entry, bool Raised);

/// <summary>The collections of <c>alerts.db</c>.</summary>
internal enum StoreCollection : byte
{
    Alerts,
    History,
    Silences,
    Meta,
}

/// <summary>One document write: an upsert, or a delete when <see cref="Document"/> is null.</summary>
internal readonly record struct StoreWrite(StoreCollection Collection, BsonValue Id, BsonDocument? Document);

/// <summary>
/// What one lock section of the manager changed: the writes, and what may be released only once they are durable
/// (messages for the sinks, events for the outbox, a waiting acknowledge).
/// </summary>
internal sealed class WriteUnit
{
    public List<StoreWrite> Writes { get; } = [];

    public List<Outgoing> Release { get; } = [];

    public TaskCompletionSource? Done { get; set; }

    /// <summary>Somebody waits for this unit (a message, an event, a caller); bookkeeping alone may wait a little.</summary>
    public bool Urgent => Release.Count > 0 || Done is not null;
}

/// <summary>
/// Alert state in its own LiteDB file (<c>alerts.db</c>): alerts, the ordered history, silences, the published mark.
/// <para>
/// One writer thread owns every write and <b>group-commits</b>: it takes every unit queued since its last commit and
/// writes them in one transaction, then releases what the units carry (messages, events) in order. While one commit
/// is being written the next changes pile up and go together in the following one, so a burst costs one commit, not
/// one per change, and no change waits for a timer. The evaluation (sample thread, GPIO edge callback) never touches
/// the disk. LiteDB writes the journal with <c>pwrite</c> before <c>Commit</c> returns, so a SIGKILL loses nothing
/// that was released (a power cut can lose the last commits: the journal is not fsynced, see the README).
/// </para>
/// <para>
/// Checkpoints (journal → data file, with an fsync) are LiteDB's slow step; they run only when the queue is empty and
/// the journal has grown past <see cref="CheckpointBytes"/>, so a change waits for at most one small checkpoint.
/// Bookkeeping without anybody waiting (delivered marks, published marks) waits up to <see cref="LazyDelay"/> to ride
/// along with the next commit.
/// </para>
/// </summary>
internal sealed partial class AlertStore : IDisposable
{
    public const long CheckpointBytes = 1L << 20;
    public static readonly TimeSpan LazyDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>History lines kept (published ones beyond this are trimmed, oldest first).</summary>
    public const int HistoryKeep = 20_000;

    private const string PublishedId = "published";

    private readonly LiteDatabase _db;
    private readonly ILiteCollection<BsonDocument> _alerts;
    private readonly ILiteCollection<BsonDocument> _history;
    private readonly ILiteCollection<BsonDocument> _silences;
    private readonly ILiteCollection<BsonDocument> _meta;
    private readonly string _journal;
    private readonly ILogger _logger;
    private readonly AlertingMetrics? _metrics;
    private readonly BlockingCollection<WriteUnit> _queue = [];
    private readonly Thread _writer;
    private Action<WriteUnit>? _committed;
    private int _inFlight;
    private long _publishedThrough;
    private long _appendsSinceTrim;
    private int _disposed;

    public AlertStore(string path, ILogger? logger = null, AlertingMetrics? metrics = null)
    {
        Path = path;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        _journal = System.IO.Path.Combine(directory ?? ".", System.IO.Path.GetFileNameWithoutExtension(path) + "-log" + System.IO.Path.GetExtension(path));

        // Checkpoints are ours (CheckpointSize 0): LiteDB's automatic one would run inside whichever commit crosses 1,000 pages.
        _db = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct }) { CheckpointSize = 0 };
        _alerts = _db.GetCollection("alerts");
        _history = _db.GetCollection("history", BsonAutoId.Int64);
        _silences = _db.GetCollection("silences");
        _meta = _db.GetCollection("meta");
        _publishedThrough = _meta.FindById(PublishedId)?["seq"].AsInt64 ?? 0;
        LastSeq = MaxSeq();
        _writer = new Thread(WriterMain) { IsBackground = true, Name = "alerts-store" };
    }

    public string Path { get; }

    /// <summary>The newest history line at open (new lines continue from here).</summary>
    public long LastSeq { get; }

    /// <summary>Units queued or being committed.</summary>
    public int Pending => _queue.Count + Volatile.Read(ref _inFlight);

    /// <summary>Starts the writer; <paramref name="committed"/> gets every unit, in order, once its writes are durable.</summary>
    public void Start(Action<WriteUnit> committed)
    {
        _committed = committed;
        _writer.Start();
    }

    /// <summary>Queues a unit (called under the manager's lock, so the queue order is the order of the changes).</summary>
    public bool Submit(WriteUnit unit)
    {
        try
        {
            return _queue.TryAdd(unit);
        }
        catch (InvalidOperationException)
        {
            // Closed (shutdown): late bookkeeping (a delivery mark) is dropped; a restart re-delivers, at least once.
            unit.Done?.TrySetResult();
            return false;
        }
    }

    public bool IsClosed => _queue.IsAddingCompleted;

    public IReadOnlyList<StoredAlert> LoadAlerts() =>
        [.. _alerts.FindAll().Select(d => new StoredAlert(
            d["_id"].AsInt64,
            d["rule"].AsString,
            d["key"].AsString,
            (AlertState)d["state"].AsInt32,
            d["value"].AsDouble,
            Time(d["fired"]),
            Time(d["resolved"]),
            Time(d["acked"]),
            d["notified"].AsBoolean))];

    public Dictionary<string, DateTimeOffset> LoadSilences() =>
        _silences.FindAll().ToDictionary(d => d["_id"].AsString, d => Time(d["until"])!.Value, StringComparer.Ordinal);

    public static StoreWrite Save(AlertInstance a) => new(StoreCollection.Alerts, a.Id, new BsonDocument
    {
        ["_id"] = a.Id,
        ["rule"] = a.Rule.Name,
        ["key"] = a.Key,
        ["state"] = (int)a.State,
        ["value"] = double.IsFinite(a.Value) ? a.Value : 0,
        ["fired"] = Bson(a.FiredAt),
        ["resolved"] = Bson(a.ResolvedAt),
        ["acked"] = Bson(a.AckedAt),
        ["notified"] = a.NotifiedFiring,
    });

    public static StoreWrite SaveSilence(string rule, DateTimeOffset until) =>
        new(StoreCollection.Silences, rule, new BsonDocument { ["_id"] = rule, ["until"] = until.ToUnixTimeMilliseconds() });

    public static StoreWrite RemoveSilence(string rule) => new(StoreCollection.Silences, rule, null);

    /// <summary>A history line at <paramref name="seq"/>; <paramref name="publish"/> marks it for the event sink (raised/cleared).</summary>
    public static StoreWrite Append(long seq, AlertHistoryEntry e, bool publish, bool raised) => new(StoreCollection.History, seq, new BsonDocument
    {
        ["_id"] = seq,
        ["alert"] = e.AlertId,
        ["rule"] = e.Rule,
        ["key"] = e.Key,
        ["change"] = e.Change,
        ["severity"] = (int)e.Severity,
        ["value"] = double.IsFinite(e.Value) ? e.Value : 0,
        ["time"] = e.Time.ToUnixTimeMilliseconds(),
        ["uplink"] = e.Uplink,
        ["raised"] = raised,
        ["publish"] = publish,
    });

    /// <summary>Lines are handed to the event sink in order, so one mark says which have been.</summary>
    public static StoreWrite PublishedThrough(long seq) => new(StoreCollection.Meta, PublishedId, new BsonDocument { ["_id"] = PublishedId, ["seq"] = seq });

    /// <summary>History lines the event sink has not had yet, oldest first (after a crash, before the first publish).</summary>
    public IReadOnlyList<UnpublishedEntry> Unpublished() =>
        [.. _history.Find(Query.GT("_id", _publishedThrough))
            .Where(d => d["publish"].IsBoolean ? d["publish"].AsBoolean : d["published"].IsBoolean && !d["published"].AsBoolean)
            .OrderBy(d => d["_id"].AsInt64)
            .Select(d => new UnpublishedEntry(ToEntry(d), d["raised"].AsBoolean))];

    /// <summary>The newest <paramref name="limit"/> committed lines, oldest first.</summary>
    public IReadOnlyList<AlertHistoryEntry> History(int limit) =>
        [.. _history.Find(Query.All(Query.Descending), limit: limit).Select(ToEntry).Reverse()];

    public long HistoryCount => _history.LongCount();

    public static AlertHistoryEntry ToEntry(BsonDocument d) => new(
        d["_id"].AsInt64,
        d["alert"].AsInt64,
        d["rule"].AsString,
        d["key"].AsString,
        d["change"].AsString,
        (EventSeverity)d["severity"].AsInt32,
        d["value"].AsDouble,
        DateTimeOffset.FromUnixTimeMilliseconds(d["time"].AsInt64),
        d["uplink"].AsString);

    /// <summary>Lets the writer commit what is queued, then closes the file.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.CompleteAdding();
        if (_writer.IsAlive)
        {
            _writer.Join();
        }

        _db.Dispose();
    }

    private void WriterMain()
    {
        var batch = new List<WriteUnit>(64);
        while (true)
        {
            WriteUnit first;
            try
            {
                first = _queue.Take();
            }
            catch (InvalidOperationException)
            {
                break; // completed and empty
            }

            Interlocked.Increment(ref _inFlight);
            batch.Add(first);
            Drain(batch);
            if (!batch.Exists(u => u.Urgent) && !_queue.IsAddingCompleted && _queue.TryTake(out var next, LazyDelay))
            {
                batch.Add(next);
                Drain(batch);
            }

            Commit(batch);
            foreach (var unit in batch)
            {
                Release(unit);
            }

            batch.Clear();
            Interlocked.Decrement(ref _inFlight);
            if (_queue.Count == 0)
            {
                Maintain();
            }
        }

        try
        {
            _db.Checkpoint();
        }
        catch (Exception ex) when (ex is LiteException or IOException)
        {
            LogCheckpointFailed(ex, Path);
        }
    }

    private void Drain(List<WriteUnit> batch)
    {
        while (batch.Count < 4096 && _queue.TryTake(out var more))
        {
            batch.Add(more);
        }
    }

    private void Commit(List<WriteUnit> batch)
    {
        var writes = 0;
        foreach (var unit in batch)
        {
            writes += unit.Writes.Count;
        }

        if (writes == 0)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            _db.BeginTrans();
            foreach (var unit in batch)
            {
                foreach (var w in unit.Writes)
                {
                    Apply(w);
                }
            }

            _db.Commit();
            _metrics?.StoreCommit(Stopwatch.GetElapsedTime(started).TotalMilliseconds, writes);
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            // A local alarm matters more than its record: the messages still go out, the failure is loud.
            try
            {
                _db.Rollback();
            }
            catch (Exception rollback) when (rollback is LiteException or IOException)
            {
                LogCommitFailed(rollback, Path, writes);
            }

            _metrics?.StoreFailed();
            LogCommitFailed(ex, Path, writes);
        }
    }

    private void Apply(StoreWrite w)
    {
        var collection = w.Collection switch
        {
            StoreCollection.Alerts => _alerts,
            StoreCollection.History => _history,
            StoreCollection.Silences => _silences,
            _ => _meta,
        };
        if (w.Document is null)
        {
            collection.Delete(w.Id);
            return;
        }

        if (w.Collection == StoreCollection.Meta)
        {
            var seq = w.Document["seq"].AsInt64;
            if (seq <= _publishedThrough)
            {
                return;
            }

            _publishedThrough = seq;
        }
        else if (w.Collection == StoreCollection.History)
        {
            _appendsSinceTrim++;
        }

        collection.Upsert(w.Document);
    }

    private void Release(WriteUnit unit)
    {
        try
        {
            if (unit.Release.Count > 0)
            {
                _committed?.Invoke(unit);
            }
        }
        catch (Exception ex)
        {
            LogReleaseFailed(ex);
        }
        finally
        {
            unit.Done?.TrySetResult();
        }
    }

    /// <summary>While nothing waits: checkpoint a grown journal, trim old published history.</summary>
    private void Maintain()
    {
        try
        {
            if (_appendsSinceTrim >= 1000)
            {
                _appendsSinceTrim = 0;
                var cut = Math.Min(_publishedThrough, MaxSeq() - HistoryKeep);
                if (cut > 0)
                {
                    _history.DeleteMany(Query.LTE("_id", cut));
                }
            }

            if (File.Exists(_journal) && new FileInfo(_journal).Length > CheckpointBytes)
            {
                var started = Stopwatch.GetTimestamp();
                _db.Checkpoint();
                _metrics?.StoreCheckpoint(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (Exception ex) when (ex is LiteException or IOException)
        {
            LogCheckpointFailed(ex, Path);
        }
    }

    private long MaxSeq() => _history.Find(Query.All(Query.Descending), limit: 1).FirstOrDefault()?["_id"].AsInt64 ?? 0;

    private static BsonValue Bson(DateTimeOffset? t) => t is { } v ? new BsonValue(v.ToUnixTimeMilliseconds()) : BsonValue.Null;

    private static DateTimeOffset? Time(BsonValue v) => v.IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds(v.AsInt64);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store {Path}: commit of {Writes} writes failed; alerts are still notified but this change is not saved")]
    private partial void LogCommitFailed(Exception ex, string path, int writes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store {Path}: checkpoint or trim failed")]
    private partial void LogCheckpointFailed(Exception ex, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store: handing committed changes on failed")]
    private partial void LogReleaseFailed(Exception ex);
}
