using System.Globalization;
using System.Net.Sockets;
using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// One RFC 5424 line per alert change over a Unix datagram socket (<c>/dev/log</c>: journald or rsyslog), with the alert
/// as structured data (<c>[edgetwin@32473 id="…" rule="…" key="…" status="…"]</c>). Firing critical alerts log at
/// <c>crit</c>, warnings at <c>warning</c>, clears at <c>notice</c>.
/// </summary>
public sealed class SyslogSink : IAlertSink
{
    /// <summary>Private enterprise number used only as the SD-ID suffix (IANA "example" range is not allowed in SD-IDs).</summary>
    public const string SdId = "edgetwin@32473";

    private readonly SyslogSinkConfig _config;
    private readonly string _host;
    private readonly int _pid = Environment.ProcessId;
    private Socket? _socket;

    public SyslogSink(SyslogSinkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        var host = Environment.MachineName;
        _host = string.IsNullOrEmpty(host) ? "-" : host;
    }

    public string Name => _config.Name;

    public bool FollowsState => false;

    public async Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        var socket = _socket;
        if (socket is null)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(_config.Socket), cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            _socket = socket;
        }

        try
        {
            foreach (var a in alerts)
            {
                var line = Format(a, notification.Time);
                await socket.SendAsync(Encoding.UTF8.GetBytes(line), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (SocketException)
        {
            // The log daemon restarted: reconnect on the next attempt.
            _socket = null;
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The RFC 5424 message for one alert change.</summary>
    public string Format(AlertSnapshot a, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(a);
        var severity = a.Status switch
        {
            AlertStatus.Resolved => 5, // notice
            AlertStatus.Acknowledged => 6, // info
            _ => a.Severity switch { EventSeverity.Critical => 2, EventSeverity.Warning => 4, _ => 6 },
        };
        var pri = (_config.Facility * 8) + severity;
        var msgId = a.Status switch
        {
            AlertStatus.Firing => "ALERT_FIRING",
            AlertStatus.Resolved => "ALERT_RESOLVED",
            AlertStatus.Acknowledged => "ALERT_ACK",
            _ => "ALERT_FLAPPING",
        };
        var sb = new StringBuilder(256);
        sb.Append(CultureInfo.InvariantCulture, $"<{pri}>1 {time.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {_host} {_config.AppName} {_pid} {msgId} [{SdId}");
        Param(sb, "id", a.Id.ToString(CultureInfo.InvariantCulture));
        Param(sb, "rule", a.Rule);
        Param(sb, "key", a.Key);
        Param(sb, "status", AlertJson.StatusName(a.Status));
        Param(sb, "severity", AlertManager.SeverityName(a.Severity));
        Param(sb, "value", a.Value.ToString("R", CultureInfo.InvariantCulture));
        sb.Append("] ").Append(a.Summary);
        return sb.ToString();
    }

    private static void Param(StringBuilder sb, string name, string value)
    {
        sb.Append(' ').Append(name).Append("=\"");
        foreach (var c in value)
        {
            if (c is '"' or '\\' or ']')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        sb.Append('"');
    }

    public ValueTask DisposeAsync()
    {
        _socket?.Dispose();
        _socket = null;
        return ValueTask.CompletedTask;
    }
}
