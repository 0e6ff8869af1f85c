using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Prometheus;

/// <summary>
/// The <c>metrics:</c> section: <c>prometheus.listen</c> (<c>HOST:PORT</c> with an IP address, <c>[IPv6]:PORT</c>, or
/// <c>localhost:PORT</c>; off when absent) and <c>prometheus.max_label_sets</c> (per metric, default 1000). Read by the
/// same code for <c>edgetwin check</c> and at start.
/// </summary>
public sealed record MetricsConfig
{
    public const string SectionName = "metrics";

    public const int DefaultMaxLabelSets = 1000;

    /// <summary>Where the Prometheus endpoint listens; null: no endpoint.</summary>
    public IPEndPoint? Listen { get; init; }

    /// <summary>Label sets kept per metric before further ones are dropped and counted.</summary>
    public int MaxLabelSets { get; init; } = DefaultMaxLabelSets;

    /// <summary>The config key of <see cref="Listen"/>, for messages.</summary>
    public const string ListenKey = "metrics.prometheus.listen";

    public static MetricsConfig Off { get; } = new();

    /// <summary>Reads the section of a loaded config (absent: off); throws <see cref="ConfigException"/> with every problem.</summary>
    public static MetricsConfig From(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Sections.TryGetValue(SectionName, out var section) ? ConfigReader.ReadOrThrow(section, Read) : Off;
    }

    internal static MetricsConfig Read(ConfigReader section)
    {
        var prometheus = section.Section("prometheus");
        section.ReportUnknownKeys();
        if (prometheus is null)
        {
            return Off;
        }

        IPEndPoint? listen = null;
        var text = prometheus.String("listen", required: true);
        if (text is not null && prometheus.Node("listen") is { } node)
        {
            if (ParseListen(text, out var endpoint) is { } problem)
            {
                prometheus.Diagnostics.Add(node, problem);
            }
            else
            {
                listen = endpoint;
                if (!IPAddress.IsLoopback(endpoint!.Address))
                {
                    prometheus.Diagnostics.AddWarning(node,
                        $"'{text}' is not a loopback address: the metrics endpoint has no authentication and no TLS, so anyone who reaches port {endpoint.Port} reads the agent's metrics (device ids, rule names); listen on 127.0.0.1 and scrape through a reverse proxy or an SSH tunnel, or firewall the port to the Prometheus server");
                }
            }
        }

        var max = prometheus.Int("max_label_sets", min: 1, max: 100_000) ?? DefaultMaxLabelSets;
        prometheus.ReportUnknownKeys();
        return new MetricsConfig { Listen = listen, MaxLabelSets = max };
    }

    /// <summary>
    /// Parses <c>HOST:PORT</c>: an IPv4 address, <c>[IPv6]</c> or <c>localhost</c>, and a port 1–65535. Returns the
    /// problem, or null with <paramref name="endpoint"/> set.
    /// </summary>
    public static string? ParseListen(string text, out IPEndPoint? endpoint)
    {
        endpoint = null;
        const string Expected = "expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface";
        // The port is required and comes last: without one (9464, 127.0.0.1:, :9464) nothing else is worth saying.
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            return $"'{text}': {Expected}";
        }

        // The split and the port are the device addresses' (HostPort); a host name is not, as the listen binds an address.
        switch (HostPort.Split(text, out var host, out var portText, out _))
        {
            case HostPort.Problem.UnbracketedIPv6:
                return $"'{text}': an IPv6 address needs brackets, e.g. [::1]:9464";
            case HostPort.Problem.UnclosedBracket or HostPort.Problem.JunkAfterBracket:
            case HostPort.Problem.None when portText is null:
                return $"'{text}': {Expected}";
        }

        IPAddress? address;
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (!IPAddress.TryParse(host, out address) || (address.AddressFamily == AddressFamily.InterNetwork && host.Count(c => c == '.') != 3))
        {
            // TryParse takes "10" for 0.0.0.10: only the dotted form is an address here.
            return $"'{text}': '{host}' is not an IP address (a host name is not resolved here); {Expected}";
        }

        if (!HostPort.TryParsePort(portText!, out var port))
        {
            return $"'{text}': port '{portText}' is not a number from 1 to 65535";
        }

        endpoint = new IPEndPoint(address, port);
        return null;
    }
}

/// <summary>Validates <c>metrics</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class MetricsSectionValidator : IConfigSectionValidator
{
    public string Section => MetricsConfig.SectionName;

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        MetricsConfig.Read(section);
    }

    public string? Describe(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var config = MetricsConfig.Read(section);
        return config.Listen is { } listen ? $"Prometheus metrics at http://{listen}/metrics" : null;
    }
}
