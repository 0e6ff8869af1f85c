using EdgeTwin.Core.Events;
using LiteDB;

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

/// <summary>
/// Alert state in its own LiteDB file (<c>alerts.db</c>): alerts, the ordered history, silences. Every call is synchronous
/// and made under the manager's lock, so there is one writer and no transaction ever spans an <c>await</c>. A SIGKILL loses
/// nothing that a call returned from: LiteDB's journal is written before the call returns (the OS keeps it across a
/// process kill; a power cut is a different matter, see the README).
/// </summary>
internal sealed class AlertStore : IDisposable
{
    private readonly LiteDatabase _db;
    private readonly ILiteCollection<BsonDocument> _alerts;
    private readonly ILiteCollection<BsonDocument> _history;
    private readonly ILiteCollection<BsonDocument> _silences;

    public AlertStore(string path)
    {
        Path = path;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        _db = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct });
        _alerts = _db.GetCollection("alerts");
        _history = _db.GetCollection("history", BsonAutoId.Int64);
        _silences = _db.GetCollection("silences");
        _history.EnsureIndex("published");
    }

    public string Path { get; }

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

    public void Save(AlertInstance a) => _alerts.Upsert(new BsonDocument
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

    public void SaveSilence(string rule, DateTimeOffset until) =>
        _silences.Upsert(new BsonDocument { ["_id"] = rule, ["until"] = until.ToUnixTimeMilliseconds() });

    public void RemoveSilence(string rule) => _silences.Delete(rule);

    /// <summary>Appends a history line; <paramref name="publish"/> marks it for the event sink (raised/cleared).</summary>
    public long Append(AlertHistoryEntry e, bool publish, bool raised)
    {
        var doc = new BsonDocument
        {
            ["alert"] = e.AlertId,
            ["rule"] = e.Rule,
            ["key"] = e.Key,
            ["change"] = e.Change,
            ["severity"] = (int)e.Severity,
            ["value"] = double.IsFinite(e.Value) ? e.Value : 0,
            ["time"] = e.Time.ToUnixTimeMilliseconds(),
            ["uplink"] = e.Uplink,
            ["raised"] = raised,
            ["published"] = !publish,
        };
        return _history.Insert(doc).AsInt64;
    }

    public void MarkPublished(long seq)
    {
        if (_history.FindById(seq) is { } doc)
        {
            doc["published"] = true;
            _history.Update(doc);
        }
    }

    /// <summary>History lines the event sink has not had yet, oldest first (after a crash, before the first publish).</summary>
    public IReadOnlyList<UnpublishedEntry> Unpublished() =>
        [.. _history.Find(Query.EQ("published", false)).OrderBy(d => d["_id"].AsInt64).Select(d => new UnpublishedEntry(ToEntry(d), d["raised"].AsBoolean))];

    public IReadOnlyList<AlertHistoryEntry> History(int limit) =>
        [.. _history.Find(Query.All(Query.Descending), limit: limit).Select(ToEntry).Reverse()];

    public long HistoryCount => _history.LongCount();

    /// <summary>Keeps the newest <paramref name="keep"/> history lines that have been published.</summary>
    public int Trim(int keep)
    {
        var count = _history.Count();
        if (count <= keep)
        {
            return 0;
        }

        var cut = _history.Find(Query.All(Query.Descending), skip: keep, limit: 1).FirstOrDefault();
        return cut is null ? 0 : _history.DeleteMany(Query.And(Query.LTE("_id", cut["_id"]), Query.EQ("published", true)));
    }

    public void Dispose() => _db.Dispose();

    private static AlertHistoryEntry ToEntry(BsonDocument d) => new(
        d["_id"].AsInt64,
        d["alert"].AsInt64,
        d["rule"].AsString,
        d["key"].AsString,
        d["change"].AsString,
        (EventSeverity)d["severity"].AsInt32,
        d["value"].AsDouble,
        DateTimeOffset.FromUnixTimeMilliseconds(d["time"].AsInt64),
        d["uplink"].AsString);

    private static BsonValue Bson(DateTimeOffset? t) => t is { } v ? new BsonValue(v.ToUnixTimeMilliseconds()) : BsonValue.Null;

    private static DateTimeOffset? Time(BsonValue v) => v.IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds(v.AsInt64);
}
