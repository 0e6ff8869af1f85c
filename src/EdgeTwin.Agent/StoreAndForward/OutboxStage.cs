using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>
/// The pipeline's last stage: samples become window summaries (or raw reports by exception), events go to the outbox
/// at once. Its own bounded queue (pipeline) means a slow disk never slows polling.
/// </summary>
public sealed class OutboxStage(StoreAndForwardService storeAndForward) : ISampleStage, IEventStage
{
    public string Name => "outbox";

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) =>
        storeAndForward.Feeder.WriteAsync(samples, cancellationToken);

    public ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
        storeAndForward.Feeder.PublishAsync(edgeEvent, cancellationToken);

    /// <summary>At shutdown: close every open window so the last partial summaries are kept too.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken) =>
        storeAndForward.Feeder.FlushAsync(all: true, cancellationToken);
}
