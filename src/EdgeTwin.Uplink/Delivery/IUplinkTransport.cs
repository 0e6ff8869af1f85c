using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Delivery;

/// <summary>How the peer answered one message.</summary>
internal enum DeliveryOutcome
{
    /// <summary>The peer took responsibility for it (PUBACK, Kafka delivery report).</summary>
    Delivered,

    /// <summary>
    /// The peer refused this message for good (not authorised, topic or payload invalid). Retrying would stall the
    /// outbox forever, so it is counted, logged and passed over.
    /// </summary>
    Rejected,
}

/// <summary>One protocol (MQTT, Kafka) as seen by <see cref="UplinkPump"/>: connect, then send entries.</summary>
internal interface IUplinkTransport
{
    /// <summary>The uplink's name in the outbox (its read position).</summary>
    string Name { get; }

    /// <summary>Where it connects to, for logs (host:port, bootstrap servers).</summary>
    string Peer { get; }

    /// <summary>Connects (and announces the gateway, e.g. the retained birth). Throws when the peer is unreachable.</summary>
    Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken);
}

/// <summary>One connection. Disposing it ends the connection and fails whatever is still in flight.</summary>
internal interface IUplinkSession : IAsyncDisposable
{
    /// <summary>How many unacknowledged messages the peer accepts (MQTT 5 receive maximum), or null for no limit.</summary>
    int? PeerWindow { get; }

    /// <summary>
    /// Starts sending one entry and returns a task that completes when the peer answered. The message is handed to the
    /// connection before this method returns, so calls from one caller go out in call order. Throws (or faults) on a
    /// transport failure, after which the session is finished.
    /// </summary>
    Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken);
}

/// <summary>
/// Where one uplink stands, for the centre to close its books on an outage and to detect loss at the tail:
/// <paramref name="AckedThroughSeq"/> — every outbox sequence up to it was acknowledged by the peer (or passed over as
/// condensed/refused); <paramref name="ReplayThroughSeq"/> — the outbox head when this connection came up (the backlog
/// lane replays up to it, historical); <paramref name="Backlog"/> — backlog entries not yet acknowledged (0 once the
/// replay is complete).
/// </summary>
internal readonly record struct UplinkProgress(long AckedThroughSeq, long ReplayThroughSeq, long Backlog);

/// <summary>A session that can tell the centre its <see cref="UplinkProgress"/> (MQTT JSON: the retained status).</summary>
internal interface IUplinkProgressSession
{
    /// <summary>False when this session's encoding has no place for it (Sparkplug B).</summary>
    bool ReportsProgress { get; }

    /// <summary>Publishes <paramref name="progress"/>; completes when the peer acknowledged it.</summary>
    Task PublishProgressAsync(UplinkProgress progress, CancellationToken cancellationToken);
}
