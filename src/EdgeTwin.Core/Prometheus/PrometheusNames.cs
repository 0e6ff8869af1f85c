using System.Globalization;
using System.Text;

namespace EdgeTwin.Core.Prometheus;

/// <summary>
/// How an instrument's name, unit and tags become Prometheus names and labels (text exposition format 0.0.4): dots and
/// every other illegal character become <c>_</c>, an <c>edgetwin_</c> prefix when missing, a unit suffix from the
/// declared unit (durations in milliseconds are exposed in seconds), <c>_total</c> for counters.
/// </summary>
public static class PrometheusNames
{
    public const string Prefix = "edgetwin_";

    /// <summary>A metric name legal in Prometheus (<c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>); illegal characters become <c>_</c>.</summary>
    public static string SanitizeMetric(string name) => Sanitize(name, allowColon: true);

    /// <summary>A label name legal in Prometheus (<c>[a-zA-Z_][a-zA-Z0-9_]*</c>); illegal characters become <c>_</c>.</summary>
    public static string SanitizeLabel(string name) => Sanitize(name, allowColon: false);

    private static string Sanitize(string name, bool allowColon)
    {
        if (name.Length == 0)
        {
            return "_";
        }

        var sb = new StringBuilder(name.Length + 1);
        if (char.IsAsciiDigit(name[0]))
        {
            sb.Append('_');
        }

        foreach (var c in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) || c == '_' || (allowColon && c == ':') ? c : '_');
        }

        return sb.ToString();
    }

    /// <summary>
    /// The Prometheus unit suffix of a UCUM unit as .NET instruments declare it, and the factor applied to each value
    /// (Prometheus wants base units: a duration in ms is exposed in seconds). Annotations (<c>{sample}</c>) have no suffix.
    /// </summary>
    public static (string Suffix, double Scale) Unit(string? unit)
    {
        switch (unit)
        {
            case null or "" or "1":
                return ("", 1);
            case "s":
                return ("seconds", 1);
            case "ms":
                return ("seconds", 1e-3);
            case "us":
                return ("seconds", 1e-6);
            case "By":
                return ("bytes", 1);
            case "KiBy":
                return ("bytes", 1024);
            case "K":
                return ("kelvin", 1);
            case "Cel":
                return ("celsius", 1);
            case "%":
                return ("percent", 1);
            case "W":
                return ("watts", 1);
            case "V":
                return ("volts", 1);
            case "A":
                return ("amperes", 1);
        }

        // "{sample}/s": an annotation per second.
        var slash = unit.LastIndexOf('/');
        if (slash > 0 && unit[0] == '{' && unit[slash - 1] == '}')
        {
            var per = unit[(slash + 1)..] switch
            {
                "s" => "per_second",
                "min" => "per_minute",
                "h" => "per_hour",
                _ => "",
            };
            return (per, 1);
        }

        if (unit[0] == '{')
        {
            return ("", 1);
        }

        return (SanitizeLabel(unit).ToLowerInvariant(), 1);
    }

    /// <summary>The exposed name of an instrument: prefixed, sanitised, with its unit suffix and, for counters, <c>_total</c>.</summary>
    public static string Metric(string instrumentName, string? unit, bool counter)
    {
        var name = SanitizeMetric(instrumentName);
        if (!name.StartsWith(Prefix, StringComparison.Ordinal))
        {
            name = Prefix + name;
        }

        if (counter && name.EndsWith("_total", StringComparison.Ordinal))
        {
            name = name[..^"_total".Length];
        }

        var (suffix, _) = Unit(unit);
        if (suffix.Length > 0 && !name.EndsWith("_" + suffix, StringComparison.Ordinal))
        {
            name += "_" + suffix;
        }

        return counter ? name + "_total" : name;
    }

    /// <summary>A label value escaped for the exposition format: backslash, double quote and line feed.</summary>
    public static void AppendLabelValue(StringBuilder sb, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\':
                    sb.Append(@"\\");
                    break;
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\n':
                    sb.Append(@"\n");
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }

    /// <summary>HELP text escaped for the exposition format: backslash and line feed.</summary>
    public static void AppendHelp(StringBuilder sb, string help)
    {
        foreach (var c in help)
        {
            switch (c)
            {
                case '\\':
                    sb.Append(@"\\");
                    break;
                case '\n':
                    sb.Append(@"\n");
                    break;
                case '\r':
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }

    /// <summary>A sample value as Prometheus parses it (Go's ParseFloat): shortest round-trip, <c>NaN</c>, <c>+Inf</c>, <c>-Inf</c>.</summary>
    public static void AppendValue(StringBuilder sb, double value)
    {
        if (double.IsNaN(value))
        {
            sb.Append("NaN");
        }
        else if (double.IsPositiveInfinity(value))
        {
            sb.Append("+Inf");
        }
        else if (double.IsNegativeInfinity(value))
        {
            sb.Append("-Inf");
        }
        else
        {
            sb.Append(value.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A tag value as label text: strings as they are, numbers invariant, booleans lower case, null empty.</summary>
    public static string LabelText(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
