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
/// </summary>
public sealed partial class OutboxFeeder : ISampleSink, IEventSink, IDisposable
{
    private static readonly TimeSpan AppendTimeout = TimeSpan.FromSeconds(30);

    private readonly IOutbox _outbox;
    private readonly SeriesSummarizer _summarizer;
    private readonly SeriesRegistry _registry;
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

    public OutboxFeeder(
        IOutbox outbox,
        SeriesSummarizer summarizer,
        SeriesRegistry registry,
        UplinkIdentity identity,
        TimeProvider? time = null,
        ILogger<OutboxFeeder>? logger = null,
        int maxPendingRecords = 100_000,
        int highWaterRecords = 20_000)
    {
        _outbox = outbox ?? throw new ArgumentNullException(nameof(outbox));
        _summarizer = summarizer ?? throw new ArgumentNullException(nameof(summarizer));
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _identity = identity ?? throw new ArgumentNullException(nameof(identity));
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _maxPending = maxPendingRecords;
        _highWater = Math.Max(1, highWaterRecords);
    }

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
            _summarizer.Add(samples.Span, _pending);
            _added += _pending.Count - before;
            if (_pending.Count == 0)
            {
                return ValueTask.CompletedTask;
            }

            var committer = EnsureCommitter();
            if (_added - _settled > _highWater)
            {
                backpressure = committer;
            }
        }

        return backpressure is null ? ValueTask.CompletedTask : new ValueTask(backpressure.WaitAsync(cancellationToken));
    }

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(edgeEvent);
        var series = _registry.TryGet(edgeEvent.Source, out var id) ? _registry[id] : null;
        return AppendNowAsync(UplinkBodies.Event(_identity, edgeEvent, series), cancellationToken);
    }

    /// <summary>
    /// Closes finished windows (all windows when <paramref name="all"/>) and waits until every record made so far is
    /// durable or its append failed (the records are then kept for the next one). <see cref="RunAsync"/> calls it periodically.
    /// </summary>
    public async ValueTask FlushAsync(bool all, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            var before = _pending.Count;
            if (all)
            {
                _summarizer.FlushAll(_time.GetUtcNow().ToUnixTimeMilliseconds(), _pending);
            }
            else
            {
                _summarizer.Flush(_time.GetUtcNow().ToUnixTimeMilliseconds(), _pending);
            }

            _added += _pending.Count - before;
        }

        await DrainAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flushes every <paramref name="interval"/> until cancelled, then flushes everything once more.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                await FlushAsync(all: false, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Appends until nothing is pending. False when an append failed (records kept, committer stopped).</summary>
    private async Task<bool> CommitLoopAsync()
    {
        while (true)
        {
            List<OutboxRecord> batch;
            lock (_sync)
            {
                if (_pending.Count == 0)
                {
                    _committer = null;
                    return true;
                }

                batch = _pending;
                _pending = _committing;
                _committing = batch;
            }

            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
                timeout.CancelAfter(AppendTimeout);
                await _outbox.AppendAsync(batch, timeout.Token).ConfigureAwait(false);
                lock (_sync)
                {
                    _settled += batch.Count;
                }

                batch.Clear();
            }
            catch (Exception ex) when (ex is OutboxStorageException or OperationCanceledException or ObjectDisposedException)
            {
                // Keep the records, in order, ahead of what arrived meanwhile; only summaries/raw go if this grows too large.
                LogAppendFailed(_logger, batch.Count, ex.Message, ex);
                lock (_sync)
                {
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

    public void Dispose()
    {
        if (!_disposed.IsCancellationRequested)
        {
            _disposed.Cancel();
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Error, Message = "Outbox append of {Records} records failed; they are kept and retried with the next append: {Cause}")]
    private static partial void LogAppendFailed(ILogger logger, int records, string cause, Exception exception);
}
