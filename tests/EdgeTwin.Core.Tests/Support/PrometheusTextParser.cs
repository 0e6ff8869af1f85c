using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace EdgeTwin.Core.Tests.Support;

/// <summary>
/// A strict reader of the Prometheus text format 0.0.4 for the tests, stricter than Prometheus itself where promtool's
/// lint is: names and label names legal, label values with only the three escapes, one TYPE and HELP per family before
/// its samples, a family's samples together, no series twice, counters named <c>_total</c>, histograms with <c>le</c>
/// buckets that only grow and end in <c>+Inf</c> equal to <c>_count</c>. Throws <see cref="FormatException"/> naming the line.
/// </summary>
public static partial class PrometheusTextParser
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    public sealed record Family(string Name, string Type, string? Help, List<Sample> Samples);

    public static IReadOnlyDictionary<string, Family> Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the exposition does not end with a line feed");
        }

        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        var series = new HashSet<string>(StringComparer.Ordinal);
        Family? current = null;
        var lines = text.Split('\n');
        for (var n = 0; n < lines.Length - 1; n++)
        {
            var line = lines[n];
            string Where() => $"line {n + 1} '{line}'";
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# HELP ", StringComparison.Ordinal) || line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var rest = line[7..];
                var space = rest.IndexOf(' ', StringComparison.Ordinal);
                var name = space < 0 ? rest : rest[..space];
                var arg = space < 0 ? "" : rest[(space + 1)..];
                if (!MetricName().IsMatch(name))
                {
                    throw new FormatException($"{Where()}: illegal metric name");
                }

                if (current?.Name != name)
                {
                    if (families.ContainsKey(name))
                    {
                        throw new FormatException($"{Where()}: family {name} appears twice");
                    }

                    current = families[name] = new Family(name, "untyped", null, []);
                }

                if (line[2] == 'H')
                {
                    if (current.Help is not null)
                    {
                        throw new FormatException($"{Where()}: second HELP");
                    }

                    CheckHelp(arg, Where);
                    families[name] = current = current with { Help = arg };
                }
                else
                {
                    if (current.Type != "untyped" || current.Samples.Count > 0)
                    {
                        throw new FormatException($"{Where()}: TYPE after samples or twice");
                    }

                    if (arg is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                    {
                        throw new FormatException($"{Where()}: unknown type");
                    }

                    if (arg == "counter" && !name.EndsWith("_total", StringComparison.Ordinal))
                    {
                        throw new FormatException($"{Where()}: a counter's name should end in _total (promtool lint)");
                    }

                    families[name] = current = current with { Type = arg };
                }

                continue;
            }

            if (line.StartsWith('#'))
            {
                continue;
            }

            var sample = ParseSample(line, Where);
            var family = current is not null && Belongs(current, sample.Name) ? current : null;
            if (family is null)
            {
                throw new FormatException($"{Where()}: sample outside its family's block (no TYPE for {sample.Name} right before)");
            }

            var key = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}";
            if (!series.Add(key))
            {
                throw new FormatException($"{Where()}: series {key} twice");
            }

            family.Samples.Add(sample);
        }

        foreach (var f in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(f);
        }

        return families;
    }

    private static bool Belongs(Family family, string sample) => family.Type switch
    {
        "histogram" => sample == family.Name + "_bucket" || sample == family.Name + "_sum" || sample == family.Name + "_count",
        "summary" => sample == family.Name || sample == family.Name + "_sum" || sample == family.Name + "_count",
        _ => sample == family.Name,
    };

    private static void CheckHelp(string help, Func<string> where)
    {
        for (var i = 0; i < help.Length; i++)
        {
            if (help[i] == '\\' && (i + 1 >= help.Length || help[i + 1] is not ('\\' or 'n')))
            {
                throw new FormatException($"{where()}: bad escape in HELP");
            }

            if (help[i] == '\\')
            {
                i++;
            }
        }
    }

    private static Sample ParseSample(string line, Func<string> where)
    {
        var i = 0;
        while (i < line.Length && line[i] is not ('{' or ' '))
        {
            i++;
        }

        var name = line[..i];
        if (!MetricName().IsMatch(name))
        {
            throw new FormatException($"{where()}: illegal metric name '{name}'");
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var eq = line.IndexOf('=', i);
                if (eq < 0)
                {
                    throw new FormatException($"{where()}: label without '='");
                }

                var label = line[i..eq];
                if (!LabelName().IsMatch(label) || label.StartsWith("__", StringComparison.Ordinal))
                {
                    throw new FormatException($"{where()}: illegal label name '{label}'");
                }

                if (eq + 1 >= line.Length || line[eq + 1] != '"')
                {
                    throw new FormatException($"{where()}: label value not quoted");
                }

                var value = new StringBuilder();
                var j = eq + 2;
                for (; ; j++)
                {
                    if (j >= line.Length)
                    {
                        throw new FormatException($"{where()}: unterminated label value");
                    }

                    var c = line[j];
                    if (c == '"')
                    {
                        break;
                    }

                    if (c == '\\')
                    {
                        j++;
                        value.Append(j < line.Length ? line[j] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"{where()}: bad escape '\\{line[j]}' in a label value"),
                        } : throw new FormatException($"{where()}: dangling backslash"));
                        continue;
                    }

                    value.Append(c);
                }

                if (!labels.TryAdd(label, value.ToString()))
                {
                    throw new FormatException($"{where()}: label {label} twice");
                }

                i = j + 1;
                if (line[i] == ',')
                {
                    i++;
                }
                else if (line[i] != '}')
                {
                    throw new FormatException($"{where()}: expected ',' or '}}' after a label");
                }
            }

            i++;
        }

        if (i >= line.Length || line[i] != ' ')
        {
            throw new FormatException($"{where()}: no space before the value");
        }

        var parts = line[(i + 1)..].Split(' ');
        if (parts.Length is < 1 or > 2 || (parts.Length == 2 && !long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
        {
            throw new FormatException($"{where()}: expected a value and an optional timestamp");
        }

        return new Sample(name, labels, ParseValue(parts[0], where));
    }

    public static double ParseValue(string text, Func<string> where) => text switch
    {
        "NaN" => double.NaN,
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ when FloatText().IsMatch(text) => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        _ => throw new FormatException($"{where()}: '{text}' is not a float"),
    };

    private static void CheckHistogram(Family f)
    {
        foreach (var group in f.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value))))
        {
            var buckets = group.Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal)).ToList();
            if (buckets.Count == 0 || buckets.Any(b => !b.Labels.ContainsKey("le")))
            {
                throw new FormatException($"histogram {f.Name}{{{group.Key}}}: buckets missing or without le");
            }

            var bounds = buckets.Select(b => ParseValue(b.Labels["le"], () => f.Name)).ToList();
            if (!double.IsPositiveInfinity(bounds[^1]))
            {
                throw new FormatException($"histogram {f.Name}{{{group.Key}}}: the last bucket is not le=\"+Inf\"");
            }

            for (var k = 1; k < buckets.Count; k++)
            {
                if (bounds[k] <= bounds[k - 1] || buckets[k].Value < buckets[k - 1].Value)
                {
                    throw new FormatException($"histogram {f.Name}{{{group.Key}}}: buckets not increasing at le={buckets[k].Labels["le"]}");
                }
            }

            var count = group.SingleOrDefault(s => s.Name.EndsWith("_count", StringComparison.Ordinal))
                ?? throw new FormatException($"histogram {f.Name}{{{group.Key}}}: no _count");
            _ = group.SingleOrDefault(s => s.Name.EndsWith("_sum", StringComparison.Ordinal))
                ?? throw new FormatException($"histogram {f.Name}{{{group.Key}}}: no _sum");
            if (count.Value != buckets[^1].Value)
            {
                throw new FormatException($"histogram {f.Name}{{{group.Key}}}: _count {count.Value} is not the +Inf bucket {buckets[^1].Value}");
            }
        }
    }

    /// <summary>The value of one series (labels as given, all of them), or null when absent.</summary>
    public static double? Value(IReadOnlyDictionary<string, Family> families, string name, params (string Label, string Value)[] labels)
    {
        foreach (var f in families.Values)
        {
            foreach (var s in f.Samples)
            {
                if (s.Name == name && s.Labels.Count == labels.Length && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value))
                {
                    return s.Value;
                }
            }
        }

        return null;
    }

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    [GeneratedRegex(@"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")]
    private static partial Regex FloatText();
}
