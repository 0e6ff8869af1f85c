using System.Diagnostics;
using System.Threading.Channels;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Core.Pipeline;

/// <summary>
/// The sample fan-out: every <see cref="WriteAsync"/> is copied once into a pooled <see cref="SampleBatch"/> and
/// queued to each stage's bounded channel. A full <see cref="QueueFullMode.Wait"/> queue makes the writer wait
/// (backpressure to the scheduler); drop-mode queues drop and count instead. Stages run on their own tasks, in
/// parallel, each seeing batches in write order.
/// </summary>
public sealed class SamplePipeline : ISampleSink, IAsyncDisposable
{
    private readonly List<StageQueue> _stages = [];
    private readonly PipelineMetrics _metrics;
    private readonly bool _ownsMetrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _abort = new();
    private int _state; // 0 building, 1 running, 2 completing
    private long _totalSamples;

    public SamplePipeline(PipelineMetrics? metrics = null, ILogger<SamplePipeline>? logger = null, TimeProvider? timeProvider = null)
    {
        _ownsMetrics = metrics is null;
        _metrics = metrics ?? new PipelineMetrics();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _metrics.AddDepthSource(Stats);
    }

    /// <summary>Adds a stage; only before <see cref="Start"/>.</summary>
    public SamplePipeline AddStage(ISampleStage stage, StageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stage);
        if (Volatile.Read(ref _state) != 0)
        {
            throw new InvalidOperationException($"Stage '{stage.Name}' added after the pipeline started.");
        }

        if (_stages.Exists(s => s.Stage.Name == stage.Name))
        {
            throw new ArgumentException($"A stage named '{stage.Name}' is already in the pipeline.", nameof(stage));
        }

        _stages.Add(new StageQueue(stage, options ?? StageOptions.Default, this));
        return this;
    }

    /// <summary>Samples written into the pipeline since it started (for samples-per-second figures).</summary>
    public long TotalSamples => Interlocked.Read(ref _totalSamples);

    public IReadOnlyList<string> StageNames => _stages.ConvertAll(s => s.Stage.Name);

    /// <summary>Starts one consumer task per stage.</summary>
    public void Start()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The pipeline is already started.");
        }

        foreach (var s in _stages)
        {
            s.Start(_abort.Token);
        }
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _state) != 1)
        {
            throw new InvalidOperationException(_state == 0 ? "The pipeline is not started." : "The pipeline is shutting down and takes no more samples.");
        }

        if (samples.IsEmpty)
        {
            return;
        }

        _metrics.Samples.Add(samples.Length);
        Interlocked.Add(ref _totalSamples, samples.Length);
        if (_stages.Count == 0)
        {
            return;
        }

        var batch = SampleBatch.Rent(samples.Span, _stages.Count);
        for (var i = 0; i < _stages.Count; i++)
        {
            try
            {
                await _stages[i].EnqueueAsync(batch, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // The stages not reached yet will never release their share.
                for (var j = i; j < _stages.Count; j++)
                {
                    batch.Release();
                }

                throw;
            }
        }
    }

    /// <summary>
    /// Takes no more samples, waits until every stage has processed everything queued, then flushes each stage.
    /// If <paramref name="cancellationToken"/> fires first, the stages are cancelled and what is still queued is lost.
    /// </summary>
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

        long batches = 0;
        foreach (var s in _stages)
        {
            batches += s.Batches;
        }

        PipelineLog.Drained(_logger, batches, _stages.Count);
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

    private sealed class StageQueue
    {
        private readonly Channel<SampleBatch> _channel;
        private readonly SamplePipeline _owner;
        private readonly TagList _tags;
        private long _batches;
        private long _samples;
        private long _dropped;
        private long _blocked;
        private long _errors;
        private int _warnedFull;

        public StageQueue(ISampleStage stage, StageOptions options, SamplePipeline owner)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(options.Capacity, 1, nameof(options));
            Stage = stage;
            Options = options;
            _owner = owner;
            _tags = PipelineMetrics.Stage(stage.Name);
            var mode = options.FullMode switch
            {
                QueueFullMode.DropOldest => BoundedChannelFullMode.DropOldest,
                QueueFullMode.DropNewest => BoundedChannelFullMode.DropWrite,
                _ => BoundedChannelFullMode.Wait,
            };
            _channel = Channel.CreateBounded<SampleBatch>(
                new BoundedChannelOptions(options.Capacity) { FullMode = mode, SingleReader = true, SingleWriter = false },
                OnDropped);
        }

        public ISampleStage Stage { get; }

        public StageOptions Options { get; }

        public Task Completion { get; private set; } = Task.CompletedTask;

        public long Batches => Interlocked.Read(ref _batches);

        public void Start(CancellationToken abort) => Completion = Task.Run(() => ConsumeAsync(abort), CancellationToken.None);

        public void Complete() => _channel.Writer.TryComplete();

        public ValueTask EnqueueAsync(SampleBatch batch, CancellationToken cancellationToken)
        {
            if (_channel.Writer.TryWrite(batch))
            {
                return ValueTask.CompletedTask;
            }

            return EnqueueSlowAsync(batch, cancellationToken);
        }

        public StageStats Stats() => new(
            Stage.Name,
            _channel.Reader.Count,
            Options.Capacity,
            Interlocked.Read(ref _batches),
            Interlocked.Read(ref _samples),
            Interlocked.Read(ref _dropped),
            Interlocked.Read(ref _blocked),
            Interlocked.Read(ref _errors));

        private async ValueTask EnqueueSlowAsync(SampleBatch batch, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _blocked);
            _owner._metrics.Blocked.Add(1, _tags);
            var started = _owner._time.GetTimestamp();
            try
            {
                await _channel.Writer.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _owner._metrics.BlockedTime.Add(_owner._time.GetElapsedTime(started).TotalSeconds, _tags);
            }
        }

        private void OnDropped(SampleBatch batch)
        {
            Interlocked.Increment(ref _dropped);
            _owner._metrics.Dropped.Add(1, _tags);
            if (Interlocked.Exchange(ref _warnedFull, 1) == 0)
            {
                PipelineLog.Dropping(_owner._logger, Stage.Name, Options.Capacity, Options.FullMode.ToString());
            }

            batch.Release();
        }

        private async Task ConsumeAsync(CancellationToken abort)
        {
            var reader = _channel.Reader;
            try
            {
                while (await reader.WaitToReadAsync(abort).ConfigureAwait(false))
                {
                    while (reader.TryRead(out var batch))
                    {
                        await ProcessAsync(batch, abort).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                // Shutdown deadline passed: return what is still queued to the pool.
                while (reader.TryRead(out var left))
                {
                    left.Release();
                }

                return;
            }

            try
            {
                await Stage.FlushAsync(abort).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !abort.IsCancellationRequested)
            {
                Interlocked.Increment(ref _errors);
                _owner._metrics.Errors.Add(1, _tags);
                PipelineLog.FlushFailed(_owner._logger, Stage.Name, ex);
            }
        }

        private async ValueTask ProcessAsync(SampleBatch batch, CancellationToken abort)
        {
            var started = _owner._time.GetTimestamp();
            try
            {
                await Stage.ProcessAsync(batch.Memory, abort).ConfigureAwait(false);
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _samples, batch.Count);
                _owner._metrics.Batches.Add(1, _tags);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !abort.IsCancellationRequested)
            {
                Interlocked.Increment(ref _errors);
                _owner._metrics.Errors.Add(1, _tags);
                PipelineLog.StageFailed(_owner._logger, Stage.Name, batch.Count, ex);
            }
            finally
            {
                _owner._metrics.ProcessDuration.Record(_owner._time.GetElapsedTime(started).TotalSeconds, _tags);
                batch.Release();
            }
        }
    }
}
