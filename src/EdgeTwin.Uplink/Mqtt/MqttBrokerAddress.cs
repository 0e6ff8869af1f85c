using System.Globalization;

namespace EdgeTwin.Uplink.Mqtt;

/// <summary>One broker of the MQTT uplink's list: its host (a name or an IP literal, IPv6 without brackets) and port.</summary>
public readonly record struct MqttBrokerAddress(string Host, int Port)
{
    // A URL's or a path's characters: surely no host (an underscore stays the resolver's call, as for host:).
    private static readonly System.Buffers.SearchValues<char> NotInHost = System.Buffers.SearchValues.Create("/ \t?#@");

    /// <summary><c>host:port</c> as URLs write it (<c>[fd00::20]:1883</c>).</summary>
    public override string ToString() => EdgeTwin.Core.Config.EndpointText.Of(Host, Port);

    /// <summary>
    /// One entry of <c>hosts:</c>: <c>host</c>, <c>host:port</c>, <c>[v6]</c> or <c>[v6]:port</c>; without a port,
    /// <paramref name="defaultPort"/>. Null with <paramref name="error"/> saying what is wrong and how to write it.
    /// </summary>
    public static MqttBrokerAddress? Parse(string? entry, int defaultPort, out string? error)
    {
        error = null;
        var text = entry?.Trim() ?? "";
        if (text.Length == 0)
        {
            error = "is empty: give a host name or IP address, with :port when it is not the port: key's";
            return null;
        }

        if (text.Contains("://", StringComparison.Ordinal) || text.AsSpan().IndexOfAny(NotInHost) >= 0)
        {
            error = $"'{text}' is not host[:port]: give the broker's host (and port) alone, TLS in tls:, e.g. broker-a.example.net:8883";
            return null;
        }

        string host;
        string? portText = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || !System.Net.IPAddress.TryParse(text[1..close], out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"'{text}' is not [IPv6 address][:port]";
                return null;
            }

            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    error = $"'{text}' has '{rest}' after the address: write [IPv6 address]:port";
                    return null;
                }

                portText = rest[1..];
            }
        }
        else
        {
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0 && text.LastIndexOf(':') != colon)
            {
                // Two colons: an IPv6 literal, whose last group would read as a port.
                error = $"'{text}': write an IPv6 address in brackets, [{text}] or [{text}]:port";
                return null;
            }

            host = colon >= 0 ? text[..colon] : text;
            portText = colon >= 0 ? text[(colon + 1)..] : null;
            if (host.Length == 0)
            {
                error = $"'{text}' has no host";
                return null;
            }
        }

        var port = defaultPort;
        if (portText is not null
            && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = $"'{text}' has port '{portText}': must be 1..65535";
            return null;
        }

        return new MqttBrokerAddress(host, port);
    }

    /// <summary>The same broker: host names compare without case, ports exactly.</summary>
    public bool SameAs(MqttBrokerAddress other) => Port == other.Port && string.Equals(Host, other.Host, StringComparison.OrdinalIgnoreCase);
}
