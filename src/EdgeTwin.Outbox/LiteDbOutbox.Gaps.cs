using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>
/// data_gap events for drops the disk forces, at most one a <see cref="GapCoalesceInterval"/>. Events are never dropped,
/// and under disk pressure a round ran before almost every append, each with its own event: on a 2 MB disk with the
/// uplink down, those events pinned a data page each in segments otherwise emptied (LiteDB reuses a page's free space
/// only for its own collection), so the data file grew by ~150 KB a segment until the journal no longer fitted
/// (appends failed from the 34th–56th of 60). Without them it stayed at 1.55 MB. Now the first disk_budget round writes
/// its event at once; later rounds within the interval add what they did to a record in meta, in the same transaction
/// as their drops (so a crash cannot lose it), and one event names them all: at the next round after the interval, at
/// maintenance, when the outbox closes, or when it is next opened.
/// </summary>
public sealed partial class LiteDbOutbox
{
    private static readonly TimeSpan GapCoalesceInterval = TimeSpan.FromMinutes(1);

    /// <summary>The committed record in meta of disk_budget drops not yet named by an event, or null.</summary>
    private BsonDocument? _gapInMeta;

    /// <summary>When the last disk_budget data_gap event was written (monotonic); 0: none in this run.</summary>
    private long _lastGapEventAt;

    /// <summary>Inside the round's transaction: the gap event now, or (disk_budget, soon after the last one) meta's record.</summary>
    private void RecordGap(ref StoreState state, GapTracker gap)
    {
        if (gap.Reason != "disk_budget")
        {
            AppendGapEvent(ref state, gap);
            return;
        }

        var all = _gapInMeta is null ? gap : new GapTracker(gap.Reason).Add(_gapInMeta).Add(gap.ToBson());
        if (_lastGapEventAt != 0 && _time.GetElapsedTime(_lastGapEventAt) < GapCoalesceInterval)
        {
            _gapInMeta = all.ToBson();
            SaveMeta(state);
            return;
        }

        _gapInMeta = null;
        AppendGapEvent(ref state, all);
        _lastGapEventAt = _time.GetTimestamp();
    }

    /// <summary>Writes meta's record of drops as their data_gap event; a failure keeps the record for the next try.</summary>
    private void FlushGap()
    {
        if (_gapInMeta is not { } held || _db is null || !_options.MoveCorruptFileAside)
        {
            return;
        }

        StoreState state;
        lock (_stateLock)
        {
            state = _published;
        }

        try
        {
            _db.BeginTrans();
            _gapInMeta = null;
            AppendGapEvent(ref state, new GapTracker(held["reason"].AsString).Add(held));
            CommitDurably();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _gapInMeta = held;
            FailWrites([], ex);
            return;
        }

        _lastGapEventAt = _time.GetTimestamp();
        state.FileBytes = FileBytes();
        Publish(state, null);
        _signal.Set(state.Last);
    }
}
