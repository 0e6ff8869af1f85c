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
    /// it in <paramref name="zone"/> (default: the gateway's): <c>2026-12-01T06:00:00+01:00</c>. Seconds only. A time the
    /// clocks skip (02:30 the night they go forward) is the instant the standard offset gives it, shown as the clocks read
    /// then (<c>03:30:00+02:00</c>, not <c>02:30:00+01:00</c>, a time no clock at the site showed); a time that occurs twice
    /// is its second, standard-time occurrence (the offset says which).
    /// </summary>
    public static string WallClock(DateTime local, TimeZoneInfo? zone = null)
    {
        zone ??= TimeZoneInfo.Local;
        var unspecified = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        var time = new DateTimeOffset(unspecified, zone.GetUtcOffset(unspecified));
        if (zone.IsInvalidTime(unspecified)) time = TimeZoneInfo.ConvertTime(time, zone);
        return time.ToString(WallClockFormat, CultureInfo.InvariantCulture);
    }
}
