using System.Globalization;

namespace EdgeTwin.Core.Events;

/// <summary>
/// Machine-readable times in event attributes, in one ISO 8601 shape each with an explicit offset, so the centre parses
/// every time the same way (the audit found <c>…47.985Z</c> in the envelope, <c>…47.9857194+00:00</c> in alert
/// attributes and offset-less local times in the line twin's shift report).
/// </summary>
public static class WireTime
{
    private const string InstantFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
    private const string WallClockFormat = "yyyy-MM-dd'T'HH:mm:sszzz";

    /// <summary>An instant: UTC with milliseconds, like the envelope's <c>time</c> — <c>2026-12-01T18:45:47.985Z</c>.</summary>
    public static string Instant(DateTimeOffset time) =>
        time.UtcDateTime.ToString(InstantFormat, CultureInfo.InvariantCulture);

    /// <summary>An instant from Unix milliseconds (see <see cref="Instant(DateTimeOffset)"/>).</summary>
    public static string Instant(long unixMs) => Instant(DateTimeOffset.FromUnixTimeMilliseconds(unixMs));

    /// <summary>
    /// A local wall-clock time that means something as such (a shift boundary at 06:00), with the offset in force at
    /// it in <paramref name="zone"/> (default: the gateway's): <c>2026-12-01T06:00:00+01:00</c>. Seconds only.
    /// </summary>
    public static string WallClock(DateTime local, TimeZoneInfo? zone = null)
    {
        var unspecified = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        var offset = (zone ?? TimeZoneInfo.Local).GetUtcOffset(unspecified);
        return new DateTimeOffset(unspecified, offset).ToString(WallClockFormat, CultureInfo.InvariantCulture);
    }
}
