using System.Threading.Channels;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>Copies every batch (the contract lets sources reuse their buffer) and lets tests wait for arrivals.</summary>
internal sealed class CollectingSampleSink : ISampleSink
{
    private readonly Channel<Sample> _arrivals = Channel.CreateUnbounded<Sample>();
    private readonly List<Sample> _all = [];
    private readonly Lock _gate = new();

    public IReadOnlyList<Sample> All
    {
        get
        {
            lock (_gate)
            {
                return _all.ToArray();
            }
        }
    }

    public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            foreach (var s in samples.Span)
            {
                _all.Add(s);
                _arrivals.Writer.TryWrite(s);
            }
        }

        return ValueTask.CompletedTask;
    }

    public async Task<Sample> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        return await _arrivals.Reader.ReadAsync(cts.Token);
    }

    public async Task<Sample> NextAsync(SeriesId series, TimeSpan? timeout = null)
    {
        while (true)
        {
            var s = await NextAsync(timeout);
            if (s.Series == series)
            {
                return s;
            }
        }
    }
}

internal sealed class CollectingEventSink : IEventSink
{
    private readonly Channel<EdgeEvent> _arrivals = Channel.CreateUnbounded<EdgeEvent>();
    private readonly List<EdgeEvent> _all = [];
    private readonly Lock _gate = new();

    public IReadOnlyList<EdgeEvent> All
    {
        get
        {
            lock (_gate)
            {
                return _all.ToArray();
            }
        }
    }

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _all.Add(edgeEvent);
            _arrivals.Writer.TryWrite(edgeEvent);
        }

        return ValueTask.CompletedTask;
    }

    public async Task<EdgeEvent> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        return await _arrivals.Reader.ReadAsync(cts.Token);
    }
}
