using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Pipeline;

/// <summary>A sample stage from a delegate (observers in tests, the demo's live view).</summary>
public sealed class DelegateSampleStage(string name, Func<ReadOnlyMemory<Sample>, CancellationToken, ValueTask> process) : ISampleStage
{
    public string Name { get; } = name;

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) => process(samples, cancellationToken);
}

/// <summary>An event stage from a delegate.</summary>
public sealed class DelegateEventStage(string name, Func<EdgeEvent, CancellationToken, ValueTask> handle) : IEventStage
{
    public string Name { get; } = name;

    public ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) => handle(edgeEvent, cancellationToken);
}
