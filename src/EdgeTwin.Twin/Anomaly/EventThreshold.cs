namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// How a detector's thresholds follow the series' sampling interval when <c>threshold_interval</c> is set (off by default).
/// <para>
/// A score is a per-sample tail probability on a log scale (score = log10(tail) / −10), so a fixed threshold is a fixed
/// false-alarm rate per sample, and a series polled every 10 s takes 30 times as many samples a day as NAB's 5-minute
/// data the default threshold was chosen on. On a healthy simulated site at 10 s the default 0.4 raises 5–6 events per
/// series per day (<c>site-anomaly-rate</c> benchmark). Keeping the false-alarm rate per <em>day</em> instead means adding
/// log10(reference / interval) / 10: 0.55 at 10 s, 0.71 at 250 ms (10 times fewer events there, and a step of 0.5 kW on an
/// outlet, which peaks at 0.46, is no longer reported: the anomaly README has the figures).
/// Thresholds are never lowered (a slowly polled series has few samples to show a fault in), and an interval within
/// 10 % of the reference counts as the reference (NAB's irregular traffic files dip to 95 % of 5 minutes).
/// </para>
/// </summary>
public static class EventThreshold
{
    /// <summary>The highest a threshold is raised to (a score of 1 is a tail below 1e-10; keep room under it).</summary>
    public const double Ceiling = 0.9;

    /// <summary>Intervals at or above this fraction of the reference are not raised for.</summary>
    public const double Tolerance = 0.9;

    /// <summary>What to add to a threshold for a series sampled every <paramref name="intervalMs"/> (0 when it is not faster than the reference, or either is unknown).</summary>
    public static double Raise(double referenceMs, double intervalMs) =>
        referenceMs > 0 && intervalMs > 0 && intervalMs < Tolerance * referenceMs ? Math.Log10(referenceMs / intervalMs) / 10 : 0.0;

    /// <summary>A configured threshold raised by <paramref name="raise"/>, at most to <see cref="Ceiling"/> (a configured threshold above it stays as it is).</summary>
    public static double Apply(double configured, double raise) => configured >= Ceiling ? configured : Math.Min(Ceiling, configured + raise);

    /// <summary>The threshold for a series sampled every <paramref name="intervalMs"/>.</summary>
    public static double For(double configured, double referenceMs, double intervalMs) => Apply(configured, Raise(referenceMs, intervalMs));
}
