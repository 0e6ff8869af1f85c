using System.Globalization;
using System.Net.Sockets;
using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// One RFC 5424 line per alert change over a Unix datagram socket (<c>/dev/log</c>: journald or rsyslog), with the alert
/// as structured data (<c>[edgetwin@32473 id="…" rule="…" key="…" status="…" … site="…" room="…" rack="…" fired_at="…"]</c>;
/// the rule's <c>action="…"</c> and <c>runbook_url="…"</c> when it has them, so the text stays the one-line summary).
/// Firing critical alerts log at <c>crit</c>, warnings at <c>warning</c>, clears at <c>notice</c>. The line's timestamp is
/// the alert's own change time (fired, resolved, acknowledged), not when its group's message went out.
/// </summary>
public sealed class SyslogSink : IAlertSink
{
    /// <summary>Private enterprise number used only as the SD-ID suffix (IANA "example" range is not allowed in SD-IDs).</summary>
    public const string SdId = "edgetwin@32473";

    private readonly SyslogSinkConfig _config;
    private readonly string _host;
    private readonly string? _site;
    private readonly int _pid = Environment.ProcessId;
    private Socket? _socket;

    public SyslogSink(SyslogSinkConfig config, string? site = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        var host = Environment.MachineName;
        _host = string.IsNullOrEmpty(host) ? "-" : host;
    }

    public string Name => _config.Name;

    public bool FollowsState => false;

    // The journal records every change at its own time (a flap's raise, clear and raise again); nothing is superseded.
    public bool SendsLatestStateOnly => false;

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
                var line = Format(a);
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

    /// <summary>
    /// When the change happened: a group's message goes out up to <c>group_interval</c> later, and five changes of a
    /// flapping alert all carried that one flush time.
    /// </summary>
    public static DateTimeOffset ChangeTime(AlertSnapshot a)
    {
        ArgumentNullException.ThrowIfNull(a);
        return a.Status switch
        {
            AlertStatus.Firing => a.FiredAt ?? a.Time,
            AlertStatus.Resolved => a.ResolvedAt ?? a.Time,
            AlertStatus.Acknowledged => a.AckedAt ?? a.Time,
            _ => a.Time,
        };
    }

    /// <summary>The RFC 5424 message for one alert change, stamped with its <see cref="ChangeTime"/>.</summary>
    public string Format(AlertSnapshot a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var time = ChangeTime(a);
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
        sb.Append(CultureInfo.InvariantCulture, $"<{pri}>1 {WireTime.Instant(time)} {_host} {_config.AppName} {_pid} {msgId} [{SdId}");
        Param(sb, "id", a.Id.ToString(CultureInfo.InvariantCulture));
        Param(sb, "rule", a.Rule);
        Param(sb, "key", a.Key);
        Param(sb, "status", AlertJson.StatusName(a.Status));
        Param(sb, "severity", AlertManager.SeverityName(a.Severity));
        // The outbox events' numbers (12 significant digits): "R" showed binary noise, value="110.31249999999999".
        Param(sb, "value", WireNumber.Format(a.Value));
        Optional(sb, "peak", a.Peak is { } peak ? WireNumber.Format(peak) : null);

        // The place and times the webhook/MQTT JSON carry (site, labels, fired_at…), so every sink says the same.
        Optional(sb, "site", _site);
        Optional(sb, "room", a.Labels.GetValueOrDefault("room"));
        Optional(sb, "rack", a.Labels.GetValueOrDefault("rack"));
        Optional(sb, "device", a.Labels.GetValueOrDefault("device"));
        Optional(sb, "fired_at", a.FiredAt is { } f ? WireTime.Instant(f) : null);
        Optional(sb, "resolved_at", a.ResolvedAt is { } r ? WireTime.Instant(r) : null);
        Optional(sb, "acked_at", a.AckedAt is { } k ? WireTime.Instant(k) : null);

        // SD-params, not the text: the line stays one readable summary, and rsyslog/journal tooling gets them by name.
        Optional(sb, "action", a.Action);
        Optional(sb, "runbook_url", a.RunbookUrl);
        sb.Append("] ").Append(a.Summary);
        return sb.ToString();
    }

    private static void Optional(StringBuilder sb, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            Param(sb, name, value);
        }
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
