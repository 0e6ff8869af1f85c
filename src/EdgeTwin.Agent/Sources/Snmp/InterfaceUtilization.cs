using EdgeTwin.Core.Profiles;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// The arithmetic of a table's <c>utilization:</c> (IF-MIB interfaces): an octet rate in percent of the link speed,
/// rate × 8 / speed × 100, and when a value must not be published. Pure and allocation-free; the source keeps the state.
/// </summary>
internal static class InterfaceUtilization
{
    /// <summary>
    /// A Gauge32 at its maximum is saturated: RFC 2863 has ifSpeed report 4,294,967,295 when the speed is higher and
    /// ifHighSpeed then holds it. Read as the speed it is unknown (the fallback ifSpeed of a device without ifXTable).
    /// </summary>
    public const double SaturatedGauge32 = uint.MaxValue;

    /// <summary>Bits per second of a speed column's unit (<c>Mbit/s</c>: ifHighSpeed, <c>bit/s</c>: ifSpeed).</summary>
    public static double BitsPerSecondPerUnit(string unit) => unit == "Mbit/s" ? 1e6 : 1;

    /// <summary>
    /// The link speed in bit/s from the speed column's raw reading (before scale), or NaN when unknown: 0 (RFC 2863: a
    /// sub-layer with no concept of bandwidth, and what many devices report for a port without link), a saturated Gauge32,
    /// or no number.
    /// </summary>
    public static double SpeedBitsPerSecond(double raw, ProfileMetric speed, double bitsPerUnit) =>
        raw > 0 && raw < SaturatedGauge32 && speed.Convert(raw) * bitsPerUnit is var bps && bps > 0 ? bps : double.NaN;

    /// <summary>
    /// Decides the utilisation of one interval: <paramref name="octetsPerSecond"/> was measured over
    /// <paramref name="seconds"/>, the link ran at <paramref name="speedBps"/> now and <paramref name="lastSpeedBps"/> at
    /// the previous poll. <paramref name="percent"/> is set for <see cref="Verdict.Published"/> and
    /// <see cref="Verdict.Capped"/>, and for <see cref="Verdict.AboveLink"/> (what it would have been).
    /// </summary>
    /// <param name="timeSlack">The device's poll timeout: a row's counters are read up to that long after the poll's
    /// time stamp, so one interval's rate can be off by that much of the interval.</param>
    public static Verdict Evaluate(double octetsPerSecond, double seconds, double speedBps, double lastSpeedBps, TimeSpan timeSlack, out double percent)
    {
        percent = double.NaN;
        if (double.IsNaN(speedBps))
        {
            return Verdict.SpeedUnknown;
        }

        if (speedBps != lastSpeedBps)
        {
            // The interval spans the change (10G → 1G): its octets were counted at an unknown mix of both speeds, and
            // divided by the new one they read up to 10× too high. A speed known only now (NaN before) is a change too.
            return Verdict.SpeedChanged;
        }

        if (!double.IsFinite(octetsPerSecond) || !(seconds > 0) || octetsPerSecond < 0)
        {
            return Verdict.NoRate; // the rate primed (first poll, restart, clear, fallback switch)
        }

        percent = octetsPerSecond * 8 / speedBps * 100;
        if (percent <= 100)
        {
            return Verdict.Published;
        }

        // Above the link's speed. Within the time-stamp slack a full link reads a little over 100 %: published as 100.
        // Beyond it the counters jumped in a way no flag showed (a discontinuity the device did not report): left out.
        var limit = 100 * (seconds + timeSlack.TotalSeconds) / seconds;
        if (percent <= limit)
        {
            percent = 100;
            return Verdict.Capped;
        }

        return Verdict.AboveLink;
    }

    /// <summary>What <see cref="Evaluate"/> decided.</summary>
    public enum Verdict : byte
    {
        /// <summary>A value in [0, 100] %.</summary>
        Published,

        /// <summary>Slightly above 100 % from the read's timing: published as 100 %.</summary>
        Capped,

        /// <summary>No rate this poll: nothing.</summary>
        NoRate,

        /// <summary>The speed is 0, saturated or missing: nothing (logged once per interface).</summary>
        SpeedUnknown,

        /// <summary>The speed differs from the previous poll's: nothing for this interval.</summary>
        SpeedChanged,

        /// <summary>Above the link's speed by more than timing explains: left out (logged once per interface).</summary>
        AboveLink,
    }
}
