using System.Globalization;

namespace EdgeTwin.Core.Profiles;

/// <summary>
/// The sensor drivers' <c>parameters:</c> values, read one way: by <c>edgetwin check</c> (profile loader, at the key) and
/// by the sensor factory when it builds the source, so the two cannot disagree on what is valid.
/// </summary>
public static class SensorParameters
{
    /// <summary>BME280 <c>oversampling</c>: 1, 2, 4, 8 or 16.</summary>
    public static bool TryOversampling(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value is 1 or 2 or 4 or 8 or 16;

    public static string OversamplingProblem(string text) => $"oversampling '{text}' is not one of 1, 2, 4, 8, 16";

    /// <summary>SHT3x <c>repeatability</c>: high, medium or low.</summary>
    public static bool IsRepeatability(string text) => text is "high" or "medium" or "low";

    public static string RepeatabilityProblem(string text) => $"repeatability '{text}' is not high, medium or low";

    /// <summary>Digital input <c>chatter_changes</c>: 0 (off) or 2..1000.</summary>
    public static bool TryChatterChanges(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value is 0 or (>= 2 and <= 1000);

    public static string ChatterChangesProblem(string text) => $"chatter_changes '{text}' is not 0 (off) or a count of 2..1000";

    /// <summary>
    /// Host <c>paths</c>: extra directories whose file systems are watched besides the state directory's, comma-separated
    /// absolute paths (<c>/var/log, /data</c>).
    /// </summary>
    public static IReadOnlyList<string> Paths(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Why <paramref name="text"/> is not a <c>paths</c> list, or null.</summary>
    public static string? PathsProblem(string text)
    {
        var paths = Paths(text);
        if (paths.Count == 0)
        {
            return "paths is empty (comma-separated absolute directories, e.g. \"/var/log, /data\")";
        }

        var relative = paths.FirstOrDefault(p => !p.StartsWith('/'));
        return relative is null ? null : $"paths: '{relative}' is not an absolute path (the agent's working directory is not the site's)";
    }
}
