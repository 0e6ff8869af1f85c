using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// How the peer answered one message: delivered (PUBACK, Kafka delivery report), or refused for good (not authorised,
/// topic or payload invalid, too large, a body that cannot be encoded). A refusal carries what the peer said, so the
/// data_gap event that reports it (<see cref="RefusalReporter"/>) can tell the centre why.
/// </summary>
internal readonly record struct DeliveryOutcome
{
    /// <summary>
    /// The peer refused this message for good. Retrying would stall the outbox forever, so it is counted, logged,
    /// reported in a data_gap event and passed over.
    /// </summary>
    public bool IsRejected { get; private init; }

    /// <summary>A refusal: the peer's reason code and text (or why it was not sent at all).</summary>
    public string? Reason { get; private init; }

    /// <summary>A refusal: the topic the message went to, when known.</summary>
    public string? Topic { get; private init; }

    /// <summary>A refusal: the bytes the message took as sent (packet or record value), when known.</summary>
    public long? Size { get; private init; }

    public static DeliveryOutcome Delivered => default;

    /// <summary>A refusal for which the transport knows nothing more.</summary>
    public static DeliveryOutcome Rejected => Refused("refused by the peer");

    public static DeliveryOutcome Refused(string reason, string? topic = null, long? size = null) =>
        new() { IsRejected = true, Reason = reason, Topic = topic, Size = size };
}

/// <summary>
/// The peer closed the connection while this message awaited its answer (not a timeout, not our own close). MQTT 3.1.1
/// has no refusal: a broker refuses a publish over its size limit or forbidden by its ACL by closing the connection, so
/// <see cref="UplinkPump"/> looks for the entry that such closes follow each time it is sent.
/// </summary>
internal sealed class UplinkPeerClosedException(string message, string? topic, long? size, Exception inner) : Exception(message, inner)
{
    /// <summary>Where the message went (for the data_gap if it is refused for good).</summary>
    public string? Topic { get; } = topic;

    /// <summary>The bytes the message took on the wire, when known.</summary>
    public long? Size { get; } = size;
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

    /// <summary>
    /// Servers one <see cref="ConnectAsync"/> may try in turn, each within the connect timeout (MQTT <c>hosts:</c>), so
    /// the pump bounds the whole call by that many timeouts. Default 1.
    /// </summary>
    int ConnectAttempts => 1;
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

    /// <summary>
    /// <see cref="SendAsync(OutboxEntry, bool, CancellationToken)"/>, also saying how many bytes the entry put on the
    /// link (MQTT: its PUBLISH packets; Kafka: key, value and headers; 0 when nothing was sent) for the byte budget and
    /// the byte counters. A transport that cannot tell counts the body.
    /// </summary>
    Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, out long wireBytes, CancellationToken cancellationToken)
    {
        wireBytes = entry.Record.Payload.Length;
        return SendAsync(entry, historical, cancellationToken);
    }

    /// <summary>
    /// Why the peer ended this session, when it said so and the reason needs more than "connection lost" (MQTT 5: another
    /// connection took over the client id); null otherwise. Asked after the session failed. <paramref name="closedOnOurSend"/>:
    /// the peer closed it while our sends awaited their answers and nothing was acknowledged in it (or while an entry sent
    /// alone awaited its answer) — the close answered something we sent, so it is no sign of another connection.
    /// </summary>
    ValueTask<Exception?> EndedByPeerAsync(bool closedOnOurSend) => ValueTask.FromResult<Exception?>(null);

    /// <summary>
    /// Completes when entries may be sent (Sparkplug with a primary host: once its STATE says online and the births are
    /// out). Not bounded by the connect timeout: a host may stay away for hours, the outbox keeps the entries. Throws when
    /// the connection is lost meanwhile. Default: at once.
    /// </summary>
    Task ReadyAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Cancelled when the session must end though the connection works (Sparkplug: the primary host went offline, or a
    /// host asked for the next server); the pump then stops sending, lets what is in flight answer and disposes the
    /// session. Default: never.
    /// </summary>
    CancellationToken Ending => CancellationToken.None;

    /// <summary>Why <see cref="Ending"/> was cancelled, read once it is.</summary>
    UplinkLeavingException EndingCause => new UplinkHostOfflineException("the Sparkplug primary host went offline");
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
