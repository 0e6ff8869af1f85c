using System.Globalization;
using System.Text.Json.Nodes;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Converts a <see cref="ConfigNode"/> tree to JSON with YAML 1.2 core-schema typing: unquoted
/// <c>true</c>/<c>false</c> become booleans, unquoted integers (also <c>0x</c> hex) and decimals become
/// numbers, <c>null</c>/<c>~</c>/empty become null, everything else (and anything quoted) a string.
/// Used to check YAML files against the JSON Schemas and by section owners that prefer System.Text.Json.
/// </summary>
public static class ConfigNodeJson
{
    /// <summary>The JSON equivalent of <paramref name="node"/> (null for a YAML null).</summary>
    public static JsonNode? ToJsonNode(ConfigNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        switch (node)
        {
            case ConfigMapping m:
                var obj = new JsonObject();
                foreach (var (k, v) in m.Entries)
                {
                    obj[k] = ToJsonNode(v);
                }

                return obj;
            case ConfigSequence q:
                var arr = new JsonArray();
                foreach (var item in q.Items)
                {
                    arr.Add(ToJsonNode(item));
                }

                return arr;
            case ConfigScalar s:
                return Scalar(s);
            default:
                throw new ArgumentOutOfRangeException(nameof(node), node.GetType().Name, "Unknown config node type.");
        }
    }

    private static JsonValue? Scalar(ConfigScalar s)
    {
        if (s.IsNull)
        {
            return null;
        }

        if (s.IsQuoted)
        {
            return JsonValue.Create(s.Value);
        }

        if (s.AsBoolean() is { } b)
        {
            return JsonValue.Create(b);
        }

        if (s.AsInt64() is { } l)
        {
            return JsonValue.Create(l);
        }

        if (s.Value.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            && long.TryParse(s.Value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
        {
            return JsonValue.Create(hex);
        }

        // Only plain decimal notation counts as a number ("1e3" stays text, as do ".inf" and "1_000").
        if (s.Value.Length > 0 && (char.IsAsciiDigit(s.Value[0]) || s.Value[0] is '-' or '+')
            && double.TryParse(s.Value, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d))
        {
            return JsonValue.Create(d);
        }

        return JsonValue.Create(s.Value);
    }
}
