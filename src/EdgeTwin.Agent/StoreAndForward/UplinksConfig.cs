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
public sealed partial record UplinksConfig(MqttUplinkOptions? Mqtt, KafkaUplinkOptions? Kafka)
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

        var hosts = ReadHosts(m);
        var options = new MqttUplinkOptions
        {
            // With hosts:, Host is the first entry's host: what single-broker readers of the options (the connectivity
            // probe's default target) see; the uplink itself walks Hosts.
            Host = hosts is null ? m.String("host") ?? "" : HostOfFirst(hosts),
            Hosts = hosts,
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
            SparkplugPrimaryHostId = m.String("sparkplug_primary_host_id"),
            SparkplugAliases = m.Bool("sparkplug_aliases") ?? false,
            StateDirectory = stateDirectory,
            Delivery = ReadDelivery(m),
        };
        m.ReportUnknownKeys();
        // A broker address that is wrong is reported as such; how it would travel is then beside the point.
        var hostBad = !CheckHost(m);
        var problems = options.Validate();
        // A missing host key was reported by ReadHosts, naming both keys; an empty one is reported at it here.
        var hostWritten = m.Node("host") is not null;
        AddOptionProblems(m, "uplinks.mqtt", problems.Where(p => (hostWritten || p != "uplinks.mqtt.Host is required") && !AddHostsProblem(m, p)), MqttKeys);

        // The files are parsed as the connection will, so a broken certificate or key fails check, not the start.
        if (tls is not null && problems.Count == 0)
        {
            foreach (var problem in TlsFiles.CheckMqtt(options.Tls))
            {
                tls.Diagnostics.Add(tls.Node(problem.Key) ?? tls.Mapping, problem.ToString());
            }
        }

        foreach (var warning in options.Warnings().Where(w => !hostBad || w.Key is not ("host" or "hosts")))
        {
            m.Diagnostics.AddWarning(m.Node(warning.Key + "_file") ?? m.Node(warning.Key) ?? m.Mapping, warning.Message);
        }

        // Each encoding has its own topics: the other one's key was read, validated and then silently never used.
        if (options.Encoding == MqttPayloadEncoding.SparkplugB && m.Node("topic_template") is { } template)
        {
            m.Diagnostics.AddWarning(template, "is ignored with encoding: sparkplug_b, whose topics are spBv1.0/{group}/N…/{gateway}[/{device}] (the group: sparkplug_group_id, default the site id); remove it");
        }
        else if (options.Encoding == MqttPayloadEncoding.Json && m.Node("sparkplug_group_id") is { } group)
        {
            m.Diagnostics.AddWarning(group, "is ignored with encoding: json (the default); it names the Sparkplug group of encoding: sparkplug_b only; remove it or set encoding: sparkplug_b");
        }

        if (options.Encoding == MqttPayloadEncoding.Json && m.Node("sparkplug_primary_host_id") is { } host)
        {
            m.Diagnostics.AddWarning(host, "is ignored with encoding: json (the default); it names the Sparkplug primary host application that encoding: sparkplug_b waits for; remove it or set encoding: sparkplug_b");
        }

        if (options.Encoding == MqttPayloadEncoding.Json && m.Node("sparkplug_aliases") is { } aliases)
        {
            m.Diagnostics.AddWarning(aliases, "is ignored with encoding: json (the default); it makes encoding: sparkplug_b send metric aliases instead of names; remove it or set encoding: sparkplug_b");
        }

        if (options.Encoding == MqttPayloadEncoding.SparkplugB && options.PersistentSession && (m.Node("persistent_session") ?? m.Node("session_expiry")) is { } session)
        {
            m.Diagnostics.AddWarning(session, "is ignored with encoding: sparkplug_b: the Sparkplug specification requires an edge node to connect with a clean session (3.1.1: clean session; 5: clean start, session expiry 0), which the uplink does; the outbox carries the data across reconnects");
        }
        else if (m.Node("session_expiry") is { } expiry && (options.Protocol == MqttProtocol.V311 || !options.PersistentSession))
        {
            m.Diagnostics.AddWarning(expiry, options.PersistentSession
                ? "is ignored with protocol 3.1.1, which has no session expiry: the broker's own setting decides how long it keeps the session (mosquitto: persistent_client_expiration)"
                : "is ignored with persistent_session: false (every connect starts a clean session)");
        }

        return options;
    }

    /// <summary>
    /// <c>hosts:</c>, the brokers of an HA pair or cluster; null when the section has <c>host:</c> instead. Exactly one of
    /// the two keys: both, or neither, is an error here (at the key), with the file and line.
    /// </summary>
    private static List<string>? ReadHosts(ConfigReader m)
    {
        var host = m.Node("host");
        var list = m.Node("hosts");
        if (host is not null && list is not null)
        {
            m.Diagnostics.Add(list, "host: and hosts: are both set: keep hosts: (the brokers, tried in order) or host: (one broker), not both");
        }
        else if (host is null && list is null)
        {
            m.Diagnostics.Add(m.Mapping.Mark, m.ChildPath("host"), "missing required key 'host' (one broker) or 'hosts' (a list of brokers, tried in order)");
        }

        if (list is null || m.Sequence("hosts") is not { } sequence)
        {
            return null;
        }

        return m.ScalarTexts(sequence, "a broker as host, host:port or [IPv6]:port");
    }

    private static string HostOfFirst(List<string> hosts) =>
        hosts.Count > 0 && MqttBrokerAddress.Parse(hosts[0], 1883, out _) is { } first ? first.Host : "";

    /// <summary>A problem of one <c>hosts:</c> entry (<c>uplinks.mqtt.Hosts[2] …</c>), put at that entry; false for any other.</summary>
    private static bool AddHostsProblem(ConfigReader m, string problem)
    {
        const string Prefix = "uplinks.mqtt.Hosts[";
        if (!problem.StartsWith(Prefix, StringComparison.Ordinal) || m.Mapping["hosts"] is not ConfigSequence sequence)
        {
            return false;
        }

        var close = problem.IndexOf(']', Prefix.Length);
        if (close < 0 || !int.TryParse(problem.AsSpan(Prefix.Length, close - Prefix.Length), System.Globalization.CultureInfo.InvariantCulture, out var index)
            || index >= sequence.Items.Count)
        {
            return false;
        }

        if (sequence.Items[index] is ConfigScalar { IsNull: false })
        {
            // An entry that is no scalar was reported by ReadHosts already.
            m.Diagnostics.Add(sequence.Items[index], problem[(close + 2)..].Replace(" as Hosts[", " as hosts[", StringComparison.Ordinal));
        }

        return true;
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
        var serversBad = !CheckBootstrapServers(k);
        var problems = options.Validate();
        AddOptionProblems(k, "uplinks.kafka", problems, KafkaKeys);

        // librdkafka reads these files itself, only when it connects; parse them now so check catches what it would refuse.
        if (problems.Count == 0 && options.Security is KafkaSecurity.Ssl or KafkaSecurity.SaslSsl)
        {
            foreach (var problem in TlsFiles.CheckPem(options.SslCaFile, options.SslCertificateFile, options.SslKeyFile, options.SslKeyPassword, TlsFileKeys.Kafka))
            {
                k.Diagnostics.Add(k.Node(problem.Key) ?? k.Mapping, problem.ToString());
            }
        }

        foreach (var warning in options.Warnings().Where(w => !serversBad || w.Key != "bootstrap_servers"))
        {
            var node = warning.Key.StartsWith("settings.", StringComparison.Ordinal) ? s?.Node(warning.Key["settings.".Length..]) : k.Node(warning.Key);
            k.Diagnostics.AddWarning(node ?? k.Mapping, warning.Message);
        }

        return options;
    }

    // The options name their properties (uplinks.mqtt.KeepAlive); the site engineer wrote keys (keep_alive) on a line.
    private static readonly Dictionary<string, string> DeliveryKeys = new(StringComparer.Ordinal)
    {
        ["Delivery.Window"] = "window",
        ["Delivery.BacklogRatePerSecond"] = "backlog_rate",
        ["Delivery.MaxBytesPerSecond"] = "max_rate",
        ["Delivery.AckTimeout"] = "ack_timeout",
        ["Delivery.ReconnectMaxDelay"] = "reconnect_max_delay",
    };

    private static readonly Dictionary<string, string> MqttKeys = new(DeliveryKeys, StringComparer.Ordinal)
    {
        ["Host"] = "host",
        ["Hosts"] = "hosts",
        ["Port"] = "port",
        ["ClientId"] = "client_id",
        ["Password"] = "password",
        ["KeepAlive"] = "keep_alive",
        ["SessionExpiry"] = "session_expiry",
        ["TopicTemplate"] = "topic_template",
        ["SparkplugGroupId"] = "sparkplug_group_id",
        ["SparkplugPrimaryHostId"] = "sparkplug_primary_host_id",
        ["Tls.CaFile"] = "tls.ca_file",
        ["Tls.ClientCertificateFile"] = "tls.client_cert_file",
        ["Tls.ClientKeyFile"] = "tls.client_key_file",
        ["Tls"] = "tls",
    };

    private static readonly Dictionary<string, string> KafkaKeys = new(DeliveryKeys, StringComparer.Ordinal)
    {
        ["BootstrapServers"] = "bootstrap_servers",
        ["TopicTemplate"] = "topic_template",
        ["Compression"] = "compression",
        ["Linger"] = "linger",
        ["SaslUsername"] = "sasl_username",
        ["SaslPassword"] = "sasl_password",
        ["SslCaFile"] = "ssl_ca_file",
        ["SslCertificateFile"] = "ssl_cert_file",
        ["SslKeyFile"] = "ssl_key_file",
        ["Settings"] = "settings",
    };

    /// <summary>
    /// Reports each of the options' problems at the key it is about, with the value as written: before, every one was
    /// put at the section's first line as "uplinks.kafka: uplinks.kafka.Linger must be 0..10 s (was 400.00:00:00)".
    /// A problem about no single written key stays at the section.
    /// </summary>
    private static void AddOptionProblems(ConfigReader r, string prefix, IEnumerable<string> problems, Dictionary<string, string> keys)
    {
        foreach (var problem in problems)
        {
            ConfigNode? node = null;
            var message = problem;
            if (problem.StartsWith(prefix + ".", StringComparison.Ordinal))
            {
                var rest = problem[(prefix.Length + 1)..];
                // The longest property name first, so Tls.CaFile wins over Tls.
                foreach (var (property, key) in keys.OrderByDescending(p => p.Key.Length))
                {
                    if (rest.StartsWith(property + " ", StringComparison.Ordinal) && NodeAt(r.Mapping, key) is { } found)
                    {
                        node = found;
                        message = rest[(property.Length + 1)..];
                        if (message == "is required")
                        {
                            message = "must not be empty";
                        }
                        else if (found is ConfigScalar written)
                        {
                            message = WasValue().Replace(message, _ => $"(got '{written.Value}')");
                        }

                        message = ConfigWords(message, keys);

                        break;
                    }
                }
            }

            if (node is null && problem.StartsWith(prefix + ".", StringComparison.Ordinal)
                && Unwritten.Keys.Any(p => problem.AsSpan(prefix.Length + 1).StartsWith(p + " ", StringComparison.Ordinal)))
            {
                // About a key not written (a SASL password with security: sasl_ssl): name the key to write, in the
                // file's words, at the section. It read "uplinks.kafka.sasl_username: and SaslPassword are required
                // with Security SaslSsl", at the user name that was there.
                message = ConfigWords(problem[(prefix.Length + 1)..], keys);
            }

            r.Diagnostics.Add(node ?? r.Mapping, message);
        }
    }

    private static readonly Dictionary<string, string> Unwritten = new(StringComparer.Ordinal)
    {
        ["SaslPassword"] = "sasl_password_file (or sasl_password)",
        ["SaslUsername"] = "sasl_username",
    };

    /// <summary>The options' property names and enum values in a message as the config file spells them.</summary>
    private static string ConfigWords(string message, Dictionary<string, string> keys)
    {
        foreach (var (property, key) in Unwritten.Concat(keys).OrderByDescending(p => p.Key.Length))
        {
            message = System.Text.RegularExpressions.Regex.Replace(message, $@"\b{System.Text.RegularExpressions.Regex.Escape(property)}\b", key);
        }

        return SecurityValue().Replace(message, m => "security: " + SnakeCase(m.Groups[1].Value));
    }

    private static string SnakeCase(string pascal) =>
        string.Concat(pascal.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));

    [System.Text.RegularExpressions.GeneratedRegex(@"\bSecurity (\w+)")]
    private static partial System.Text.RegularExpressions.Regex SecurityValue();

    private static ConfigNode? NodeAt(ConfigMapping mapping, string dottedKey)
    {
        ConfigNode? node = mapping;
        foreach (var part in dottedKey.Split('.'))
        {
            node = (node as ConfigMapping)?[part];
        }

        return node is ConfigScalar { IsNull: true } ? null : node;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^[^:\[\]]+:[0-9]*$")]
    private static partial System.Text.RegularExpressions.Regex HostWithPort();

    [System.Text.RegularExpressions.GeneratedRegex(@"\(was [^)]*\)")]
    private static partial System.Text.RegularExpressions.Regex WasValue();

    /// <summary>
    /// The broker's host alone: a URL (<c>mqtt://broker</c>, <c>tcp://broker:1883</c>) or a host with its port passed
    /// check before and failed only when the agent resolved it, retrying for ever. False when it reported the host.
    /// </summary>
    private static bool CheckHost(ConfigReader m)
    {
        // Only what is surely not a host: a name the resolver may still take (an underscore, say) stays the resolver's call.
        if (m.Node("host") is not ConfigScalar { Value.Length: > 0 } host
            || (host.Value.AsSpan().IndexOfAny("/ \t") < 0 && !HostWithPort().IsMatch(host.Value)))
        {
            return true;
        }

        var hint = Uri.TryCreate(host.Value, UriKind.Absolute, out var url) && url.Host.Length > 0
            ? url.IsDefaultPort || url.Port < 0
                ? $" (did you mean host: {url.Host}?)"
                : $" (did you mean host: {url.Host}, port: {url.Port}?)"
            : host.Value.LastIndexOf(':') is var colon and > 0 && host.Value.IndexOf(':', StringComparison.Ordinal) == colon
                && int.TryParse(host.Value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
                ? $" (did you mean host: {host.Value[..colon]}, port: {port}?)"
                : "";
        m.Diagnostics.Add(host, $"'{host.Value}' is not a host name or IP address: give the broker's host alone, the port in port: and TLS in tls:{hint}");
        return false;
    }

    /// <summary>
    /// Each broker as librdkafka takes it (<see cref="KafkaBrokerList"/>): <c>kafka://k1:9092</c> or a bad port passed
    /// check, and librdkafka only logged that it could not resolve the name. False when it reported the list.
    /// </summary>
    private static bool CheckBootstrapServers(ConfigReader k)
    {
        if (k.Node("bootstrap_servers") is not ConfigScalar { Value.Length: > 0 } servers)
        {
            return true;
        }

        KafkaBrokerList.Parse(servers.Value, out var problem);
        if (problem is null)
        {
            return true;
        }

        k.Diagnostics.Add(servers, problem);
        return false;
    }

    /// <summary>
    /// <c>max_rate</c>: a rate with its unit, as link speeds and data plans are quoted (<c>64kbit/s</c>, <c>1.5Mbit/s</c>,
    /// <c>8kB/s</c>, <c>2KiB/s</c>); bytes per second, or null when absent or wrong (then an error at the key).
    /// </summary>
    internal static double? ReadByteRate(ConfigReader r, string key)
    {
        if (r.Node(key) is not { } node)
        {
            return null;
        }

        var text = r.String(key);
        if (text is null)
        {
            return null;
        }

        if (ParseByteRate(text) is not { } rate)
        {
            r.Diagnostics.Add(node, $"expected a rate with its unit, like 64kbit/s, 1Mbit/s, 8kB/s or 2KiB/s (bit/s, kbit/s, Mbit/s, B/s, kB/s, KiB/s, MB/s, MiB/s), got '{text}'");
            return null;
        }

        if (rate < DeliveryOptions.MinBytesPerSecond)
        {
            r.Diagnostics.Add(node, $"must be at least {DeliveryOptions.MinBytesPerSecond * 8:0} bit/s ({DeliveryOptions.MinBytesPerSecond:0} B/s), got '{text}'; leave max_rate out for no limit");
            return null;
        }

        return rate;
    }

    /// <summary>Bytes per second of <c>NUMBER UNIT</c> (decimal k/M = 1000, Ki/Mi = 1024), or null.</summary>
    internal static double? ParseByteRate(string text)
    {
        var t = text.Trim();
        var i = 0;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.'))
        {
            i++;
        }

        if (i == 0 || !double.TryParse(t.AsSpan(0, i), System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var n))
        {
            return null;
        }

        double? factor = t[i..].Trim() switch
        {
            "bit/s" or "bps" => 1 / 8.0,
            "kbit/s" or "kbps" => 1000 / 8.0,
            "Mbit/s" or "Mbps" => 1_000_000 / 8.0,
            "B/s" => 1,
            "kB/s" => 1000,
            "KiB/s" => 1024,
            "MB/s" => 1_000_000,
            "MiB/s" => 1024 * 1024,
            _ => null,
        };
        return factor is { } f && double.IsFinite(n * f) ? n * f : null;
    }

    private static DeliveryOptions ReadDelivery(ConfigReader r) => new()
    {
        Window = r.Int("window", min: 1, max: 65535) ?? 256,
        BacklogRatePerSecond = r.Double("backlog_rate", positive: true) ?? 2000,
        MaxBytesPerSecond = ReadByteRate(r, "max_rate") ?? 0,
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
