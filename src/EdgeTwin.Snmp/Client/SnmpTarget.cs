using System.Net;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;

namespace EdgeTwin.Snmp.Client;

/// <summary>Who to ask and how: address, version, credentials, timeout and retries (per request, always enforced).</summary>
public sealed record SnmpTarget
{
    public required IPEndPoint EndPoint { get; init; }
    public SnmpVersion Version { get; init; } = SnmpVersion.V2c;
    public string Community { get; init; } = "public";

    /// <summary>For v3; its level decides noAuthNoPriv / authNoPriv / authPriv.</summary>
    public SnmpV3User? User { get; init; }
    public string ContextName { get; init; } = "";

    /// <summary>Wait for one attempt.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Retransmissions after the first attempt.</summary>
    public int Retries { get; init; } = 2;

    /// <summary>max-repetitions for GetBulk walks.</summary>
    public int MaxRepetitions { get; init; } = 25;

    public override string ToString() => $"{EndPoint} ({Version}{(User is null ? "" : ", user " + User.Name)})";
}
