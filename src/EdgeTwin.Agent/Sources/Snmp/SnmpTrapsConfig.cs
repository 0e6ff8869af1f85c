using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Security;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// The <c>snmp_traps:</c> section: the agent's trap and inform listener (<see cref="SnmpTrapSource"/>), off when the
/// section is absent. <c>address</c> (IP to listen on, default <c>::</c>, every IPv6 and IPv4 address, or <c>0.0.0.0</c>
/// where the kernel has no IPv6),
/// <c>port</c> (default 162; 0 = any free port), <c>credentials</c> (required: names under <c>credentials:</c> whose
/// community, v1/v2c, or user, v3, a trap must carry), <c>critical</c> (trap OIDs, prefix match, raised as Critical),
/// <c>capacity</c> (events buffered, 16–100000). Read by the same code for <c>edgetwin check</c> and at start.
/// Before, the listener existed but nothing started it: no trap reached a running agent.
/// </summary>
public sealed record SnmpTrapsConfig
{
    public const string SectionName = "snmp_traps";

    public IPAddress Address { get; init; } = DefaultAddress;

    /// <summary>
    /// <c>::</c> on a dual-stack socket (IPv6 and IPv4 senders alike), or <c>0.0.0.0</c> when the kernel has no IPv6.
    /// Before, it was always <c>0.0.0.0</c>: on an IPv6-only management network no trap ever reached the agent unless the
    /// site config said <c>address: "::"</c>.
    /// </summary>
    public static IPAddress DefaultAddress => Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any;

    public int Port { get; init; } = 162;

    public IReadOnlyList<string> Credentials { get; init; } = [];

    public IReadOnlyList<string> Critical { get; init; } = [];

    public int Capacity { get; init; } = 1024;

    /// <summary>The section of a loaded config, or null when absent (no listener); throws <see cref="ConfigException"/> with every problem.</summary>
    public static SnmpTrapsConfig? From(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Sections.TryGetValue(SectionName, out var section))
        {
            return null;
        }

        var diagnostics = new ConfigDiagnostics();
        var reader = new ConfigReader(section, diagnostics);
        var result = Read(reader);
        CheckReferences(reader, config);
        if (!diagnostics.IsEmpty)
        {
            throw new ConfigException(diagnostics.Sorted());
        }

        return result;
    }

    internal static SnmpTrapsConfig Read(ConfigReader section)
    {
        var address = DefaultAddress;
        if (section.String("address") is { } text && section.Node("address") is { } addressNode)
        {
            if (!IPAddress.TryParse(text, out var parsed))
            {
                section.Diagnostics.Add(addressNode, $"address '{text}' is not an IP address (0.0.0.0 listens on every IPv4 address, :: on every address)");
            }
            else
            {
                address = parsed;
            }
        }

        var critical = new List<string>();
        if (section.Sequence("critical") is { } list)
        {
            foreach (var item in list.Items)
            {
                if (item is not ConfigScalar { IsNull: false } scalar || !Oid.TryParse(scalar.Value, out _))
                {
                    section.Diagnostics.Add(item, $"expected a numeric trap OID (e.g. .1.3.6.1.4.1.318.0.5), got {ConfigReader.Describe(item)}");
                }
                else
                {
                    critical.Add(scalar.Value);
                }
            }
        }

        var result = new SnmpTrapsConfig
        {
            Address = address,
            Port = section.Int("port", min: 0, max: 65535) ?? 162,
            Credentials = [.. (section.IdList("credentials", required: true) ?? []).Select(c => c.Value)],
            Critical = critical,
            Capacity = section.Int("capacity", min: 16, max: 100_000) ?? 1024,
        };
        section.ReportUnknownKeys();
        return result;
    }

    internal static void CheckReferences(ConfigReader section, SiteConfig config)
    {
        foreach (var (name, node) in section.IdList("credentials") ?? [])
        {
            if (!config.Credentials.TryGetValue(name, out var c))
            {
                var known = string.Join(", ", config.Credentials.Keys.Order(StringComparer.Ordinal));
                section.Diagnostics.Add(node, $"credentials '{name}' are not defined under credentials: (defined: {(known.Length == 0 ? "none" : known)})");
            }
            else if (c.Version == Core.Config.SnmpVersion.V3 && c.Level == Core.Config.SnmpSecurityLevel.NoAuthNoPriv)
            {
                // Before, accepted without a word: any host that reaches the port could raise alerts under that user name.
                section.Diagnostics.AddWarning(node, $"credentials '{name}' are v3 noAuthNoPriv: the listener accepts traps and informs from any host that names user '{c.User}', unauthenticated, and raises events and alerts from them; use level authNoPriv or authPriv");
            }
        }
    }

    /// <summary>The listener's options: communities and v3 users from the named credentials, senders named by device.</summary>
    public SnmpTrapSourceOptions ToOptions(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var communities = new List<string>();
        var users = new List<SnmpV3User>();
        foreach (var name in Credentials)
        {
            var c = config.Credentials[name];
            if (c.Version == Core.Config.SnmpVersion.V3)
            {
                var auth = c.Level == Core.Config.SnmpSecurityLevel.NoAuthNoPriv ? EdgeTwin.Snmp.Security.SnmpAuthProtocol.None : SnmpSourceFactory.ToLibrary(c.Auth);
                var priv = c.Level == Core.Config.SnmpSecurityLevel.AuthPriv ? SnmpSourceFactory.ToLibrary(c.Priv) : EdgeTwin.Snmp.Security.SnmpPrivProtocol.None;
                users.Add(new SnmpV3User(c.User ?? "", auth, c.AuthPassword, priv, c.PrivPassword));
            }
            else if (!string.IsNullOrEmpty(c.Community))
            {
                communities.Add(c.Community);
            }
        }

        return new SnmpTrapSourceOptions
        {
            EndPoint = new IPEndPoint(Address, Port),
            Communities = communities,
            Users = users,
            Devices = Senders(config),
            Hosts = Hosts(config),
            CriticalTrapOids = Critical,
            Capacity = Capacity,
        };
    }

    /// <summary>
    /// Sender address → device id, from the enabled SNMP devices given by IP address. Where devices share an address
    /// (a switch read with ietf-if-mib and entity-sensor-temperature) the one whose profile reads interfaces names its
    /// traps, so a linkDown finds the port names its polls learned; otherwise the first in the file.
    /// </summary>
    internal static Dictionary<IPAddress, string> Senders(SiteConfig config)
    {
        var senders = new Dictionary<IPAddress, (string Id, bool Interfaces)>();
        foreach (var device in config.Devices)
        {
            if (!device.Enabled || device.Address.Scheme is not (AddressScheme.Udp or AddressScheme.Udp6)
                || !IPAddress.TryParse(device.Address.Host?.Trim('[', ']'), out var ip))
            {
                continue;
            }

            ip = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
            var interfaces = ReadsInterfaces(config, device);
            if (!senders.TryGetValue(ip, out var existing) || (interfaces && !existing.Interfaces))
            {
                senders[ip] = (device.Id, interfaces);
            }
        }

        return senders.ToDictionary(s => s.Key, s => s.Value.Id);
    }

    /// <summary>The enabled SNMP devices given by host name, whose traps are named by them once the name resolves.</summary>
    internal static List<TrapSenderHost> Hosts(SiteConfig config)
    {
        var hosts = new List<TrapSenderHost>();
        foreach (var device in config.Devices)
        {
            if (device.Enabled && device.Address.Scheme is (AddressScheme.Udp or AddressScheme.Udp6)
                && device.Address.Host is { Length: > 0 } host && !IPAddress.TryParse(host.Trim('[', ']'), out _))
            {
                hosts.Add(new TrapSenderHost(host, device.Id, ReadsInterfaces(config, device)));
            }
        }
        return hosts;
    }

    private static bool ReadsInterfaces(SiteConfig config, DeviceConfig device) =>
        config.Profiles.TryGetValue(device.Profile, out var p) && p.AllMetrics.Any(m => string.Equals(m.Role, "net.oper_status", StringComparison.Ordinal));

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"SNMP traps on {new IPEndPoint(Address, Port)} (credentials {string.Join(", ", Credentials)})");
}

/// <summary>Validates <c>snmp_traps</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class SnmpTrapsSectionValidator : IConfigSectionValidator
{
    public string Section => SnmpTrapsConfig.SectionName;

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        SnmpTrapsConfig.Read(section);
    }

    public void ValidateReferences(ConfigReader section, SiteReferences site)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(site);
        SnmpTrapsConfig.CheckReferences(section, site.Config);
    }

    public string? Describe(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        return SnmpTrapsConfig.Read(section).Describe();
    }
}
