using System.Globalization;

namespace EdgeTwin.Core.Events;

/// <summary>Numbers in event attributes (strings): invariant, and without binary noise.</summary>
public static class WireNumber
{
    /// <summary>
    /// 15 significant digits, the most a double always carries exactly from decimal and back: the noise a binary
    /// computation leaves in the 16th–17th digit goes (27.200000000000003 → "27.2", 9.650000000000002 → "9.65"),
    /// real precision stays (0.7589166968927578 → "0.758916696892758"). "R" printed the noise as if it were data.
    /// </summary>
    public static string Format(double value) => value.ToString("G15", CultureInfo.InvariantCulture);
}
