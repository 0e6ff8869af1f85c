using System.Globalization;
using System.Net;
using System.Threading.Channels;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Notifications;
using EdgeTwin.Snmp.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>Where the trap listener listens and whom it believes.</summary>
public sealed record SnmpTrapSourceOptions
{
    /// <summary>Listen address; 162 needs CAP_NET_BIND_SERVICE (the systemd unit grants it).</summary>
    public IPEndPoint EndPoint { get; init; } = new(IPAddress.Any, 162);

    public IReadOnlyCollection<string> Communities { get; init; } = ["public"];

    public IReadOnlyCollection<SnmpV3User> Users { get; init; } = [];

    /// <summary>Sender address → device id, so an event names the device (unknown senders are named by address).</summary>
    public IReadOnlyDictionary<IPAddress, string> Devices { get; init; } = new Dictionary<IPAddress, string>();

    /// <summary>
    /// Devices given by host name (<c>udp:switch-a.example:161</c>), in file order: their traps come from an address, so
    /// the names are resolved when the listener starts and every <see cref="ResolveEvery"/> after. An address given in
    /// <see cref="Devices"/> stays with that device; among names resolving to one address, the device that reads
    /// interfaces names its traps, else the first.
    /// </summary>
    public IReadOnlyList<TrapSenderHost> Hosts { get; init; } = [];

    /// <summary>How often <see cref="Hosts"/> are resolved again (a switch renumbered in DNS).</summary>
    public TimeSpan ResolveEvery { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The most one host name's resolution may take.</summary>
    public TimeSpan ResolveTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The resolver (tests); by default the system's (<see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/>).</summary>
    public Func<string, CancellationToken, Task<IPAddress[]>> Resolve { get; init; } = Dns.GetHostAddressesAsync;

    /// <summary>Trap OIDs (prefix match) raised as Critical, e.g. a UPS on battery; everything else is Warning.</summary>
    public IReadOnlyCollection<string> CriticalTrapOids { get; init; } = [];

    /// <summary>Events buffered between the listener and the sink; beyond it the oldest are dropped and counted.</summary>
    public int Capacity { get; init; } = 1024;
}

/// <summary>A device configured by host name, whose traps are to be named by it.</summary>
/// <param name="Interfaces">Its profile reads interfaces (ietf-if-mib): it names an address it shares with another device.</param>
public sealed record TrapSenderHost(string Host, string DeviceId, bool Interfaces);

/// <summary>
/// Push source turning SNMP traps and informs (v1, v2c, v3) into <see cref="EdgeEventKind.Trap"/> events at once, so a
/// UPS going on battery reaches the agent between polls. The receive loop never waits on the sink: notifications go
/// through a bounded channel.
/// </summary>
public sealed partial class SnmpTrapSource : IPushSource
{
    private readonly SnmpTrapSourceOptions _options;
    private readonly ILogger _logger;
    private readonly Oid[] _critical;

    // Sender address → device: the devices given by address, and those given by host name as last resolved.
    private IReadOnlyDictionary<IPAddress, string> _devices;
    // Per host name: its addresses at the last resolution that worked, and whether the last one failed (logged once).
    private readonly IPAddress[][] _hostAddresses;
    private readonly bool[] _hostFailing;

    public SnmpTrapSource(SnmpTrapSourceOptions options, ILogger<SnmpTrapSource>? logger = null)
    {
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _critical = options.CriticalTrapOids.Select(Oid.Parse).ToArray();
        _devices = options.Devices;
        _hostAddresses = options.Hosts.Select(_ => Array.Empty<IPAddress>()).ToArray();
        _hostFailing = new bool[options.Hosts.Count];
    }

    /// <summary>The device a trap from <paramref name="address"/> is named by, or null (tests).</summary>
    internal string? DeviceOf(IPAddress address) => Volatile.Read(ref _devices).GetValueOrDefault(address);

    /// <summary>
    /// Resolves every host name once (each within <see cref="SnmpTrapSourceOptions.ResolveTimeout"/>) and publishes the
    /// sender map. A name that fails keeps the addresses it had (a DNS outage does not unname a switch); the failure is
    /// logged once, and its recovery once.
    /// </summary>
    internal async Task ResolveHostsAsync(CancellationToken cancellationToken)
    {
        var hosts = _options.Hosts;
        for (var i = 0; i < hosts.Count; i++)
        {
            var host = hosts[i];
            string? failure;
            IPAddress[] addresses = [];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.ResolveTimeout);
            try
            {
                // WaitAsync as well: a resolver that ignores its token still ends our wait.
                addresses = await _options.Resolve(host.Host, timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
                failure = addresses.Length == 0 ? "no address" : null;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failure = $"no answer within {_options.ResolveTimeout.TotalSeconds:0.###} s";
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                failure = ex.SocketErrorCode.ToString();
            }
            catch (ArgumentException ex)
            {
                failure = ex.Message; // not a valid host name for the resolver: the other names go on
            }
            if (failure is not null)
            {
                if (!_hostFailing[i])
                {
                    _hostFailing[i] = true;
                    LogHostUnresolved(_logger, host.DeviceId, host.Host, failure, _hostAddresses[i].Length == 0 ? "by their address" : "by the device at its last known address");
                }
                continue;
            }
            if (_hostFailing[i])
            {
                _hostFailing[i] = false;
                LogHostResolved(_logger, host.DeviceId, host.Host);
            }
            _hostAddresses[i] = addresses.Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).ToArray();
        }
        Volatile.Write(ref _devices, Merge());
    }

    private Dictionary<IPAddress, string> Merge()
    {
        var merged = new Dictionary<IPAddress, (string Id, bool Interfaces, bool ByAddress)>();
        foreach (var (ip, id) in _options.Devices)
        {
            merged[ip] = (id, false, true);
        }
        for (var i = 0; i < _hostAddresses.Length; i++)
        {
            var host = _options.Hosts[i];
            foreach (var ip in _hostAddresses[i])
            {
                // As among devices given by address: the one that reads interfaces names the traps, else the first.
                if (!merged.TryGetValue(ip, out var existing) || (host.Interfaces && !existing.Interfaces && !existing.ByAddress))
                {
                    merged[ip] = (host.DeviceId, host.Interfaces, false);
                }
            }
        }
        return merged.ToDictionary(m => m.Key, m => m.Value.Id);
    }

    private async Task ResolveLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await ResolveHostsAsync(cancellationToken).ConfigureAwait(false);
                await Task.Delay(_options.ResolveEvery, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    public string Name => "snmp-traps";

    /// <summary>Set once listening (port 0 resolves to the real port).</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    public long Dropped => Interlocked.Read(ref _dropped);

    private long _dropped;

    public void RegisterSeries(SeriesRegistry registry)
    {
        // Traps are events, not series; the registry only lends the interface names the IF-MIB polls learn, so a
        // linkDown (which carries ifIndex, not ifName) names the port as the series do.
        ArgumentNullException.ThrowIfNull(registry);
        registry.SeriesAdded += (_, d) => LearnInterfaceName(d);
        foreach (var (_, d) in registry.Snapshot())
        {
            LearnInterfaceName(d);
        }
    }

    /// <summary>Interface names by device and ifIndex, from the series' <c>ifindex</c>/<c>if_name</c> tags (ietf-if-mib).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Device, string IfIndex), string> _interfaceNames = new();

    // Bounded: 64 switches of 1,000 ports; past it a trap names the port by its ifIndex only.
    private const int MaxInterfaceNames = 65_536;

    private void LearnInterfaceName(SeriesDescriptor d)
    {
        if (d.Tag(IfIndexTag) is { } index && d.Tag(IfNameTag) is { Length: > 0 } name
            && (_interfaceNames.Count < MaxInterfaceNames || _interfaceNames.ContainsKey((d.DeviceId, index))))
        {
            _interfaceNames[(d.DeviceId, index)] = name;
        }
    }

    /// <summary>The interface name the polls know for a device's ifIndex (tests, and the trap events).</summary>
    internal string? InterfaceName(string device, string ifIndex) => _interfaceNames.GetValueOrDefault((device, ifIndex));

    public async Task RunAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<EdgeEvent>(new BoundedChannelOptions(_options.Capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ => Interlocked.Increment(ref _dropped));
        await using var receiver = new SnmpNotificationReceiver(new SnmpNotificationReceiverOptions
        {
            EndPoint = _options.EndPoint,
            Communities = _options.Communities,
            Users = _options.Users,
        }, _logger); // its rejections and clock re-learns were logged nowhere
        LocalEndPoint = receiver.LocalEndPoint;
        receiver.NotificationReceived += (_, n) => channel.Writer.TryWrite(ToEvent(n));
        LogListening(_logger, receiver.LocalEndPoint);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Traps that come before the first resolution are named by address, as those of a name that does not resolve.
        var resolving = _options.Hosts.Count > 0 ? ResolveLoopAsync(stop.Token) : Task.CompletedTask;
        try
        {
            await foreach (var e in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await events.PublishAsync(e, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await resolving.ConfigureAwait(false);
        }
    }

    private EdgeEvent ToEvent(SnmpNotification n)
    {
        var address = n.V1?.AgentAddress is { } a && !a.Equals(IPAddress.Any) ? a : n.Source.Address;
        var devices = Volatile.Read(ref _devices);
        var device = devices.TryGetValue(n.Source.Address, out var d) ? d
            : devices.TryGetValue(address, out d) ? d : address.ToString();
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["trap_oid"] = n.TrapOid.ToNumericString(),
            ["version"] = n.Version.ToString(),
            ["pdu"] = n.PduType.ToString(),
            ["sender"] = n.Source.ToString(),
            ["uptime"] = n.Uptime.ToString(CultureInfo.InvariantCulture),
        };
        if (n.User is not null)
        {
            attributes["user"] = n.User;
        }
        foreach (var vb in n.Payload.Take(32))
        {
            attributes[vb.Oid.ToNumericString()] = SnmpFormatter.Format(vb.Value);
        }
        var critical = _critical.Any(c => n.TrapOid.StartsWith(c));
        if (LinkTrap(n, device, attributes, critical) is { } link)
        {
            return link;
        }

        var severity = critical ? EventSeverity.Critical : EventSeverity.Warning;
        return new EdgeEvent(EdgeEventKind.Trap, device, n.ReceivedAt, severity, $"SNMP trap {n.TrapOid.ToNumericString()} from {device}", attributes);
    }

    private const string IfIndexTag = "ifindex";
    private const string IfNameTag = "if_name";
    private static readonly Oid LinkDownOid = Oid.Parse("1.3.6.1.6.3.1.1.5.3");
    private static readonly Oid LinkUpOid = Oid.Parse("1.3.6.1.6.3.1.1.5.4");
    private static readonly Oid IfIndexColumn = Oid.Parse("1.3.6.1.2.1.2.2.1.1");
    private static readonly Oid IfDescrColumn = Oid.Parse("1.3.6.1.2.1.2.2.1.2");
    private static readonly Oid IfAdminStatusColumn = Oid.Parse("1.3.6.1.2.1.2.2.1.7");
    private static readonly Oid IfOperStatusColumn = Oid.Parse("1.3.6.1.2.1.2.2.1.8");
    private static readonly Oid IfNameColumn = Oid.Parse("1.3.6.1.2.1.31.1.1.1.1");

    /// <summary>
    /// linkDown/linkUp (RFC 2863; v1 generic traps 2/3 map to them) as one event per port: the source is
    /// <c>device/port</c>, so an <c>event</c> rule keeps one alert per port and the port's linkUp clears only its own;
    /// <c>link_down</c> is 1 only for a link that went down while the port is administratively up (a failure, not a
    /// port shut on purpose). Before, every such trap was "SNMP trap .1.3.6.1.6.3.1.1.5.3 from tor-a01", the port
    /// only in a varbind keyed by its OID, so no rule could tell ports apart or a shut port from a failed link.
    /// </summary>
    private EdgeEvent? LinkTrap(SnmpNotification n, string device, Dictionary<string, string> attributes, bool critical)
    {
        var down = n.TrapOid.Equals(LinkDownOid);
        if (!down && !n.TrapOid.Equals(LinkUpOid))
        {
            return null;
        }

        string? index = null, name = null, descr = null;
        long admin = 0, oper = 0;
        foreach (var vb in n.Payload)
        {
            if (vb.Oid.Length == IfIndexColumn.Length + 1 && vb.Oid.StartsWith(IfIndexColumn) && Whole(vb.Value) is { } i)
            {
                index = i.ToString(CultureInfo.InvariantCulture);
            }
            else if (InstanceOf(vb.Oid, IfAdminStatusColumn) is { } a)
            {
                index ??= a;
                admin = Whole(vb.Value) ?? 0;
            }
            else if (InstanceOf(vb.Oid, IfOperStatusColumn) is { } o)
            {
                index ??= o;
                oper = Whole(vb.Value) ?? 0;
            }
            else if (InstanceOf(vb.Oid, IfNameColumn) is { } nm)
            {
                index ??= nm;
                name = Text(vb.Value);
            }
            else if (InstanceOf(vb.Oid, IfDescrColumn) is { } ds)
            {
                index ??= ds;
                descr = Text(vb.Value);
            }
        }

        // The name the polls use (ifName) first, so the event and the interface's series say the same port.
        name = index is null ? name : InterfaceName(device, index) ?? name;
        name = string.IsNullOrWhiteSpace(name) ? (string.IsNullOrWhiteSpace(descr) ? null : descr) : name;
        var port = name ?? (index is null ? "?" : "ifIndex " + index);
        var shut = admin == 2;
        attributes["trap"] = down ? "linkDown" : "linkUp";
        attributes["device"] = device;
        attributes["link_down"] = down && !shut ? "1" : "0";
        if (index is not null)
        {
            attributes["if_index"] = index;
        }

        if (name is not null)
        {
            attributes["if_name"] = name;
        }

        if (admin != 0)
        {
            attributes["if_admin_status"] = admin.ToString(CultureInfo.InvariantCulture);
        }

        if (oper != 0)
        {
            attributes["if_oper_status"] = oper.ToString(CultureInfo.InvariantCulture);
        }

        var what = down ? (shut ? "link down, shut by admin" : "link down") : "link up";
        var status = admin != 0 || oper != 0 ? $", admin {StatusName(admin)}, oper {StatusName(oper)}" : "";
        var indexText = name is not null && index is not null ? $" (ifIndex {index}{status})" : status.Length > 0 ? $" ({status[2..]})" : "";
        var severity = critical ? EventSeverity.Critical : down && !shut ? EventSeverity.Warning : EventSeverity.Info;
        var source = index is null ? device : $"{device}/{port}";
        return new EdgeEvent(EdgeEventKind.Trap, source, n.ReceivedAt, severity, $"{device} port {port} {what}{indexText}", attributes) { Device = device };
    }

    /// <summary>The row index (one arc) of a column instance, or null when the OID is not in that column.</summary>
    private static string? InstanceOf(Oid oid, Oid column) =>
        oid.Length == column.Length + 1 && oid.StartsWith(column) ? oid[column.Length].ToString(CultureInfo.InvariantCulture) : null;

    private static long? Whole(SnmpValue value) =>
        value.Type is SnmpType.Integer or SnmpType.Gauge32 or SnmpType.Counter32 && value.TryGetNumber(out var d) ? (long)d : null;

    private static string? Text(SnmpValue value) =>
        value.Type == SnmpType.OctetString ? System.Text.Encoding.UTF8.GetString(value.AsBytes().Span).TrimEnd('\0').Trim() : null;

    private static string StatusName(long status) => status switch
    {
        1 => "up",
        2 => "down",
        3 => "testing",
        4 => "unknown",
        5 => "dormant",
        6 => "notPresent",
        7 => "lowerLayerDown",
        0 => "?",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "SNMP device {DeviceId}: its host name {Host} does not resolve ({Failure}); its traps are named {Naming} until it does (tried again every few minutes, logged again only after it resolved)")]
    private static partial void LogHostUnresolved(ILogger logger, string deviceId, string host, string failure, string naming);

    [LoggerMessage(Level = LogLevel.Information, Message = "SNMP device {DeviceId}: its host name {Host} resolves again; its traps are named by the device")]
    private static partial void LogHostResolved(ILogger logger, string deviceId, string host);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening for SNMP traps and informs on {EndPoint}")]
    private static partial void LogListening(ILogger logger, IPEndPoint endPoint);
}
