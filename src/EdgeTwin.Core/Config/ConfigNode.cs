using System.Globalization;

namespace EdgeTwin.Core.Config;

/// <summary>Where a node came from: file, 1-based line and column.</summary>
public readonly record struct SourceMark(string File, int Line, int Column)
{
    /// <summary>No position (built in code).</summary>
    public static SourceMark None { get; } = new(string.Empty, 0, 0);

    /// <inheritdoc />
    public override string ToString() => FormattableString.Invariant($"{File}:{Line}:{Column}");
}

/// <summary>
/// A YAML node kept as written, with its position, for the sections other components own (<c>uplinks</c>,
/// <c>alerts</c>, <c>models</c>): they bind and validate it themselves and can still name file, line and key.
/// </summary>
public abstract record ConfigNode(SourceMark Mark)
{
    /// <summary>Dotted key path from the document root, e.g. <c>uplinks.mqtt.port</c>.</summary>
    public required string Path { get; init; }
}

/// <summary>A scalar, as its text (YAML <c>null</c>/<c>~</c> gives <see cref="IsNull"/>).</summary>
public sealed record ConfigScalar(SourceMark Mark, string Value) : ConfigNode(Mark)
{
    /// <summary>True for an explicit or empty YAML null.</summary>
    public bool IsNull { get; init; }

    /// <summary>True when the scalar was quoted (so <c>"10"</c> is a string, not a number).</summary>
    public bool IsQuoted { get; init; }

    /// <summary>The value as a double, or null when it is not a number.</summary>
    public double? AsDouble() =>
        !IsQuoted && double.TryParse(Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    /// <summary>The value as a long, or null when it is not an integer.</summary>
    public long? AsInt64() =>
        !IsQuoted && long.TryParse(Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? l : null;

    /// <summary>The value as a bool (YAML 1.2 core schema: true/false), or null.</summary>
    public bool? AsBoolean() => IsQuoted ? null : Value switch
    {
        "true" or "True" or "TRUE" => true,
        "false" or "False" or "FALSE" => false,
        _ => null,
    };

    /// <summary>The value as a duration (<c>500ms</c>, <c>10s</c>, <c>5m</c>, <c>1h</c>, <c>7d</c>), or null.</summary>
    public TimeSpan? AsDuration() => Durations.TryParse(Value, out var t) ? t : null;
}

/// <summary>A sequence of nodes.</summary>
public sealed record ConfigSequence(SourceMark Mark, IReadOnlyList<ConfigNode> Items) : ConfigNode(Mark);

/// <summary>A mapping, keys in file order.</summary>
public sealed record ConfigMapping(SourceMark Mark, IReadOnlyList<KeyValuePair<string, ConfigNode>> Entries) : ConfigNode(Mark)
{
    /// <summary>Where each key is written (keys have no node of their own); missing entries fall back to the value's mark.</summary>
    public IReadOnlyDictionary<string, SourceMark> KeyMarks { get; init; } = new Dictionary<string, SourceMark>(StringComparer.Ordinal);

    /// <summary>The position of <paramref name="key"/>, or of its value when unknown, or of the mapping.</summary>
    public SourceMark KeyMark(string key) =>
        KeyMarks.TryGetValue(key, out var m) ? m : this[key]?.Mark ?? Mark;

    /// <summary>The value under <paramref name="key"/>, or null.</summary>
    public ConfigNode? this[string key]
    {
        get
        {
            foreach (var (k, v) in Entries)
            {
                if (string.Equals(k, key, StringComparison.Ordinal))
                {
                    return v;
                }
            }

            return null;
        }
    }

    /// <summary>
    /// Flattens the mapping into <c>Microsoft.Extensions.Configuration</c> key/value pairs
    /// (<c>mqtt:port</c>, <c>mqtt:topics:0</c>), so owners can use <c>ConfigurationBinder</c>.
    /// </summary>
    public IEnumerable<KeyValuePair<string, string?>> ToConfigurationPairs()
    {
        var list = new List<KeyValuePair<string, string?>>();
        Flatten(this, null, list);
        return list;
    }

    private static void Flatten(ConfigNode node, string? prefix, List<KeyValuePair<string, string?>> into)
    {
        switch (node)
        {
            case ConfigScalar s:
                if (prefix is not null)
                {
                    into.Add(new(prefix, s.IsNull ? null : s.Value));
                }

                break;
            case ConfigSequence seq:
                for (var i = 0; i < seq.Items.Count; i++)
                {
                    Flatten(seq.Items[i], Join(prefix, i.ToString(CultureInfo.InvariantCulture)), into);
                }

                break;
            case ConfigMapping map:
                foreach (var (k, v) in map.Entries)
                {
                    Flatten(v, Join(prefix, k), into);
                }

                break;
        }
    }

    private static string Join(string? prefix, string key) => prefix is null ? key : prefix + ":" + key;
}
