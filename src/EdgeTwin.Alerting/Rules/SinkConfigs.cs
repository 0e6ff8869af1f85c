using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Uplink.Mqtt;

namespace EdgeTwin.Alerting.Rules;

/// <summary>A GPIO output's behaviour for one severity.</summary>
public enum OutputPattern : byte
{
    Off,
    On,

    /// <summary>1 Hz, half on.</summary>
    Blink,

    /// <summary>4 Hz, half on.</summary>
    BlinkFast,
}

/// <summary>Settings every sink has: its own queue, timeout and retries.</summary>
public abstract record SinkConfig
{
    public required string Name { get; init; }

    public int QueueCapacity { get; init; } = 256;

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    public int Retries { get; init; } = 3;

    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>One GPIO output line: relay, buzzer or LED.</summary>
public sealed record GpioOutputConfig(string Name, int Pin, bool ActiveHigh, IReadOnlyDictionary<EventSeverity, OutputPattern> Patterns, bool FailsafeActive, bool SilenceOnAck);

public sealed record GpioSinkConfig : SinkConfig
{
    /// <summary><c>auto</c> (the board's default controller), <c>simulated</c>, or a gpiochip number (<c>4</c>, <c>gpiochip4</c>): see <see cref="GpioChips"/>.</summary>
    public string Chip { get; init; } = GpioChips.Auto;

    public IReadOnlyList<GpioOutputConfig> Outputs { get; init; } = [];
}

public sealed record SyslogSinkConfig : SinkConfig
{
    public string Socket { get; init; } = "/dev/log";

    /// <summary>RFC 5424 facility number (16 = local0).</summary>
    public int Facility { get; init; } = 16;

    public string AppName { get; init; } = "edgetwin";
}

public sealed record MqttSinkConfig : SinkConfig
{
    /// <summary>The one broker (key <c>host</c>); with <see cref="Hosts"/>, the first entry's host (the key is then absent).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>1883, or 8883 with TLS, when not configured; also the port of a <see cref="Hosts"/> entry that names none.</summary>
    public int Port { get; init; } = 1883;

    /// <summary>
    /// The brokers of an HA pair or cluster (key <c>hosts</c>, instead of <c>host</c>), each <c>host</c>,
    /// <c>host:port</c> or <c>[v6]:port</c>: walked in order as <c>uplinks.mqtt.hosts</c> is (README "Several brokers");
    /// null = the one <see cref="Host"/>.
    /// </summary>
    public IReadOnlyList<string>? Hosts { get; init; }

    /// <summary>The brokers in the order they are tried: <see cref="Hosts"/> parsed, or <see cref="Host"/> and <see cref="Port"/>; entries that do not parse are left out (the reader reports them).</summary>
    public IReadOnlyList<MqttBrokerAddress> Servers => Hosts is null
        ? [new MqttBrokerAddress(Host, Port)]
        : MqttBrokerAddress.ParseList(Hosts, Port, "hosts", static (_, _) => { });

    /// <summary>TLS towards the broker: the uplink's <c>tls:</c> block (same keys, same certificate loading and validation).</summary>
    public MqttTlsOptions Tls { get; init; } = new();

    /// <summary><c>{site}</c>, <c>{gateway}</c>, <c>{rule}</c> and <c>{severity}</c> are replaced.</summary>
    public string Topic { get; init; } = "edgetwin/{site}/{gateway}/alerts";

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>
    /// <c>protocol:</c> "3.1.1" or "5" (default), as <c>uplinks.mqtt.protocol</c>: a broker that speaks only 3.1.1 answers
    /// an MQTT 5 CONNECT with "unacceptable protocol version" and closes, so without it no alert ever reached such a broker.
    /// </summary>
    public MqttProtocol Protocol { get; init; } = MqttProtocol.V500;

    /// <summary>
    /// <c>client_id:</c>; null = <c>edgetwin-alerts-{gateway}-{sink}</c>. For a broker that ties client ids to its
    /// accounts or ACLs, or takes only what MQTT 3.1.1 guarantees (1-23 letters and digits).
    /// </summary>
    public string? ClientId { get; init; }
}

/// <summary>What a webhook sink POSTs: <c>format:</c> in the sink.</summary>
public enum WebhookFormat : byte
{
    /// <summary>EdgeTwin's own JSON message (<see cref="AlertJson"/>, <c>v: 1</c>), signed with a secret.</summary>
    EdgeTwin,

    /// <summary>Prometheus Alertmanager's API v2 (<see cref="AlertmanagerJson"/>): <c>{url}/api/v2/alerts</c>, firing alerts re-sent every <c>resend_interval</c>.</summary>
    Alertmanager,

    /// <summary>A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): <c>{"text": …}</c> (<see cref="SlackJson"/>).</summary>
    Slack,
}

public sealed record WebhookSinkConfig : SinkConfig
{
    /// <summary>Where to POST; a <c>user:password@</c> in it is sent as Basic auth, never as part of the URL.</summary>
    public required Uri Url { get; init; }

    public WebhookFormat Format { get; init; } = WebhookFormat.EdgeTwin;

    /// <summary>
    /// <c>format: alertmanager</c>: how often every alert still firing is posted again. Alertmanager resolves an alert
    /// that is not re-sent within its <c>resolve_timeout</c> (default 5 min), so this must stay well below that.
    /// </summary>
    public TimeSpan ResendInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary><c>format: slack</c>: the poster's name shown by the chat server (it may ignore it); null: the hook's default.</summary>
    public string? Username { get; init; }

    /// <summary><c>format: slack</c>: a channel other than the hook's own (Mattermost and Rocket.Chat honour it when allowed); null: the hook's.</summary>
    public string? Channel { get; init; }

    /// <summary>HMAC-SHA256 key for the signature headers; none when null.</summary>
    public string? Secret { get; init; }

    /// <summary>Sent as <c>Authorization: Bearer …</c> (from <c>bearer_token_file</c>); never together with a user in <see cref="Url"/>.</summary>
    public string? BearerToken { get; init; }

    /// <summary>
    /// What is risky about sending to <see cref="Url"/>, for <c>edgetwin check</c> and the agent's start: plain http to a
    /// host that is not on this machine or a private network, and credentials (the URL's user, the bearer token, the
    /// signing secret) over plain http to any other host. Empty for https.
    /// </summary>
    public IReadOnlyList<string> PlaintextWarnings()
    {
        if (Url.Scheme != Uri.UriSchemeHttp || NetworkScope.IsLoopback(Url.Host))
        {
            return [];
        }

        var warnings = new List<string>();
        var host = Url.Host;
        if (!NetworkScope.IsPrivate(host))
        {
            warnings.Add($"plain http to {host}, which is not a loopback, private (RFC 1918, ULA) or link-local address: the alerts cross the network unencrypted; use https");
        }

        // The two are exclusive (both is a config error), so at most one is named.
        var sent = Url.UserInfo.Length > 0 ? "the url's user:password (Basic auth is only base64)"
            : BearerToken is { Length: > 0 } ? "the bearer token"
            : null;
        if (sent is not null)
        {
            warnings.Add($"{sent} goes over plain http to {host}: anyone on the path can read and reuse it; use https");
        }

        if (Secret is { Length: > 0 } && Format == WebhookFormat.EdgeTwin)
        {
            // The secret itself never leaves the gateway, but what it signs does, readable.
            warnings.Add($"signed alerts go over plain http to {host}: the signature stops changes, not reading; use https");
        }

        return warnings;
    }

    // Records print every property; the URL's credentials, the secret and the token must never reach a log that way.
    protected override bool PrintMembers(System.Text.StringBuilder builder)
    {
        if (base.PrintMembers(builder))
        {
            builder.Append(", ");
        }

        builder.Append("Url = ").Append(Redact.Url(Url));
        builder.Append(", Secret = ").Append(Secret is null ? "null" : Redact.Mask);
        builder.Append(", BearerToken = ").Append(BearerToken is null ? "null" : Redact.Mask);
        return true;
    }
}

/// <summary>How an smtp sink protects its connection to the relay: <c>tls:</c> in the sink.</summary>
public enum SmtpTls : byte
{
    /// <summary>Plain SMTP, then STARTTLS, which the relay must offer (else the attempt fails saying so): port 587 by default.</summary>
    StartTls,

    /// <summary>TLS from the first byte (SMTPS, RFC 8314): port 465 by default.</summary>
    Implicit,

    /// <summary>No TLS (a relay on this machine or one that offers none): port 25 by default; no credentials unless <c>allow_plaintext_auth</c>.</summary>
    None,
}

/// <summary>
/// An e-mail per message to the on-call mailbox through the site's LAN relay (<c>type: smtp</c>), which keeps working
/// while the uplink is down.
/// </summary>
public sealed record SmtpSinkConfig : SinkConfig
{
    public const string DefaultSubject = "[{severity}] {site}: {rule} {place} {status}{more}";

    public required string Host { get; init; }

    /// <summary>587 with <c>starttls</c>, 465 with <c>implicit</c>, 25 with <c>none</c> when not configured.</summary>
    public int Port { get; init; } = 587;

    public SmtpTls Tls { get; init; } = SmtpTls.StartTls;

    /// <summary>PEM CA certificates the relay's certificate must chain to; null = the system trust store.</summary>
    public string? CaFile { get; init; }

    /// <summary>The name the relay's certificate must carry (and SNI) when it is not <see cref="Host"/> (a relay reached by address).</summary>
    public string? ServerName { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>Send <see cref="Username"/> and <see cref="Password"/> over <c>tls: none</c> to a host that is not loopback (refused otherwise).</summary>
    public bool AllowPlaintextAuth { get; init; }

    public required string From { get; init; }

    public IReadOnlyList<string> To { get; init; } = [];

    /// <summary>Placeholders <c>{severity} {status} {site} {gateway} {rule} {key} {count} {more}</c> (see the README, Smtp).</summary>
    public string Subject { get; init; } = DefaultSubject;

    /// <summary>Most alerts written out in one mail's body; the rest are counted (a storm's mail stays readable and under a relay's size limit).</summary>
    public int MaxAlertsPerMail { get; init; } = 100;

    /// <summary>The relay as <c>host:port</c> (<c>[v6]:port</c>), for messages.</summary>
    public string Endpoint => (Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host) + ":" + Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // Records print every property; the password must never reach a log that way.
    protected override bool PrintMembers(System.Text.StringBuilder builder)
    {
        if (base.PrintMembers(builder))
        {
            builder.Append(", ");
        }

        builder.Append("Endpoint = ").Append(Endpoint).Append(", Tls = ").Append(Tls).Append(", Username = ").Append(Username ?? "null")
            .Append(", Password = ").Append(Password is null ? "null" : Redact.Mask).Append(", From = ").Append(From)
            .Append(", To = [").AppendJoin(", ", To).Append(']');
        return true;
    }
}
