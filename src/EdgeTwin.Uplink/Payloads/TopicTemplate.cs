using System.Text;
using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Payloads;

/// <summary>
/// An MQTT topic (or Kafka topic name) with placeholders <c>{site}</c>, <c>{gateway}</c>, <c>{kind}</c> and
/// <c>{device}</c>. Topics without <c>{device}</c> are formatted once per kind and cached.
/// </summary>
public sealed class TopicTemplate
{
    private static readonly string[] Known = ["site", "gateway", "kind", "device"];
    private readonly string _template;
    private readonly UplinkIdentity _identity;
    private readonly bool _perDevice;
    private readonly Dictionary<string, string> _byKind = new(StringComparer.Ordinal);
    private readonly char _deviceReplacement;
    private readonly bool _kafkaNames;

    /// <param name="kafkaNames">Kafka topic names: a device id keeps only <c>[A-Za-z0-9._-]</c>, the rest becomes
    /// <paramref name="deviceReplacement"/> (a real cluster refuses other names, and the uplink passed such entries over
    /// as refused for good: a multivariate group <c>group:mv</c>, a trap from <c>fe80::1</c>). MQTT: only the topic
    /// separators and wildcards are replaced.</param>
    public TopicTemplate(string template, UplinkIdentity identity, char deviceReplacement = '_', bool kafkaNames = false)
    {
        var errors = Validate(template, "template").ToList();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(template));
        }

        _template = template;
        _identity = identity;
        _perDevice = template.Contains("{device}", StringComparison.Ordinal);
        _deviceReplacement = deviceReplacement;
        _kafkaNames = kafkaNames;
    }

    public string Format(OutboxKind kind, string device) => Format(UplinkIdentity.KindName(kind), device);

    /// <summary>Formats for a kind name (also <c>status</c>); a device id is cleaned of topic separators and wildcards.</summary>
    public string Format(string kind, string device)
    {
        if (!_perDevice)
        {
            lock (_byKind)
            {
                if (!_byKind.TryGetValue(kind, out var cached))
                {
                    cached = Expand(kind, "");
                    _byKind[kind] = cached;
                }

                return cached;
            }
        }

        var topic = Expand(kind, Clean(device));
        return _kafkaNames && topic.Length > KafkaMaxTopicLength ? Expand(kind, Shortened(device, topic.Length - KafkaMaxTopicLength)) : topic;
    }

    /// <summary>The longest topic name a Kafka cluster accepts.</summary>
    public const int KafkaMaxTopicLength = 249;

    /// <summary>Characters a shortened device id ends in: '-' and 8 hex digits of the whole id's hash (only the 8 when nothing of the id fits).</summary>
    public const int ShortenedSuffixLength = 9;

    /// <summary>
    /// The device id cut by <paramref name="overflow"/> characters plus room for a hash of the whole id, so two long ids
    /// sharing a prefix keep apart. A longer topic was refused by the cluster and the uplink passed the entry over.
    /// </summary>
    private string Shortened(string device, int overflow)
    {
        var clean = Clean(device);
        var keep = Math.Max(0, clean.Length - overflow - ShortenedSuffixLength);
        var hash = 2166136261u;
        foreach (var c in device)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return keep == 0
            ? hash.ToString("x8", System.Globalization.CultureInfo.InvariantCulture)
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{clean.AsSpan(0, keep)}-{hash:x8}");
    }

    private string Expand(string kind, string device) => new StringBuilder(_template)
        .Replace("{site}", _identity.Site)
        .Replace("{gateway}", _identity.Gateway)
        .Replace("{kind}", kind)
        .Replace("{device}", device)
        .ToString();

    private static readonly System.Buffers.SearchValues<char> MqttForbidden = System.Buffers.SearchValues.Create("/+#\0");
    /// <summary>The characters a Kafka topic name may hold.</summary>
    internal static readonly System.Buffers.SearchValues<char> KafkaAllowed =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

    private bool Forbidden(char c) => _kafkaNames ? !KafkaAllowed.Contains(c) : MqttForbidden.Contains(c);

    private string Clean(string device)
    {
        var bad = _kafkaNames ? device.AsSpan().IndexOfAnyExcept(KafkaAllowed) : device.AsSpan().IndexOfAny(MqttForbidden);
        if (bad < 0 && device.Length > 0)
        {
            return device;
        }

        var chars = device.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (Forbidden(chars[i]))
            {
                chars[i] = _deviceReplacement;
            }
        }

        return chars.Length == 0 ? "_" : new string(chars);
    }

    /// <summary>Every problem with a template; <c>{kind}</c> is required so that status and data never share a topic.</summary>
    public static IEnumerable<string> Validate(string? template, string setting)
    {
        if (string.IsNullOrWhiteSpace(template))
        {
            yield return $"{setting} is required";
            yield break;
        }

        if (!template.Contains("{kind}", StringComparison.Ordinal))
        {
            yield return $"{setting} '{template}' must contain {{kind}}";
        }

        if (template.AsSpan().IndexOfAny("+#\0") >= 0)
        {
            yield return $"{setting} '{template}' may not contain MQTT wildcards '+' or '#'";
        }

        var i = 0;
        while ((i = template.IndexOf('{', i)) >= 0)
        {
            var end = template.IndexOf('}', i);
            if (end < 0)
            {
                yield return $"{setting} '{template}' has an unclosed '{{' at {i}";
                yield break;
            }

            var name = template[(i + 1)..end];
            if (Array.IndexOf(Known, name) < 0)
            {
                yield return $"{setting} '{template}' has unknown placeholder {{{name}}} (known: {{site}}, {{gateway}}, {{kind}}, {{device}})";
            }

            i = end + 1;
        }
    }
}
