using EdgeTwin.Core.Config;
using EdgeTwin.Uplink;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Mqtt;

namespace EdgeTwin.Agent.StoreAndForward;

/// <summary>
/// The <c>uplinks:</c> section of the site config turned into the uplinks' options. The same code validates the
/// section for <c>edgetwin check</c> and at start, so every problem is reported with file, line and key.
/// </summary>
public sealed record UplinksConfig(MqttUplinkOptions? Mqtt, KafkaUplinkOptions? Kafka)
{
    private static readonly Dictionary<string, MqttProtocol> MqttProtocols = new(StringComparer.Ordinal)
    {
        ["3.1.1"] = MqttProtocol.V311,
        ["5"] = MqttProtocol.V500,
    };

    private static readonly Dictionary<string, MqttPayloadEncoding> MqttEncodings = new(StringComparer.Ordinal)
    {
        ["json"] = MqttPayloadEncoding.Json,
        ["sparkplug_b"] = MqttPayloadEncoding.SparkplugB,
    };

    private static readonly Dictionary<string, KafkaSecurity> KafkaSecurities = new(StringComparer.Ordinal)
    {
        ["plaintext"] = KafkaSecurity.Plaintext,
        ["ssl"] = KafkaSecurity.Ssl,
        ["sasl_plaintext"] = KafkaSecurity.SaslPlaintext,
        ["sasl_ssl"] = KafkaSecurity.SaslSsl,
    };

    private static readonly Dictionary<string, KafkaSaslMechanism> SaslMechanisms = new(StringComparer.Ordinal)
    {
        ["plain"] = KafkaSaslMechanism.Plain,
        ["scram_sha_256"] = KafkaSaslMechanism.ScramSha256,
        ["scram_sha_512"] = KafkaSaslMechanism.ScramSha512,
    };

    /// <summary>No uplink configured: the outbox still buffers everything until one is.</summary>
    public static UplinksConfig None { get; } = new(null, null);

    /// <summary>Reads the section of a loaded config; throws <see cref="ConfigException"/> with every problem.</summary>
    public static UplinksConfig From(SiteConfig config, string stateDirectory)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Uplinks is null)
        {
            return None;
        }

        return ConfigReader.ReadOrThrow(config.Uplinks, r => Read(r, config.Site.Id, config.Site.GatewayId, stateDirectory, config.ConfigDirectory()));
    }


    internal static UplinksConfig Read(ConfigReader section, string site, string gateway, string stateDirectory, string configDirectory)
    {
        var mqtt = section.Section("mqtt") is { } m ? ReadMqtt(m, site, gateway, stateDirectory, configDirectory) : null;
        var kafka = section.Section("kafka") is { } k ? ReadKafka(k, site, gateway, configDirectory) : null;
        section.ReportUnknownKeys();
        return new UplinksConfig(mqtt, kafka);
    }

    private static MqttUplinkOptions ReadMqtt(ConfigReader m, string site, string gateway, string stateDirectory, string configDirectory)
    {
        var tls = m.Section("tls");
        var tlsOptions = new MqttTlsOptions
        {
            Enabled = tls?.Bool("enabled") ?? tls is not null,
            CaFile = ConfigReader.ResolvePath(tls?.String("ca_file"), configDirectory),
            ClientCertificateFile = ConfigReader.ResolvePath(tls?.String("client_cert_file"), configDirectory),
            ClientKeyFile = tls?.PrivateKeyFile("client_key_file", configDirectory),
            ClientCertificatePassword = tls?.Secret("client_cert_password", configDirectory, emptyFileIsError: true, bothIsError: true),
            ServerName = tls?.String("server_name"),
        };
        tls?.ReportUnknownKeys();

        var options = new MqttUplinkOptions
        {
            Host = m.String("host", required: true) ?? "",
            Port = m.Int("port", min: 1, max: 65535) ?? (tlsOptions.Enabled ? 8883 : 1883),
            Protocol = m.Enum("protocol", MqttProtocols) ?? MqttProtocol.V500,
            ClientId = m.String("client_id"),
            Username = m.String("username"),
            Password = m.Secret("password", configDirectory, emptyFileIsError: true),
            Tls = tlsOptions,
            KeepAlive = m.Duration("keep_alive", min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromSeconds(30),
            PersistentSession = m.Bool("persistent_session") ?? true,
            SessionExpiry = m.Duration("session_expiry") ?? TimeSpan.FromDays(1),
            Site = site,
            Gateway = gateway,
            TopicTemplate = m.String("topic_template") ?? "edgetwin/{site}/{gateway}/{kind}",
            Encoding = m.Enum("encoding", MqttEncodings) ?? MqttPayloadEncoding.Json,
            SparkplugGroupId = m.String("sparkplug_group_id"),
            StateDirectory = stateDirectory,
            Delivery = ReadDelivery(m),
        };
        m.ReportUnknownKeys();
        var problems = options.Validate();
        foreach (var problem in problems)
        {
            m.Diagnostics.Add(m.Mapping, problem);
        }

        // The files are parsed as the connection will, so a broken certificate or key fails check, not the start.
        if (tls is not null && problems.Count == 0)
        {
            foreach (var problem in TlsFiles.CheckMqtt(options.Tls))
            {
                tls.Diagnostics.Add(tls.Node(problem.Key) ?? tls.Mapping, problem.ToString());
            }
        }

        foreach (var warning in options.Warnings())
        {
            m.Diagnostics.AddWarning(m.Node(warning.Key + "_file") ?? m.Node(warning.Key) ?? m.Mapping, warning.Message);
        }

        return options;
    }

    private static KafkaUplinkOptions ReadKafka(ConfigReader k, string site, string gateway, string configDirectory)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        var s = k.Section("settings");
        if (s is not null)
        {
            foreach (var key in s.Mapping.Entries.Select(e => e.Key))
            {
                settings[key] = s.String(key) ?? "";
                if (KafkaUplinkOptions.IsSecretSetting(key))
                {
                    // sasl.password and the like: an inline secret, like sasl_password.
                    s.Diagnostics.Secrets.AddInline(s.Node(key));
                }
            }
        }

        var options = new KafkaUplinkOptions
        {
            BootstrapServers = k.String("bootstrap_servers", required: true) ?? "",
            Site = site,
            Gateway = gateway,
            TopicTemplate = k.String("topic_template") ?? "edgetwin.{site}.{kind}",
            Compression = k.String("compression") ?? "lz4",
            Linger = k.Duration("linger") ?? TimeSpan.FromMilliseconds(5),
            Security = k.Enum("security", KafkaSecurities) ?? KafkaSecurity.Plaintext,
            SaslMechanism = k.Enum("sasl_mechanism", SaslMechanisms) ?? KafkaSaslMechanism.ScramSha512,
            SaslUsername = k.String("sasl_username"),
            SaslPassword = k.Secret("sasl_password", configDirectory, emptyFileIsError: true),
            SslCaFile = ConfigReader.ResolvePath(k.String("ssl_ca_file"), configDirectory),
            SslCertificateFile = ConfigReader.ResolvePath(k.String("ssl_cert_file"), configDirectory),
            SslKeyFile = k.PrivateKeyFile("ssl_key_file", configDirectory),
            SslKeyPassword = k.Secret("ssl_key_password", configDirectory, emptyFileIsError: true),
            Settings = settings,
            Delivery = ReadDelivery(k),
        };
        k.ReportUnknownKeys();
        var problems = options.Validate();
        foreach (var problem in problems)
        {
            k.Diagnostics.Add(k.Mapping, problem);
        }

        // librdkafka reads these files itself, only when it connects; parse them now so check catches what it would refuse.
        if (problems.Count == 0 && options.Security is KafkaSecurity.Ssl or KafkaSecurity.SaslSsl)
        {
            foreach (var problem in TlsFiles.CheckPem(options.SslCaFile, options.SslCertificateFile, options.SslKeyFile, options.SslKeyPassword, TlsFileKeys.Kafka))
            {
                k.Diagnostics.Add(k.Node(problem.Key) ?? k.Mapping, problem.ToString());
            }
        }

        foreach (var warning in options.Warnings())
        {
            var node = warning.Key.StartsWith("settings.", StringComparison.Ordinal) ? s?.Node(warning.Key["settings.".Length..]) : k.Node(warning.Key);
            k.Diagnostics.AddWarning(node ?? k.Mapping, warning.Message);
        }

        return options;
    }

    private static DeliveryOptions ReadDelivery(ConfigReader r) => new()
    {
        Window = r.Int("window", min: 1, max: 65535) ?? 256,
        BacklogRatePerSecond = r.Double("backlog_rate", positive: true) ?? 2000,
        AckTimeout = r.Duration("ack_timeout", min: TimeSpan.FromMilliseconds(100)) ?? TimeSpan.FromSeconds(15),
        ReconnectMaxDelay = r.Duration("reconnect_max_delay", min: TimeSpan.FromSeconds(1)) ?? TimeSpan.FromSeconds(15),
    };


}

/// <summary>Checks <c>uplinks:</c> for <c>edgetwin check</c> and the agent's start (found by reflection).</summary>
public sealed class UplinksSectionValidator : IConfigSectionValidator
{
    public string Section => "uplinks";

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);

        // Ids are not known here; placeholders keep the uplinks' own identity checks quiet, the site section checks ids.
        UplinksConfig.Read(section, "site", "gateway", Path.GetTempPath(), section.FileDirectory);
    }
}
