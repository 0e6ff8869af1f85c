using System.Net;
using System.Text;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Snmp.Notifications;

/// <summary>A trap or inform as received, normalised across versions (RFC 3584 section 3.1 for v1 traps).</summary>
public sealed record SnmpNotification(
    SnmpVersion Version,
    PduType PduType,
    IPEndPoint Source,
    string? Community,
    string? User,
    Oid TrapOid,
    uint Uptime,
    IReadOnlyList<VarBind> VarBinds,
    TrapV1Fields? V1,
    DateTimeOffset ReceivedAt)
{
    public static readonly Oid SysUpTime0 = Oid.Parse("1.3.6.1.2.1.1.3.0");
    public static readonly Oid SnmpTrapOid0 = Oid.Parse("1.3.6.1.6.3.1.1.4.1.0");
    private static readonly Oid StandardTraps = Oid.Parse("1.3.6.1.6.3.1.1.5");

    /// <summary>The varbinds after sysUpTime.0 and snmpTrapOID.0 (v2/v3), or all of them (v1).</summary>
    public IEnumerable<VarBind> Payload => VarBinds.Where(v => v.Oid != SysUpTime0 && v.Oid != SnmpTrapOid0);

    /// <summary>RFC 3584: generic traps map to snmpTraps.(generic+1); enterprise-specific to enterprise.0.specific.</summary>
    public static Oid V1TrapOid(TrapV1Fields v1) =>
        v1.GenericTrap is >= 0 and < 6
            ? StandardTraps.Append((uint)v1.GenericTrap + 1)
            : v1.Enterprise.Append(0, (uint)v1.SpecificTrap);
}

public sealed class SnmpNotificationReceiverOptions
{
    /// <summary>Where to listen (162 needs privileges; tests use port 0).</summary>
    public IPEndPoint EndPoint { get; init; } = new(IPAddress.Any, 162);

    /// <summary>Accepted communities for v1/v2c; empty accepts none.</summary>
    public IReadOnlyCollection<string> Communities { get; init; } = ["public"];

    /// <summary>v3 users; traps are checked with keys localized to the sender's engine id, informs to ours.</summary>
    public IReadOnlyCollection<SnmpV3User> Users { get; init; } = [];

    public byte[]? EngineId { get; init; }
}

/// <summary>
/// Receives SNMP traps (v1, v2c, v3) and informs (v2c, v3; acknowledged with a Response) and raises
/// <see cref="NotificationReceived"/>. Malformed or unauthenticated messages are counted and dropped.
/// </summary>
public sealed partial class SnmpNotificationReceiver : IAsyncDisposable
{
    private readonly SnmpNotificationReceiverOptions _options;
    private readonly HashSet<string> _communities;
    private readonly SnmpUdpTransport _transport;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();

    public SnmpNotificationReceiver(SnmpNotificationReceiverOptions options, ILogger? logger = null)
    {
        _options = options;
        _communities = new HashSet<string>(options.Communities, StringComparer.Ordinal);
        _logger = logger ?? NullLogger.Instance;
        Authority = new UsmAuthority(options.EngineId, options.Users);
        _transport = SnmpUdpTransport.Bind(options.EndPoint, _logger);
        _transport.Start(OnDatagram);
    }

    /// <summary>Raised on the receive loop for each accepted notification; handlers must be quick (hand off to a channel).</summary>
    public event EventHandler<SnmpNotification>? NotificationReceived;

    public IPEndPoint LocalEndPoint => _transport.LocalEndPoint;
    public UsmAuthority Authority { get; }

    private void OnDatagram(ReadOnlyMemory<byte> datagram, IPEndPoint remote)
    {
        try
        {
            var (notification, reply) = Handle(datagram.Span, remote);
            if (reply is not null)
            {
                _ = SendAsync(reply, remote);
            }
            if (notification is not null)
            {
                SnmpMetrics.Notifications.Add(1, new KeyValuePair<string, object?>("version", notification.Version.ToString()));
                NotificationReceived?.Invoke(this, notification);
            }
        }
        catch (SnmpProtocolException ex)
        {
            SnmpMetrics.Malformed.Add(1);
            LogMalformed(_logger, remote, ex.Reason, ex.Offset);
        }
    }

    internal (SnmpNotification? Notification, byte[]? Reply) Handle(ReadOnlySpan<byte> packet, IPEndPoint remote)
    {
        var msg = SnmpMessageCodec.Decode(packet);
        if (msg.Version != SnmpVersion.V3)
        {
            var community = Encoding.UTF8.GetString(msg.Community);
            if (!_communities.Contains(community))
            {
                LogRejected(_logger, remote, "unknown community");
                return (null, null);
            }
            var pdu = msg.Pdu!;
            if (pdu.Type is not (PduType.TrapV1 or PduType.TrapV2 or PduType.InformRequest) || (pdu.Type == PduType.TrapV1) != (msg.Version == SnmpVersion.V1))
            {
                return (null, null);
            }
            var reply = pdu.Type == PduType.InformRequest
                ? SnmpMessageCodec.Encode(new SnmpMessage { Version = msg.Version, Community = msg.Community, Pdu = Ack(pdu) })
                : null;
            return (Build(msg.Version, pdu, remote, community, null), reply);
        }
        if (Authority.Users.Count == 0)
        {
            return (null, null);
        }
        // Informs are sent to us as the authoritative engine; traps come from the sender's engine (RFC 3412 section 6).
        var isTrap = msg.Pdu?.Type == PduType.TrapV2 || (msg.EncryptedPdu is not null && !msg.Usm.EngineId.AsSpan().SequenceEqual(Authority.EngineId));
        var incoming = isTrap ? Authority.ProcessNonAuthoritative(packet, msg) : Authority.ProcessAuthoritative(packet, msg);
        if (incoming.Relearned is { } r)
        {
            LogSenderClockRelearned(_logger, remote, r.EngineId, r.OldBoots, r.OldTime, r.NewBoots, r.NewTime, r.Traps);
        }
        if (!incoming.Accepted)
        {
            if (incoming.Error is { } error)
            {
                LogRejectedUsm(_logger, remote, error, incoming.Detail is { } detail ? ": " + detail : "");
            }
            return (null, incoming.Report);
        }
        var v3pdu = incoming.Message!.Pdu!;
        if (v3pdu.Type == PduType.InformRequest && !isTrap)
        {
            return (Build(SnmpVersion.V3, v3pdu, remote, null, incoming.User!.Name), Authority.EncodeResponse(incoming.Message, incoming.User, Ack(v3pdu)));
        }
        return v3pdu.Type == PduType.TrapV2 ? (Build(SnmpVersion.V3, v3pdu, remote, null, incoming.User!.Name), null) : (null, null);
    }

    private static SnmpPdu Ack(SnmpPdu inform) => new(PduType.Response, inform.RequestId, inform.VarBinds);

    private static SnmpNotification Build(SnmpVersion version, SnmpPdu pdu, IPEndPoint remote, string? community, string? user)
    {
        if (pdu.TrapV1 is { } v1)
        {
            return new SnmpNotification(version, pdu.Type, remote, community, user, SnmpNotification.V1TrapOid(v1), v1.TimeStamp, pdu.VarBinds, v1, DateTimeOffset.UtcNow);
        }
        var trapOid = pdu.VarBinds.FirstOrDefault(v => v.Oid == SnmpNotification.SnmpTrapOid0);
        var uptime = pdu.VarBinds.FirstOrDefault(v => v.Oid == SnmpNotification.SysUpTime0);
        return new SnmpNotification(version, pdu.Type, remote, community, user,
            trapOid.Value.Type == SnmpType.ObjectIdentifier ? trapOid.Value.AsOid() : default,
            uptime.Value.Type == SnmpType.TimeTicks ? uptime.Value.AsUInt32() : 0,
            pdu.VarBinds, null, DateTimeOffset.UtcNow);
    }

    private async Task SendAsync(byte[] reply, IPEndPoint remote)
    {
        try
        {
            await _transport.SendAsync(reply, remote, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // shutting down
        }
        catch (SnmpCommunicationException ex)
        {
            LogRejected(_logger, remote, ex.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Notification receiver: malformed packet from {Remote}: {Reason} at offset {Offset}")]
    private static partial void LogMalformed(ILogger logger, IPEndPoint remote, string reason, int offset);

    [LoggerMessage(Level = LogLevel.Information, Message = "SNMPv3 notification from {Remote} rejected: {Error}{Detail}")]
    private static partial void LogRejectedUsm(ILogger logger, IPEndPoint remote, UsmError error, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "SNMPv3 trap sender {Remote} (engine {EngineId}): its engine clock went back without its boots rising (boots not kept over a restart, a config restore); re-learnt after {Traps} consecutive authenticated traps on one new clock (the ones before this were rejected): snmpEngineBoots/Time {OldBoots}/{OldTime} -> {NewBoots}/{NewTime}")]
    private static partial void LogSenderClockRelearned(ILogger logger, IPEndPoint remote, string engineId, int oldBoots, int oldTime, int newBoots, int newTime, int traps);

    [LoggerMessage(Level = LogLevel.Information, Message = "Notification from {Remote} rejected: {Reason}")]
    private static partial void LogRejected(ILogger logger, IPEndPoint remote, string reason);
}
