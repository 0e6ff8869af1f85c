namespace EdgeTwin.Outbox.Summaries;

/// <summary>
/// Running statistics of one series over one window: count, min, max, mean, last and the population standard
/// deviation by Welford's method (numerically stable, O(1) memory, no allocation per value).
/// Only good-quality values enter the statistics; others are counted in <see cref="Bad"/>.
/// </summary>
public struct WindowAccumulator
{
    private double _m2;

    public long StartMs { get; private set; }

    public long EndMs { get; private set; }

    public long Count { get; private set; }

    public long Bad { get; private set; }

    public double Min { get; private set; }

    public double Max { get; private set; }

    public double Mean { get; private set; }

    public double Last { get; private set; }

    /// <summary>Timestamp of the newest value seen (good or not), or 0 when none.</summary>
    public long LastTimestampMs { get; private set; }

    /// <summary>Timestamp of the oldest value seen (good or not), or 0 when none: with <see cref="LastTimestampMs"/> the stretch a partial summary covers.</summary>
    public long FirstTimestampMs { get; private set; }

    public readonly bool IsEmpty => Count == 0 && Bad == 0;

    /// <summary>Population standard deviation (divide by n): windows can be merged exactly from count, mean and stddev.</summary>
    public readonly double StdDev => Count > 1 ? Math.Sqrt(Math.Max(0, _m2 / Count)) : 0;

    /// <summary>The sum of squared deviations (Welford's M2), for checkpoints.</summary>
    internal readonly double M2 => _m2;

    /// <summary>An accumulator with the state a checkpoint recorded.</summary>
    internal static WindowAccumulator Restore(long startMs, long endMs, long count, long bad, double min, double max, double mean, double m2, double last, long firstTimestampMs, long lastTimestampMs) =>
        new()
        {
            StartMs = startMs,
            EndMs = endMs,
            Count = count,
            Bad = bad,
            Min = min,
            Max = max,
            Mean = mean,
            _m2 = m2,
            Last = last,
            FirstTimestampMs = firstTimestampMs,
            LastTimestampMs = lastTimestampMs,
        };

    public void Reset(long startMs, long endMs)
    {
        this = default;
        StartMs = startMs;
        EndMs = endMs;
    }

    public void Add(double value, long timestampMs, bool good)
    {
        if (timestampMs < FirstTimestampMs || (Count == 0 && Bad == 0))
        {
            FirstTimestampMs = timestampMs;
        }

        if (timestampMs > LastTimestampMs)
        {
            LastTimestampMs = timestampMs;
        }

        if (!good || !double.IsFinite(value))
        {
            Bad++;
            return;
        }

        Count++;
        if (Count == 1)
        {
            Min = Max = Mean = value;
            _m2 = 0;
        }
        else
        {
            if (value < Min)
            {
                Min = value;
            }

            if (value > Max)
            {
                Max = value;
            }

            var delta = value - Mean;
            Mean += delta / Count;
            _m2 += delta * (value - Mean);
        }

        Last = value;
    }
}
