using LiteDB;

namespace EdgeTwin.Outbox;

/// <summary>
/// How old an entry is, for <see cref="LiteDbOutboxOptions.MaxAge"/>, without trusting a wall clock that may step.
/// <list type="bullet">
/// <item>An entry accepted in this run is as old as the time it has been held, on the monotonic clock
/// (<see cref="TimeProvider.GetTimestamp"/>). The writer keeps a short in-memory list of acceptance marks (the first
/// sequence of a batch and when it was accepted), at most one per <see cref="MarkSpan"/>; an entry expires once the
/// last batch of its mark was accepted <c>max_age</c> ago, so it is held at least <c>max_age</c>, at most one mark span
/// longer.</item>
/// <item>An entry from an earlier run (below the first sequence this run wrote) is judged by the time it describes
/// against the wall clock read once, when this run opened the outbox, advanced on the monotonic clock since.</item>
/// </list>
/// So a wall-clock step while the agent runs (an NTP sync after a wrong boot clock, days forward) never ages anything
/// held. Before, max_age compared each entry's stamp with the wall clock of the moment: one second after an NTP sync
/// that moved the clock 10 days forward, the whole undelivered backlog was dropped as max_age.
/// </summary>
public sealed partial class LiteDbOutbox
{
    private readonly List<AcceptMark> _acceptMarks = [];
    // The acceptance marks again, pruned only as entries leave (acknowledged or dropped), not at max_age: events are held
    // past max_age, and the oldest_age gauge needs to know how long they have waited. Read by the metrics thread.
    private readonly List<AcceptMark> _heldMarks = [];
    private readonly Lock _heldLock = new();
    private long _runFirstSequence = long.MaxValue;
    private long _openedTimestamp;
    private long _openedWallMs;
    // Every entry of this run below it has been held max_age (kept when its marks are pruned).
    private long _expiredBelow;

    /// <summary>Acceptance marks are this far apart at most: a thousandth of max_age, between 1 s and 1 min.</summary>
    private TimeSpan MarkSpan => TimeSpan.FromTicks(Math.Clamp(_options.MaxAge.Ticks / 1000, TimeSpan.TicksPerSecond, TimeSpan.TicksPerMinute));

    /// <summary>Entries from <paramref name="firstSequence"/> on were accepted at or after <see cref="FirstTimestamp"/>, at or before <see cref="LastTimestamp"/>.</summary>
    private record struct AcceptMark(long FirstSequence, long FirstTimestamp, long LastTimestamp);

    /// <summary>Called when the store is opened: entries held now are from earlier runs; read the wall clock once for them.</summary>
    private void StartAgeClock(long lastSequence)
    {
        _acceptMarks.Clear();
        lock (_heldLock)
        {
            _runFirstSequence = lastSequence + 1;
            _expiredBelow = _runFirstSequence;
            _openedTimestamp = _time.GetTimestamp();
            _openedWallMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            _heldMarks.Clear();
        }
    }

    /// <summary>The first sequence of this run (<see cref="OutboxStats.RunFirstSequence"/>), 0 before the store was opened.</summary>
    private long RunFirstSequence()
    {
        lock (_heldLock)
        {
            return _runFirstSequence == long.MaxValue ? 0 : _runFirstSequence;
        }
    }

    /// <summary>After a reopen: a file recreated under the running agent starts its sequences elsewhere; restart the marks then.</summary>
    private void CheckAgeClock(long lastSequence)
    {
        var highest = _acceptMarks.Count > 0 ? _acceptMarks[^1].FirstSequence : _runFirstSequence - 1;
        if (lastSequence < highest)
        {
            StartAgeClock(lastSequence);
        }
    }

    /// <summary>Notes that the entries from <paramref name="firstSequence"/> on (one committed batch) were accepted now.</summary>
    private void NoteAccepted(long firstSequence)
    {
        var now = _time.GetTimestamp();
        if (_acceptMarks.Count > 0)
        {
            var last = _acceptMarks[^1];
            if (firstSequence > last.FirstSequence && _time.GetElapsedTime(last.FirstTimestamp, now) < MarkSpan)
            {
                _acceptMarks[^1] = last with { LastTimestamp = now };
                return;
            }
        }

        _acceptMarks.Add(new AcceptMark(firstSequence, now, now));
        lock (_heldLock)
        {
            _heldMarks.Add(new AcceptMark(firstSequence, now, now));
        }
    }

    /// <summary>
    /// How long the oldest entry held has waited, judged as max_age judges it: an entry of this run by the monotonic time
    /// since its batch's mark was set (at most one mark span more than the truth; its own stamp when that agrees), an entry of an earlier run by the time
    /// it describes against the wall clock read at open. Regression: the edgetwin.outbox.oldest_age gauge compared the
    /// oldest entry's stamp with the wall clock of the moment, so after NTP stepped a gateway's clock 5 h forward it read
    /// 5 h more than the entries had waited, and a dashboard alert on it fired for a backlog of a few seconds.
    /// </summary>
    internal TimeSpan? OldestHeld()
    {
        long first, depth, oldestTimestamp;
        lock (_stateLock)
        {
            (first, depth, oldestTimestamp) = (_published.First, _published.Depth, _published.OldestTimestamp);
        }

        if (depth == 0)
        {
            return null;
        }

        var now = _time.GetTimestamp();
        lock (_heldLock)
        {
            // Marks of batches wholly gone: the next mark starts at or below the oldest entry held.
            var gone = 0;
            while (gone + 1 < _heldMarks.Count && _heldMarks[gone + 1].FirstSequence <= first)
            {
                gone++;
            }

            _heldMarks.RemoveRange(0, gone);
            if (first >= _runFirstSequence && _heldMarks.Count > 0 && _heldMarks[0].FirstSequence <= first)
            {
                // The mark is up to a mark span older than the entry; the entry's own stamp is exact while the wall clock
                // has not stepped since (then it lies within that span below the mark's age), so it is taken then.
                var markAge = _time.GetElapsedTime(_heldMarks[0].FirstTimestamp, now);
                var stampAge = _time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(oldestTimestamp);
                return stampAge <= markAge && stampAge >= markAge - MarkSpan - TimeSpan.FromSeconds(1) ? stampAge : markAge;
            }

            var wallNowMs = _openedWallMs + (long)_time.GetElapsedTime(_openedTimestamp, now).TotalMilliseconds;
            return TimeSpan.FromMilliseconds(Math.Max(0, wallNowMs - oldestTimestamp));
        }
    }

    /// <summary>Drops droppable entries held longer than max_age (see the type's summary for how age is judged).</summary>
    private void DropExpired(ref StoreState state, GapTracker gap)
    {
        if (state.Depth == 0)
        {
            return;
        }

        var now = _time.GetTimestamp();

        // This run: marks whose last batch was accepted max_age ago or more.
        var expired = 0;
        while (expired < _acceptMarks.Count && _time.GetElapsedTime(_acceptMarks[expired].LastTimestamp, now) >= _options.MaxAge)
        {
            expired++;
        }

        if (expired > 0)
        {
            _expiredBelow = Math.Max(_expiredBelow, expired < _acceptMarks.Count ? _acceptMarks[expired].FirstSequence : state.Last + 1);
            _acceptMarks.RemoveRange(0, expired);
        }

        var select = BsonExpression.Create("{ _id: $._id, k: $.k, d: $.d, t: $.t, n: $.n }");
        if (_expiredBelow > Math.Max(_runFirstSequence, state.First))
        {
            DropAll(ref state, gap, Segments.Scan(Math.Max(_runFirstSequence, state.First) - 1, BsonExpression.Create("_id < @0", new BsonValue(_expiredBelow)), select, int.MaxValue).ToList());
        }

        // Earlier runs: the wall clock as read at open, advanced on the monotonic clock.
        var cutoffMs = _openedWallMs + (long)_time.GetElapsedTime(_openedTimestamp, now).TotalMilliseconds - (long)_options.MaxAge.TotalMilliseconds;
        if (state.Depth > 0 && state.First < _runFirstSequence && state.OldestTimestamp < cutoffMs)
        {
            DropAll(ref state, gap, Segments.Scan(0, BsonExpression.Create("_id < @0 AND t < @1", new BsonValue(_runFirstSequence), new BsonValue(cutoffMs)), select, int.MaxValue).ToList());
        }
    }

    private void DropAll(ref StoreState state, GapTracker gap, List<BsonDocument> docs)
    {
        foreach (var doc in docs)
        {
            TryDrop(ref state, gap, doc);
        }
    }

    /// <summary>Deletes one summary or raw entry and names it in the gap; events and predictions are never dropped (false).</summary>
    private bool TryDrop(ref StoreState state, GapTracker gap, BsonDocument doc)
    {
        if (!IsDroppable((OutboxKind)doc[FieldKind].AsInt32))
        {
            return false;
        }

        var sequence = doc["_id"].AsInt64;
        state.Bytes -= Segments.Delete(sequence);
        state.Depth--;
        gap.Track(sequence, doc[FieldTime].AsInt64, doc[FieldDevice].AsString, condensed: false);
        return true;
    }
}
