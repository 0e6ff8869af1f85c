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

    /// <summary>Trap OIDs (prefix match) raised as Critical, e.g. a UPS on battery; everything else is Warning.</summary>
    public IReadOnlyCollection<string> CriticalTrapOids { get; init; } = [];

    /// <summary>Events buffered between the listener and the sink; beyond it the oldest are dropped and counted.</summary>
    public int Capacity { get; init; } = 1024;
}

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

    public SnmpTrapSource(SnmpTrapSourceOptions options, ILogger<SnmpTrapSource>? logger = null)
    {
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _critical = options.CriticalTrapOids.Select(Oid.Parse).ToArray();
    }

    public string Name => "snmp-traps";

    /// <summary>Set once listening (port 0 resolves to the real port).</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    public long Dropped => Interlocked.Read(ref _dropped);

    private long _dropped;

    public void RegisterSeries(SeriesRegistry registry)
    {
        // Traps are events, not series.
    }

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
    }

    private EdgeEvent ToEvent(SnmpNotification n)
    {
        var address = n.V1?.AgentAddress is { } a && !a.Equals(IPAddress.Any) ? a : n.Source.Address;
        var device = _options.Devices.TryGetValue(n.Source.Address, out var d) ? d
            : _options.Devices.TryGetValue(address, out d) ? d : address.ToString();
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
        var severity = _critical.Any(c => n.TrapOid.StartsWith(c)) ? EventSeverity.Critical : EventSeverity.Warning;
        return new EdgeEvent(EdgeEventKind.Trap, device, n.ReceivedAt, severity, $"SNMP trap {n.TrapOid.ToNumericString()} from {device}", attributes);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening for SNMP traps and informs on {EndPoint}")]
    private static partial void LogListening(ILogger logger, IPEndPoint endPoint);
}
