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

    internal UplinkIdentity Identity => new(Site, Gateway);

    internal static readonly string[] Compressions = ["none", "gzip", "snappy", "lz4", "zstd"];

    private static readonly string[] Protected = ["acks", "enable.idempotence", "request.required.acks", "bootstrap.servers"];

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
            var sample = new Payloads.TopicTemplate(TopicTemplate, Identity).Format("twin_state", "device");
            if (sample.Length > 249 || sample.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
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
        if (sasl && (string.IsNullOrEmpty(SaslUsername) || SaslPassword is null))
        {
            errors.Add($"{prefix}.SaslUsername and SaslPassword are required with Security {Security}");
        }

        if (!sasl && (SaslUsername is not null || SaslPassword is not null))
        {
            errors.Add($"{prefix}.SaslUsername/SaslPassword are set but Security is {Security}");
        }

        var tls = Security is KafkaSecurity.Ssl or KafkaSecurity.SaslSsl;
        if (!tls && (SslCaFile ?? SslCertificateFile ?? SslKeyFile) is not null)
        {
            errors.Add($"{prefix}.Ssl* files are set but Security is {Security}");
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
}
