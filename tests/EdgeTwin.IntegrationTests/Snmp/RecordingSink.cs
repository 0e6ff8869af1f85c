using System.Collections.Concurrent;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>Keeps every sample a source wrote, in order.</summary>
internal sealed class RecordingSink : ISampleSink
{
    public ConcurrentQueue<Sample> Samples { get; } = new();

    public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        foreach (var s in samples.Span)
        {
            Samples.Enqueue(s);
        }

        return ValueTask.CompletedTask;
    }
}
