using System.Globalization;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Outbox.Summaries;

/// <summary>
/// The pipeline stage in front of the outbox: samples go through <see cref="SeriesSummarizer"/> (summaries per
/// window, raw report-by-exception); events (predictions are events too) go straight to the outbox, never held for a window.
/// <para>
/// Appends are group-committed: one committer appends whatever has accumulated while the previous append (and its
/// fsync) was in flight, so a stream of small pipeline batches costs one durable commit per fsync time, not one per
/// batch. <see cref="WriteAsync"/> therefore returns once the samples are summarised (it waits only when more than
/// <c>highWaterRecords</c> are queued: backpressure); events, predictions and flushes wait until their records are
/// durable. Records are appended in the order they were made. When an append fails (disk full) the records stay
/// here and go with the next append; the sources are not failed for it.
/// </para>
/// <para>
/// Open windows are checkpointed (when the outbox supports <see cref="IOutboxCheckpoints"/> and an interval is set):
/// every interval the open windows go into the outbox in the same commit as the records made up to then, and every
/// later commit that carries a closed window also records which series closed one. So after a crash, a SIGKILL or
/// a power cut the store holds a consistent picture, and <see cref="RecoverAsync"/> at the next start sends each
/// window that was open at the last checkpoint and not closed since as a partial summary, with one <c>data_gap</c>
/// event naming the span in which samples may be missing (windows that closed after the checkpoint went out complete, and
/// the event counts them). A clean stop leaves a checkpoint that says so.
/// </para>
/// </summary>
public sealed partial class OutboxFeeder : ISampleSink, IEventSink, IDisposable
{
    private static readonly TimeSpan AppendTimeout = TimeSpan.FromSeconds(30);

    private readonly IOutbox _outbox;
    private readonly SeriesSummarizer _summarizer;
    private readonly SeriesRegistry _registry;
    private RetiredSeriesCursor _retired;
    private readonly UplinkIdentity _identity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _maxPending;
    private readonly int _highWater;
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _sync = new();

    // Guarded by _sync. _pending collects new records; the committer swaps it with _committing (which it owns while
    // appending) so writers never wait for the disk.
    private List<OutboxRecord> _pending = [];
    private List<OutboxRecord> _committing = [];
    private Task<bool>? _committer;
    private long _added;
    private long _settled; // committed or discarded
    private long _discarded;

    // Open-window checkpoints (all under _sync).
    private readonly IOutboxCheckpoints? _store; // the outbox, when it keeps checkpoints
    private readonly IOutboxCheckpoints? _checkpoints; // the same, when checkpoints are on
    private readonly long _checkpointIntervalMs;
    private List<OutboxBlob>? _recoveryBlobs; // the recovery's blob changes, when its own commit failed
    private readonly List<OpenWindow> _openWindows = [];
    // When the last checkpoint was taken, on the monotonic clock: with the wall clock, a step back of an hour stopped
    // the open-window checkpoints for that hour (a crash then lost up to an hour of summaries).
    private long _lastCheckpointTimestamp;

    // Samples' records wait up to this long for a commit (0: each write starts one). Monotonic, like the checkpoints.
    private readonly long _commitIntervalMs;
    private long _lastCommitTimestamp;
    private long _checkpointTakenMs; // the committed checkpoint's time, which the closed-series record refers to
    private bool _checkpointDue;
    private bool _stopped; // FlushAll ran: the next checkpoint is a clean stop's
    private bool _tooLargeLogged;
    private const int MaxBlobBytes = 12 << 20;

    /// <summary>
    /// Records per append at most. After a long failure (a disk full of others' files) the backlog, up to
    /// <c>maxPendingRecords</c>, went as one append: on a disk with less room than the whole backlog it failed as a whole
    /// on every retry, while appends of this size let the outbox make room for each in turn (dropping its oldest).
    /// </summary>
    internal const int MaxRecordsPerAppend = 4096;
    private int _catalogCommitted;

    public OutboxFeeder(
        IOutbox outbox,
        SeriesSummarizer summarizer,
        SeriesRegistry registry,
        UplinkIdentity identity,
        TimeProvider? time = null,
        ILogger<OutboxFeeder>? logger = null,
        int maxPendingRecords = 100_000,
        int highWaterRecords = 20_000,
        TimeSpan? checkpointInterval = null,
        TimeSpan? commitInterval = null)
    {
        _outbox = outbox ?? throw new ArgumentNullException(nameof(outbox));
        _summarizer = summarizer ?? throw new ArgumentNullException(nameof(summarizer));
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _identity = identity ?? throw new ArgumentNullException(nameof(identity));
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _maxPending = maxPendingRecords;
        _highWater = Math.Max(1, highWaterRecords);
        _store = outbox as IOutboxCheckpoints;
        _commitIntervalMs = commitInterval is { } ci && ci > TimeSpan.Zero ? Math.Max(1, (long)ci.TotalMilliseconds) : 0;
        if (checkpointInterval is { } interval && interval > TimeSpan.Zero && _store is not null)
        {
            _checkpoints = _store;
            _checkpointIntervalMs = Math.Max(1, (long)interval.TotalMilliseconds);
        }
    }

    /// <summary>Whether open windows are checkpointed (an interval was given and the outbox keeps checkpoints).</summary>
    public bool Checkpointing => _checkpoints is not null;

    /// <summary>Records made but not yet durable in the outbox (queued, being appended, or kept after a failed append).</summary>
    public int Pending
    {
        get
        {
            lock (_sync)
            {
                return (int)(_added - _settled);
            }
        }
    }

    /// <summary>Whether a commit is running (tests: a poll that comes after it finished).</summary>
    internal bool Committing
    {
        get
        {
            lock (_sync)
            {
                return _committer is not null;
            }
        }
    }

    /// <summary>Summary/raw records discarded because appends kept failing and <c>maxPendingRecords</c> was reached.</summary>
    public long Discarded
    {
        get
        {
            lock (_sync)
            {
                return _discarded;
            }
        }
    }

    /// <summary>Summarises <paramref name="samples"/>; the records it makes are appended by the group committer.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        Task<bool>? backpressure = null;
        lock (_sync)
        {
            var before = _pending.Count;
            SendRetired();
            _summarizer.Add(samples.Span, _pending);
            _added += _pending.Count - before;
            if (_pending.Count == 0)
            {
                return ValueTask.CompletedTask;
            }

            var overHighWater = _added - _settled > _highWater;
            if (_committer is null && !overHighWater && !CommitDue())
            {
                // Within commit_interval of the last commit: these records go with the next one (a later write's, an
                // event's, or the flush tick's). Every commit costs an fsync and LiteDB's whole pages, not the bytes.
                return ValueTask.CompletedTask;
            }

            var committer = EnsureCommitter();
            if (overHighWater)
            {
                backpressure = committer;
            }
        }

        return backpressure is null ? ValueTask.CompletedTask : new ValueTask(backpressure.WaitAsync(cancellationToken));
    }

    // Under _sync: what retired series still hold goes out, and their state is freed.
    private void SendRetired()
    {
        while (_retired.TryNext(_registry, out var id))
        {
            _summarizer.Retire(id, _pending);
        }
    }

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(edgeEvent);
        // An alert's source is its rule: the series it watches is named apart (EdgeEvent.Series).
        var series = _registry.TryGet(edgeEvent.Series ?? edgeEvent.Source, out var id) ? _registry[id] : null;
        return AppendNowAsync(UplinkBodies.Event(_identity, edgeEvent, series), cancellationToken);
    }

    /// <summary>
    /// Closes finished windows (all windows when <paramref name="all"/>) and waits until every record made so far is
    /// durable or its append failed (the records are then kept for the next one), and, when one is due (always when
    /// <paramref name="all"/>), until a checkpoint of the open windows is committed. <see cref="RunAsync"/> calls it periodically.
    /// </summary>
    public ValueTask FlushAsync(bool all, CancellationToken cancellationToken) => FlushAsync(all, onlyWhenDue: false, cancellationToken);

    // onlyWhenDue (the periodic tick): windows are closed, but what waits is committed only once commit_interval has
    // passed since the last commit, or with a due checkpoint.
    private async ValueTask FlushAsync(bool all, bool onlyWhenDue, CancellationToken cancellationToken)
    {
        Task<bool>? checkpoint = null;
        lock (_sync)
        {
            var before = _pending.Count;
            SendRetired();
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            if (all)
            {
                _summarizer.FlushAll(now, _pending);
            }
            else
            {
                _summarizer.Flush(now, _pending);
            }

            _added += _pending.Count - before;
            if (_checkpoints is not null && (all || _lastCheckpointTimestamp == 0 || _time.GetElapsedTime(_lastCheckpointTimestamp).TotalMilliseconds >= _checkpointIntervalMs))
            {
                _checkpointDue = true;
                _stopped |= all;
                checkpoint = EnsureCommitter();
            }
            else if (onlyWhenDue && _committer is null && !CommitDue())
            {
                return;
            }
        }

        await DrainAsync(cancellationToken).ConfigureAwait(false);
        if (checkpoint is not null)
        {
            // Committed before the flush returns (at stop: before the outbox closes). A failure was logged and leaves
            // the checkpoint due, so the next commit carries one.
            await checkpoint.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// At start, before any sample: sends what the previous run had summarised in windows it never closed (it was
    /// killed or lost power) as partial summaries, with a <c>data_gap</c> event naming the span since its last
    /// checkpoint; a clean stop's checkpoint recovers nothing. Then records this run's start, so that a crash before
    /// its first checkpoint is reported too. Returns how many windows were recovered. A checkpoint that cannot be read
    /// is logged and replaced, and a <c>data_gap</c> event says so; nothing else is affected.
    /// </summary>
    public async ValueTask<int> RecoverAsync(CancellationToken cancellationToken)
    {
        if (_store is not { } store)
        {
            return 0;
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var records = new List<OutboxRecord>();
        var recovered = 0;
        SavedWindows? saved = null;
        try
        {
            var windowsBlob = await store.ReadBlobAsync(OpenWindowCheckpoint.WindowsBlob, cancellationToken).ConfigureAwait(false);
            if (windowsBlob is not null)
            {
                saved = OpenWindowCheckpoint.DecodeWindows(windowsBlob);
                if (!saved.Clean)
                {
                    recovered = await RecoverWindowsAsync(store, saved, now, records, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or OutboxStorageException)
        {
            records.Clear();
            recovered = 0;
            LogCheckpointUnreadable(_logger, OutboxName, ex.Message);

            // The centre must hear of it too: the log stays on the gateway, and a silent hole is what the gap event is for.
            records.Add(UnreadableCheckpointGap(saved, now, ex.Message));
        }

        // One commit: the recovered summaries, the gap event, and a checkpoint of this start (no windows open yet).
        List<OutboxBlob> blobs =
        [
            new(OpenWindowCheckpoint.ClosedBlob, ReadOnlyMemory<byte>.Empty),
            new(OpenWindowCheckpoint.CatalogBlob, ReadOnlyMemory<byte>.Empty),
            _checkpoints is null
                ? new(OpenWindowCheckpoint.WindowsBlob, ReadOnlyMemory<byte>.Empty)
                : new(OpenWindowCheckpoint.WindowsBlob, OpenWindowCheckpoint.EncodeWindows(now, clean: false, [])),
        ];
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(AppendTimeout);
            await store.AppendAsync(records, blobs, timeout.Token).ConfigureAwait(false);
            lock (_sync)
            {
                _lastCheckpointTimestamp = _time.GetTimestamp();
                _checkpointTakenMs = now;
                _catalogCommitted = 0;
            }
        }
        catch (Exception ex) when (ex is OutboxStorageException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // The store still holds the old checkpoint: the recovered records go with the next commit, and with them
            // either a new checkpoint (which replaces the old one) or these blob changes, never the records alone.
            ReportAppendFailed(records.Count, ex);
            lock (_sync)
            {
                _pending.AddRange(records);
                _added += records.Count;
                _recoveryBlobs = blobs;
                _checkpointDue = _checkpoints is not null;
            }
        }

        return recovered;
    }

    private async ValueTask<int> RecoverWindowsAsync(IOutboxCheckpoints store, SavedWindows saved, long nowMs, List<OutboxRecord> records, CancellationToken cancellationToken)
    {
        var catalogBlob = await store.ReadBlobAsync(OpenWindowCheckpoint.CatalogBlob, cancellationToken).ConfigureAwait(false);
        var closedBlob = await store.ReadBlobAsync(OpenWindowCheckpoint.ClosedBlob, cancellationToken).ConfigureAwait(false);
        var catalog = catalogBlob is null ? [] : OpenWindowCheckpoint.DecodeCatalog(catalogBlob);
        var closed = Array.Empty<ulong>();
        if (closedBlob is not null)
        {
            var (checkpointMs, bits) = OpenWindowCheckpoint.DecodeClosed(closedBlob);
            if (checkpointMs != saved.SavedAtMs)
            {
                throw new InvalidDataException($"'{OpenWindowCheckpoint.ClosedBlob}' belongs to the checkpoint of {checkpointMs} ms, not to the stored one of {saved.SavedAtMs} ms.");
            }

            closed = bits;
        }

        var recovered = 0;
        var alreadySent = 0;
        var closedEndMs = long.MinValue;
        foreach (var open in saved.Windows)
        {
            var id = open.Series.Value;
            if (OpenWindowCheckpoint.IsSet(closed, id))
            {
                alreadySent++; // closed after the checkpoint: its complete summary is in the outbox already
                closedEndMs = Math.Max(closedEndMs, open.Window.EndMs);
                continue;
            }

            if (id >= catalog.Count)
            {
                throw new InvalidDataException($"'{OpenWindowCheckpoint.WindowsBlob}' names series id {id}, beyond the {catalog.Count} series of '{OpenWindowCheckpoint.CatalogBlob}'.");
            }

            records.Add(UplinkBodies.Summary(_identity, catalog[id], open.Window, partial: true));
            recovered++;
        }

        var from = DateTimeOffset.FromUnixTimeMilliseconds(saved.SavedAtMs);
        var to = DateTimeOffset.FromUnixTimeMilliseconds(nowMs);
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["reason"] = "unclean_stop",
            ["from_ms"] = saved.SavedAtMs.ToString(CultureInfo.InvariantCulture),
            ["to_ms"] = nowMs.ToString(CultureInfo.InvariantCulture),
            ["windows_recovered"] = recovered.ToString(CultureInfo.InvariantCulture),
            ["windows_closed_after_checkpoint"] = alreadySent.ToString(CultureInfo.InvariantCulture),
        };
        var sent = "";
        if (alreadySent > 0)
        {
            // Those windows were summarised complete and committed before the stop: they are not part of the loss.
            attributes["closed_windows_end_ms"] = closedEndMs.ToString(CultureInfo.InvariantCulture);
            sent = $"{alreadySent} windows open at the checkpoint closed before the stop and went out complete (ending by {WireTime.Instant(DateTimeOffset.FromUnixTimeMilliseconds(closedEndMs))}); ";
        }

        var message = $"The agent stopped without shutting down (crash, kill or power loss) after its last checkpoint at {WireTime.Instant(from)}: "
            + $"samples taken from then until this start at {WireTime.Instant(to)} may be missing. {Capitalise(sent)}{(sent.Length > 0 ? "the" : "The")} {recovered} windows still open at the checkpoint "
            + "went out as partial summaries. A summary received for this span is good (a partial one is incomplete); only windows of the span that never arrive are lost.";
        records.Add(UplinkBodies.Event(_identity, new EdgeEvent(EdgeEventKind.DataGap, "outbox", to, EventSeverity.Warning, message, attributes), spanStartMs: saved.SavedAtMs));
        LogRecovered(_logger, OutboxName, WireTime.Instant(from), WireTime.Instant(to), recovered, alreadySent);
        return recovered;
    }

    private static string Capitalise(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    /// <summary>
    /// The gap event for a checkpoint that could not be used: with the span when the open windows' blob was read (the
    /// previous run did not stop cleanly, its windows are lost), without it when that blob itself is unreadable
    /// (whether the previous run stopped cleanly is unknown).
    /// </summary>
    private OutboxRecord UnreadableCheckpointGap(SavedWindows? saved, long nowMs, string cause)
    {
        var to = DateTimeOffset.FromUnixTimeMilliseconds(nowMs);
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["to_ms"] = nowMs.ToString(CultureInfo.InvariantCulture),
            ["checkpoint_error"] = cause,
        };
        if (saved is null)
        {
            attributes["reason"] = "checkpoint_unreadable";
            var unknown = $"The open-window checkpoint in {OutboxName} could not be read at this start ({WireTime.Instant(to)}): {cause} "
                + "If the previous run did not stop cleanly, what it had summarised in windows it never closed is lost; how much is unknown.";
            return UplinkBodies.Event(_identity, new EdgeEvent(EdgeEventKind.DataGap, "outbox", to, EventSeverity.Warning, unknown, attributes));
        }

        var from = DateTimeOffset.FromUnixTimeMilliseconds(saved.SavedAtMs);
        attributes["reason"] = "unclean_stop";
        attributes["from_ms"] = saved.SavedAtMs.ToString(CultureInfo.InvariantCulture);
        attributes["windows_recovered"] = "0";
        var message = $"The agent stopped without shutting down (crash, kill or power loss) after its last checkpoint at {WireTime.Instant(from)}: "
            + $"samples taken from then until this start at {WireTime.Instant(to)} may be missing, and the {saved.Windows.Count} windows open at the checkpoint "
            + $"could not be recovered: {cause} A summary received for this span is good; only windows of the span that never arrive are lost.";
        return UplinkBodies.Event(_identity, new EdgeEvent(EdgeEventKind.DataGap, "outbox", to, EventSeverity.Warning, message, attributes), spanStartMs: saved.SavedAtMs);
    }

    private string OutboxName => _outbox is LiteDbOutbox db ? db.Path : _outbox.GetType().Name;

    /// <summary>Flushes every <paramref name="interval"/> until cancelled, then flushes everything once more.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                await FlushAsync(all: false, onlyWhenDue: true, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await FlushAsync(all: true, last.Token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits until every record made before the call is durable, or until an append fails (those records stay
    /// pending for the next attempt; the failure was logged).
    /// </summary>
    public async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        long target;
        lock (_sync)
        {
            target = _added;
        }

        while (true)
        {
            Task<bool> committer;
            bool ours;
            lock (_sync)
            {
                if (_settled >= target || (_pending.Count == 0 && _committer is null))
                {
                    return;
                }

                ours = _committer is null;
                committer = EnsureCommitter();
            }

            // A failure of a committer started before this call does not count: the disk may be back; try once more.
            if (!await committer.WaitAsync(cancellationToken).ConfigureAwait(false) && ours)
            {
                return;
            }
        }
    }

    private async ValueTask AppendNowAsync(OutboxRecord record, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            _pending.Add(record);
            _added++;
        }

        await DrainAsync(cancellationToken).ConfigureAwait(false);
    }

    // Under _sync.
    private Task<bool> EnsureCommitter() => _committer ??= Task.Run(CommitLoopAsync);

    // Under _sync: whether samples' records may start a commit now.
    private bool CommitDue() =>
        _commitIntervalMs == 0 || _lastCommitTimestamp == 0 || _time.GetElapsedTime(_lastCommitTimestamp).TotalMilliseconds >= _commitIntervalMs;

    /// <summary>Appends until nothing is pending. False when an append failed (records kept, committer stopped).</summary>
    private async Task<bool> CommitLoopAsync()
    {
        while (true)
        {
            List<OutboxRecord> batch;
            List<OutboxBlob>? blobs;
            Checkpoint checkpoint;
            lock (_sync)
            {
                if (_pending.Count == 0 && !_checkpointDue)
                {
                    _committer = null;
                    return true;
                }

                _lastCommitTimestamp = _time.GetTimestamp();

                if (_pending.Count > MaxRecordsPerAppend)
                {
                    // The oldest part of a backlog; the checkpoint waits for the append that takes the rest, as it
                    // describes the state after every record made so far.
                    batch = _committing;
                    batch.AddRange(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..MaxRecordsPerAppend]);
                    _pending.RemoveRange(0, MaxRecordsPerAppend);
                    blobs = null;
                    checkpoint = default;
                }
                else
                {
                    batch = _pending;
                    _pending = _committing;
                    _committing = batch;

                    // Taken with the batch, under the same lock: the blobs describe exactly the state after these records.
                    blobs = TakeCheckpointBlobs(out checkpoint) ?? _recoveryBlobs;
                }
            }

            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
                timeout.CancelAfter(AppendTimeout);
                if (blobs is null)
                {
                    await _outbox.AppendAsync(batch, timeout.Token).ConfigureAwait(false);
                }
                else
                {
                    await _store!.AppendAsync(batch, blobs, timeout.Token).ConfigureAwait(false);
                }

                ReportAppendSucceeded(batch.Count);
                lock (_sync)
                {
                    _settled += batch.Count;
                    if (blobs is not null)
                    {
                        _recoveryBlobs = null; // superseded by a checkpoint, or committed themselves
                    }

                    if (checkpoint.TakenMs > 0)
                    {
                        _checkpointTakenMs = checkpoint.TakenMs;
                        _catalogCommitted = Math.Max(_catalogCommitted, checkpoint.CatalogCount);
                    }
                }

                batch.Clear();
            }
            catch (Exception ex) when (ex is OutboxStorageException or OperationCanceledException or ObjectDisposedException)
            {
                // Keep the records, in order, ahead of what arrived meanwhile; only summaries/raw go if this grows too large.
                ReportAppendFailed(batch.Count, ex);
                lock (_sync)
                {
                    // The stored checkpoint is the older one: only a whole new one may follow it (the closed-series
                    // record of this attempt described the new one).
                    _checkpointDue |= blobs is not null && _checkpoints is not null;
                    batch.AddRange(_pending);
                    _pending.Clear();
                    (_pending, _committing) = (batch, _pending);
                    if (_pending.Count > _maxPending)
                    {
                        var excess = _pending.Count - _maxPending;
                        var removed = _pending.RemoveAll(r => r.Kind is OutboxKind.Summary or OutboxKind.Raw && excess-- > 0); // oldest first
                        _discarded += removed;
                        _settled += removed;
                    }

                    _committer = null;
                }

                return false;
            }
        }
    }

    // Under _sync.
    private List<OutboxBlob>? TakeCheckpointBlobs(out Checkpoint checkpoint)
    {
        checkpoint = default;
        if (_checkpoints is null)
        {
            return null;
        }

        if (_checkpointDue)
        {
            _checkpointDue = false;
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            _summarizer.CopyOpenWindows(_openWindows);
            var blobs = new List<OutboxBlob>(3);
            var series = _registry.Count;
            var catalogCount = _catalogCommitted;
            if (series > _catalogCommitted && _openWindows.Count > 0)
            {
                blobs.Add(new(OpenWindowCheckpoint.CatalogBlob, OpenWindowCheckpoint.EncodeCatalog(_registry, series)));
                catalogCount = series;
            }

            var clean = _stopped && _openWindows.Count == 0;
            blobs.Add(new(OpenWindowCheckpoint.WindowsBlob, OpenWindowCheckpoint.EncodeWindowsCompressed(now, clean, _openWindows)));
            var largest = blobs.Max(b => b.Value.Length);
            if (largest > MaxBlobBytes)
            {
                // A LiteDB document holds 16 MB: a larger one would fail the commit, and with it the records. The old
                // checkpoint stays consistent (the closed-series record goes on), it only ages.
                _lastCheckpointTimestamp = _time.GetTimestamp();
                if (!_tooLargeLogged)
                {
                    _tooLargeLogged = true;
                    LogCheckpointTooLarge(_logger, OutboxName, _openWindows.Count, largest);
                }

                return ClosedBlobIfChanged();
            }

            blobs.Add(new(OpenWindowCheckpoint.ClosedBlob, ReadOnlyMemory<byte>.Empty));
            _summarizer.ClearClosed();
            _lastCheckpointTimestamp = _time.GetTimestamp();
            checkpoint = new Checkpoint(now, catalogCount);
            return blobs;
        }

        return ClosedBlobIfChanged();
    }

    // Under _sync.
    private List<OutboxBlob>? ClosedBlobIfChanged() =>
        _summarizer.TakeClosedChanged() && _checkpointTakenMs > 0
            ? [new(OpenWindowCheckpoint.ClosedBlob, OpenWindowCheckpoint.EncodeClosed(_checkpointTakenMs, _summarizer.ClosedSinceClear))]
            : null;

    private readonly record struct Checkpoint(long TakenMs, int CatalogCount);

    public void Dispose()
    {
        if (!_disposed.IsCancellationRequested)
        {
            _disposed.Cancel();
        }
    }

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "The agent did not stop cleanly (crash, kill or power loss): its last checkpoint in {Outbox} was at {From}, so samples taken from then until this start at {To} may be missing; {Recovered} windows open at the checkpoint go out as partial summaries ({AlreadySent} had closed since and went out complete), with a data_gap event")]
    private static partial void LogRecovered(ILogger logger, string outbox, string from, string to, int recovered, int alreadySent);

    [LoggerMessage(EventId = 23, Level = LogLevel.Warning, Message = "Open windows of {Windows} series are too many to checkpoint in {Outbox} ({Bytes} bytes, at most 12 MiB): a crash loses what was summarised since the last checkpoint that fitted; lengthen outbox.summary_window or split the site")]
    private static partial void LogCheckpointTooLarge(ILogger logger, string outbox, int windows, int bytes);

    [LoggerMessage(EventId = 22, Level = LogLevel.Error, Message = "The open-window checkpoint in {Outbox} cannot be read ({Cause}): what the previous run had summarised in windows it never closed is lost; it is replaced by this run's")]
    private static partial void LogCheckpointUnreadable(ILogger logger, string outbox, string cause);

    /// <summary>
    /// Logs a failed append at a bounded rate. Regression: a full disk logged 236 lines of ~615 characters (with the stack)
    /// in 32 s, 6–9 a second, each saying "next attempt in 11 s", because every pipeline batch started a committer. Now:
    /// one line per cause (the message with its numbers masked) per minute, saying how many were not logged; the stack
    /// once per cause until the outbox is writable again.
    /// </summary>
    private void ReportAppendFailed(int records, Exception ex)
    {
        var cause = CauseKey(ex.Message);
        var now = _time.GetTimestamp();
        string? suppressedNote = null;
        bool withStack;
        lock (_failureLog)
        {
            if (_failures.Count == 0)
            {
                _firstFailure = now;
                _firstFailureDiscarded = Discarded;
            }

            _failedAppends++;
            if (_failures.TryGetValue(cause, out var seen) && _time.GetElapsedTime(seen.LoggedAt, now) < FailureLogInterval)
            {
                _failures[cause] = seen with { Suppressed = seen.Suppressed + 1 };
                return;
            }

            if (seen.Suppressed > 0)
            {
                suppressedNote = $" ({seen.Suppressed} more failures of this cause in the last {_time.GetElapsedTime(seen.LoggedAt, now).TotalSeconds:0} s were not logged)";
            }

            withStack = !_failures.ContainsKey(cause);
            _failures[cause] = new FailureCause(now, 0);
        }

        LogAppendFailed(_logger, records, ex.Message + suppressedNote, withStack ? ex : null);
    }

    /// <summary>After failures: one Information line that the outbox takes appends again, and whether anything was lost.</summary>
    private void ReportAppendSucceeded(int records)
    {
        long failed;
        TimeSpan over;
        long discarded;
        lock (_failureLog)
        {
            if (_failures.Count == 0)
            {
                return;
            }

            failed = _failedAppends;
            over = _time.GetElapsedTime(_firstFailure);
            discarded = Discarded - _firstFailureDiscarded;
            _failures.Clear();
            _failedAppends = 0;
        }

        var lost = discarded == 0
            ? "nothing lost"
            : $"{discarded} summary/raw records were discarded meanwhile (more than {_maxPending} were waiting)";
        var duration = Core.Config.Durations.Approximate(over);
        if (_outbox is IOutboxStatistics statistics && statistics.GetStats().Storage.MemoryOnlySince is { } since)
        {
            // The append took because the outbox went on in memory, not because the disk is back.
            LogTakenInMemoryOnly(_logger, failed, duration, WireTime.Instant(since), lost, records);
            return;
        }

        LogWritableAgain(_logger, failed, duration, lost, records);
    }

    /// <summary>The cause of a failure without its changing figures ("next attempt in 11.2 s", "973 records").</summary>
    internal static string CauseKey(string message) => FigureRegex().Replace(message, "#");

    [System.Text.RegularExpressions.GeneratedRegex(@"\d+(?:[.,]\d+)?")]
    private static partial System.Text.RegularExpressions.Regex FigureRegex();

    private static readonly TimeSpan FailureLogInterval = TimeSpan.FromMinutes(1);
    private readonly Lock _failureLog = new();
    private readonly Dictionary<string, FailureCause> _failures = new(StringComparer.Ordinal);
    private long _failedAppends;
    private long _firstFailure;
    private long _firstFailureDiscarded;

    private readonly record struct FailureCause(long LoggedAt, int Suppressed);

    [LoggerMessage(EventId = 20, Level = LogLevel.Error, Message = "Outbox append of {Records} records failed; they are kept and retried with the next append: {Cause}")]
    private static partial void LogAppendFailed(ILogger logger, int records, string cause, Exception? exception);

    [LoggerMessage(EventId = 25, Level = LogLevel.Warning, Message = "Outbox takes appends again after {Failed} failed appends over {Duration}, but in memory only: its storage is read-only since {Since} (what is not delivered when the agent stops is lost); {Lost} ({Records} records stored now)")]
    private static partial void LogTakenInMemoryOnly(ILogger logger, long failed, string duration, string since, string lost, int records);

    [LoggerMessage(EventId = 24, Level = LogLevel.Information, Message = "Outbox writable again after {Failed} failed appends over {Duration}; {Lost} ({Records} records stored now)")]
    private static partial void LogWritableAgain(ILogger logger, long failed, string duration, string lost, int records);
}
