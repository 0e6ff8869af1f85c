using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Outbox.Summaries;

/// <summary>
/// The pipeline stage in front of the outbox: samples go through <see cref="SeriesSummarizer"/> (summaries per
/// window, raw report-by-exception); events and predictions go straight to the outbox, never held for a window.
/// One gate keeps appends in the order the records were made (per-device order upstream). When an append fails
/// (disk full) the records stay here and go with the next append; the sources are not failed for it.
/// </summary>
public sealed partial class OutboxFeeder : ISampleSink, IEventSink, IDisposable
{
    private readonly IOutbox _outbox;
    private readonly SeriesSummarizer _summarizer;
    private readonly SeriesRegistry _registry;
    private readonly UplinkIdentity _identity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<OutboxRecord> _pending = [];
    private readonly int _maxPending;

    public OutboxFeeder(
        IOutbox outbox,
        SeriesSummarizer summarizer,
        SeriesRegistry registry,
        UplinkIdentity identity,
        TimeProvider? time = null,
        ILogger<OutboxFeeder>? logger = null,
        int maxPendingRecords = 100_000)
    {
        _outbox = outbox ?? throw new ArgumentNullException(nameof(outbox));
        _summarizer = summarizer ?? throw new ArgumentNullException(nameof(summarizer));
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _identity = identity ?? throw new ArgumentNullException(nameof(identity));
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _maxPending = maxPendingRecords;
    }

    /// <summary>Records waiting because the last append failed.</summary>
    public int Pending => _pending.Count;

    /// <summary>Summary/raw records discarded because appends kept failing and <c>maxPendingRecords</c> was reached.</summary>
    public long Discarded { get; private set; }

    public async ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _summarizer.Add(samples.Span, _pending);
            await AppendPendingAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(edgeEvent);
        var series = _registry.TryGet(edgeEvent.Source, out var id) ? _registry[id] : null;
        return AppendNowAsync(UplinkBodies.Event(_identity, edgeEvent, series), cancellationToken);
    }

    public ValueTask PublishPredictionAsync(Prediction prediction, CancellationToken cancellationToken) =>
        AppendNowAsync(UplinkBodies.Forecast(_identity, prediction), cancellationToken);

    /// <summary>Closes finished windows and sends pending raw points; <see cref="RunAsync"/> calls it periodically.</summary>
    public async ValueTask FlushAsync(bool all, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (all)
            {
                _summarizer.FlushAll(_pending);
            }
            else
            {
                _summarizer.Flush(_time.GetUtcNow().ToUnixTimeMilliseconds(), _pending);
            }

            await AppendPendingAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
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

    private async ValueTask AppendNowAsync(OutboxRecord record, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _pending.Add(record);
            await AppendPendingAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask AppendPendingAsync(CancellationToken cancellationToken)
    {
        if (_pending.Count == 0)
        {
            return;
        }

        try
        {
            await _outbox.AppendAsync(_pending, cancellationToken).ConfigureAwait(false);
            _pending.Clear();
        }
        catch (OutboxStorageException ex)
        {
            // Keep the records for the next append; only summaries/raw go if the backlog here grows too large.
            LogAppendFailed(_logger, _pending.Count, ex.Message, ex);
            if (_pending.Count > _maxPending)
            {
                var excess = _pending.Count - _maxPending;
                Discarded += _pending.RemoveAll(r => r.Kind is OutboxKind.Summary or OutboxKind.Raw && excess-- > 0); // oldest first
            }
        }
    }

    public void Dispose() => _gate.Dispose();

    [LoggerMessage(EventId = 20, Level = LogLevel.Error, Message = "Outbox append of {Records} records failed; they are kept and retried with the next append: {Cause}")]
    private static partial void LogAppendFailed(ILogger logger, int records, string cause, Exception exception);
}
