using System.Globalization;

namespace EdgeTwin.Core.Config;

/// <summary>
/// <c>HOST:PORT</c> for messages, logs and status, as URLs write it: an IPv6 literal in brackets (<c>[::1]:1883</c>,
/// <c>[fd00::20]:502</c>). Before, an IPv6 broker or device printed as <c>::1:1883</c>, where the port reads as the
/// address's last group and the text pastes back into no config key.
/// </summary>
public static class EndpointText
{
    /// <summary><paramref name="host"/> (a name, an IPv4 or IPv6 literal, bracketed or not) and <paramref name="port"/>.</summary>
    public static string Of(string host, int port)
    {
        ArgumentNullException.ThrowIfNull(host);
        return string.Create(CultureInfo.InvariantCulture, $"{Host(host)}:{port}");
    }

    /// <summary>The host as it goes before a <c>:PORT</c> or into a URL: IPv6 literals bracketed, once.</summary>
    public static string Host(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? "[" + host + "]" : host;
    }
}
