using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// Parsing and range checks of numeric options in one place, so that a bad value is one usage line naming the option:
/// a separate validator read the value of a token that had not parsed and crashed with an exception
/// (<c>demo --duration 30s</c>).
/// </summary>
internal static class CliOptionRanges
{
    public static Option<int> AtLeast(this Option<int> option, int min) => option.Within(min, int.MaxValue);

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, where the agent would cap a larger one unsaid.</summary>
    public static Option<int> Within(this Option<int> option, int min, int max)
    {
        option.CustomParser = r =>
        {
            ParseWithin(r, option.Name, min, max, out var v);
            return v;
        };
        return option;
    }

    /// <summary>An optional whole number of at least <paramref name="min"/>; absent: null.</summary>
    public static Option<int?> AtLeast(this Option<int?> option, int min)
    {
        option.CustomParser = r => ParseWithin(r, option.Name, min, int.MaxValue, out var v) ? v : null;
        return option;
    }

    /// <summary>
    /// A number from <paramref name="min"/> to <paramref name="max"/>, the range the same what-if takes as a twin request:
    /// <c>optimize cooling --margin -3</c> advised set points for inlets of 30 °C, over the limit it is meant to keep.
    /// </summary>
    public static Option<double> Between(this Option<double> option, double min, double max)
    {
        option.CustomParser = r =>
        {
            if (Number(r, option.Name, out var v) && (v < min || v > max))
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be from {min} to {max}, got {Text(r)}"));
            }

            return v;
        };
        return option;
    }

    /// <summary>An optional number from <paramref name="min"/> to <paramref name="max"/>; absent: null.</summary>
    public static Option<double?> Between(this Option<double?> option, double min, double max)
    {
        option.CustomParser = r =>
        {
            if (!Number(r, option.Name, out var v))
            {
                return null;
            }

            if (v < min || v > max)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be from {min} to {max}, got {Text(r)}"));
            }

            return v;
        };
        return option;
    }

    /// <summary>A number of seconds (<c>30</c>) or a duration as in the config (<c>30s</c>, <c>5m</c>, <c>1h</c>), above zero.</summary>
    public static Option<double?> Positive(this Option<double?> option)
    {
        option.CustomParser = r =>
        {
            var text = Text(r);
            if (!TryParseSeconds(text, out var seconds))
            {
                r.AddError($"{option.Name} takes seconds (30) or a duration (30s, 5m, 1h), got '{text}'");
                return null;
            }

            if (!(seconds > 0))
            {
                r.AddError($"{option.Name} must be a positive number of seconds, got {text}");
            }

            return seconds;
        };
        return option;
    }

    public static Option<double> Positive(this Option<double> option)
    {
        option.CustomParser = r =>
        {
            if (Number(r, option.Name, out var v) && !(v > 0))
            {
                r.AddError($"{option.Name} must be positive, got {Text(r)}");
            }

            return v;
        };
        return option;
    }

    /// <summary>
    /// Seconds (<c>45</c>) or a duration (<c>45s</c>, <c>2m</c>) from 0 (which the caller takes as "off") to
    /// <paramref name="max"/>: a time far beyond any run is a typo, and beyond TimeSpan it threw.
    /// </summary>
    public static Option<double> Seconds(this Option<double> option, TimeSpan max)
    {
        option.CustomParser = r =>
        {
            var text = Text(r);
            if (!TryParseSeconds(text, out var seconds))
            {
                r.AddError($"{option.Name} takes seconds (45) or a duration (45s, 2m), got '{text}'");
                return 0;
            }

            if (seconds < 0 || seconds > max.TotalSeconds)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be from 0 (off) to {max.TotalSeconds:0} seconds, got {text}"));
            }

            return seconds;
        };
        return option;
    }

    /// <summary>
    /// A time above zero and under <paramref name="limit"/>: seconds (<c>20</c>), a duration as in the config (<c>20s</c>)
    /// or <c>hh:mm:ss</c> (<c>00:00:20</c>). <c>run --shutdown-timeout</c> took only TimeSpan's forms, read <c>20</c> as
    /// 20 days, and took a negative time, which crashed the stop with an ArgumentOutOfRangeException and its stack trace.
    /// </summary>
    public static Option<TimeSpan> Below(this Option<TimeSpan> option, TimeSpan limit)
    {
        option.CustomParser = r =>
        {
            var text = Text(r);
            TimeSpan value;
            if (TryParseSeconds(text, out var seconds))
            {
                value = Math.Abs(seconds) < TimeSpan.MaxValue.TotalSeconds ? TimeSpan.FromSeconds(seconds) : TimeSpan.MaxValue;
            }
            else if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value))
            {
                r.AddError($"{option.Name} takes seconds (20), a duration (20s) or hh:mm:ss (00:00:20), got '{text}'");
                return TimeSpan.Zero;
            }

            if (value <= TimeSpan.Zero || value >= limit)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be above 0 and under {limit.TotalSeconds:0} s (after that the process is cut), got {text}"));
            }

            return value;
        };
        return option;
    }

    /// <summary>
    /// Gives every whole-number, number and enum option of the tree that has no parser of its own one whose error names
    /// the option and what it takes: System.CommandLine's own said <c>Cannot parse argument '1.5' for option
    /// '--snmp-devices' as expected type 'System.Int32'</c>, a .NET type name the site engineer should not need to read.
    /// </summary>
    public static void NameExpectedTypes(Command root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var option in root.Options)
        {
            NameExpectedType(option);
        }

        foreach (var command in root.Subcommands)
        {
            NameExpectedTypes(command);
        }
    }

    private static void NameExpectedType(Option option)
    {
        switch (option)
        {
            case Option<int> o when o.CustomParser is null:
                o.CustomParser = r => Whole(r, o.Name, int.MinValue, int.MaxValue, out var v) ? (int)v : 0;
                break;
            case Option<int?> o when o.CustomParser is null:
                o.CustomParser = r => Whole(r, o.Name, int.MinValue, int.MaxValue, out var v) ? (int)v : null;
                break;
            case Option<long> o when o.CustomParser is null:
                o.CustomParser = r => Whole(r, o.Name, long.MinValue, long.MaxValue, out var v) ? (long)v : 0;
                break;
            case Option<ulong> o when o.CustomParser is null:
                o.CustomParser = r => Whole(r, o.Name, ulong.MinValue, ulong.MaxValue, out var v) ? (ulong)v : 0;
                break;
            case Option<ulong?> o when o.CustomParser is null:
                o.CustomParser = r => Whole(r, o.Name, ulong.MinValue, ulong.MaxValue, out var v) ? (ulong)v : null;
                break;
            case Option<double> o when o.CustomParser is null:
                o.CustomParser = r => Number(r, o.Name, out var v) ? v : 0;
                break;
            case Option<double?> o when o.CustomParser is null:
                o.CustomParser = r => Number(r, o.Name, out var v) ? v : null;
                break;
            case Option<Microsoft.Extensions.Logging.LogLevel> o when o.CustomParser is null:
                o.CustomParser = r => OneOf(r, o.Name, out Microsoft.Extensions.Logging.LogLevel v) ? v : default;
                break;
            case Option<Twin.Models.BenchAsset> o when o.CustomParser is null:
                o.CustomParser = r => OneOf(r, o.Name, out Twin.Models.BenchAsset v) ? v : default;
                break;
        }
    }

    // The int options with a range of their own: the value is kept when out of range (the error is added all the same).
    private static bool ParseWithin(ArgumentResult r, string name, int min, int max, out int value)
    {
        var parsed = Whole(r, name, min, max, out var whole, keepOutOfRange: true);
        value = parsed ? (int)Int128.Clamp(whole, int.MinValue, int.MaxValue) : 0;
        return parsed;
    }

    /// <summary>
    /// One reader of whole numbers for every option, so an option with a range of its own and one limited only by its type
    /// say the same thing (<c>--racks must be at least 1, got 0</c>, <c>--snmp-devices must be from 0 to 2147483647, got
    /// 99999999999</c>, <c>--seed must be from 0 to 18446744073709551615, got -1</c>); false when it did not parse, or was out of range and <paramref name="keepOutOfRange"/> is off.
    /// </summary>
    private static bool Whole(ArgumentResult r, string name, Int128 min, Int128 max, out Int128 value, bool keepOutOfRange = false)
    {
        var text = Text(r);
        if (!Int128.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value))
        {
            r.AddError($"{name} takes a whole number, got '{text}'");
            return false;
        }

        if (value >= min && value <= max)
        {
            return true;
        }

        r.AddError(value < min && max == int.MaxValue
            ? string.Create(CultureInfo.InvariantCulture, $"{name} must be at least {min}, got {value}")
            : string.Create(CultureInfo.InvariantCulture, $"{name} must be from {min} to {max}, got {value}"));
        return keepOutOfRange;
    }

    private static bool Number(ArgumentResult r, string name, out double value)
    {
        var text = Text(r);
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value))
        {
            return true;
        }

        r.AddError($"{name} takes a number, got '{text}'");
        return false;
    }

    private static bool OneOf<T>(ArgumentResult r, string name, out T value)
        where T : struct, Enum
    {
        var text = Text(r);
        if (!int.TryParse(text, out _) && Enum.TryParse(text, ignoreCase: true, out value))
        {
            return true;
        }

        r.AddError($"{name} takes one of {string.Join(", ", Enum.GetNames<T>())}, got '{text}'");
        value = default;
        return false;
    }

    private static string Text(ArgumentResult r) => string.Join(' ', r.Tokens.Select(t => t.Value));

    // A plain number of seconds or a duration as the config writes it.
    private static bool TryParseSeconds(string text, out double seconds)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) && double.IsFinite(seconds))
        {
            return true;
        }

        var parsed = Durations.TryParse(text, out var duration);
        seconds = parsed ? duration.TotalSeconds : 0;
        return parsed;
    }
}
