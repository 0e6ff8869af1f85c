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

    /// <summary>
    /// A <c>hosts:</c> list (the MQTT uplink's, an alert sink's): each entry as <see cref="Parse"/>, in order. An entry
    /// that does not parse, or names a broker an earlier one names (<see cref="SameAs"/>), is left out and told to
    /// <paramref name="problem"/> with its index (-1: the list itself, when it is empty); <paramref name="listName"/> names
    /// the list in the messages (<c>Hosts</c>, <c>hosts</c>).
    /// </summary>
    public static List<MqttBrokerAddress> ParseList(IReadOnlyList<string> entries, int defaultPort, string listName, Action<int, string> problem)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(problem);
        if (entries.Count == 0)
        {
            problem(-1, "is empty: list at least one broker, or use host: for a single one");
            return [];
        }

        var servers = new List<MqttBrokerAddress>(entries.Count);
        var indexes = new List<int>(entries.Count);
        for (var i = 0; i < entries.Count; i++)
        {
            if (Parse(entries[i], defaultPort, out var error) is not { } server)
            {
                problem(i, error!);
            }
            else if (servers.FindIndex(s => s.SameAs(server)) is var first and >= 0)
            {
                problem(i, $"'{entries[i]}' is the same broker as {listName}[{indexes[first]}] ({servers[first]}): each broker once");
            }
            else
            {
                servers.Add(server);
                indexes.Add(i);
            }
        }

        return servers;
    }

    /// <summary>The same broker: host names compare without case, ports exactly.</summary>
    public bool SameAs(MqttBrokerAddress other) => Port == other.Port && string.Equals(Host, other.Host, StringComparison.OrdinalIgnoreCase);
}
