using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Security;
using LibVersion = EdgeTwin.Snmp.Messages.SnmpVersion;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// Builds <see cref="SnmpSource"/>s for devices with an SNMP profile. All devices share one <see cref="SnmpClient"/>
/// (one UDP socket, requests matched by id), created on the first poll so that building sources does no I/O.
/// </summary>
public sealed class SnmpSourceFactory : ISourceFactory, IAsyncDisposable
{
    private readonly Lazy<SnmpClient> _client = new(() => new SnmpClient(), LazyThreadSafetyMode.ExecutionAndPublication);

    public IReadOnlyCollection<DeviceProtocol> Protocols { get; } = [DeviceProtocol.Snmp];

    public DeviceSources Create(SourceContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var device = context.Device;
        if (context.Profile.Protocol != DeviceProtocol.Snmp)
        {
            throw new SourceCreationException(device.Id, $"profile '{context.Profile.Id}' is {context.Profile.Protocol}, not snmp");
        }
        if (device.Address.Scheme is not (AddressScheme.Udp or AddressScheme.Udp6))
        {
            throw new SourceCreationException(device.Id, $"address '{device.Address}' is not udp: or udp6: (SNMP runs over UDP)");
        }
        var credentials = context.Credentials
            ?? throw new SourceCreationException(device.Id, "SNMP devices need credentials: (a community for v1/v2c, a user for v3)");
        var plan = SnmpPollPlan.Build(device.Id, context.Profile);
        var target = Target(device, credentials);
        var source = new SnmpSource(device, plan, target, () => _client.Value, context.LoggerFactory, context.TimeProvider, context.StateDirectory);
        return DeviceSources.Of(source);
    }

    /// <summary>The request settings of a device: one poll's timeout is split over the first attempt and one retry.</summary>
    internal static SnmpTargetTemplate Target(DeviceConfig device, CredentialsConfig c)
    {
        var perAttempt = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, device.Timeout.Ticks / 2));
        var version = c.Version switch
        {
            SnmpVersion.V1 => LibVersion.V1,
            SnmpVersion.V2c => LibVersion.V2c,
            _ => LibVersion.V3,
        };
        SnmpV3User? user = null;
        if (version == LibVersion.V3)
        {
            if (string.IsNullOrEmpty(c.User))
            {
                throw new SourceCreationException(device.Id, $"credentials '{c.Name}': SNMPv3 needs a user");
            }
            var auth = c.Level == Core.Config.SnmpSecurityLevel.NoAuthNoPriv ? EdgeTwin.Snmp.Security.SnmpAuthProtocol.None : ToLibrary(c.Auth);
            var priv = c.Level == Core.Config.SnmpSecurityLevel.AuthPriv ? ToLibrary(c.Priv) : EdgeTwin.Snmp.Security.SnmpPrivProtocol.None;
            try
            {
                user = new SnmpV3User(c.User, auth, c.AuthPassword, priv, c.PrivPassword);
            }
            catch (ArgumentException ex)
            {
                throw new SourceCreationException(device.Id, $"credentials '{c.Name}': {ex.Message}", ex);
            }
        }
        else if (string.IsNullOrEmpty(c.Community))
        {
            throw new SourceCreationException(device.Id, $"credentials '{c.Name}': SNMP {c.Version} needs a community");
        }
        return new SnmpTargetTemplate(version, c.Community ?? "", user, c.Context ?? "", perAttempt, 1);
    }

    // By name, not by number: the config's enums and the SNMP library's are declared apart (the library references no
    // other project), and a cast by number would map to the wrong protocol the day either list is reordered.
    internal static EdgeTwin.Snmp.Security.SnmpAuthProtocol ToLibrary(Core.Config.SnmpAuthProtocol auth) => auth switch
    {
        Core.Config.SnmpAuthProtocol.None => EdgeTwin.Snmp.Security.SnmpAuthProtocol.None,
        Core.Config.SnmpAuthProtocol.Md5 => EdgeTwin.Snmp.Security.SnmpAuthProtocol.Md5,
        Core.Config.SnmpAuthProtocol.Sha1 => EdgeTwin.Snmp.Security.SnmpAuthProtocol.Sha1,
        Core.Config.SnmpAuthProtocol.Sha224 => EdgeTwin.Snmp.Security.SnmpAuthProtocol.Sha224,
        Core.Config.SnmpAuthProtocol.Sha256 => EdgeTwin.Snmp.Security.SnmpAuthProtocol.Sha256,
        Core.Config.SnmpAuthProtocol.Sha384 => EdgeTwin.Snmp.Security.SnmpAuthProtocol.Sha384,
        Core.Config.SnmpAuthProtocol.Sha512 => EdgeTwin.Snmp.Security.SnmpAuthProtocol.Sha512,
        _ => throw new ArgumentOutOfRangeException(nameof(auth), auth, "SNMPv3 authentication protocol the SNMP library does not know"),
    };

    internal static EdgeTwin.Snmp.Security.SnmpPrivProtocol ToLibrary(Core.Config.SnmpPrivProtocol priv) => priv switch
    {
        Core.Config.SnmpPrivProtocol.None => EdgeTwin.Snmp.Security.SnmpPrivProtocol.None,
        Core.Config.SnmpPrivProtocol.Des => EdgeTwin.Snmp.Security.SnmpPrivProtocol.Des,
        Core.Config.SnmpPrivProtocol.Aes128 => EdgeTwin.Snmp.Security.SnmpPrivProtocol.Aes128,
        Core.Config.SnmpPrivProtocol.Aes192 => EdgeTwin.Snmp.Security.SnmpPrivProtocol.Aes192,
        Core.Config.SnmpPrivProtocol.Aes256 => EdgeTwin.Snmp.Security.SnmpPrivProtocol.Aes256,
        Core.Config.SnmpPrivProtocol.Aes192Reeder => EdgeTwin.Snmp.Security.SnmpPrivProtocol.Aes192Reeder,
        Core.Config.SnmpPrivProtocol.Aes256Reeder => EdgeTwin.Snmp.Security.SnmpPrivProtocol.Aes256Reeder,
        _ => throw new ArgumentOutOfRangeException(nameof(priv), priv, "SNMPv3 privacy protocol the SNMP library does not know"),
    };

    public async ValueTask DisposeAsync()
    {
        if (_client.IsValueCreated)
        {
            await _client.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Everything of a <see cref="SnmpTarget"/> except the resolved address.</summary>
internal sealed record SnmpTargetTemplate(LibVersion Version, string Community, SnmpV3User? User, string Context, TimeSpan Timeout, int Retries)
{
    public SnmpTarget For(System.Net.IPEndPoint endPoint) => new()
    {
        EndPoint = endPoint,
        Version = Version,
        Community = Community,
        User = User,
        ContextName = Context,
        Timeout = Timeout,
        Retries = Retries,
    };
}
