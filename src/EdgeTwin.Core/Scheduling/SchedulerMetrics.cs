using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace EdgeTwin.Core.Scheduling;

/// <summary>The scheduler's instruments (meter <c>EdgeTwin.Scheduler</c>).</summary>
public sealed class SchedulerMetrics : IDisposable
{
    public const string MeterName = "EdgeTwin.Scheduler";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public SchedulerMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _ownsMeter = meterFactory is null;
        PollDuration = _meter.CreateHistogram<double>("edgetwin.poll.duration", "s", "Time one poll of one device took, including timeouts.");
        PollLateness = _meter.CreateHistogram<double>("edgetwin.poll.lateness", "ms", "How long after its due time a poll started (waiting for a concurrency slot or a busy host).");
        PollErrors = _meter.CreateCounter<long>("edgetwin.poll.errors", "{error}", "Failed polls per device and reason (timeout, error).");
        PollsSkipped = _meter.CreateCounter<long>("edgetwin.poll.skipped", "{poll}", "Grid times passed without a poll: the previous poll overran or the device is in backoff.");
        Samples = _meter.CreateCounter<long>("edgetwin.samples", "{sample}", "Samples produced by polled sources, by quality.");
        DeviceTransitions = _meter.CreateCounter<long>("edgetwin.device.transitions", "{transition}", "Devices going up or down.");
    }

    public Histogram<double> PollDuration { get; }

    public Histogram<double> PollLateness { get; }

    public Counter<long> PollErrors { get; }

    public Counter<long> PollsSkipped { get; }

    public Counter<long> Samples { get; }

    public Counter<long> DeviceTransitions { get; }

    /// <summary>Adds observable gauges that read live state (devices down, polls in flight).</summary>
    internal void Observe(Func<int> devicesDown, Func<int> inFlight, Func<int> waitingForSlot)
    {
        _meter.CreateObservableGauge("edgetwin.devices.down", devicesDown, "{device}", "Devices currently declared down.");
        _meter.CreateObservableGauge("edgetwin.poll.in_flight", inFlight, "{poll}", "Polls holding a concurrency slot.");
        _meter.CreateObservableGauge("edgetwin.poll.waiting", waitingForSlot, "{poll}", "Polls due but waiting for a concurrency slot.");
    }

    internal static TagList Device(string deviceId) => new() { { "device", deviceId } };

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
