using System.Diagnostics.Metrics;
using EdgeTwin.Uplink.Delivery;

namespace EdgeTwin.Uplink;

/// <summary>Counters of the uplinks (meter <c>EdgeTwin.Uplink</c>), tagged with the uplink name.</summary>
public sealed class UplinkMetrics : IDisposable
{
    public const string MeterName = "EdgeTwin.Uplink";

    private readonly Meter _meter;
    private readonly Counter<long> _sent;
    private readonly Counter<long> _acked;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _replayed;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _connects;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _hostOffline;
    private readonly Histogram<double> _ackLatency;
    private long _inFlight;
    private long _acknowledgedPosition;

    public UplinkMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _sent = _meter.CreateCounter<long>("edgetwin.uplink.sent", "{message}", "Messages handed to the peer (including resends)");
        _acked = _meter.CreateCounter<long>("edgetwin.uplink.acknowledged", "{message}", "Messages the peer acknowledged");
        _rejected = _meter.CreateCounter<long>("edgetwin.uplink.rejected", "{message}", "Messages the peer refused for good and that were passed over");
        _replayed = _meter.CreateCounter<long>("edgetwin.uplink.replayed", "{message}", "Messages sent on the backlog lane, flagged historical");
        _bytes = _meter.CreateCounter<long>("edgetwin.uplink.bytes", "By", "Bytes of the messages handed to the peer (MQTT PUBLISH packets; Kafka key, value and headers before compression), tagged kind and lane");
        _connects = _meter.CreateCounter<long>("edgetwin.uplink.connects", "{connection}", "Successful connections");
        _failures = _meter.CreateCounter<long>("edgetwin.uplink.failures", "{failure}", "Connection attempts or sessions that failed");
        _hostOffline = _meter.CreateCounter<long>("edgetwin.uplink.host_offline", "{session}", "Sparkplug sessions ended because the primary host application went offline (not failures)");
        _ackLatency = _meter.CreateHistogram<double>("edgetwin.uplink.ack_latency", "ms", "From handing a message to the peer to its acknowledgement");
        _meter.CreateObservableGauge("edgetwin.uplink.in_flight", () => Interlocked.Read(ref _inFlight), "{message}", "Messages sent and not yet acknowledged");
        _meter.CreateObservableGauge("edgetwin.uplink.position", () => Interlocked.Read(ref _acknowledgedPosition), "{sequence}", "Highest outbox sequence acknowledged in order");
    }

    internal void Sent(KeyValuePair<string, object?> uplink, bool historical)
    {
        _sent.Add(1, uplink);
        Interlocked.Increment(ref _inFlight);
        if (historical)
        {
            _replayed.Add(1, uplink);
        }
    }

    internal void Bytes(KeyValuePair<string, object?> uplink, TrafficKind kind, bool historical, long bytes) =>
        _bytes.Add(bytes, uplink, new("kind", UplinkTraffic.KindNames[(int)kind]), new("lane", historical ? "backlog" : "live"));

    internal void Answered(KeyValuePair<string, object?> uplink, DeliveryOutcome outcome, double latencyMs)
    {
        Interlocked.Decrement(ref _inFlight);
        if (outcome.IsRejected)
        {
            _rejected.Add(1, uplink);
        }
        else
        {
            _acked.Add(1, uplink);
            _ackLatency.Record(latencyMs, uplink);
        }
    }

    internal void SendFailed() => Interlocked.Decrement(ref _inFlight);

    internal void Connected(KeyValuePair<string, object?> uplink) => _connects.Add(1, uplink);

    internal void Failed(KeyValuePair<string, object?> uplink) => _failures.Add(1, uplink);

    internal void HostOffline(KeyValuePair<string, object?> uplink) => _hostOffline.Add(1, uplink);

    internal void Position(long position) => Interlocked.Exchange(ref _acknowledgedPosition, position);

    public void Dispose() => _meter.Dispose();
}
