using System.Threading.Channels;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Core.Pipeline;

/// <summary>
/// The event fan-out: each <see cref="IEventStage"/> has its own bounded queue and task. Events are rare and must
/// not be lost, so a full queue makes the publisher wait (counted as blocked), never drops.
/// </summary>
public sealed class EventHub : IEventSink, IAsyncDisposable
{
    private readonly List<Subscriber> _stages = [];
    private readonly PipelineMetrics _metrics;
    private readonly bool _ownsMetrics;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _abort = new();
    private int _state;

    public EventHub(PipelineMetrics? metrics = null, ILogger<EventHub>? logger = null)
    {
        _ownsMetrics = metrics is null;
        _metrics = metrics ?? new PipelineMetrics();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics.AddDepthSource(Stats);
    }

    public EventHub AddStage(IEventStage stage, int capacity = 1024)
    {
        ArgumentNullException.ThrowIfNull(stage);
        if (Volatile.Read(ref _state) != 0)
        {
            throw new InvalidOperationException($"Event stage '{stage.Name}' added after the hub started.");
        }

        _stages.Add(new Subscriber(stage, capacity, this));
        return this;
    }

    public void Start()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The event hub is already started.");
        }

        foreach (var s in _stages)
        {
            s.Start(_abort.Token);
        }
    }

    public async ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(edgeEvent);
        if (Volatile.Read(ref _state) != 1)
        {
            throw new InvalidOperationException(_state == 0 ? "The event hub is not started." : "The event hub is shutting down and takes no more events.");
        }

        foreach (var s in _stages)
        {
            await s.EnqueueAsync(edgeEvent, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Takes no more events and waits until every stage has handled what is queued.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _state, 2) != 1)
        {
            return;
        }

        foreach (var s in _stages)
        {
            s.Complete();
        }

        await StageCompletion.DrainAsync(_stages.Select(s => s.Completion), _abort, cancellationToken).ConfigureAwait(false);
    }

    public IReadOnlyList<StageStats> Stats() => _stages.ConvertAll(s => s.Stats());

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 1)
        {
            using var cts = new CancellationTokenSource();
            await cts.CancelAsync().ConfigureAwait(false);
            await CompleteAsync(cts.Token).ConfigureAwait(false);
        }

        _abort.Dispose();
        if (_ownsMetrics)
        {
            _metrics.Dispose();
        }
    }

    private sealed class Subscriber(IEventStage stage, int capacity, EventHub owner)
    {
        private readonly Channel<EdgeEvent> _channel = Channel.CreateBounded<EdgeEvent>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });

        private readonly System.Diagnostics.TagList _tags = PipelineMetrics.Stage("events:" + stage.Name);
        private long _handled;
        private long _blocked;
        private long _errors;

        public Task Completion { get; private set; } = Task.CompletedTask;

        public void Start(CancellationToken abort) => Completion = Task.Run(() => ConsumeAsync(abort), CancellationToken.None);

        public void Complete() => _channel.Writer.TryComplete();

        public ValueTask EnqueueAsync(EdgeEvent e, CancellationToken cancellationToken)
        {
            if (_channel.Writer.TryWrite(e))
            {
                return ValueTask.CompletedTask;
            }

            Interlocked.Increment(ref _blocked);
            owner._metrics.Blocked.Add(1, _tags);
            return _channel.Writer.WriteAsync(e, cancellationToken);
        }

        public StageStats Stats() => new(
            "events:" + stage.Name, _channel.Reader.Count, capacity, Interlocked.Read(ref _handled), 0, 0, Interlocked.Read(ref _blocked), Interlocked.Read(ref _errors));

        private async Task ConsumeAsync(CancellationToken abort)
        {
            try
            {
                await foreach (var e in _channel.Reader.ReadAllAsync(abort).ConfigureAwait(false))
                {
                    try
                    {
                        await stage.HandleAsync(e, abort).ConfigureAwait(false);
                        Interlocked.Increment(ref _handled);
                        owner._metrics.Batches.Add(1, _tags);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !abort.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref _errors);
                        owner._metrics.Errors.Add(1, _tags);
                        PipelineLog.EventStageFailed(owner._logger, stage.Name, e.Kind.ToWireName(), e.Source, ex);
                    }
                }
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                // Shutdown deadline passed.
            }
        }
    }
}
