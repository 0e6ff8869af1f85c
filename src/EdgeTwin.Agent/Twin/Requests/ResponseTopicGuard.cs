namespace EdgeTwin.Agent.Twin.Requests;

/// <summary>
/// Decides whether the agent may publish a twin reply to a requester's response topic. The response topic is chosen by
/// whoever can publish a request, and the reply goes out with the gateway's own broker credentials: without this check a
/// request could make the gateway write a reply into its own data topics (central consumers would read a what-if answer
/// as an event or summary), into Sparkplug's namespace (protobuf expected) or onto its request topic. Allowed: a topic
/// name (no wildcards, not a <c>$</c> system topic) outside those, and inside <c>twin_requests.response_topics</c> when
/// that list is set.
/// </summary>
public sealed class ResponseTopicGuard
{
    private readonly string[][] _reserved;
    private readonly string[] _reservedText;
    private readonly string[][]? _allowed;
    private readonly string? _allowedText;

    /// <param name="dataTopicTemplate">The MQTT uplink's topic template (<c>{site}</c>, <c>{gateway}</c>, <c>{kind}</c>, <c>{device}</c>).</param>
    /// <param name="requestFilter">The request subscription filter of this gateway.</param>
    /// <param name="allowed">The configured response topic filters (placeholders filled in), or null for any other topic.</param>
    public ResponseTopicGuard(string dataTopicTemplate, string site, string gateway, string requestFilter, IReadOnlyList<string>? allowed)
    {
        ArgumentNullException.ThrowIfNull(dataTopicTemplate);
        var data = DataFilter(dataTopicTemplate, site, gateway);
        _reservedText = [data, requestFilter, "spBv1.0/#"];
        _reserved = [.. _reservedText.Select(f => f.Split('/'))];
        if (allowed is { Count: > 0 })
        {
            _allowed = [.. allowed.Select(f => f.Split('/'))];
            _allowedText = string.Join(", ", allowed);
        }
    }

    /// <summary>Why a reply may not go to <paramref name="topic"/>, or null when it may.</summary>
    public string? Problem(string topic)
    {
        if (topic.AsSpan().IndexOfAny("+#\0") >= 0)
        {
            return "it is not a topic name (wildcard or NUL)";
        }

        if (topic.StartsWith('$'))
        {
            return "it is a broker system topic ($…)";
        }

        var levels = topic.Split('/');
        for (var i = 0; i < _reserved.Length; i++)
        {
            if (Matches(_reserved[i], levels))
            {
                return i switch
                {
                    0 => $"it is one of this gateway's data topics ({_reservedText[0]})",
                    1 => $"it is this gateway's request topic ({_reservedText[1]})",
                    _ => "it is in the Sparkplug B namespace (spBv1.0/#)",
                };
            }
        }

        if (_allowed is not null && !_allowed.Any(f => Matches(f, levels)))
        {
            return $"it is not in twin_requests.response_topics ({_allowedText})";
        }

        return null;
    }

    /// <summary>The template as a filter: a level holding <c>{kind}</c> or <c>{device}</c> matches any level.</summary>
    private static string DataFilter(string template, string site, string gateway) =>
        string.Join('/', template.Split('/').Select(level =>
            level.Contains("{kind}", StringComparison.Ordinal) || level.Contains("{device}", StringComparison.Ordinal)
                ? "+"
                : level.Replace("{site}", site, StringComparison.Ordinal).Replace("{gateway}", gateway, StringComparison.Ordinal)));

    /// <summary>MQTT topic filter matching (<c>+</c> one level, <c>#</c> the rest, including the parent level).</summary>
    internal static bool Matches(string[] filter, string[] topic)
    {
        for (var i = 0; i < filter.Length; i++)
        {
            if (filter[i] == "#")
            {
                return true;
            }

            if (i >= topic.Length || (filter[i] != "+" && !string.Equals(filter[i], topic[i], StringComparison.Ordinal)))
            {
                return false;
            }
        }

        return filter.Length == topic.Length;
    }
}
