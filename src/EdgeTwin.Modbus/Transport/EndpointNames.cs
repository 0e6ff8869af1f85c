using System.Globalization;

namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// The <c>tcp://HOST:PORT</c> names of transports (messages, logger categories, metric tags): an IPv6 literal in
/// brackets, as URLs write it. Before, a device on <c>::1</c> was <c>tcp://::1:502</c>, the port read as the address's
/// last group. (This library does not reference EdgeTwin.Core, whose EndpointText the agent uses.)
/// </summary>
internal static class EndpointNames
{
    public static string Of(string scheme, string host, int port) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{scheme}://{(host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? "[" + host + "]" : host)}:{port}");
}
