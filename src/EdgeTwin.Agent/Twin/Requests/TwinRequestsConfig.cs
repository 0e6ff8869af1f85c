using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Twin.Requests;

/// <summary>
/// The <c>twin_requests:</c> section: <c>enabled</c> (default: on when <c>uplinks.mqtt.protocol</c> is 5), <c>topic</c>
/// (filter template ending in <c>/+</c>, the scenario level; <c>{site}</c> and <c>{gateway}</c> are filled in),
/// <c>client_id</c> (default <c>{uplink client id}-rpc</c>), <c>max_concurrency</c> (1–4), <c>queue</c> (1–1000 waiting
/// requests), <c>timeout</c> (per request) and <c>response_topics</c> (filters a reply may go to; default any topic
/// outside the gateway's own data, request and Sparkplug topics). Read by the same code for <c>edgetwin check</c> and at start.
/// </summary>
public sealed record TwinRequestsConfig
{
    public const string SectionName = "twin_requests";

    public const string DefaultTopic = "edgetwin/{site}/{gateway}/twin/request/+";

    /// <summary>Null: on when the MQTT uplink speaks MQTT 5 (the default), off otherwise.</summary>
    public bool? Enabled { get; init; }

    public string Topic { get; init; } = DefaultTopic;

    /// <summary>Null: <c>{uplink client id}-rpc</c>.</summary>
    public string? ClientId { get; init; }

    public int MaxConcurrency { get; init; } = 1;

    public int Queue { get; init; } = 8;

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Topic filters (with <c>{site}</c>, <c>{gateway}</c>) a reply may go to; empty: any topic that is not the gateway's own.</summary>
    public IReadOnlyList<string> ResponseTopics { get; init; } = [];

    public static TwinRequestsConfig Default { get; } = new();

    /// <summary>Reads the section of a loaded config (absent: defaults); throws <see cref="ConfigException"/> with every problem.</summary>
    public static TwinRequestsConfig From(SiteConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Sections.TryGetValue(SectionName, out var section))
        {
            return Default;
        }

        var diagnostics = new ConfigDiagnostics();
        var result = Read(new ConfigReader(section, diagnostics));
        if (!diagnostics.IsEmpty)
        {
            throw new ConfigException(diagnostics.Sorted());
        }

        return result;
    }

    internal static TwinRequestsConfig Read(ConfigReader section)
    {
        var topic = section.String("topic") ?? DefaultTopic;
        if (section.Node("topic") is { } node && TopicProblem(topic) is { } problem)
        {
            section.Diagnostics.Add(node, problem);
        }

        var clientId = section.String("client_id");
        if (clientId is { Length: 0 or > 65535 } && section.Node("client_id") is { } idNode)
        {
            section.Diagnostics.Add(idNode, "client_id must be 1..65535 characters");
        }

        var responseTopics = new List<string>();
        if (section.Sequence("response_topics") is { } list)
        {
            foreach (var item in list.Items)
            {
                if (item is not ConfigScalar { IsNull: false } scalar)
                {
                    section.Diagnostics.Add(item, "expected a topic filter, got " + (item is ConfigScalar ? "null" : "a " + (item is ConfigSequence ? "list" : "mapping")));
                }
                else if (ResponseFilterProblem(scalar.Value) is { } filterProblem)
                {
                    section.Diagnostics.Add(scalar, filterProblem);
                }
                else
                {
                    responseTopics.Add(scalar.Value);
                }
            }
        }

        var result = new TwinRequestsConfig
        {
            Enabled = section.Bool("enabled"),
            Topic = topic,
            ClientId = clientId,
            MaxConcurrency = section.Int("max_concurrency", min: 1, max: 4) ?? 1,
            Queue = section.Int("queue", min: 1, max: 1000) ?? 8,
            Timeout = section.Duration("timeout", min: TimeSpan.FromMilliseconds(100)) ?? TimeSpan.FromSeconds(30),
            ResponseTopics = responseTopics,
        };
        section.ReportUnknownKeys();
        return result;
    }

    /// <summary>Why a topic template cannot be the request filter, or null when it can.</summary>
    internal static string? TopicProblem(string topic)
    {
        if (!topic.EndsWith("/+", StringComparison.Ordinal) || topic.Length < 3)
        {
            return $"topic '{topic}' must end with '/+' (the last level is the scenario, e.g. …/twin/request/+)";
        }

        var levels = topic.Split('/');
        for (var i = 0; i < levels.Length - 1; i++)
        {
            var level = levels[i];
            if (level.Contains('#', StringComparison.Ordinal) || level.Contains('+', StringComparison.Ordinal))
            {
                return $"topic '{topic}': level {i + 1} ('{level}') may not hold a wildcard (only the last level is '+')";
            }

            var rest = level.Replace("{site}", "", StringComparison.Ordinal).Replace("{gateway}", "", StringComparison.Ordinal);
            if (rest.Contains('{', StringComparison.Ordinal) || rest.Contains('}', StringComparison.Ordinal))
            {
                return $"topic '{topic}': level {i + 1} ('{level}') has an unknown placeholder (known: {{site}}, {{gateway}})";
            }
        }

        return null;
    }

    /// <summary>Why an entry of <c>response_topics</c> is not a usable topic filter, or null when it is.</summary>
    internal static string? ResponseFilterProblem(string filter)
    {
        if (filter.Length == 0 || filter.StartsWith('$'))
        {
            return $"response topic filter '{filter}' must be a non-empty filter outside the broker's $ topics";
        }

        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if ((level.Contains('#', StringComparison.Ordinal) && (level != "#" || i != levels.Length - 1))
                || (level.Contains('+', StringComparison.Ordinal) && level != "+"))
            {
                return $"response topic filter '{filter}': level {i + 1} ('{level}') is not a valid MQTT filter level ('+' alone, '#' alone and last)";
            }

            var rest = level.Replace("{site}", "", StringComparison.Ordinal).Replace("{gateway}", "", StringComparison.Ordinal);
            if (rest.Contains('{', StringComparison.Ordinal) || rest.Contains('}', StringComparison.Ordinal))
            {
                return $"response topic filter '{filter}': level {i + 1} ('{level}') has an unknown placeholder (known: {{site}}, {{gateway}})";
            }
        }

        return null;
    }

    /// <summary>The response topic filters for this gateway.</summary>
    public IReadOnlyList<string> ResponseFilters(string site, string gateway) =>
        [.. ResponseTopics.Select(t => t.Replace("{site}", site, StringComparison.Ordinal).Replace("{gateway}", gateway, StringComparison.Ordinal))];

    /// <summary>The subscription filter for this gateway.</summary>
    public string Filter(string site, string gateway) =>
        Topic.Replace("{site}", site, StringComparison.Ordinal).Replace("{gateway}", gateway, StringComparison.Ordinal);
}

/// <summary>Validates <c>twin_requests</c> for <c>edgetwin check</c> and the agent's start.</summary>
public sealed class TwinRequestsSectionValidator : IConfigSectionValidator
{
    public string Section => TwinRequestsConfig.SectionName;

    public void Validate(ConfigReader section)
    {
        ArgumentNullException.ThrowIfNull(section);
        TwinRequestsConfig.Read(section);
    }

    /// <summary>
    /// With <c>uplinks.mqtt.protocol: "3.1.1"</c> the server stays off (the reply needs MQTT 5's response topic and
    /// correlation data), so a section that asks for it is a warning at <c>enabled</c> (or the section), as at start;
    /// before, <c>check</c> passed it without a word and only the agent's log said the server was off.
    /// </summary>
    public void ValidateReferences(ConfigReader section, SiteReferences site)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(site);
        var enabled = section.Mapping["enabled"] as ConfigScalar;
        if (enabled?.AsBoolean() == false
            || site.Config.Uplinks?["mqtt"] is not ConfigMapping mqtt
            || mqtt["protocol"] is not ConfigScalar { Value: "3.1.1" } protocol)
        {
            return;
        }

        const string why = "twin requests need MQTT 5 (the reply goes to the request's response topic with its correlation data, which MQTT 3.1.1 cannot carry), so the server stays off";
        var where = $"uplinks.mqtt.protocol is 3.1.1 ({protocol.Mark.File}:{protocol.Mark.Line})";
        section.Diagnostics.AddWarning(enabled ?? (ConfigNode)section.Mapping, enabled is not null
            ? $"is true but {where}: {why}; set enabled: false, or protocol: \"5\" if the broker speaks MQTT 5"
            : $"is ignored: {where}: {why}; remove the section, or set protocol: \"5\" if the broker speaks MQTT 5");
    }
}
