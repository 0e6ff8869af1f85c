using System.Diagnostics.CodeAnalysis;
using EdgeTwin.Core;
using EdgeTwin.Core.Config;
using System.Collections.Concurrent;
using System.Diagnostics;
using EdgeTwin.Core.Events;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.State;

/// <summary>What the store keeps of an alert: enough to restore it after a restart without notifying it twice.</summary>
/// <remarks>
/// <see cref="Flapping"/> and <see cref="Changes"/> (recent raise/clear times, unix ms, oldest first) keep the flapping
/// guard across a restart; <see cref="Labels"/> gives the alert back its place labels and so its group;
/// <see cref="Peak"/> is the worst value of its episode, <see cref="Unit"/> and <see cref="Subject"/> what its texts
/// show before its series is seen again, <see cref="Device"/>, <see cref="Series"/> and <see cref="Metric"/> what its
/// events to the centre are filed under; <see cref="EventMessage"/>, <see cref="ClearText"/> and
/// <see cref="ClearedBecause"/> the source's own texts an event alert shows and clears with. These are absent (false,
/// null) in stores written before they were saved.
/// </remarks>
internal sealed record StoredAlert(
    long Id,
    string Rule,
    string Key,
    AlertState State,
    double Value,
    DateTimeOffset? FiredAt,
    DateTimeOffset? ResolvedAt,
    DateTimeOffset? AckedAt,
    bool NotifiedFiring,
    bool Flapping = false,
    IReadOnlyList<long>? Changes = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    double? Peak = null,
    string? Unit = null,
    string? Subject = null,
    string? Device = null,
    string? Series = null,
    string? Metric = null,
    bool ResolveOwed = false,
    string? EventMessage = null,
    string? ClearText = null,
    string? ClearedBecause = null);

/// <summary>
/// A pending alert's <c>for:</c> hold as saved: the rule and key, since when it is shown pending (wall clock), how long
/// it had been held as of <see cref="At"/> (the downtime of earlier restarts not counted), and whether a later alive mark
/// extends it (<see cref="Live"/>); see <see cref="AlertStore.SavePending"/>.
/// </summary>
internal sealed record StoredPending(string Rule, string Key, DateTimeOffset Since, TimeSpan Held, DateTimeOffset At, bool Live, IReadOnlyDictionary<string, string>? Labels);

/// <summary>
/// A <c>stuck</c> or <c>missing</c> rule's <c>after</c> timer on one series as saved: the rule and series key, whether it
/// is a stuck one (else missing), the value seen stuck (missing: the series' sample gap in seconds), how long it had run as of <see cref="At"/> (earlier downtime not
/// counted), and whether a later alive mark extends it (<see cref="Live"/>); see <see cref="AlertStore.SaveAfter"/>.
/// </summary>
internal sealed record StoredAfter(string Rule, string Key, bool Stuck, double Value, TimeSpan Elapsed, DateTimeOffset At, bool Live);

/// <summary>
/// A history line not yet handed to the event sink (outbox): its event kind, the attributes saved with it (the live
/// event's; only the ack's or silence's own in stores written before) and the live event's message (null before).
/// </summary>
internal sealed record UnpublishedEntry(AlertHistoryEntry Entry, EdgeEventKind Kind, IReadOnlyDictionary<string, string>? Attributes, string? Message = null);

/// <summary>Since when (wall clock) and why (<c>read-only file system</c>) the alert store keeps changes in memory only.</summary>
public sealed record StoreOutage(DateTimeOffset Since, string Cause);

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
/// <b>Durable first, LiteDB later.</b> Every change is made durable by one <c>write</c> to a small append-only journal
/// (<c>alerts.journal</c>: length, checksum, BSON per document write) before its messages and events are released;
/// LiteDB gets the same writes a moment later on a background thread, where its commits and checkpoints (the slow part:
/// journal pages copied into the data file, an fsync) can take as long as they like without delaying an alarm. All
/// writes are upserts or deletes by id, so replaying the journal at open (after a SIGKILL) is idempotent; the journal
/// is emptied once LiteDB has everything in it, and only after LiteDB's files are fsynced. A SIGKILL loses nothing that
/// was released (the OS has the write). Nothing is fsynced on the alarm path; the background thread fsyncs the journal
/// in its next round (<see cref="LazyDelay"/> after a change), so a power cut loses at most the changes of that moment.
/// </para>
/// <para>
/// <b>Group commit, leader style.</b> The manager queues one unit per lock section (so the queue order is the order of
/// the changes) and calls <see cref="Pump"/> outside its lock. The first caller that finds no commit running becomes the
/// committer: it takes every queued unit, writes them with one <c>write</c>, releases them in order and repeats until
/// the queue is empty; a caller that arrives meanwhile only queues and the running committer takes its unit in the next
/// round. An uncontended change is durable on the thread that made it (no hand-off, no timer); a burst costs a few
/// writes, not one per change. Bookkeeping nobody waits for (delivered and published marks) goes with the next commit
/// or, at the latest, <see cref="LazyDelay"/> later from the background thread.
/// </para>
/// </summary>
internal sealed partial class AlertStore : IDisposable
{
    public const long CheckpointBytes = 4L << 20;
    public static readonly TimeSpan LazyDelay = TimeSpan.FromMilliseconds(200);

    private static readonly TimeSpan ReopenFirstDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ReopenMaxDelay = TimeSpan.FromMinutes(5);

    /// <summary>History lines kept (published ones beyond this are trimmed, oldest first).</summary>
    public const int HistoryKeep = 20_000;

    /// <summary>The LiteDB collections of <c>alerts.db</c>; all are created when the file is opened.</summary>
    internal static readonly string[] CollectionNames = ["alerts", "history", "silences", "meta"];

    private const string PublishedId = "published";

    /// <summary>LiteDB's page size: its data file is always a whole number of pages.</summary>
    private const int PageBytes = 8192;

    private const string UplinkId = "uplink";

    // meta {_id: "alive", at}: when the agent was last known alive (see SaveAlive); meta {_id: "pending:…"}: a pending
    // alert's for: hold (SavePending). Older builds ignore both.
    private const string AliveId = "alive";
    private const string PendingPrefix = "pending:";

    // meta {_id: "after:…"}: a stuck/missing rule's after timer on one series (SaveAfter). Older builds ignore it.
    private const string AfterPrefix = "after:";

    // meta {_id: "format", version}: the store's format. Files without it (main before it) are format 1; a build raises it
    // only for a change an older build would misread. Older builds ignore the document (they read "published" and
    // "uplink" only), so a rollback to them reads a format-1 file as before.
    private const string FormatId = "format";

    // meta {_id: "origin", birth_ns, host}: alerts.db's birth time and machine (StoreOrigin) as last opened. A file that no
    // longer matches is a restored backup or another gateway's store: its highest alert id may be behind the ids the
    // original gave out since, which the centre keeps its alert history by.
    private const string OriginId = "origin";

    /// <summary>The alert store format this build writes and reads (<c>alerts.db</c> meta <c>format</c>).</summary>
    public const int FormatVersion = 1;

    // Replaced (as a whole) when LiteDB has closed itself and the background thread reopens it.
    private volatile LiteFile _lite;
    private readonly string _liteJournal;
    private readonly string _liteData;
    private readonly AlertJournal _journal;
    private readonly ILogger _logger;
    private readonly AlertingMetrics? _metrics;
    private readonly ConcurrentQueue<WriteUnit> _queue = new();
    private readonly Lock _commit = new();
    private readonly Lock _applyGate = new();
    private readonly List<StoreWrite> _toApply = [];
    private readonly SemaphoreSlim _background = new(0);
    private readonly Thread _worker;
    private Action<WriteUnit>? _committed;
    private int _inFlight;
    private int _closed;
    private long _journaled;
    private long _applied;
    private long _appliedSeq;
    private long _publishedThrough;
    private long _appendsSinceTrim;
    private bool _liteFailed;
    private int _reopens;
    private long _nextReopenTicks;
    private TimeSpan _reopenBackoff = ReopenFirstDelay;

    // Not persisting: the journal could not be written (a read-only or full file system). Changes since are in memory only
    // (_unjournaled, under _commit, in order); the alarm path no longer tries the write, the background thread probes.
    private volatile StoreOutage? _outage;
    private readonly List<StoreWrite> _unjournaled = [];
    private long _nextProbeTicks;
    private TimeSpan _probeBackoff = ReopenFirstDelay;
    private long _nextReminderTicks;
    private bool _liteReadOnly;

    // The failures whose stack was logged (one per cause: exception type and message without the path).
    private readonly HashSet<string> _stacksLogged = new(StringComparer.Ordinal);

    private static readonly TimeSpan ReminderInterval = TimeSpan.FromMinutes(5);

    /// <param name="host">This machine (<see cref="StoreOrigin.ThisHost"/>; null: read <c>/etc/machine-id</c>).</param>
    public AlertStore(string path, ILogger? logger = null, AlertingMetrics? metrics = null, string? host = null)
    {
        Path = path;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        var stem = System.IO.Path.Combine(directory ?? ".", System.IO.Path.GetFileNameWithoutExtension(path));
        _liteJournal = stem + "-log" + System.IO.Path.GetExtension(path);
        _liteData = System.IO.Path.GetFullPath(path);

        Exception? readOnlyAtStart = null;
        try
        {
            _lite = OpenVerified(path);
        }
        catch (IOException ex) when (StorageErrors.IsReadOnlyFileSystem(ex))
        {
            // Started on a state directory that is read-only already (a restart after the card failed): the start failed
            // and systemd gave up after five, leaving the site without its local alarms. The store goes on from a copy
            // in memory, as it does when the directory turns read-only under the running agent.
            readOnlyAtStart = ex;
            _lite = OpenMemoryCopy(path);
        }

        CopiedBecause = CheckOrigin(path, host ?? StoreOrigin.ThisHost());
        _publishedThrough = _lite.Meta.FindById(PublishedId)?["seq"].AsInt64 ?? 0;

        // Changes that were durable in the journal but not yet in LiteDB when the process died.
        _journal = readOnlyAtStart is null ? OpenJournal(stem + ".journal") : AlertJournal.OpenReadOnly(stem + ".journal");
        var replay = _journal.ReadAll(out var damage);
        if (readOnlyAtStart is not null)
        {
            ReplayNotPersisting(readOnlyAtStart, replay, damage);
        }
        else
        {
            if (damage is { Torn: true })
            {
                LogJournalTorn(_journal.Path);
            }
            else if (damage is { } corrupt)
            {
                // The copy keeps the damaged bytes: the reset below empties the file.
                _metrics?.StoreCorrupt("journal");
                LogJournalCorrupt(_journal.Path, corrupt.Reason, replay.Count, _journal.SetAsideCopy());
            }

            var applied = replay.Count == 0 || ApplyToLiteDb(replay);
            var onDisk = replay.Count == 0 || (applied && TrySyncLiteDb());
            _journal.Reset();
            if (!onDisk)
            {
                // LiteDB cannot take them now, or has them but not surely on disk: keep them (without a torn tail). Writes
                // LiteDB never took count as unapplied, so the journal is kept for the next start.
                _journal.Append(replay);
                _journaled = applied ? 0 : replay.Count;
            }
            else if (replay.Count > 0)
            {
                LogReplayed(replay.Count, _journal.Path);
            }
        }

        LastSeq = MaxSeq();
        _appliedSeq = LastSeq;
        PublishedAtOpen = _publishedThrough;
        _worker = new Thread(BackgroundMain) { IsBackground = true, Name = "alerts-store" };
    }

    public string Path { get; }

    /// <summary>Why alerts.db is not the file this agent last wrote (a restored backup, another machine's store), or null.</summary>
    public string? CopiedBecause { get; }

    /// <summary>Compares alerts.db with the origin it recorded and records the current one.</summary>
    private string? CheckOrigin(string path, string? host)
    {
        var now = StoreOrigin.Of(_liteData, host);
        var recorded = _lite.Meta.FindById(OriginId) is { } d
            ? new StoreOrigin(d["birth_ns"] is { IsInt64: true } b ? b.AsInt64 : 0, d["host"] is { IsString: true } h ? h.AsString : null)
            : default;
        var why = now.DifferenceFrom(recorded);
        if (recorded != now)
        {
            var doc = new BsonDocument { ["_id"] = OriginId, ["birth_ns"] = now.BirthNs };
            if (now.Host is not null)
            {
                doc["host"] = now.Host;
            }

            _lite.Meta.Upsert(doc);
        }

        if (why is not null)
        {
            LogStoreCopied(path, why);
        }

        return why;
    }

    /// <summary>
    /// The journal's replay for a read-only state directory: the journal's writes go into the copy in memory (the
    /// journal keeps them on disk), nothing is written, and the store starts not persisting; its probe writes again
    /// when the directory becomes writable (then LiteDB is reopened from the file and given the journal).
    /// </summary>
    private void ReplayNotPersisting(Exception cause, List<StoreWrite> replay, JournalDamage? damage)
    {
        if (damage is { Torn: false } corrupt)
        {
            _metrics?.StoreCorrupt("journal");
            LogJournalCorrupt(_journal.Path, corrupt.Reason, replay.Count, "not copied: the directory is read-only");
        }

        if (replay.Count > 0)
        {
            ApplyToLiteDb(replay); // refused (logged there), they stay in the journal on disk for the start after the repair
        }

        var now = Stopwatch.GetTimestamp();
        _probeBackoff = ReopenFirstDelay;
        _nextProbeTicks = now + (long)(_probeBackoff.TotalSeconds * Stopwatch.Frequency);
        _nextReminderTicks = now + (long)(ReminderInterval.TotalSeconds * Stopwatch.Frequency);
        var reason = StorageErrors.IsReadOnlyFileSystem(cause) ? "read-only file system" : CauseOf(cause); // the EROFS inside the open's error
        _outage = new StoreOutage(DateTimeOffset.UtcNow, reason);
        _metrics?.StoreMemoryOnly(1);
        LogNotPersistingAtStart(null, StateDirectory, reason, _lite.Alerts.Count(), replay.Count);
    }

    /// <summary>alerts.db and LiteDB's log read into memory (reading works on a read-only mount); a new store if unreadable.</summary>
    private LiteFile OpenMemoryCopy(string path)
    {
        try
        {
            var lite = LiteFile.OpenCopy(_liteData, _liteJournal);
            try
            {
                Verify(lite);
                return lite;
            }
            catch
            {
                lite.Dispose();
                throw;
            }
        }
        catch (Exception ex) when (IsCorruption(ex) || ex is IOException or UnauthorizedAccessException)
        {
            LogMemoryCopyFailed(path, $"{ex.GetType().Name}: {ex.Message}");
            return LiteFile.OpenCopy(null, null);
        }
    }

    /// <summary>The newest history line at open (new lines continue from here).</summary>
    public long LastSeq { get; }

    /// <summary>
    /// The published mark at open, after the journal's replay: above <see cref="LastSeq"/> when the journal replayed
    /// into a new store held the mark of a lost one but none of its lines (new lines must number above it).
    /// </summary>
    public long PublishedAtOpen { get; }

    /// <summary>The newest history line LiteDB has (reads see up to here; newer ones are durable in the journal).</summary>
    public long AppliedSeq => Volatile.Read(ref _appliedSeq);

    /// <summary>Units queued or being made durable.</summary>
    public int Pending => _queue.Count + Volatile.Read(ref _inFlight);

    /// <summary>Writes journaled but not yet in LiteDB.</summary>
    public long Unapplied => Volatile.Read(ref _journaled) - Volatile.Read(ref _applied);

    /// <summary>For tests: hold LiteDB's side back (as if the process died before it ran).</summary>
    internal bool HoldApply { get; set; }

    /// <summary>For tests: close LiteDB underneath the store, as LiteDB closes itself after an I/O error in its engine.</summary>
    internal void CloseLiteDbForTest()
    {
        _lite.Db.Dispose();
        _liteFailed = true; // as the store learns at its next LiteDB call
    }

    /// <summary>For tests: a LiteDB checkpoint (it waits for every open LiteDB transaction to end).</summary>
    internal void CheckpointForTest() => _lite.Db.Checkpoint();

    /// <summary>For tests: do not reopen a LiteDB that has closed itself (as before the reopen existed).</summary>
    internal bool HoldReopen { get; set; }

    /// <summary>Times LiteDB was reopened after it had closed itself.</summary>
    public int Reopens => Volatile.Read(ref _reopens);

    /// <summary>
    /// Null while changes are persisted; else since when and why they are kept in memory only (the directory cannot be
    /// written): they are lost at a restart unless the directory becomes writable again first.
    /// </summary>
    public StoreOutage? Outage => _outage;

    /// <summary>The directory of the store's files (what an operator checks: its file system).</summary>
    public string StateDirectory => System.IO.Path.GetDirectoryName(_liteData) ?? ".";

    /// <summary>For tests: journal writes fail with this (as on a read-only file system) while set.</summary>
    internal Func<IOException?>? FailJournalForTest { get; set; }

    /// <summary>Starts the background thread; <paramref name="committed"/> gets every unit, in order, once it is durable.</summary>
    public void Start(Action<WriteUnit> committed)
    {
        _committed = committed;
        _worker.Start();
        Pump(); // the restore's unit, if any
    }

    /// <summary>
    /// Queues a unit (called under the manager's lock, so the queue order is the order of the changes). Urgent units
    /// are committed by the next <see cref="Pump"/>; bookkeeping by the next commit or the background thread.
    /// </summary>
    public bool Submit(WriteUnit unit)
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            // Closed (shutdown): late bookkeeping (a delivery mark) is dropped; a restart re-delivers, at least once.
            unit.Done?.TrySetResult();
            return false;
        }

        _queue.Enqueue(unit);
        if (!unit.Urgent)
        {
            _background.Release();
        }

        return true;
    }

    /// <summary>Makes what is queued durable unless a commit is already running (whose committer then takes it too).</summary>
    public void Pump()
    {
        while (!_queue.IsEmpty && _committed is not null && _commit.TryEnter())
        {
            try
            {
                CommitQueued();
            }
            finally
            {
                _commit.Exit();
            }

            // A unit queued just before we let go (its caller saw us busy) is ours: the loop looks again.
        }
    }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public IReadOnlyList<StoredAlert> LoadAlerts() => [.. _lite.Alerts.FindAll().Select(ToStored)];

    private static StoredAlert ToStored(BsonDocument d) => new(
        d["_id"].AsInt64,
        d["rule"].AsString,
        d["key"].AsString,
        (AlertState)d["state"].AsInt32,
        d["value"].AsDouble,
        Time(d["fired"]),
        Time(d["resolved"]),
        Time(d["acked"]),
        d["notified"].AsBoolean,
        d["flapping"].IsBoolean && d["flapping"].AsBoolean,
        d["changes"].IsArray ? [.. d["changes"].AsArray.Select(v => v.AsInt64)] : null,
        d["labels"].IsArray ? LabelsOf(d["labels"].AsArray) : null,
        d["peak"].IsDouble ? d["peak"].AsDouble : null,
        d["unit"].IsString ? d["unit"].AsString : null,
        d["subject"].IsString ? d["subject"].AsString : null,
        d["device"].IsString ? d["device"].AsString : null,
        d["series"].IsString ? d["series"].AsString : null,
        d["metric"].IsString ? d["metric"].AsString : null,
        d["resolve_owed"].IsBoolean && d["resolve_owed"].AsBoolean,
        d["event_message"].IsString ? d["event_message"].AsString : null,
        d["clear_text"].IsString ? d["clear_text"].AsString : null,
        d["cleared_because"].IsString ? d["cleared_because"].AsString : null);

    // Labels (and event attributes) as [name, value] pairs, not as a document: label names come from the config and need
    // not be valid field names.
    private static Dictionary<string, string> LabelsOf(BsonArray pairs)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in pairs)
        {
            if (p.IsArray && p.AsArray.Count == 2 && p.AsArray[0].IsString && p.AsArray[1].IsString)
            {
                labels[p.AsArray[0].AsString] = p.AsArray[1].AsString;
            }
        }

        return labels;
    }

    public Dictionary<string, DateTimeOffset> LoadSilences() =>
        _lite.Silences.FindAll().ToDictionary(d => d["_id"].AsString, d => Time(d["until"])!.Value, StringComparer.Ordinal);

    public static StoreWrite Save(AlertInstance a, FlapClock clock)
    {
        a.SavedPeak = a.Peak;
        a.SavedEventMessage = a.EventMessage;
        return SaveRecord(a, clock);
    }

    private static StoreWrite SaveRecord(AlertInstance a, FlapClock clock) => new(StoreCollection.Alerts, a.Id, new BsonDocument
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
        ["resolve_owed"] = a.ResolveOwed,
        ["flapping"] = a.Flapping,
        ["changes"] = new BsonArray(a.RecentChanges(clock).Select(t => new BsonValue(t))),
        ["labels"] = Pairs(a.Labels),
        ["peak"] = double.IsFinite(a.Peak) ? new BsonValue(a.Peak) : BsonValue.Null,
        ["unit"] = a.Unit is { } unit ? new BsonValue(unit) : BsonValue.Null,
        ["subject"] = a.Subject is { } subject ? new BsonValue(subject) : BsonValue.Null,
        ["device"] = a.Device is { } device ? new BsonValue(device) : BsonValue.Null,
        ["series"] = a.Series is { } series ? new BsonValue(series) : BsonValue.Null,
        ["metric"] = a.Metric is { } metric ? new BsonValue(metric) : BsonValue.Null,
        ["event_message"] = a.EventMessage is { } message ? new BsonValue(message) : BsonValue.Null,
        ["clear_text"] = a.ClearText is { } clearText ? new BsonValue(clearText) : BsonValue.Null,
        ["cleared_because"] = a.ClearedBecause is { } because ? new BsonValue(because) : BsonValue.Null,
    });

    private static BsonArray Pairs(IEnumerable<KeyValuePair<string, string>> pairs) =>
        new(pairs.Select(l => new BsonArray(new BsonValue(l.Key), new BsonValue(l.Value))));

    /// <summary>A silence; <paramref name="owed"/> are the alerts whose clear it holds back from the message sinks (the catch-up at its end).</summary>
    public static StoreWrite SaveSilence(string rule, DateTimeOffset until, IEnumerable<long>? owed = null) =>
        new(StoreCollection.Silences, rule, new BsonDocument
        {
            ["_id"] = rule,
            ["until"] = until.ToUnixTimeMilliseconds(),
            ["owed"] = new BsonArray((owed ?? []).Select(id => new BsonValue(id))),
        });

    /// <summary>The alerts the saved silences owe a "resolved" to the message sinks (none in stores written before).</summary>
    public HashSet<long> LoadOwedResolved() =>
        [.. _lite.Silences.FindAll().Where(d => d["owed"].IsArray).SelectMany(d => d["owed"].AsArray.Select(v => v.AsInt64))];

    public static StoreWrite RemoveSilence(string rule) => new(StoreCollection.Silences, rule, null);

    /// <summary>Deletes an alert's document (one a start did not restore: it cleared before the stop).</summary>
    public static StoreWrite RemoveAlert(long id) => new(StoreCollection.Alerts, id, null);

    /// <summary>
    /// A history line at <paramref name="seq"/>; <paramref name="publishAs"/> marks it for the event sink as that kind,
    /// with <paramref name="attributes"/> and <paramref name="message"/> of the live event (an alert's labels, fired_at,
    /// peak; who acknowledged, until when silenced), so a replay after a crash sends the same event.
    /// </summary>
    public static StoreWrite Append(long seq, AlertHistoryEntry e, EdgeEventKind? publishAs, IReadOnlyDictionary<string, string>? attributes = null, string? message = null)
    {
        var d = Line(seq, e, publishAs is not null, publishAs == EdgeEventKind.AlertRaised);
        if (publishAs is { } kind)
        {
            d["event"] = kind.ToWireName();
        }

        if (attributes is not null)
        {
            d["attrs"] = Pairs(attributes);
        }

        if (message is not null)
        {
            d["msg"] = message;
        }

        return new(StoreCollection.History, seq, d);
    }

    private static BsonDocument Line(long seq, AlertHistoryEntry e, bool publish, bool raised) => new()
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
    };

    /// <summary>The event kind of a line to publish; lines written before <c>event</c> was saved were raised or cleared.</summary>
    private static EdgeEventKind KindOf(BsonDocument d) =>
        d["event"].IsString && EventKinds.TryGetValue(d["event"].AsString, out var kind) ? kind
        : d["raised"].AsBoolean ? EdgeEventKind.AlertRaised : EdgeEventKind.AlertCleared;

    private static readonly Dictionary<string, EdgeEventKind> EventKinds =
        Enum.GetValues<EdgeEventKind>().ToDictionary(k => k.ToWireName(), StringComparer.Ordinal);

    /// <summary>
    /// The uplink's last reported state and since when: a restart during an outage must not make <c>alerts list</c> say
    /// "offline since" the restart.
    /// </summary>
    public static StoreWrite SaveUplink(Connectivity.UplinkState state, DateTimeOffset since) =>
        new(StoreCollection.Meta, UplinkId, new BsonDocument { ["_id"] = UplinkId, ["state"] = (int)state, ["since"] = since.ToUnixTimeMilliseconds() });

    public (Connectivity.UplinkState State, DateTimeOffset Since)? LoadUplink() =>
        _lite.Meta.FindById(UplinkId) is { } d ? ((Connectivity.UplinkState)d["state"].AsInt32, DateTimeOffset.FromUnixTimeMilliseconds(d["since"].AsInt64)) : null;

    /// <summary>
    /// The agent was alive at <paramref name="at"/> (wall clock): written at a clean stop and once a minute while an alert
    /// is pending, so a start after a crash or power cut knows how long nobody watched, to within that minute.
    /// </summary>
    public static StoreWrite SaveAlive(DateTimeOffset at) =>
        new(StoreCollection.Meta, AliveId, new BsonDocument { ["_id"] = AliveId, ["at"] = at.ToUnixTimeMilliseconds() });

    public DateTimeOffset? LoadAlive() =>
        _lite.Meta.FindById(AliveId) is { } d && d["at"].IsNumber ? DateTimeOffset.FromUnixTimeMilliseconds(d["at"].AsInt64) : null;

    /// <summary>
    /// A pending alert's episode (its <c>for:</c> hold): shown since <paramref name="since"/>, held <paramref name="held"/>
    /// as of <paramref name="at"/>. <paramref name="live"/>: this run keeps it pending past <paramref name="at"/>, so a
    /// later start adds the time up to the last alive mark; a hold kept from an earlier run that this one has not
    /// evaluated again is saved frozen (its own <paramref name="at"/> is its last alive moment). In meta, under an id
    /// per rule and key, so a build rolled back to ignores it (it reads only the meta documents it knows).
    /// </summary>
    public static StoreWrite SavePending(string rule, string key, DateTimeOffset since, TimeSpan held, DateTimeOffset at, bool live, IReadOnlyDictionary<string, string> labels) =>
        new(StoreCollection.Meta, PendingId(rule, key), new BsonDocument
        {
            ["_id"] = PendingId(rule, key),
            ["rule"] = rule,
            ["key"] = key,
            ["since"] = since.ToUnixTimeMilliseconds(),
            ["held_ms"] = (long)held.TotalMilliseconds,
            ["at"] = at.ToUnixTimeMilliseconds(),
            ["live"] = live,
            ["labels"] = Pairs(labels),
        });

    public static StoreWrite RemovePending(string rule, string key) => new(StoreCollection.Meta, PendingId(rule, key), null);

    /// <summary>The saved pending episodes; a document this build cannot read is skipped (and removed by the caller's restore).</summary>
    public IReadOnlyList<StoredPending> LoadPending()
    {
        var result = new List<StoredPending>();
        foreach (var d in _lite.Meta.Find(Query.StartsWith("_id", PendingPrefix)))
        {
            if (d["rule"].IsString && d["key"].IsString && d["since"].IsNumber && d["held_ms"].IsNumber && d["at"].IsNumber)
            {
                result.Add(new StoredPending(
                    d["rule"].AsString,
                    d["key"].AsString,
                    DateTimeOffset.FromUnixTimeMilliseconds(d["since"].AsInt64),
                    TimeSpan.FromMilliseconds(d["held_ms"].AsInt64),
                    DateTimeOffset.FromUnixTimeMilliseconds(d["at"].AsInt64),
                    d["live"].IsBoolean && d["live"].AsBoolean,
                    d["labels"].IsArray ? LabelsOf(d["labels"].AsArray) : null));
            }
        }

        return result;
    }

    /// <summary>
    /// A stuck/missing rule's <c>after</c> timer on a series: seen stuck at <paramref name="value"/> (stuck) or without
    /// samples (missing; <paramref name="value"/> is then the gap between the series' last two samples, in seconds) for
    /// <paramref name="elapsed"/> as of <paramref name="at"/>; <paramref name="live"/> as for
    /// <see cref="SavePending"/>. In meta under an id per rule and series, so a build rolled back to ignores it.
    /// </summary>
    public static StoreWrite SaveAfter(string rule, string key, bool stuck, double value, TimeSpan elapsed, DateTimeOffset at, bool live) =>
        new(StoreCollection.Meta, AfterId(rule, key), new BsonDocument
        {
            ["_id"] = AfterId(rule, key),
            ["rule"] = rule,
            ["key"] = key,
            ["kind"] = stuck ? "stuck" : "missing",
            ["value"] = value,
            ["elapsed_ms"] = (long)elapsed.TotalMilliseconds,
            ["at"] = at.ToUnixTimeMilliseconds(),
            ["live"] = live,
        });

    public static StoreWrite RemoveAfter(string rule, string key) => new(StoreCollection.Meta, AfterId(rule, key), null);

    /// <summary>The saved after timers; a document this build cannot read is skipped.</summary>
    public IReadOnlyList<StoredAfter> LoadAfters()
    {
        var result = new List<StoredAfter>();
        foreach (var d in _lite.Meta.Find(Query.StartsWith("_id", AfterPrefix)))
        {
            if (d["rule"].IsString && d["key"].IsString && d["kind"].IsString && d["value"].IsNumber && d["elapsed_ms"].IsNumber && d["at"].IsNumber)
            {
                result.Add(new StoredAfter(
                    d["rule"].AsString,
                    d["key"].AsString,
                    d["kind"].AsString == "stuck",
                    d["value"].AsDouble,
                    TimeSpan.FromMilliseconds(d["elapsed_ms"].AsInt64),
                    DateTimeOffset.FromUnixTimeMilliseconds(d["at"].AsInt64),
                    d["live"].IsBoolean && d["live"].AsBoolean));
            }
        }

        return result;
    }

    private static string AfterId(string rule, string key) => AfterPrefix + PendingId(rule, key)[PendingPrefix.Length..];

    // LiteDB compares string ids without case: the rule and key are hashed so two keys that differ in case stay apart.
    private static string PendingId(string rule, string key) =>
        PendingPrefix + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(rule + "\u001f" + key)), 0, 16);

    /// <summary>Lines are handed to the event sink in order, so one mark says which have been.</summary>
    public static StoreWrite PublishedThrough(long seq) => new(StoreCollection.Meta, PublishedId, new BsonDocument { ["_id"] = PublishedId, ["seq"] = seq });

    /// <summary>History lines the event sink has not had yet, oldest first (after a crash, before the first publish).</summary>
    public IReadOnlyList<UnpublishedEntry> Unpublished() =>
        [.. _lite.History.Find(Query.GT("_id", _publishedThrough))
            .Where(d => d["publish"].IsBoolean ? d["publish"].AsBoolean : d["published"].IsBoolean && !d["published"].AsBoolean)
            .OrderBy(d => d["_id"].AsInt64)
            .Select(d => new UnpublishedEntry(ToEntry(d), KindOf(d), d["attrs"].IsArray ? LabelsOf(d["attrs"].AsArray) : null, d["msg"].IsString ? d["msg"].AsString : null))];

    /// <summary>The newest <paramref name="limit"/> committed lines, oldest first.</summary>
    public IReadOnlyList<AlertHistoryEntry> History(int limit) => new AlertHistoryCursor(this, [], limit, limit).Next();

    /// <summary>
    /// The oldest of the newest <paramref name="count"/> committed lines numbered up to <paramref name="through"/>; 0 when
    /// there is none. Sequence numbers are consecutive except where a start jumped them (<c>FirstSeq</c> above a published
    /// mark), so the window is found by a key-only query of LiteDB's <c>_id</c> index (no document is read) unless every
    /// stored line fits in it.
    /// </summary>
    public long HistoryWindowStart(long through, int count)
    {
        var lite = _lite;
        if (count <= 0 || lite.History.Find(Query.All(), limit: 1).FirstOrDefault() is not { } oldest)
        {
            return 0;
        }

        var first = oldest["_id"].AsInt64;
        if (through - count + 1 <= first)
        {
            return first;
        }

        // Select of the indexed key alone: LiteDB answers it from the index nodes (IsIndexKeyOnly), about 1 KB per key.
        return lite.History.Query()
            .Where(Query.LTE("_id", through))
            .OrderByDescending(IdExpression)
            .Select(IdExpression)
            .Offset(count - 1)
            .Limit(1)
            .ToEnumerable()
            .Select(d => d["_id"].AsInt64)
            .FirstOrDefault(first);
    }

    /// <summary>
    /// Up to <paramref name="max"/> committed lines numbered <paramref name="from"/> to <paramref name="through"/>, oldest
    /// first, into <paramref name="into"/>; returns how many. One LiteDB query, read to its end before this returns: no
    /// transaction or lock of LiteDB outlives the call (LiteDB binds them to the thread, and the alert writer's commits and
    /// checkpoints wait for readers). Only the fields of a history line are read: the event's attributes and message
    /// saved with it for the outbox are skipped (they were two thirds of what a read allocated).
    /// </summary>
    public int HistoryBatch(long from, long through, int max, List<AlertHistoryEntry> into)
    {
        var n = 0;
        foreach (var d in _lite.History.Query()
            .Where(Query.Between("_id", from, through))
            .OrderBy(IdExpression)
            .Select(LineFields)
            .Limit(max)
            .ToEnumerable())
        {
            into.Add(ToEntry(d));
            n++;
        }

        return n;
    }

    // Strings, parsed per query: LiteDB's optimiser works on the expressions it is given, so none is shared between threads.
    private const string IdExpression = "$._id";

    private const string LineFields = "{ _id: $._id, alert: $.alert, rule: $.rule, key: $.key, change: $.change, severity: $.severity, value: $.value, time: $.time, uplink: $.uplink }";

    public long HistoryCount => _lite.History.LongCount();

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

    /// <summary>
    /// Opens <c>alerts.db</c> and reads every document once (a damaged page throws here, not in the middle of a restore
    /// or an alarm). A file that is not a LiteDB file, or one with a damaged page or document, is corrupt: it is set aside
    /// with LiteDB's log (<see cref="SetAside"/>), the reason is logged with the path, and alerting starts on a new, empty
    /// file (the journal is replayed on top). Before, the exception stopped the agent's start (exit 1, a restart loop
    /// under systemd, polling and the outbox down with it). An I/O or permission error is not corruption: it is thrown,
    /// naming the file.
    /// </summary>
    private LiteFile OpenVerified(string path)
    {
        LiteFile? lite = null;
        try
        {
            // LiteDB writes whole pages; it would read the missing pages of a file cut short as empty, without a word (checked
            // before it opens the file: opening rewrites it).
            if (File.Exists(path) && new FileInfo(path).Length % PageBytes is var odd and not 0)
            {
                throw new LiteException(0, $"its length {new FileInfo(path).Length} is not a whole number of {PageBytes}-byte pages ({odd} bytes over): cut short, or not a LiteDB file");
            }

            lite = LiteFile.Open(path);
            if (lite.Meta.FindById(FormatId)?["version"] is { IsNumber: true } format && format.AsInt32 > FormatVersion)
            {
                // A rollback over a newer build's store: kept whole for that build, never read or written over here.
                lite.Dispose();
                lite = null;
                var kept = KeepNewerFormat(_liteData, _liteJournal, System.IO.Path.ChangeExtension(_liteData, null) + ".journal", format.AsInt32);
                LogStoreNewerFormat(path, format.AsInt32, FormatVersion, kept);
                return OpenNew(path);
            }

            Verify(lite);
            if (lite.Meta.FindById(FormatId) is null)
            {
                lite.Meta.Upsert(new BsonDocument { ["_id"] = FormatId, ["version"] = FormatVersion });
            }

            return lite;
        }
        catch (Exception ex) when (IsCorruption(ex))
        {
            lite?.Dispose();
            var aside = SetAside(_liteData, _liteJournal);
            _metrics?.StoreCorrupt("litedb");
            LogStoreCorrupt(path, $"{ex.GetType().Name}: {ex.Message}", aside);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            lite?.Dispose();
            throw new IOException($"alert store {path}: cannot open: {ex.Message}", ex);
        }

        return OpenNew(path);
    }

    private static LiteFile OpenNew(string path)
    {
        try
        {
            var lite = LiteFile.Open(path);
            lite.Meta.Upsert(new BsonDocument { ["_id"] = FormatId, ["version"] = FormatVersion });
            return lite;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or LiteException)
        {
            throw new IOException($"alert store {path}: cannot create a new file after setting the old one aside: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Moves a newer build's <c>alerts.db</c>, LiteDB's log and the alert journal (written by that build too) to
    /// <c>….format&lt;N&gt;</c>, untouched (the time is added when an earlier one is there); returns where the data file went.
    /// </summary>
    private static string KeepNewerFormat(string data, string log, string journal, int format)
    {
        var suffix = ".format" + format.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (File.Exists(data + suffix) || File.Exists(log + suffix) || File.Exists(journal + suffix))
        {
            suffix += "-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        }

        try
        {
            foreach (var file in new[] { log, journal })
            {
                if (File.Exists(file))
                {
                    File.Move(file, file + suffix);
                }
            }

            File.Move(data, data + suffix);
            return data + suffix;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"alert store {data} was written by a newer build (format {format}) and cannot be moved aside: {ex.Message}", ex);
        }
    }

    private static AlertJournal OpenJournal(string path)
    {
        try
        {
            return new AlertJournal(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"alert journal {path}: cannot open: {ex.Message}", ex);
        }
    }

    /// <summary>Reads every document the way the restore and the history will (a bad type or field throws).</summary>
    private static void Verify(LiteFile lite)
    {
        foreach (var d in lite.Meta.FindAll())
        {
            var id = d["_id"].IsString ? d["_id"].AsString : "";
            if (id == PublishedId)
            {
                _ = d["seq"].AsInt64;
            }
            else if (id == UplinkId)
            {
                _ = (d["state"].AsInt32, d["since"].AsInt64);
            }
        }

        foreach (var d in lite.Alerts.FindAll())
        {
            _ = ToStored(d);
        }

        foreach (var d in lite.Silences.FindAll())
        {
            _ = Time(d["until"]) ?? throw new InvalidCastException($"silence {d["_id"]} has no end time");
        }

        foreach (var d in lite.History.FindAll())
        {
            _ = ToEntry(d);
            _ = KindOf(d);
        }
    }

    /// <summary>Whether an exception at open means a damaged file (not a disk, permission or lock problem).</summary>
    private static bool IsCorruption(Exception ex) => ex switch
    {
        EndOfStreamException => true,
        IOException or UnauthorizedAccessException or OperationCanceledException or OutOfMemoryException => false,
        _ => true, // LiteException, and the InvalidCast/IndexOutOfRange/Overflow/Format a damaged page or document causes
    };

    /// <summary>
    /// Moves <c>alerts.db</c> to <c>alerts.db.corrupt</c> and LiteDB's <c>alerts-log.db</c> to <c>alerts-log.db.corrupt</c>
    /// (both get the time in their names when an earlier one is there); returns where the data file went, or why it could
    /// not be moved, for the warning.
    /// </summary>
    private static string SetAside(string data, string log)
    {
        var suffix = ".corrupt";
        if (File.Exists(data + suffix) || File.Exists(log + suffix))
        {
            suffix += "-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        }

        try
        {
            if (File.Exists(log))
            {
                File.Move(log, log + suffix, overwrite: true);
            }

            File.Move(data, data + suffix, overwrite: true);
            return data + suffix;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"alert store {data} is corrupt and cannot be moved aside: {ex.Message}", ex);
        }
    }

    /// <summary>Makes what is queued durable, gives LiteDB everything, checkpoints, then closes the files.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _background.Release();
        if (_worker.IsAlive)
        {
            _worker.Join();
        }

        lock (_commit)
        {
            CommitQueued();
        }

        if (_outage is not null && !ProbeWritable(force: true))
        {
            // Nothing can be written: what is held in memory goes with the process (said once more, with what it means).
            if (_outage is { } outage)
            {
                LogLostAtStop(StateDirectory, outage.Cause, outage.Since, _unjournaled.Count);
            }

            _lite.Dispose();
            _journal.Dispose();
            _background.Dispose();
            return;
        }

        if (!HoldApply)
        {
            ReopenIfFailed(); // when the directory became writable again just now
            ApplyPending();
            SyncJournal();
            try
            {
                _lite.Db.Checkpoint();
                SyncLiteDb();
                lock (_commit)
                {
                    if (Unapplied == 0)
                    {
                        _journal.Reset();
                    }
                }
            }
            catch (Exception ex) when (ex is LiteException or IOException or ObjectDisposedException)
            {
                LogCheckpointFailed(ex, Path);
            }
        }

        _lite.Dispose();
        _journal.Dispose();
        _background.Dispose();
    }

    /// <summary>Under the commit lock: rounds of (journal write, release) until the queue is empty.</summary>
    private void CommitQueued()
    {
        var batch = new List<WriteUnit>();
        while (_queue.TryDequeue(out var first))
        {
            Interlocked.Increment(ref _inFlight);
            batch.Add(first);
            while (batch.Count < 4096 && _queue.TryDequeue(out var more))
            {
                batch.Add(more);
            }

            var writes = Journal(batch);
            foreach (var unit in batch)
            {
                Release(unit);
            }

            batch.Clear();
            Interlocked.Decrement(ref _inFlight);
            if (writes > 0)
            {
                _background.Release();
            }
        }
    }

    /// <summary>One write for the whole batch; then LiteDB's share goes to the background thread.</summary>
    private int Journal(List<WriteUnit> batch)
    {
        var writes = new List<StoreWrite>();
        foreach (var unit in batch)
        {
            writes.AddRange(unit.Writes);
        }

        if (writes.Count == 0)
        {
            return 0;
        }

        if (_outage is not null)
        {
            // Not persisting: no write is tried on the alarm path (it would fail the same way, an exception per change);
            // the background thread probes and writes these back when it can.
            _unjournaled.AddRange(writes);
        }
        else
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                AppendToJournal(writes);
                _metrics?.StoreCommit(Stopwatch.GetElapsedTime(started).TotalMilliseconds, writes.Count);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A local alarm matters more than its record: the messages still go out, the failure is loud.
                _metrics?.StoreFailed();
                _unjournaled.AddRange(writes);
                EnterOutage(ex, writes.Count);
            }
        }

        lock (_applyGate)
        {
            _toApply.AddRange(writes);
        }

        Interlocked.Add(ref _journaled, writes.Count);
        return writes.Count;
    }

    /// <summary>Bookkeeping a moment later, LiteDB's share of the journal, checkpoints, trims.</summary>
    private void BackgroundMain()
    {
        while (Volatile.Read(ref _closed) == 0)
        {
            if (_outage is null)
            {
                _background.Wait();
            }
            else
            {
                WaitForProbe();
            }

            if (Volatile.Read(ref _closed) != 0)
            {
                break;
            }

            // Let more changes gather: LiteDB's side is nobody's wait, and fewer commits mean fewer checkpoints.
            Thread.Sleep(LazyDelay);
            while (_background.Wait(0))
            {
            }

            lock (_commit)
            {
                CommitQueued();
            }

            if (HoldApply)
            {
                continue;
            }

            if (_outage is not null && !ProbeWritable(force: false))
            {
                // Nothing can be written: LiteDB only serves reads (read-only), nothing is synced, applied or trimmed.
                OpenReadOnlyIfFailed();
                continue;
            }

            SyncJournal();
            ApplyPending();
            Maintain();
            ReopenIfFailed();
        }
    }

    /// <summary>While not persisting, the background thread wakes for the next probe even when no change comes.</summary>
    private void WaitForProbe()
    {
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), Volatile.Read(ref _nextProbeTicks));
        if (wait > TimeSpan.Zero && Volatile.Read(ref _closed) == 0)
        {
            // Released early by a change or by Dispose; a change alone only queues in memory, so the loop waits again.
            _background.Wait(wait);
        }
    }

    private void AppendToJournal(IReadOnlyList<StoreWrite> writes)
    {
        if (FailJournalForTest?.Invoke() is { } fault)
        {
            throw fault;
        }

        _journal.Append(writes);
    }

    /// <summary>Under the commit lock: the journal write failed; from now on changes are kept in memory only.</summary>
    private void EnterOutage(Exception ex, int writes)
    {
        var cause = CauseOf(ex);
        var now = Stopwatch.GetTimestamp();
        _probeBackoff = ReopenFirstDelay;
        Volatile.Write(ref _nextProbeTicks, now + (long)(_probeBackoff.TotalSeconds * Stopwatch.Frequency));
        _nextReminderTicks = now + (long)(ReminderInterval.TotalSeconds * Stopwatch.Frequency);
        _outage = new StoreOutage(DateTimeOffset.UtcNow, cause);
        _metrics?.StoreMemoryOnly(1);
        LogNotPersisting(StackOnce(ex), StateDirectory, cause, writes);
        _background.Release(); // the background thread opens LiteDB read-only for reads and starts probing
    }

    /// <summary>
    /// While not persisting: tries to write what is held in memory to the journal (when due, or now when
    /// <paramref name="force"/>). On success the store persists again: LiteDB is reopened and given the whole journal.
    /// Returns whether the store persists.
    /// </summary>
    private bool ProbeWritable(bool force)
    {
        if (!force && Stopwatch.GetTimestamp() < Volatile.Read(ref _nextProbeTicks))
        {
            return _outage is null;
        }

        lock (_commit)
        {
            if (_outage is not { } outage)
            {
                return true;
            }

            // Never empty here (an outage starts with the writes that failed), so a probe is a real write of them.
            try
            {
                AppendToJournal(_unjournaled);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                var now = Stopwatch.GetTimestamp();
                _probeBackoff = TimeSpan.FromTicks(Math.Min(_probeBackoff.Ticks * 2, ReopenMaxDelay.Ticks));
                Volatile.Write(ref _nextProbeTicks, now + (long)(_probeBackoff.TotalSeconds * Stopwatch.Frequency));
                if (now >= _nextReminderTicks)
                {
                    _nextReminderTicks = now + (long)(ReminderInterval.TotalSeconds * Stopwatch.Frequency);
                    LogStillNotPersisting(StackOnce(ex), StateDirectory, CauseOf(ex), outage.Since, _unjournaled.Count);
                }

                return false;
            }

            var count = _unjournaled.Count;
            _unjournaled.Clear();
            _outage = null;
            _metrics?.StoreMemoryOnly(-1);
            LogPersistingAgain(StateDirectory, count, outage.Since);

            // A fresh LiteDB (it failed, or serves reads read-only), given the whole journal and then what waits to apply.
            _liteFailed = true;
            _nextReopenTicks = 0;
            _reopenBackoff = ReopenFirstDelay;
            return true;
        }
    }

    /// <summary>
    /// While not persisting, LiteDB that has closed itself is opened read-only, so <c>alerts history</c> goes on answering
    /// (what LiteDB had, then the lines held in memory). Nothing is written to it until the store persists again.
    /// </summary>
    private void OpenReadOnlyIfFailed()
    {
        if (!_liteFailed || _liteReadOnly || HoldReopen || Stopwatch.GetTimestamp() < _nextReopenTicks)
        {
            return;
        }

        if (!OpenReadOnly())
        {
            _nextReopenTicks = Stopwatch.GetTimestamp() + (long)(_reopenBackoff.TotalSeconds * Stopwatch.Frequency);
            _reopenBackoff = TimeSpan.FromTicks(Math.Min(_reopenBackoff.Ticks * 2, ReopenMaxDelay.Ticks));
        }
    }

    /// <summary>Replaces a failed LiteDB with the same file opened read-only (reads only; _liteFailed stays set).</summary>
    private bool OpenReadOnly()
    {
        try
        {
            var old = _lite;
            _lite = LiteFile.Open(Path, readOnly: true);
            _liteReadOnly = true;
            old.Dispose();
            return true;
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException)
        {
            LogReadOnlyOpenFailed(StackOnce(ex), Path, ex.Message);
            return false;
        }
    }

    /// <summary>What an operator reads of a write failure: the errno's meaning for the usual ones, else the message.</summary>
    internal static string CauseOf(Exception ex) => ex switch
    {
        IOException { HResult: StorageErrors.ReadOnlyFileSystem } => "read-only file system",
        IOException { HResult: StorageErrors.NoSpace } => "no space left on device",
        IOException { HResult: StorageErrors.QuotaExceeded } => "disk quota exceeded",
        IOException { HResult: StorageErrors.IoError } => "I/O error",
        UnauthorizedAccessException => "permission denied: " + ex.Message,
        _ => ex.Message,
    };

    /// <summary>The exception the first time a cause is logged (its stack once), null after: reminders stay one line.</summary>
    private Exception? StackOnce(Exception ex)
    {
        var key = ex.GetType().FullName + ":" + ex.HResult.ToString(System.Globalization.CultureInfo.InvariantCulture);
        lock (_stacksLogged)
        {
            return _stacksLogged.Add(key) ? ex : null;
        }
    }

    /// <summary>
    /// After a failed commit or checkpoint (LiteDB closes its engine after an I/O error in it, and every later call
    /// fails), reopen the file and give it the whole journal again, instead of failing until the next start. Retried
    /// with a growing delay while it keeps failing (a full disk), so a broken file does not spin.
    /// </summary>
    private void ReopenIfFailed()
    {
        if (!_liteFailed || HoldReopen || Stopwatch.GetTimestamp() < _nextReopenTicks)
        {
            return;
        }

        lock (_commit)
        {
            var old = _lite;
            old.Dispose();
            try
            {
                var fresh = LiteFile.Open(Path);
                _lite = fresh;
                // The mark as LiteDB has it: a failed commit may have carried a newer one that the replay must write again.
                _publishedThrough = fresh.Meta.FindById(PublishedId)?["seq"].AsInt64 ?? 0;
                var replay = _journal.ReadAll(out _); // damage was reported at open; what follows it cannot be read
                if (!ApplyToLiteDb(replay))
                {
                    throw new IOException($"replaying {replay.Count} journal writes into {Path} failed");
                }

                // Everything journaled is in LiteDB now except what still waits in _toApply (writes are idempotent, so
                // those the journal held too are simply written again; those a failed journal write lost are not lost here).
                int waiting;
                lock (_applyGate)
                {
                    waiting = _toApply.Count;
                }

                Volatile.Write(ref _applied, Volatile.Read(ref _journaled) - waiting);
                Volatile.Write(ref _appliedSeq, Math.Max(Volatile.Read(ref _appliedSeq), MaxSeq()));
                _liteFailed = false;
                _liteReadOnly = false;
                _reopenBackoff = ReopenFirstDelay;
                Interlocked.Increment(ref _reopens);
                _metrics?.StoreReopened();
                LogReopened(Path, replay.Count);
            }
            catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                _nextReopenTicks = Stopwatch.GetTimestamp() + (long)(_reopenBackoff.TotalSeconds * Stopwatch.Frequency);
                LogReopenFailed(StackOnce(ex), Path, ex.Message, _reopenBackoff.TotalSeconds);
                _reopenBackoff = TimeSpan.FromTicks(Math.Min(_reopenBackoff.Ticks * 2, ReopenMaxDelay.Ticks));

                // A directory that cannot be written (read-only, no permission) can still be read: the history goes on
                // answering from what LiteDB has (and the lines in memory) until the next try.
                if (ex is UnauthorizedAccessException || StorageErrors.IsReadOnlyFileSystem(ex))
                {
                    OpenReadOnly();
                }
            }

            // Units queued while we held the lock are ours (Pump saw it taken).
            CommitQueued();
        }

        if (!_liteFailed)
        {
            ApplyPending();
        }
    }

    private void ApplyPending()
    {
        List<StoreWrite> writes;
        lock (_applyGate)
        {
            if (_toApply.Count == 0)
            {
                return;
            }

            writes = [.. _toApply];
            _toApply.Clear();
        }

        if (!ApplyToLiteDb(writes))
        {
            // Not counted as applied; kept for the next try (the reopen replays the journal, then these: idempotent).
            // Only the journal would have them otherwise, and while not persisting it does not.
            lock (_applyGate)
            {
                _toApply.InsertRange(0, writes);
            }

            return;
        }

        Interlocked.Add(ref _applied, writes.Count);
        foreach (var w in writes)
        {
            if (w.Collection == StoreCollection.History && w.Document is not null && w.Id.AsInt64 > _appliedSeq)
            {
                Volatile.Write(ref _appliedSeq, w.Id.AsInt64);
            }
        }
    }

    private bool ApplyToLiteDb(List<StoreWrite> writes)
    {
        var started = Stopwatch.GetTimestamp();
        var lite = _lite;
        try
        {
            lite.Db.BeginTrans();
            foreach (var w in writes)
            {
                Apply(lite, w);
            }

            lite.Db.Commit();
            _metrics?.StoreApply(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            return true;
        }
        catch (Exception ex) when (ex is LiteException or IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _liteFailed = true;
            try
            {
                lite.Db.Rollback();
            }
            catch (Exception rollback) when (rollback is LiteException or IOException or ObjectDisposedException)
            {
                // LiteDB has closed itself after the failed commit; the reopen starts it afresh.
            }

            _metrics?.StoreFailed();
            if (_outage is null)
            {
                // The journal keeps them (it is emptied only when LiteDB has everything): the reopen or the next open replays them.
                LogApplyFailed(StackOnce(ex), Path, writes.Count, ex.Message);
            }
            else
            {
                LogApplyFailedMemoryOnly(StackOnce(ex), Path, writes.Count, ex.Message);
            }

            return false;
        }
    }

    private void Apply(LiteFile lite, StoreWrite w)
    {
        var collection = w.Collection switch
        {
            StoreCollection.Alerts => lite.Alerts,
            StoreCollection.History => lite.History,
            StoreCollection.Silences => lite.Silences,
            _ => lite.Meta,
        };
        if (w.Document is null)
        {
            collection.Delete(w.Id);
            return;
        }

        if (w.Collection == StoreCollection.Meta && w.Id.IsString && w.Id.AsString == PublishedId)
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
        if (_liteFailed)
        {
            return; // closed, or open read-only: nothing to trim or checkpoint until the reopen
        }

        try
        {
            if (_appendsSinceTrim >= 1000)
            {
                _appendsSinceTrim = 0;
                var cut = Math.Min(_publishedThrough, MaxSeq() - HistoryKeep);
                if (cut > 0)
                {
                    _lite.History.DeleteMany(Query.LTE("_id", cut));
                }
            }

            // Everything in the journal is in LiteDB: start it afresh (under the commit lock: no write in between), once
            // LiteDB's files are on disk. Applies run only on this thread, so nothing reaches LiteDB between the fsync
            // and the reset; a commit in between leaves Unapplied > 0 and the journal is kept.
            if (_journal.Length > CheckpointBytes / 4 && Unapplied == 0)
            {
                SyncLiteDb();
                lock (_commit)
                {
                    if (Unapplied == 0)
                    {
                        _journal.Reset();
                    }
                }
            }

            if (File.Exists(_liteJournal) && new FileInfo(_liteJournal).Length > CheckpointBytes)
            {
                var started = Stopwatch.GetTimestamp();
                _lite.Db.Checkpoint();
                _metrics?.StoreCheckpoint(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (Exception ex) when (ex is LiteException or IOException or ObjectDisposedException)
        {
            _liteFailed = true;
            LogCheckpointFailed(ex, Path);
        }
    }

    /// <summary>fsyncs the journal if it grew since the last time (background thread; the alarm path never waits for it).</summary>
    private void SyncJournal()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            if (_journal.FlushToDisk())
            {
                _metrics?.StoreSync("journal", Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (IOException ex)
        {
            _metrics?.StoreFailed();
            LogSyncFailed(ex, _journal.Path);
        }
    }

    private bool TrySyncLiteDb()
    {
        try
        {
            SyncLiteDb();
            return true;
        }
        catch (IOException ex)
        {
            LogCheckpointFailed(ex, Path);
            return false;
        }
    }

    /// <summary>fsyncs LiteDB's data file and its own log, before the journal that also holds their changes is emptied.</summary>
    private void SyncLiteDb()
    {
        var started = Stopwatch.GetTimestamp();
        foreach (var file in new[] { _liteJournal, _liteData })
        {
            if (!File.Exists(file))
            {
                continue;
            }

            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            RandomAccess.FlushToDisk(handle);
        }

        _metrics?.StoreSync("litedb", Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    private long MaxSeq() => _lite.History.Find(Query.All(Query.Descending), limit: 1).FirstOrDefault()?["_id"].AsInt64 ?? 0;

    private static BsonValue Bson(DateTimeOffset? t) => t is { } v ? new BsonValue(v.ToUnixTimeMilliseconds()) : BsonValue.Null;

    private static DateTimeOffset? Time(BsonValue v) => v.IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds(v.AsInt64);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store {Path} was not written here: {Why} (a restored backup, or another gateway's store moved in): its alerts, silences and history are restored, and new alert ids are numbered from the clock, since its own count may be behind the ids the original gave out")]
    private partial void LogStoreCopied(string path, string why);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store {Path}: {Writes} writes could not be applied to LiteDB ({Reason}); they are in the alert journal, which is given to LiteDB again when it is reopened or at the next start")]
    private partial void LogApplyFailed(Exception? ex, string path, int writes, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store {Path}: {Writes} writes could not be applied to LiteDB ({Reason}); the alert store is not persisting, they are kept in memory only")]
    private partial void LogApplyFailedMemoryOnly(Exception? ex, string path, int writes, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store in {Directory} cannot be written ({Cause}): alert state changes from now on (raises, clears, acknowledgements, silences, history) are kept in memory only and are lost at a restart; alerting goes on from memory (notifications, alerts list, history, ack, silence). The {Writes} writes of this change are held too; they are written back if the directory becomes writable again (retried with a growing delay up to 5 min)")]
    private partial void LogNotPersisting(Exception? ex, string directory, string cause, int writes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store in {Directory} still cannot be written ({Cause}) since {Since:O}: {Writes} writes of alert state changes are kept in memory only and are lost at a restart")]
    private partial void LogStillNotPersisting(Exception? ex, string directory, string cause, DateTimeOffset since, int writes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store in {Directory} is writable again: the {Writes} writes kept in memory since {Since:O} are in the alert journal now, and LiteDB is given them; nothing was lost")]
    private partial void LogPersistingAgain(string directory, int writes, DateTimeOffset since);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store in {Directory} cannot be written ({Cause}) since {Since:O}: the {Writes} writes kept in memory since then are lost at this stop (alerts, acknowledgements, silences and history of that time are not restored at the next start)")]
    private partial void LogLostAtStop(string directory, string cause, DateTimeOffset since, int writes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store {Path}: opening LiteDB read-only for the history failed ({Reason}); alerts history answers with an error until it opens (tried again with the reopen)")]
    private partial void LogReadOnlyOpenFailed(Exception? ex, string path, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store {Path} was written by a newer build (format {Format}; this build reads format {Own}): kept untouched as {Kept} with its journal and LiteDB log; alerting goes on with a new, empty store (the alerts, acknowledgements, silences and history in it are not restored by this build; a build that reads it takes them up again when the files are put back)")]
    private partial void LogStoreNewerFormat(string path, int format, int own, string kept);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store {Path} is corrupt ({Reason}); set aside ({Aside}): alerting goes on with a new, empty store (alerts, acknowledgements, silences and history saved before are not restored; what the alert journal holds is replayed into it)")]
    private partial void LogStoreCorrupt(string path, string reason, string aside);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert journal {Path} is corrupt ({Reason}); the {Writes} writes before it were replayed, what follows it is lost; a copy was set aside ({Aside})")]
    private partial void LogJournalCorrupt(string path, string reason, int writes, string aside);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert journal {Path}: the last record was cut short (killed while writing it); it was never released, so nothing is lost")]
    private partial void LogJournalTorn(string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Count} writes replayed from {Path} (the agent stopped before LiteDB had them)")]
    private partial void LogReplayed(int count, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert journal {Path}: writing {Writes} writes failed; alerts are still notified but this change is not saved")]
    private partial void LogCommitFailed(Exception ex, string path, int writes);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert journal {Path}: fsync failed; alerts are still notified, but a power cut could lose the latest changes")]
    private partial void LogSyncFailed(Exception ex, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store {Path}: checkpoint or trim failed")]
    private partial void LogCheckpointFailed(Exception ex, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store {Path}: LiteDB reopened after it had failed; {Writes} journal writes given to it again")]
    private partial void LogReopened(string path, int writes);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store {Path}: reopening LiteDB failed ({Reason}); changes stay in the alert journal, next try in {Seconds} s")]
    private partial void LogReopenFailed(Exception? ex, string path, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store: the state directory {Directory} is read-only at start ({Cause}): alerting goes on from a copy in memory ({Alerts} alerts restored with their silences and history, from the file and {Replayed} journal writes LiteDB did not have yet); changes are kept in memory only and lost at the next stop unless the directory becomes writable first. Check the storage (dmesg) and reboot to fsck it, or replace it.")]
    private partial void LogNotPersistingAtStart(Exception? ex, string directory, string cause, int alerts, int replayed);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store {Path}: the file cannot be read into memory ({Reason}); alerting starts on an empty store in memory")]
    private partial void LogMemoryCopyFailed(string path, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert store: handing committed changes on failed")]
    private partial void LogReleaseFailed(Exception ex);

    /// <summary>The LiteDB file and its collections, opened together and replaced together.</summary>
    private sealed class LiteFile : IDisposable
    {
        // The files under a copy-on-write view (OpenCopy): LiteDB leaves a caller's streams open.
        private IDisposable[] _files = [];

        private LiteFile(LiteDatabase db)
        {
            Db = db;
            Alerts = db.GetCollection("alerts");
            History = db.GetCollection("history", BsonAutoId.Int64);
            Silences = db.GetCollection("silences");
            Meta = db.GetCollection("meta");
        }

        public LiteDatabase Db { get; }

        public ILiteCollection<BsonDocument> Alerts { get; }

        public ILiteCollection<BsonDocument> History { get; }

        public ILiteCollection<BsonDocument> Silences { get; }

        public ILiteCollection<BsonDocument> Meta { get; }

        /// <summary>
        /// Checkpoints are ours (CheckpointSize 0), on the background thread. Every collection exists once this returns:
        /// LiteDB 5 can fail a read of a collection that another transaction is creating at that moment ("ENSURE: page
        /// type must be collection page", LiteDB issue 2792), and the first alert's write created them while the history
        /// command or a restore read.
        /// </summary>
        /// <summary>
        /// A writable LiteDB over <paramref name="data"/> and its log <paramref name="log"/> (either may be missing or null:
        /// a new store) that never writes to them: the pages it changes stay in memory (<see cref="Core.CopyOnWriteFileStream"/>),
        /// the rest is read from the files. Measured on a store at its full history (20,000 lines, a 34 MB file): a copy of
        /// the whole file held 106 MB of heap.
        /// </summary>
        public static LiteFile OpenCopy(string? data, string? log)
        {
            var dataFile = OpenRead(data);
            var logFile = OpenRead(log);
            LiteFile file;
            try
            {
                file = new LiteFile(new LiteDatabase(new Core.CopyOnWriteFileStream(dataFile), new BsonMapper(), new Core.CopyOnWriteFileStream(logFile)));
            }
            catch
            {
                dataFile?.Dispose();
                logFile?.Dispose();
                throw;
            }

            file._files = [.. new IDisposable?[] { dataFile, logFile }.OfType<IDisposable>()];
            return Ready(file, writable: true);

            static FileStream? OpenRead(string? path) =>
                path is not null && File.Exists(path) ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite) : null;
        }

        public static LiteFile Open(string path, bool readOnly = false)
        {
            // Read-only, a missing collection reads as empty and nobody creates one meanwhile.
            return Ready(new LiteFile(new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct, ReadOnly = readOnly })), writable: !readOnly);
        }

        private static LiteFile Ready(LiteFile file, bool writable)
        {
            try
            {
                if (writable)
                {
                    file.Db.CheckpointSize = 0;
                    file.CreateMissingCollections();
                }

                return file;
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        private void CreateMissingCollections()
        {
            foreach (var name in CollectionNames)
            {
                if (!Db.CollectionExists(name))
                {
                    // Inserting a document creates the collection; the collection stays when the document goes.
                    var collection = Db.GetCollection(name);
                    var id = new BsonValue(long.MinValue);
                    collection.Insert(new BsonDocument { ["_id"] = id });
                    collection.Delete(id);
                }
            }
        }

        public void Dispose()
        {
            try
            {
                Db.Dispose();
            }
            catch (Exception ex) when (ex is LiteException or IOException or ObjectDisposedException)
            {
                // A closed engine may fail to close again; its files are released either way.
            }

            foreach (var f in _files)
            {
                f.Dispose();
            }
        }
    }
}
