using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Where a configured peer's traffic goes, for the plaintext warnings that the MQTT and Kafka uplinks and the alert
/// sinks (webhook, SMTP, MQTT) give alike: loopback never leaves the gateway, a private address stays on the site's own
/// networks, anything else may cross the internet. A host name is judged by its text only (no DNS at check time).
/// </summary>
public static class NetworkScope
{
    /// <summary><c>localhost</c>, a <c>*.localhost</c> name (RFC 6761) or a loopback address; brackets around an IPv6 address are allowed.</summary>
    public static bool IsLoopback(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
            || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>
    /// An RFC 1918, IPv4 link-local, IPv6 unique-local or link-local address (the site's own networks); a host name is
    /// not known to be one. Brackets around an IPv6 address are allowed.
    /// </summary>
    public static bool IsPrivate(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!IPAddress.TryParse(host.Trim('[', ']'), out var ip))
        {
            return false;
        }

        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }

        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return ip.IsIPv6LinkLocal || ip.IsIPv6UniqueLocal;
        }

        Span<byte> b = stackalloc byte[4];
        return ip.TryWriteBytes(b, out _)
            && (b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254));
    }
}
