namespace EdgeTwin.Core.Config;

/// <summary>
/// The brokers of a Kafka <c>bootstrap_servers</c> list as librdkafka reads them: comma-separated <c>host[:port]</c>,
/// each optionally after a listener scheme (<c>SSL://</c>), an IPv6 literal in brackets, port 9092 when none is given.
/// One reader for <c>check</c> and for the connectivity probe, so that what check accepts is what the probe dials (the
/// probe took <c>SSL://k1:9093</c> as the host name <c>SSL://k1</c>, and a broker without a port as no probe target).
/// </summary>
public static class KafkaBrokerList
{
    /// <summary>librdkafka's port for a broker given without one.</summary>
    public const int DefaultPort = 9092;

    private static readonly string[] ListenerSchemes = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];

    /// <summary>
    /// Every broker of <paramref name="bootstrapServers"/> in order; empty with <paramref name="problem"/> naming the
    /// first entry that is not a broker address.
    /// </summary>
    public static IReadOnlyList<(string Host, int Port)> Parse(string bootstrapServers, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(bootstrapServers);
        var brokers = new List<(string Host, int Port)>();
        foreach (var entry in bootstrapServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var broker = entry;
            var scheme = broker.IndexOf("://", StringComparison.Ordinal);
            if (scheme >= 0 && ListenerSchemes.Contains(broker[..scheme].ToLowerInvariant()))
            {
                broker = broker[(scheme + 3)..];
            }

            if (broker.Contains("://", StringComparison.Ordinal))
            {
                problem = NotABroker(entry);
                return [];
            }

            switch (HostPort.Split(broker, out var host, out var portText, out _))
            {
                case HostPort.Problem.UnbracketedIPv6:
                    problem = $"'{entry}': an IPv6 address goes in brackets, e.g. [fd00::1]:{DefaultPort}";
                    return [];
                case not HostPort.Problem.None:
                    problem = NotABroker(entry);
                    return [];
            }

            var port = DefaultPort;
            if (host.Length == 0 || host.AsSpan().IndexOfAny("/ \t[]") >= 0 || (portText is not null && !HostPort.TryParsePort(portText, out port)))
            {
                problem = NotABroker(entry);
                return [];
            }

            brokers.Add((host, port));
        }

        problem = brokers.Count == 0 ? "no broker address: give host:port[,host:port] (e.g. kafka1.example.net:9092)" : null;
        return brokers;
    }

    private static string NotABroker(string entry) =>
        $"'{entry}' is not a broker address: give host:port[,host:port] (e.g. kafka1.example.net:9092), without a URL scheme other than PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL://";
}
