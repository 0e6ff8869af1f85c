using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Uplink.Kafka;

/// <summary>
/// Forwards the outbox to Kafka (acks=all, idempotent, compressed, device as key) with the JSON envelope as value,
/// advancing the outbox only over delivery reports that say Persisted, and the gateway's status (progress, offline at a
/// clean stop) on the <c>status</c> topic. Settings are validated in the constructor.
/// </summary>
public sealed class KafkaUplink
{
    private readonly UplinkPump _pump;

    public KafkaUplink(KafkaUplinkOptions options, IOutbox outbox, ILogger? logger = null, UplinkMetrics? metrics = null, TimeProvider? time = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new UplinkOptionsException(errors);
        }

        logger ??= NullLogger.Instance;
        time ??= TimeProvider.System;
        _pump = new UplinkPump(outbox, new KafkaTransport(options, logger, time), options.Delivery, time, logger, metrics ?? new UplinkMetrics(), options.Identity);
    }

    public long Position => _pump.Position;

    public int FailedSessions => _pump.FailedSessions;

    /// <summary>Entries the peer refused for good since start, and the last refusal (each named by a data_gap event).</summary>
    public UplinkRejections Rejections => _pump.Rejections;

    /// <summary>Bytes sent since start per kind and lane, and the byte budget (<c>max_rate</c>).</summary>
    public UplinkTrafficSnapshot Traffic => _pump.Traffic;

    public Task RunAsync(CancellationToken stoppingToken) => _pump.RunAsync(stoppingToken);

    /// <summary>
    /// Ends a reconnect backoff under way at once (no effect while connected): call it when the peer was seen reachable
    /// again, e.g. by the agent's connectivity probe of the same host and port.
    /// </summary>
    public void WakeReconnect() => _pump.WakeReconnect();
}
