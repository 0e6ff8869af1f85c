using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Uplink;
using EdgeTwin.Uplink.Mqtt;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MimeKit;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// One e-mail per message (a group's changes: raise, clear, acknowledge) to the on-call mailbox through the site's LAN
/// relay: a subject that reads on a phone's lock screen (<c>[CRITICAL] dc1: inlet-hot rack A01 (room1) FIRING</c>) and a
/// plain-text body with each alert's text, value, peak, since when, first action and runbook (<see cref="Body"/>).
/// A connection per attempt (STARTTLS or implicit TLS, AUTH when configured), closed with QUIT. The relay's refusals are
/// sorted by their SMTP reply: 4xx, a refused login, no STARTTLS, a refused certificate, no answer are failures the runner
/// retries and holds the message for (the relay down or misconfigured for a while loses no alert); a 5xx to MAIL FROM or
/// DATA, or to every recipient, is a refusal for good (<see cref="SinkRejectedException"/>); a 5xx to some recipients
/// only is logged naming them and counted, and the others get the mail (it is not sent again to them).
/// </summary>
public sealed partial class SmtpSink : IAlertSink
{
    private readonly SmtpSinkConfig _config;
    private readonly string _site;
    private readonly string _gateway;
    private readonly ILogger _logger;
    private readonly AlertingMetrics? _metrics;
    private readonly MailboxAddress _from;
    private readonly List<MailboxAddress> _to;
    private X509Certificate2Collection? _trustedCas;

    // Why the last handshake's certificate was refused; MailKit only says the handshake failed.
    private volatile string? _certificateRejection;

    public SmtpSink(SmtpSinkConfig config, string site, string gateway, ILogger? logger = null, AlertingMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site;
        _gateway = gateway;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        _from = MailboxAddress.Parse(config.From);
        _to = [.. config.To.Select(MailboxAddress.Parse)];
    }

    public string Name => _config.Name;

    public bool FollowsState => false;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Checked by the config reader already; loaded once here so a delivery never reads the file.
        _trustedCas = _config.CaFile is { } ca ? TlsFiles.LoadCaFile("ca_file", ca) : null;
        if (_config.Tls == SmtpTls.None && !NetworkScope.IsLoopback(_config.Host))
        {
            LogPlaintext(_config.Name, _config.Endpoint);
        }

        return Task.CompletedTask;
    }

    public async Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(notification);
        ArgumentNullException.ThrowIfNull(alerts);
        using var message = Compose(notification, alerts);
        using var client = new RelayClient
        {
            // Each read and write; the runner's token bounds the whole attempt.
            Timeout = (int)Math.Min(int.MaxValue, _config.Timeout.TotalMilliseconds),

            // No CRL or OCSP fetch: the uplink is down exactly when these mails matter.
            CheckCertificateRevocation = false,
            ServerCertificateValidationCallback = ValidateServerCertificate,
        };
        var endpoint = _config.Endpoint;
        await ConnectAsync(client, endpoint, cancellationToken).ConfigureAwait(false);
        if (_config.Username is { } user)
        {
            try
            {
                await client.AuthenticateAsync(user, _config.Password ?? "", cancellationToken).ConfigureAwait(false);
            }
            catch (AuthenticationException ex)
            {
                // Retried: a password rotated on the relay first, or its user database restarting, passes; the alert is held.
                throw new IOException($"smtp relay {endpoint} refused the login of user '{user}': {Reply(ex)}", ex);
            }
            catch (NotSupportedException)
            {
                throw new IOException($"smtp relay {endpoint} offers no AUTH{(client.IsSecure ? "" : " before TLS")} (its EHLO lists no AUTH mechanism): remove username and password_file, or enable AUTH on the relay");
            }
        }

        try
        {
            await client.SendAsync(message, cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpCommandException ex)
        {
            throw Refusal(ex, endpoint, client.Refused);
        }
        catch (SmtpProtocolException ex)
        {
            throw new IOException($"smtp relay {endpoint}: {ex.Message}", ex);
        }

        if (client.Refused.Count > 0)
        {
            // The others have the mail; the refused mailbox would refuse it again (a typo, a deleted account).
            _metrics?.RecipientsRefused(_config.Name, client.Refused.Count);
            LogRecipientsRefused(_config.Name, endpoint, Describe(client.Refused), notification.Group, _to.Count - client.Refused.Count);
        }

        LogSent(_config.Name, endpoint, alerts.Count, notification.Group);
        try
        {
            await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SmtpProtocolException or SmtpCommandException or SocketException)
        {
            // The relay took the mail (250 to DATA); a lost QUIT changes nothing.
        }
    }

    private async Task ConnectAsync(RelayClient client, string endpoint, CancellationToken cancellationToken)
    {
        // Our own socket: the TLS name (server_name) may differ from the host connected to, and a refused or unreachable
        // relay is named with host:port rather than MailKit's generic text.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(_config.Host, _config.Port, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new IOException($"smtp relay {endpoint}: cannot connect: {ex.Message}", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var options = _config.Tls switch
        {
            SmtpTls.Implicit => SecureSocketOptions.SslOnConnect,
            SmtpTls.None => SecureSocketOptions.None,
            _ => SecureSocketOptions.StartTls,
        };
        _certificateRejection = null; // a reason from an earlier handshake must not explain this one's failure
        try
        {
            // MailKit owns the socket from here (closed with the client, also on failure).
            await client.ConnectAsync(socket, _config.ServerName ?? _config.Host, _config.Port, options, cancellationToken).ConfigureAwait(false);
        }
        catch (SslHandshakeException ex)
        {
            throw new IOException($"smtp relay {endpoint}: TLS handshake refused: {_certificateRejection ?? ex.InnerException?.Message ?? ex.Message}", ex);
        }
        catch (NotSupportedException ex) when (_config.Tls == SmtpTls.StartTls)
        {
            throw new IOException($"smtp relay {endpoint} does not offer STARTTLS (its EHLO lists no STARTTLS): enable TLS on the relay, use tls: implicit for an SMTPS port (465), or tls: none for a relay without TLS", ex);
        }
        catch (SmtpCommandException ex)
        {
            throw new IOException($"smtp relay {endpoint} refused the session: {Reply(ex)}", ex);
        }
        catch (SmtpProtocolException ex)
        {
            throw new IOException($"smtp relay {endpoint}: {ex.Message}", ex);
        }
        catch (SocketException ex)
        {
            throw new IOException($"smtp relay {endpoint}: {ex.Message}", ex);
        }
    }

    /// <summary>What a refused SMTP command means for the message: for good (5xx) or worth another attempt (4xx).</summary>
    private Exception Refusal(SmtpCommandException ex, string endpoint, List<(MailboxAddress Mailbox, SmtpResponse Response)> refused)
    {
        var code = (int)ex.StatusCode;
        string text;
        if (refused.Count > 0 && refused.Count == _to.Count)
        {
            // The relay then refuses DATA too ("554 no valid recipients"): the recipients' replies are what to fix.
            code = Math.Max(code, 500);
            text = $"smtp relay {endpoint} refused every recipient: {Describe(refused)}";
        }
        else
        {
            var what = ex.ErrorCode switch
            {
                SmtpErrorCode.SenderNotAccepted => $"the sender {_from.Address}",
                SmtpErrorCode.RecipientNotAccepted => $"the recipient {ex.Mailbox?.Address}",
                _ => "the message",
            };
            text = $"smtp relay {endpoint} refused {what}: {Reply(ex)}";
        }

        if (code >= 500)
        {
            if (refused.Count > 0)
            {
                _metrics?.RecipientsRefused(_config.Name, refused.Count);
            }

            return new SinkRejectedException(text, ex);
        }

        return new IOException(text, ex);
    }

    private static string Describe(List<(MailboxAddress Mailbox, SmtpResponse Response)> refused) =>
        string.Join("; ", refused.Select(r => $"{r.Mailbox.Address}: {(int)r.Response.StatusCode} {OneLine(r.Response.Response)}"));

    /// <summary>The relay's reply as it sent it: <c>535 5.7.8 authentication failed</c>.</summary>
    private static string Reply(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is SmtpCommandException c)
            {
                return $"{(int)c.StatusCode} {OneLine(c.Message)}";
            }
        }

        // MailKit's AuthenticationException carries the relay's text (with its enhanced status code) but not the code.
        return OneLine(ex.Message);
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    /// <summary>The mail for one message to this sink.</summary>
    public MimeMessage Compose(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(notification);
        ArgumentNullException.ThrowIfNull(alerts);
        var message = new MimeMessage();
        message.From.Add(_from);
        message.To.AddRange(_to);
        message.Subject = Subject(_config.Subject, _site, _gateway, alerts);
        message.Date = notification.Time;

        // RFC 3834: no out-of-office reply to the gateway; filters can sort by the site and group.
        message.Headers.Add("Auto-Submitted", "auto-generated");
        message.Headers.Add("X-EdgeTwin-Site", _site);
        message.Headers.Add("X-EdgeTwin-Gateway", _gateway);
        message.Headers.Add("X-EdgeTwin-Group", notification.Group);
        if (alerts.Any(a => a.Status == AlertStatus.Firing && a.Severity == EventSeverity.Critical))
        {
            message.Importance = MessageImportance.High;
            message.Priority = MessagePriority.Urgent;
        }

        message.Body = new TextPart(MimeKit.Text.TextFormat.Plain) { Text = Body(_site, _gateway, notification, alerts, _config.MaxAlertsPerMail) };
        return message;
    }

    /// <summary>The alert the subject names: the most severe firing one, else the most severe.</summary>
    private static AlertSnapshot Lead(IReadOnlyList<AlertSnapshot> alerts)
    {
        AlertSnapshot? lead = null;
        foreach (var a in alerts)
        {
            if (lead is null
                || (a.Status == AlertStatus.Firing && lead.Status != AlertStatus.Firing)
                || ((a.Status == AlertStatus.Firing) == (lead.Status == AlertStatus.Firing) && a.Severity > lead.Severity))
            {
                lead = a;
            }
        }

        return lead!;
    }

    /// <summary>
    /// The subject from <paramref name="template"/>, about each alert's latest state in the mail (a group's message may
    /// carry an alert's raise and its clear; the lock screen must not say FIRING for one that has cleared):
    /// <c>{severity}</c> (the highest, upper case), <c>{status}</c>, <c>{rule}</c>, <c>{key}</c> and <c>{place}</c> (rack,
    /// machine, device or room, without the site) of the lead alert (<see cref="Lead"/>), <c>{site}</c>, <c>{gateway}</c>, <c>{count}</c> (alerts in the mail) and <c>{more}</c>
    /// (<c> (+39 more: 30 firing, 9 resolved)</c>; empty for one alert).
    /// </summary>
    public static string Subject(string template, string site, string gateway, IReadOnlyList<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(alerts);
        if (alerts.Count == 0)
        {
            return $"{site}: no alert changes";
        }

        var latest = new Dictionary<long, AlertSnapshot>(alerts.Count);
        foreach (var a in alerts)
        {
            latest[a.Id] = a;
        }

        var states = latest.Count == alerts.Count ? alerts : [.. latest.Values];
        var lead = Lead(states);
        var more = "";
        if (states.Count > 1)
        {
            var others = states.Where(a => !ReferenceEquals(a, lead)).GroupBy(a => a.Status).OrderBy(g => g.Key)
                .Select(g => $"{g.Count().ToString(CultureInfo.InvariantCulture)} {AlertJson.StatusName(g.Key)}");
            more = $" (+{(states.Count - 1).ToString(CultureInfo.InvariantCulture)} more: {string.Join(", ", others)})";
        }

        var text = new StringBuilder(template)
            .Replace("{severity}", AlertManager.SeverityName(states.Max(a => a.Severity)).ToUpperInvariant())
            .Replace("{status}", AlertJson.StatusName(lead.Status).ToUpperInvariant())
            .Replace("{site}", site)
            .Replace("{gateway}", gateway)
            .Replace("{rule}", lead.Rule)
            .Replace("{key}", lead.Key)
            .Replace("{place}", lead.Place ?? lead.Key)
            .Replace("{count}", states.Count.ToString(CultureInfo.InvariantCulture))
            .Replace("{more}", more)
            .ToString();
        return OneLine(text);
    }

    /// <summary>
    /// The plain-text body: a line saying where and how many, then per alert its status line, its text (the summary every
    /// sink sends), value and peak, since when (fired, resolved, acknowledged), first action, runbook, id and labels; at
    /// most <paramref name="maxAlerts"/> alerts written out, the rest counted.
    /// </summary>
    public static string Body(string site, string gateway, AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, int maxAlerts)
    {
        ArgumentNullException.ThrowIfNull(notification);
        ArgumentNullException.ThrowIfNull(alerts);
        var text = new StringBuilder(256 + (Math.Min(alerts.Count, maxAlerts) * 320));
        var counts = string.Join(", ", alerts.GroupBy(a => a.Status).OrderBy(g => g.Key).Select(g => $"{g.Count().ToString(CultureInfo.InvariantCulture)} {AlertJson.StatusName(g.Key)}"));
        text.Append(CultureInfo.InvariantCulture, $"Site {site}, gateway {gateway}: {alerts.Count} alert change{(alerts.Count == 1 ? "" : "s")} ({counts}).\n");
        var shown = 0;
        foreach (var a in alerts)
        {
            if (shown == maxAlerts)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n... and {alerts.Count - shown} more not listed here: `edgetwin alerts list` on {gateway} shows every alert.\n");
                break;
            }

            shown++;
            text.Append('\n').Append(AlertJson.StatusName(a.Status).ToUpperInvariant()).Append(' ').Append(AlertManager.SeverityName(a.Severity))
                .Append(' ').Append(a.Rule).Append(": ").Append(a.Key).Append('\n');
            text.Append("  ").Append(OneLine(a.Summary)).Append('\n');
            var value = a.ValueText ?? (double.IsFinite(a.Value) ? WireNumber.Format(a.Value) : null);
            if (value is not null)
            {
                text.Append("  value: ").Append(value);
                var peak = a.PeakText ?? (a.Peak is { } p && double.IsFinite(p) ? WireNumber.Format(p) : null);
                if (peak is not null)
                {
                    text.Append(", peak ").Append(peak);
                }

                text.Append('\n');
            }

            var fired = a.FiredAt ?? a.Time;
            text.Append(a.Status switch
            {
                AlertStatus.Resolved => $"  fired {Time(fired)}, resolved {Time(a.ResolvedAt ?? a.Time)}\n",
                AlertStatus.Acknowledged => $"  since {Time(fired)}, acknowledged {Time(a.AckedAt ?? a.Time)}\n",
                AlertStatus.Flapping => $"  since {Time(fired)}, flapping: changes held back until it settles\n",
                _ => $"  since {Time(fired)}\n",
            });
            if (a.Action is { } action)
            {
                text.Append("  first action: ").Append(OneLine(action)).Append('\n');
            }

            if (a.RunbookUrl is { } runbook)
            {
                text.Append("  runbook: ").Append(runbook).Append('\n');
            }

            text.Append("  alert ").Append(a.Id.ToString(CultureInfo.InvariantCulture));
            if (a.Labels.Count > 0)
            {
                text.Append(", ").AppendJoin(' ', a.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value));
            }

            text.Append('\n');
        }

        text.Append(CultureInfo.InvariantCulture, $"\n-- \nEdgeTwin {gateway} (site {site}), group {notification.Group}, {Time(notification.Time)}. Acknowledge on the gateway: edgetwin alerts ack ID\n");
        return text.ToString();
    }

    private static string Time(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    private bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var reasons = new List<string>(3);
        using var leaf = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (leaf is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            reasons.Add("not presented");
        }
        else
        {
            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                reasons.Add($"does not match {(_config.ServerName is null ? "host" : "server_name")} {_config.ServerName ?? _config.Host}");
            }

            if (_trustedCas is null)
            {
                if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
                {
                    reasons.Add(TlsFiles.ChainReason(chain?.ChainStatus ?? []) + " (trusted: the system trust store)");
                }
            }
            else
            {
                if (!TlsFiles.ChainsTo(leaf, chain, _trustedCas, out var status))
                {
                    reasons.Add($"does not chain to a CA in ca_file {_config.CaFile} ({TlsFiles.ChainReason(status)})");
                }
            }
        }

        if (reasons.Count == 0)
        {
            _certificateRejection = null;
            return true;
        }

        _certificateRejection = $"server certificate {MqttClientOptionsFactory.Describe(leaf)} {string.Join("; ", reasons)}";
        return false;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Keeps the recipients a relay refuses with 5xx instead of failing the whole mail; 4xx still fails it (retried).</summary>
    private sealed class RelayClient : SmtpClient
    {
        public List<(MailboxAddress Mailbox, SmtpResponse Response)> Refused { get; } = [];

        protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
        {
            if ((int)response.StatusCode >= 500)
            {
                Refused.Add((mailbox, response));
                return;
            }

            base.OnRecipientNotAccepted(message, mailbox, response);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink} ({Relay}): tls: none to a relay not on this machine: the alerts cross the network unencrypted")]
    private partial void LogPlaintext(string sink, string relay);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert sink {Sink}: smtp relay {Relay} refused recipients for good, not sent to them: {Refused} (group {Group}; {Accepted} other recipients got the mail); fix to: in the sink")]
    private partial void LogRecipientsRefused(string sink, string relay, string refused, string group, int accepted);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alert sink {Sink}: smtp relay {Relay} took the mail with {Count} alerts (group {Group})")]
    private partial void LogSent(string sink, string relay, int count, string group);
}
