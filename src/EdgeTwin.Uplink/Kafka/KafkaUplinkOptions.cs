using EdgeTwin.Core.Config;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Payloads;

namespace EdgeTwin.Uplink.Kafka;

public enum KafkaSecurity
{
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

public enum KafkaSaslMechanism
{
    Plain,
    ScramSha256,
    ScramSha512,
}

/// <summary>The Kafka uplink's settings; <see cref="Validate"/> runs at start and reports every problem at once.</summary>
public sealed record KafkaUplinkOptions
{
    /// <summary>The uplink's name: its read position in the outbox and the <c>uplink</c> metric tag.</summary>
    public string Name { get; init; } = "kafka";

    /// <summary>host:port[,host:port…]</summary>
    public string BootstrapServers { get; init; } = "";

    public string Site { get; init; } = "";

    public string Gateway { get; init; } = "";

    /// <summary>Kafka topic per message; placeholders as for MQTT, result limited to [A-Za-z0-9._-].</summary>
    public string TopicTemplate { get; init; } = "edgetwin.{site}.{kind}";

    /// <summary>none, gzip, snappy, lz4 or zstd.</summary>
    public string Compression { get; init; } = "lz4";

    /// <summary>How long the producer may batch before sending (latency against throughput).</summary>
    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(5);

    public KafkaSecurity Security { get; init; } = KafkaSecurity.Plaintext;

    public KafkaSaslMechanism SaslMechanism { get; init; } = KafkaSaslMechanism.ScramSha512;

    public string? SaslUsername { get; init; }

    public string? SaslPassword { get; init; }

    /// <summary>PEM CA that signs the brokers' certificates (null = system store).</summary>
    public string? SslCaFile { get; init; }

    /// <summary>Client certificate and key (PEM) for mutual TLS.</summary>
    public string? SslCertificateFile { get; init; }

    public string? SslKeyFile { get; init; }

    public string? SslKeyPassword { get; init; }

    /// <summary>Further librdkafka settings, passed through as given (they cannot weaken acks or idempotence).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    public DeliveryOptions Delivery { get; init; } = new();

    /// <summary>Read at every status record (models may have been hot-reloaded since the last one); null = no facts announced.</summary>
    public Func<GatewayFacts>? Facts { get; init; }

    /// <summary>
    /// Changes whenever <see cref="Facts"/> would return something new (a hot reload changed which models serve); a status
    /// record with the new facts then goes out before the connection's next data record. Null: the new facts wait for the
    /// next progress status (<see cref="DeliveryOptions.ProgressInterval"/>) or connection.
    /// </summary>
    public Func<long>? FactsRevision { get; init; }

    internal UplinkIdentity Identity => new(Site, Gateway);

    internal static readonly string[] Compressions = ["none", "gzip", "snappy", "lz4", "zstd"];

    private static readonly string[] Protected = ["acks", "enable.idempotence", "request.required.acks", "bootstrap.servers"];

    // librdkafka's other names for settings the uplink sets itself (CONFIGURATION.md "alias for").
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["metadata.broker.list"] = "bootstrap.servers",
        ["max.in.flight"] = "max.in.flight.requests.per.connection",
        ["compression.codec"] = "compression.type",
        ["queue.buffering.max.ms"] = "linger.ms",
        ["delivery.timeout.ms"] = "message.timeout.ms",
        ["sasl.mechanisms"] = "sasl.mechanism",
    };

    // Why the uplink owns a setting; anything else it sets comes from its own key of the same meaning.
    private static readonly Dictionary<string, string> Owned = new(StringComparer.Ordinal)
    {
        ["enable.ssl.certificate.verification"] = "the uplink always verifies the broker certificate",
        ["ssl.endpoint.identification.algorithm"] = "the uplink always checks the broker's host name (https)",
        ["client.id"] = "the uplink sets it to edgetwin-<gateway>",
        ["max.in.flight.requests.per.connection"] = "the uplink sets 5, the most idempotence allows while keeping order",
        ["compression.type"] = "set it with compression:",
        ["linger.ms"] = "set it with linger:",
        ["message.timeout.ms"] = "the uplink derives it from its ack timeout",
        ["socket.connection.setup.timeout.ms"] = "the uplink derives it from its connect timeout",
        ["security.protocol"] = "set it with security:",
        ["sasl.mechanism"] = "set it with sasl_mechanism:",
        ["sasl.username"] = "set it with sasl_username:",
        ["sasl.password"] = "set it with sasl_password_file:",
        ["ssl.ca.location"] = "set it with ssl_ca_file:",
        ["ssl.certificate.location"] = "set it with ssl_cert_file:",
        ["ssl.key.location"] = "set it with ssl_key_file:",
        ["ssl.key.password"] = "set it with ssl_key_password_file:",
    };

    // librdkafka settings that carry a secret without a name ending in .password or .secret (ssl.key.pem is a private key).
    private static readonly string[] SecretSettingNames = ["ssl.key.pem", "ssl_key"];

    /// <summary>
    /// Whether the <c>settings:</c> entry <paramref name="key"/> holds a secret: any librdkafka key ending in
    /// <c>.password</c> or <c>.secret</c> (<c>sasl.password</c>, <c>ssl.key.password</c>, <c>ssl.keystore.password</c>,
    /// <c>sasl.oauthbearer.client.secret</c>, …) and the inline private key <c>ssl.key.pem</c>. Its value is an inline
    /// secret of the config (kept out of <c>config_sha256</c>, named by the config file's mode warning) and is never shown.
    /// </summary>
    public static bool IsSecretSetting(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.EndsWith(".password", StringComparison.OrdinalIgnoreCase)
            || key.EndsWith(".secret", StringComparison.OrdinalIgnoreCase)
            || SecretSettingNames.Contains(key, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The first bootstrap broker (<c>host:port</c>) that is neither on loopback nor at a private address.</summary>
    private string? PublicBroker()
    {
        foreach (var (host, port) in KafkaBrokerList.Parse(BootstrapServers, out _))
        {
            if (!NetworkScope.IsLoopback(host) && !NetworkScope.IsPrivate(host))
            {
                return EndpointText.Of(host, port);
            }
        }

        return null;
    }

    /// <summary>
    /// What works but is risky or not what the config says: SASL over plaintext (key <c>security</c>; PLAIN sends the
    /// password in clear, SCRAM exposes its handshake to offline guessing), plaintext to a broker off loopback and the
    /// private networks (key <c>bootstrap_servers</c>) and <c>settings:</c> entries the uplink
    /// overrides (key <c>settings.NAME</c>). Reported by <c>edgetwin check</c> and at start; empty when none.
    /// </summary>
    public IReadOnlyList<UplinkWarning> Warnings()
    {
        var warnings = new List<UplinkWarning>();
        if (Security == KafkaSecurity.SaslPlaintext)
        {
            // GSSAPI and OAUTHBEARER send no reusable secret, but this uplink offers neither: every mechanism here is exposed.
            warnings.Add(new UplinkWarning("security", SaslMechanism == KafkaSaslMechanism.Plain
                ? $"sasl_plaintext with sasl_mechanism plain sends the password in clear text to {BootstrapServers} (and the data unencrypted); use security: sasl_ssl"
                : $"sasl_plaintext with SCRAM does not send the password itself, but its handshake goes unencrypted to {BootstrapServers} and lets an eavesdropper guess the password offline (and the data is unencrypted); use security: sasl_ssl"));
        }
        else if (Security == KafkaSecurity.Plaintext && PublicBroker() is { } open)
        {
            // Before, the default (plaintext) to a broker across the internet got no word, while an alert webhook to it did.
            warnings.Add(new UplinkWarning("bootstrap_servers", $"plaintext to {open}, which is not a loopback, private (RFC 1918, ULA) or link-local address: the telemetry crosses the network unencrypted; use security: ssl"));
        }

        if (Settings.Count == 0)
        {
            return warnings;
        }

        var forced = KafkaTransport.BuildConfig(this with { Settings = new Dictionary<string, string>() }).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
        var built = KafkaTransport.BuildConfig(this).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        foreach (var (key, value) in Settings)
        {
            if (Array.IndexOf(Protected, key) >= 0)
            {
                continue; // an error already (Validate)
            }

            var name = Aliases.GetValueOrDefault(key, key);
            // Overwritten (or removed: an ssl_* file left unset clears its location) by the uplink, or an alias of a setting it sets.
            var lost = name != key ? forced.Contains(name) : !string.Equals(built.GetValueOrDefault(key), value, StringComparison.OrdinalIgnoreCase);
            if (lost)
            {
                var why = Owned.GetValueOrDefault(name, "the uplink sets it itself");
                // A secret's value is never shown (check's output ends up in Ansible and CI logs).
                var shown = IsSecretSetting(key) ? EdgeTwin.Core.Config.Redact.Mask : value;
                warnings.Add(new UplinkWarning("settings." + key, $"'{shown}' is ignored{(name != key ? $" (an alias of {name})" : "")}: {why}"));
            }
        }

        return warnings;
    }

    public IReadOnlyList<string> Validate(string prefix = "uplinks.kafka")
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Name))
        {
            errors.Add($"{prefix}.Name is required");
        }

        if (string.IsNullOrWhiteSpace(BootstrapServers))
        {
            errors.Add($"{prefix}.BootstrapServers is required (host:port[,host:port])");
        }

        errors.AddRange(Identity.Validate(prefix));
        var templateErrors = Payloads.TopicTemplate.Validate(TopicTemplate, $"{prefix}.TopicTemplate").ToList();
        errors.AddRange(templateErrors);
        if (templateErrors.Count == 0 && errors.Count == 0)
        {
            // A device id as long as the hash that a long one is shortened to: every device's topic then fits.
            var sample = new Payloads.TopicTemplate(TopicTemplate, Identity).Format("twin_state", "device00");
            if (sample.Length > Payloads.TopicTemplate.KafkaMaxTopicLength || sample.AsSpan().IndexOfAnyExcept(Payloads.TopicTemplate.KafkaAllowed) >= 0)
            {
                errors.Add($"{prefix}.TopicTemplate gives '{sample}', not a legal Kafka topic ([A-Za-z0-9._-], at most 249)");
            }
        }

        if (Array.IndexOf(Compressions, Compression) < 0)
        {
            errors.Add($"{prefix}.Compression '{Compression}' must be one of {string.Join(", ", Compressions)}");
        }

        if (Linger < TimeSpan.Zero || Linger > TimeSpan.FromSeconds(10))
        {
            errors.Add($"{prefix}.Linger must be 0..10 s (was {Linger})");
        }

        var sasl = Security is KafkaSecurity.SaslPlaintext or KafkaSecurity.SaslSsl;
        // One problem per missing setting, so each is reported at (or named as) its own key.
        if (sasl && string.IsNullOrEmpty(SaslUsername))
        {
            errors.Add($"{prefix}.SaslUsername is required with Security {Security}");
        }

        if (sasl && SaslPassword is null)
        {
            errors.Add($"{prefix}.SaslPassword is required with Security {Security}");
        }

        // One problem per key, each at its own line in check (it read "SaslUsername/SaslPassword are set but Security is
        // Plaintext", at the section).
        foreach (var (setting, value) in new[] { ("SaslUsername", SaslUsername), ("SaslPassword", SaslPassword) })
        {
            if (!sasl && value is not null)
            {
                errors.Add($"{prefix}.{setting} is set but Security {Security} does not use it; SASL takes security: sasl_ssl");
            }
        }

        var tls = Security is KafkaSecurity.Ssl or KafkaSecurity.SaslSsl;
        foreach (var (setting, path) in new[] { ("SslCaFile", SslCaFile), ("SslCertificateFile", SslCertificateFile), ("SslKeyFile", SslKeyFile) })
        {
            if (!tls && path is not null)
            {
                errors.Add($"{prefix}.{setting} is set but Security {Security} does not use it; TLS takes security: ssl or sasl_ssl");
            }
        }

        foreach (var (setting, path) in new[] { ("SslCaFile", SslCaFile), ("SslCertificateFile", SslCertificateFile), ("SslKeyFile", SslKeyFile) })
        {
            if (path is not null && !File.Exists(path))
            {
                errors.Add($"{prefix}.{setting} '{path}' does not exist");
            }
        }

        if ((SslCertificateFile is null) != (SslKeyFile is null))
        {
            errors.Add($"{prefix}.SslCertificateFile and SslKeyFile go together");
        }

        foreach (var key in Settings.Keys.Where(k => Array.IndexOf(Protected, k) >= 0))
        {
            errors.Add($"{prefix}.Settings may not override '{key}'");
        }

        errors.AddRange(Delivery.Validate($"{prefix}.Delivery"));
        return errors;
    }

    // Records print every property: the SASL and key passwords, and secret settings:, must never reach a log or an
    // exception that way. Settings are printed by key, their values only when not secret.
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Name = ").Append(Name).Append(", BootstrapServers = ").Append(BootstrapServers)
            .Append(", Site = ").Append(Site).Append(", Gateway = ").Append(Gateway).Append(", TopicTemplate = ").Append(TopicTemplate)
            .Append(", Security = ").Append(Security).Append(", SaslMechanism = ").Append(SaslMechanism)
            .Append(", SaslUsername = ").Append(SaslUsername).Append(", SaslPassword = ").Append(SaslPassword is null ? "null" : EdgeTwin.Core.Config.Redact.Mask)
            .Append(", SslCaFile = ").Append(SslCaFile).Append(", SslCertificateFile = ").Append(SslCertificateFile)
            .Append(", SslKeyFile = ").Append(SslKeyFile).Append(", SslKeyPassword = ").Append(SslKeyPassword is null ? "null" : EdgeTwin.Core.Config.Redact.Mask)
            .Append(", Settings = [");
        var first = true;
        foreach (var (key, value) in Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            builder.Append(first ? "" : ", ").Append(key).Append('=').Append(IsSecretSetting(key) ? EdgeTwin.Core.Config.Redact.Mask : value);
            first = false;
        }

        builder.Append(']');
        return true;
    }
}
