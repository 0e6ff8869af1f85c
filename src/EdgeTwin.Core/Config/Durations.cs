using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace EdgeTwin.Core.Config;

/// <summary>Config durations: a non-negative integer or decimal followed by <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c> or <c>d</c>.</summary>
public static class Durations
{
    /// <summary>Parses <c>500ms</c>, <c>10s</c>, <c>1.5s</c>, <c>5m</c>, <c>1h</c>, <c>7d</c>.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var span = text.AsSpan().Trim();
        int unitLength = span.EndsWith("ms", StringComparison.Ordinal) ? 2 : 1;
        if (span.Length <= unitLength)
        {
            return false;
        }

        var unit = span[^unitLength..];
        var number = span[..^unitLength];
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n) || !double.IsFinite(n))
        {
            return false;
        }

        double ms = unit switch
        {
            "ms" => n,
            "s" => n * 1000,
            "m" => n * 60_000,
            "h" => n * 3_600_000,
            "d" => n * 86_400_000,
            _ => double.NaN,
        };
        if (double.IsNaN(ms) || ms > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    /// <summary>Parses a duration or throws <see cref="FormatException"/>.</summary>
    public static TimeSpan Parse(string text) =>
        TryParse(text, out var v) ? v : throw new FormatException($"'{text}' is not a duration (500ms, 10s, 5m, 1h, 7d)");

    /// <summary>The shortest exact text for <paramref name="value"/> (<c>7d</c>, <c>90s</c>, <c>1500ms</c>).</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "Durations are never negative.");
        }

        var ms = (long)value.TotalMilliseconds;
        if (ms == 0)
        {
            return "0s";
        }

        return ms % 86_400_000 == 0 ? Invariant(ms / 86_400_000, "d")
            : ms % 3_600_000 == 0 ? Invariant(ms / 3_600_000, "h")
            : ms % 60_000 == 0 ? Invariant(ms / 60_000, "m")
            : ms % 1000 == 0 ? Invariant(ms / 1000, "s")
            : Invariant(ms, "ms");
    }

    /// <summary>A measured time for people, to two units at most: <c>3d 4h</c>, <c>2h 5m</c>, <c>19m 21s</c>, <c>1.2s</c>, <c>850ms</c>.</summary>
    public static string Approximate(TimeSpan value)
    {
        var t = value.Duration();
        return t.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalDays}d {t.Hours}h")
            : t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}h {t.Minutes}m")
            : t.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalMinutes}m {t.Seconds}s")
            : t.TotalSeconds >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0.0}s")
            : string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0}ms");
    }

    [SuppressMessage("Globalization", "CA1305", Justification = "Invariant by construction.")]
    private static string Invariant(long n, string unit) => n.ToString(CultureInfo.InvariantCulture) + unit;
}
