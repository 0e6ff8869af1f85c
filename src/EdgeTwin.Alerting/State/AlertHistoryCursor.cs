namespace EdgeTwin.Alerting.State;

/// <summary>
/// The newest lines of the alert history as of its creation, oldest first, handed out a batch at a time: committed lines
/// from LiteDB (one short query per batch), then the ones still being committed (<paramref name="unsaved"/>, the manager's
/// snapshot). What a reader holds between batches is one batch: a 10,000-line <c>alerts history</c> answer was read into a
/// list of every line and its LiteDB documents (133 MB allocated per answer with the event attributes saved on each line),
/// and nothing of LiteDB is held between batches, so a client reading slowly keeps no LiteDB transaction open against the
/// alert writer. Lines committed after the creation are not included (the answer is the history as of the request); a line
/// trimmed meanwhile (only published lines beyond <see cref="AlertStore.HistoryKeep"/>) is skipped.
/// </summary>
internal sealed class AlertHistoryCursor
{
    /// <summary>Lines per batch: about 26 KB of answer; LiteDB allocates about 5 KB per line it reads.</summary>
    public const int DefaultBatch = 128;

    private readonly AlertStore _store;
    private readonly List<AlertHistoryEntry> _unsaved;
    private readonly List<AlertHistoryEntry> _batch;
    private readonly int _batchSize;
    private readonly long _storedThrough;
    private long _next;
    private int _unsavedAt;

    /// <param name="unsaved">Lines not known to be in LiteDB yet, oldest first (some may have reached it since).</param>
    public AlertHistoryCursor(AlertStore store, List<AlertHistoryEntry> unsaved, int limit, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        _store = store;
        _batchSize = batch;
        _batch = new List<AlertHistoryEntry>(batch);

        // LiteDB takes lines in order, so it holds every line up to its newest one; the snapshot's lines above that are
        // the rest. Read after the snapshot: a line applied in between is then read from LiteDB, not twice.
        _storedThrough = store.AppliedSeq;
        var newer = unsaved.FindIndex(e => e.Seq > _storedThrough);
        _unsaved = newer < 0 ? [] : unsaved.GetRange(newer, unsaved.Count - newer);
        if (_unsaved.Count >= limit)
        {
            _unsaved.RemoveRange(0, _unsaved.Count - limit);
            _next = _storedThrough + 1;
        }
        else
        {
            var start = store.HistoryWindowStart(_storedThrough, limit - _unsaved.Count);
            _next = start == 0 ? _storedThrough + 1 : start;
        }

        Done = _next > _storedThrough && _unsaved.Count == 0;
    }

    /// <summary>Every line has been handed out.</summary>
    public bool Done { get; private set; }

    /// <summary>The next lines (at most the batch size; valid until the next call). Throws what LiteDB throws.</summary>
    public IReadOnlyList<AlertHistoryEntry> Next()
    {
        _batch.Clear();
        while (_batch.Count < _batchSize && _next <= _storedThrough)
        {
            var n = _store.HistoryBatch(_next, _storedThrough, _batchSize - _batch.Count, _batch);
            if (n > 0 && _batch[^1].Seq < _next)
            {
                // A line numbered below what was asked for: a damaged document; never read the same range again.
                throw new LiteDB.LiteException(0, $"history line {_batch[^1].Seq} read where lines from {_next} were asked for");
            }

            _next = n == 0 ? _storedThrough + 1 : _batch[^1].Seq + 1;
        }

        while (_batch.Count < _batchSize && _next > _storedThrough && _unsavedAt < _unsaved.Count)
        {
            _batch.Add(_unsaved[_unsavedAt++]);
        }

        Done = _next > _storedThrough && _unsavedAt == _unsaved.Count;
        return _batch;
    }
}
