using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace EdgeTwin.Core.Pipeline;

/// <summary>The pipeline's instruments (meter <c>EdgeTwin.Pipeline</c>), tagged by <c>stage</c>.</summary>
public sealed class PipelineMetrics : IDisposable
{
    public const string MeterName = "EdgeTwin.Pipeline";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly List<Func<IEnumerable<StageStats>>> _sources = [];

    public PipelineMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _ownsMeter = meterFactory is null;
        Batches = _meter.CreateCounter<long>("edgetwin.pipeline.batches", "{batch}", "Batches a stage has processed.");
        Samples = _meter.CreateCounter<long>("edgetwin.pipeline.samples", "{sample}", "Samples written into the pipeline by sources.");
        Dropped = _meter.CreateCounter<long>("edgetwin.pipeline.dropped", "{batch}", "Batches dropped because a drop-mode stage queue was full.");
        Blocked = _meter.CreateCounter<long>("edgetwin.pipeline.blocked", "{write}", "Writes that had to wait because a stage queue was full (backpressure).");
        BlockedTime = _meter.CreateCounter<double>("edgetwin.pipeline.blocked_time", "s", "Time writers spent waiting on full stage queues.");
        Errors = _meter.CreateCounter<long>("edgetwin.pipeline.stage_errors", "{error}", "Batches or events a stage failed to handle.");
        ProcessDuration = _meter.CreateHistogram<double>("edgetwin.pipeline.process_duration", "s", "Time a stage took for one batch.");
        _meter.CreateObservableGauge("edgetwin.pipeline.queue_depth", ObserveDepths, "{batch}", "Batches waiting in each stage's queue.");
    }

    public Counter<long> Batches { get; }

    public Counter<long> Samples { get; }

    public Counter<long> Dropped { get; }

    public Counter<long> Blocked { get; }

    public Counter<double> BlockedTime { get; }

    public Counter<long> Errors { get; }

    public Histogram<double> ProcessDuration { get; }

    internal void AddDepthSource(Func<IEnumerable<StageStats>> source)
    {
        lock (_sources)
        {
            _sources.Add(source);
        }
    }

    private IEnumerable<Measurement<int>> ObserveDepths()
    {
        Func<IEnumerable<StageStats>>[] sources;
        lock (_sources)
        {
            sources = [.. _sources];
        }

        foreach (var source in sources)
        {
            foreach (var s in source())
            {
                yield return new Measurement<int>(s.QueueDepth, new KeyValuePair<string, object?>("stage", s.Name));
            }
        }
    }

    internal static TagList Stage(string name) => new() { { "stage", name } };

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
