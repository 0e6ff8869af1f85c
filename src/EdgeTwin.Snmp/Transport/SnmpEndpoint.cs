using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Snmp.Transport;

/// <summary>Parses net-snmp style agent addresses: [udp:]HOST[:PORT], udp6:[ADDR]:PORT, udp6:ADDR.</summary>
public static class SnmpEndpoint
{
    public const int DefaultPort = 161;

    public static async Task<IPEndPoint> ResolveAsync(string agent, int defaultPort, CancellationToken cancellationToken)
    {
        var (host, port, v6) = Split(agent, defaultPort);
        if (IPAddress.TryParse(host, out var ip))
        {
            return new IPEndPoint(ip, port);
        }
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(host, v6 ? AddressFamily.InterNetworkV6 : AddressFamily.Unspecified, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            throw new SnmpCommunicationException($"cannot resolve agent host '{host}': {ex.SocketErrorCode}", ex);
        }
        var pick = addresses.FirstOrDefault(a => v6 ? a.AddressFamily == AddressFamily.InterNetworkV6 : a.AddressFamily == AddressFamily.InterNetwork)
            ?? addresses.FirstOrDefault()
            ?? throw new SnmpCommunicationException($"agent host '{host}' has no address");
        return new IPEndPoint(pick, port);
    }

    /// <summary>Splits without resolving; throws <see cref="FormatException"/> naming the problem.</summary>
    public static (string Host, int Port, bool V6) Split(string agent, int defaultPort = DefaultPort)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agent);
        var s = agent.Trim();
        var v6 = false;
        if (s.StartsWith("udp6:", StringComparison.OrdinalIgnoreCase))
        {
            v6 = true;
            s = s[5..];
        }
        else if (s.StartsWith("udp:", StringComparison.OrdinalIgnoreCase))
        {
            s = s[4..];
        }
        else if (s.Contains(':', StringComparison.Ordinal) && s.StartsWith("tcp", StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException($"agent '{agent}': only UDP transports are supported");
        }
        string host;
        var portText = "";
        if (s.StartsWith('['))
        {
            var close = s.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new FormatException($"agent '{agent}': missing ']'");
            }
            host = s[1..close];
            var rest = s[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    throw new FormatException($"agent '{agent}': expected ':PORT' after ']'");
                }
                portText = rest[1..];
            }
            v6 = true;
        }
        else if (v6 || s.Count(c => c == ':') > 1)
        {
            host = s; // bare IPv6 address, no port
            v6 = true;
        }
        else
        {
            var colon = s.LastIndexOf(':');
            host = colon >= 0 ? s[..colon] : s;
            portText = colon >= 0 ? s[(colon + 1)..] : "";
        }
        var port = defaultPort;
        if (portText.Length > 0 && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            throw new FormatException($"agent '{agent}': bad port '{portText}'");
        }
        if (host.Length == 0)
        {
            throw new FormatException($"agent '{agent}': missing host");
        }
        return (host, port, v6);
    }
}
