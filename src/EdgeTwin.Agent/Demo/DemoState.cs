using System.Collections.Concurrent;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Agent.Demo;

/// <summary>What the agent has seen, collected from its pipeline by sample and event observers for the demo's view.</summary>
internal sealed class DemoState
{
    private readonly ConcurrentDictionary<SeriesId, Sample> _latest = new();
    private readonly Queue<EdgeEvent> _events = new();
    private readonly Lock _eventsGate = new();
    private long _eventsTotal;
    private long _samples;
    private SeriesRegistry? _registry;
    private string? _watchedDevice;
    private Action? _onWatchedDeviceRead;
    private int _watchedDeviceRead;

    public long Samples => Interlocked.Read(ref _samples);

    /// <summary>
    /// Calls <paramref name="onFirstRead"/> once, when the first sample of <paramref name="deviceId"/> (the unit the
    /// demo's failure script stops) has come through the agent's pipeline. Set before the agent starts.
    /// </summary>
    public void Watch(string deviceId, SeriesRegistry registry, Action onFirstRead)
    {
        _registry = registry;
        _watchedDevice = deviceId;
        _onWatchedDeviceRead = onFirstRead;
    }

    public ValueTask OnSamples(ReadOnlyMemory<Sample> batch, CancellationToken cancellationToken)
    {
        foreach (var s in batch.Span)
        {
            _latest[s.Series] = s;
            if (_watchedDevice is { } device && Volatile.Read(ref _watchedDeviceRead) == 0 && _registry![s.Series].DeviceId == device
                && Interlocked.Exchange(ref _watchedDeviceRead, 1) == 0)
            {
                _onWatchedDeviceRead!();
            }
        }

        Interlocked.Add(ref _samples, batch.Length);
        return ValueTask.CompletedTask;
    }

    public ValueTask OnEvent(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        lock (_eventsGate)
        {
            _events.Enqueue(edgeEvent);
            _eventsTotal++;
            while (_events.Count > 200)
            {
                _events.Dequeue();
            }
        }

        return ValueTask.CompletedTask;
    }

    public bool TryLatest(SeriesId id, out Sample sample) => _latest.TryGetValue(id, out sample);

    public IReadOnlyList<EdgeEvent> Events => EventsAndTotal().Events;

    /// <summary>The last 200 events and how many there were in all, read together.</summary>
    public (IReadOnlyList<EdgeEvent> Events, long Total) EventsAndTotal()
    {
        lock (_eventsGate)
        {
            return ([.. _events], _eventsTotal);
        }
    }
}
