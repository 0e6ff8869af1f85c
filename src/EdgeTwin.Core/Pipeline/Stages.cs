using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Pipeline;

/// <summary>
/// A consumer of sample batches (twin models, alerting, summaries, the outbox writer). Each stage runs on its
/// own task behind its own bounded queue, so a slow stage only fills its own queue.
/// </summary>
public interface ISampleStage
{
    /// <summary>Short name for metrics and logs (<c>twin</c>, <c>alerting</c>, <c>summaries</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Handles one batch. <paramref name="samples"/> is only valid until the returned task completes (the array is
    /// pooled): copy what must outlive the call. An exception is logged and counted; the next batch still comes.
    /// </summary>
    ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken);

    /// <summary>Called once after the last batch at shutdown: flush whatever the stage still holds.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>A consumer of events (uplink, alerting, the demo view). Events are never dropped: a full queue waits.</summary>
public interface IEventStage
{
    string Name { get; }

    ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken);
}

/// <summary>What a stage's queue does when it is full.</summary>
public enum QueueFullMode : byte
{
    /// <summary>The writer waits (backpressure up to the scheduler). Counted as <c>blocked</c>.</summary>
    Wait = 0,

    /// <summary>The oldest queued batch is dropped for the new one (live views that only want the latest). Counted as <c>dropped</c>.</summary>
    DropOldest = 1,

    /// <summary>The new batch is dropped. Counted as <c>dropped</c>.</summary>
    DropNewest = 2,
}

/// <summary>Queue settings for one stage.</summary>
/// <param name="Capacity">Batches the queue holds before <paramref name="FullMode"/> applies.</param>
/// <param name="FullMode">Wait (backpressure) or drop.</param>
public sealed record StageOptions(int Capacity = 256, QueueFullMode FullMode = QueueFullMode.Wait)
{
    public static readonly StageOptions Default = new();
}

/// <summary>A stage's counters at one instant.</summary>
public sealed record StageStats(string Name, int QueueDepth, int Capacity, long Batches, long Samples, long Dropped, long Blocked, long Errors);
