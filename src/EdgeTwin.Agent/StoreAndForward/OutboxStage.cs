using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>
/// The pipeline's last stage: samples become window summaries (or raw reports by exception), events go to the outbox
/// at once. Its own bounded queue (pipeline) means a slow disk never slows polling.
/// </summary>
public sealed class OutboxStage(StoreAndForwardService storeAndForward, EdgeTwin.Agent.Hosting.ClockStepWatcher? clockSteps = null) : ISampleStage, IEventStage
{
    public string Name => "outbox";

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) =>
        storeAndForward.Feeder.WriteAsync(samples, cancellationToken);

    public async ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        await storeAndForward.Feeder.PublishAsync(edgeEvent, cancellationToken).ConfigureAwait(false);
        // The append returns once the event is committed, or failed (kept for a retry): only the first lets the ranges it
        // names leave the state file; after a failure they stay there and the next run names them again.
        if (edgeEvent.Kind == EdgeEventKind.ClockStepped && clockSteps is not null && storeAndForward.Outbox.GetStats().Storage.FailingSince is null)
        {
            clockSteps.Stored(edgeEvent);
        }
    }

    /// <summary>At shutdown: close every open window so the last partial summaries are kept too.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken) =>
        storeAndForward.Feeder.FlushAsync(all: true, cancellationToken);
}
