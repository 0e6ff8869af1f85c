using System.Globalization;

namespace EdgeTwin.Core.Events;

/// <summary>Numbers in event attributes (strings): invariant, and without binary noise.</summary>
public static class WireNumber
{
    /// <summary>
    /// 12 significant digits: the noise binary arithmetic leaves in the last digits goes — one rounding
    /// (27.200000000000003 → "27.2") and the error sums accumulate (the line twin's 0.773999999999999 s → "0.774",
    /// which 15 digits still showed) — while far more precision stays than any sensor or model has
    /// (0.7589166968927578 → "0.758916696893"). "R" printed the noise as if it were data.
    /// </summary>
    public static string Format(double value) => value.ToString("G12", CultureInfo.InvariantCulture);
}
