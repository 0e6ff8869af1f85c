using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Sparkplug;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>
/// Forwards the outbox to an MQTT broker (MQTT 3.1.1 or 5, QoS 1, persistent session, retained birth and will),
/// advancing the outbox only over PUBACKed messages. Settings are validated in the constructor.
/// </summary>
public sealed class MqttUplink
{
    private readonly UplinkPump _pump;
    private readonly MqttTransport _transport;

    public MqttUplink(MqttUplinkOptions options, IOutbox outbox, ILogger? logger = null, UplinkMetrics? metrics = null, TimeProvider? time = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new UplinkOptionsException(errors);
        }

        logger ??= NullLogger.Instance;
        time ??= TimeProvider.System;
        var identity = options.Identity;
        MqttTransport? connected = null; // the birth names the server only with a list: one host says nothing new
        Func<string?>? server = options.Hosts is null ? null : () => connected?.ConnectedServer;
        IMqttEncoder encoder = options.Encoding switch
        {
            MqttPayloadEncoding.Json => new JsonMqttEncoder(identity, new TopicTemplate(options.TopicTemplate, identity), options.Facts, server),
            MqttPayloadEncoding.SparkplugB => new SparkplugEncoder(options.SparkplugGroupId ?? options.Site, options.Gateway,
                new BdSeqStore(Path.Combine(options.StateDirectory!, $"sparkplug-{options.Name}.bdseq"), logger), options.Facts, options.SparkplugSeries,
                options.SparkplugDevices, device => Log.RetiredDevice(logger, options.Name, device), announceNextServer: options.Servers.Count > 1,
                aliases: options.SparkplugAliases),
            _ => throw new UplinkOptionsException([$"uplinks.mqtt.Encoding {options.Encoding} is unknown"]),
        };
        var transport = new MqttTransport(options, encoder, time, logger);
        connected = transport;
        _transport = transport;
        _pump = new UplinkPump(outbox, transport, options.Delivery, time, logger, metrics ?? new UplinkMetrics(), identity);
    }

    /// <summary>Highest outbox sequence acknowledged in order.</summary>
    public long Position => _pump.Position;

    /// <summary>Connections that failed after being up (for tests and diagnostics).</summary>
    public int FailedSessions => _pump.FailedSessions;

    /// <summary>Entries the peer refused for good since start, and the last refusal (each named by a data_gap event).</summary>
    public UplinkRejections Rejections => _pump.Rejections;

    /// <summary>Bytes sent since start per kind and lane, and the byte budget (<c>max_rate</c>).</summary>
    public UplinkTrafficSnapshot Traffic => _pump.Traffic;

    /// <summary>Sessions the broker ended because another connection took over the client id since start: a second gateway with this identity.</summary>
    public UplinkTakeovers Takeovers => _pump.Takeovers;

    /// <summary>Sparkplug B with <c>sparkplug_primary_host_id</c>: the host and since when the uplink waits for it to be online (null while it is); null without one.</summary>
    public PrimaryHostWait? PrimaryHost => _transport.PrimaryHost;

    /// <summary><c>host:port</c> of the broker the uplink has a session with now (one of <c>hosts:</c>, or <c>host</c>); null while it has none.</summary>
    public string? Server => _transport.ConnectedServer;

    /// <summary>Runs until cancelled, reconnecting with backoff; on stop, waits for in-flight acknowledgements, publishes offline and disconnects.</summary>
    public Task RunAsync(CancellationToken stoppingToken) => _pump.RunAsync(stoppingToken);

    /// <summary>
    /// Ends a reconnect backoff under way at once (no effect while connected): call it when the peer was seen reachable
    /// again, e.g. by the agent's connectivity probe of the same host and port.
    /// </summary>
    public void WakeReconnect() => _pump.WakeReconnect();
}
