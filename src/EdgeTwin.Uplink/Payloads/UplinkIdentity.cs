using EdgeTwin.Outbox;

namespace EdgeTwin.Uplink.Payloads;

/// <summary>Who is talking upstream: the site and the gateway, as they appear in topics and envelopes.</summary>
public sealed record UplinkIdentity(string Site, string Gateway)
{
    /// <summary>The lower-case wire name of a kind, used in topics (<c>{kind}</c>) and the JSON <c>kind</c> field.</summary>
    public static string KindName(OutboxKind kind) => kind switch
    {
        OutboxKind.Summary => "summary",
        OutboxKind.Raw => "raw",
        OutboxKind.Event => "event",
        OutboxKind.Prediction => "prediction",
        OutboxKind.TwinState => "twin_state",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown outbox kind"),
    };

    /// <summary>Every problem with the identity; empty when valid. Topic segments may not hold MQTT wildcards or '/'.</summary>
    public IEnumerable<string> Validate(string prefix)
    {
        foreach (var (name, value) in new[] { (nameof(Site), Site), (nameof(Gateway), Gateway) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                yield return $"{prefix}.{name} is required";
            }
            else if (value.AsSpan().IndexOfAny("/+#\0") >= 0)
            {
                yield return $"{prefix}.{name} '{value}' may not contain '/', '+', '#' or NUL (it is a topic segment)";
            }
        }
    }
}
