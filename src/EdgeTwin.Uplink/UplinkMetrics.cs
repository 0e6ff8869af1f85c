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
        _meter.CreateObservableGauge("edgetwin.uplink.server", ConnectedServers, "{connection}",
            "1 per uplink with a session, tagged uplink and server (the peer it is connected to: which broker of an MQTT hosts: list)");
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

    // Uplink name -> the peer its session is with; absent while it has none.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _servers = new(StringComparer.Ordinal);

    /// <summary>The uplink's session is with <paramref name="peer"/> now; null: it has none.</summary>
    internal void ConnectedTo(string uplink, string? peer)
    {
        if (peer is null)
        {
            _servers.TryRemove(uplink, out _);
        }
        else
        {
            _servers[uplink] = peer;
        }
    }

    private IEnumerable<Measurement<long>> ConnectedServers()
    {
        foreach (var (uplink, peer) in _servers)
        {
            yield return new Measurement<long>(1, new KeyValuePair<string, object?>("uplink", uplink), new KeyValuePair<string, object?>("server", peer));
        }
    }

    internal void Failed(KeyValuePair<string, object?> uplink) => _failures.Add(1, uplink);

    internal void HostOffline(KeyValuePair<string, object?> uplink) => _hostOffline.Add(1, uplink);

    internal void Position(long position) => Interlocked.Exchange(ref _acknowledgedPosition, position);

    public void Dispose() => _meter.Dispose();
}
