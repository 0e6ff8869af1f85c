using System.Diagnostics.Metrics;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>A meter factory whose meters a test can tell apart from every other uplink's in the process (a MeterListener sees them all).</summary>
internal sealed class OwnMeters : IMeterFactory
{
    private readonly List<Meter> _created = [];

    public bool Has(Meter meter)
    {
        lock (_created)
        {
            return _created.Contains(meter);
        }
    }

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        lock (_created)
        {
            _created.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        lock (_created)
        {
            _created.ForEach(m => m.Dispose());
        }
    }
}
