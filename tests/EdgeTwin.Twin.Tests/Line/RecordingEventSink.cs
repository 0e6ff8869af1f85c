using EdgeTwin.Core.Events;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>Keeps every event the line twin publishes, in order (the stage publishes from one thread).</summary>
internal sealed class RecordingEventSink : IEventSink
{
    public List<EdgeEvent> Events { get; } = [];

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        Events.Add(edgeEvent);
        return ValueTask.CompletedTask;
    }
}
