using EdgeTwin.Core.Samples;

namespace EdgeTwin.Twin.Models.Maintenance;

/// <summary>The live signals the machine-health model reads, in the order of its input features.</summary>
public enum BearingFeature
{
    /// <summary>Vibration velocity RMS (mm/s).</summary>
    VibrationRms = 0,

    /// <summary>Kurtosis of the vibration signal (dimensionless).</summary>
    Kurtosis = 1,

    /// <summary>Bearing temperature (°C).</summary>
    BearingTemperature = 2,
}

/// <summary>What a <see cref="BearingFeatureWindow"/> holds: its completed intervals oldest first (<c>Features</c> values each) and the one being filled.</summary>
public sealed record BearingWindowState(long IntervalMs, int Capacity, float[] Intervals, long LastIntervalEndMs, long CurrentInterval, double[] Sums, int[] Counts, bool Running);

/// <summary>
/// One machine's machine-health feature history: samples of each <see cref="BearingFeature"/> are averaged over fixed
/// intervals (aligned to the Unix epoch, so the agent and the training export cut them identically), and the last
/// completed intervals are kept in a ring. Samples taken while the machine stands still (vibration below
/// <see cref="RunningVibrationMmPerS"/>) are left out: a stopped machine tells nothing about its bearing.
/// Fixed arrays only: adding a sample allocates nothing.
/// </summary>
public sealed class BearingFeatureWindow
{
    /// <summary>Number of features per interval.</summary>
    public const int Features = 3;

    /// <summary>Readings of one signal an interval needs before one value throughout is judged frozen (fewer can repeat at a transmitter's resolution by chance).</summary>
    public const int FrozenMinSamples = 10;

    /// <summary>Vibration at or below this is a machine at rest.</summary>
    public const double RunningVibrationMmPerS = 0.3;

    private readonly long _intervalMs;
    private readonly double[] _sum = new double[Features];
    private readonly int[] _count = new int[Features];
    // Per feature, the interval's first reading and whether any later one differed: a transmitter whose register froze
    // (stuck, or its card died and the gateway keeps reading the last value) gives one value for the whole interval.
    private readonly double[] _first = new double[Features];
    private readonly bool[] _varied = new bool[Features];
    private readonly float[] _ring;
    private long _currentInterval = long.MinValue;
    private bool _running;
    private int _head;

    /// <param name="interval">Averaging interval.</param>
    /// <param name="capacity">Completed intervals kept (at least the model's window).</param>
    /// <param name="minSamples">Samples of each feature an interval needs to count (fewer: the interval is dropped).</param>
    public BearingFeatureWindow(TimeSpan interval, int capacity, int minSamples = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.FromSeconds(1));
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _intervalMs = (long)interval.TotalMilliseconds;
        Capacity = capacity;
        MinSamples = Math.Max(1, minSamples);
        _ring = new float[capacity * Features];
    }

    public int Capacity { get; }

    public int MinSamples { get; }

    /// <summary>Completed intervals held (at most <see cref="Capacity"/>).</summary>
    public int Count { get; private set; }

    /// <summary>Backward wall-clock steps seen (a sample older than the interval being filled by more than <see cref="SampleClock.ToleranceMs"/>).</summary>
    public int ClockSteps { get; private set; }

    /// <summary>
    /// Intervals left out because a signal read one value for all of it (<see cref="FrozenFeature"/>). Before, they counted:
    /// a vibration transmitter frozen at a healthy 1.14 mm/s kept the model at 106-166 h and 0 % to the failure.
    /// </summary>
    public long FrozenIntervals { get; private set; }

    /// <summary>The signal that froze in the last interval that closed, or null when that one counted (or none closed yet).</summary>
    public BearingFeature? FrozenFeature { get; private set; }

    /// <summary>The one value <see cref="FrozenFeature"/> read.</summary>
    public double FrozenValue { get; private set; }

    /// <summary>End of the last completed interval (Unix ms), or 0.</summary>
    public long LastIntervalEndMs { get; private set; }

    /// <summary>
    /// Adds a sample. True when it closed an interval that counted (the caller then runs the model): the sample
    /// belongs to a later interval than the one being filled.
    /// </summary>
    public bool Add(BearingFeature feature, double value, long timestampMs)
    {
        if (!double.IsFinite(value))
        {
            return false;
        }

        var interval = Math.DivRem(timestampMs, _intervalMs, out var rem) - (rem < 0 ? 1 : 0);
        var closed = false;
        if (interval != _currentInterval)
        {
            if (interval < _currentInterval && timestampMs >= (_currentInterval * _intervalMs) - SampleClock.ToleranceMs)
            {
                return false; // late sample of a closed interval
            }

            if (interval < _currentInterval)
            {
                // Older than that: the wall clock stepped back (NTP after a boot with a clock ahead). Before, every sample
                // was "late" until the clock caught up with the interval being filled: no prediction for the size of the
                // step. The partial interval is dropped (its samples and the next ones are not one stretch of time); the
                // completed intervals stay, they are the machine's history.
                ClearPartial();
                ClockSteps++;
            }
            else
            {
                closed = Close();
            }

            _currentInterval = interval;
        }

        if (feature == BearingFeature.VibrationRms)
        {
            _running = value > RunningVibrationMmPerS;
        }

        if (_running)
        {
            var f = (int)feature;
            if (_count[f] == 0)
            {
                _first[f] = value;
            }
            else if (value != _first[f])
            {
                _varied[f] = true;
            }

            _sum[f] += value;
            _count[f]++;
        }

        return closed;
    }

    /// <summary>Writes the last <paramref name="window"/> intervals (oldest first) into <paramref name="destination"/>
    /// ([window × Features]); a shorter history is padded at the front by repeating its oldest interval.</summary>
    /// <returns>False when no interval has completed yet.</returns>
    public bool Fill(int window, Span<float> destination)
    {
        if (Count == 0 || window > Capacity || destination.Length < window * Features)
        {
            return false;
        }

        for (var i = 0; i < window; i++)
        {
            var back = Math.Min(window - 1 - i, Count - 1); // intervals before the newest
            var slot = ((_head - 1 - back) % Capacity + Capacity) % Capacity;
            _ring.AsSpan(slot * Features, Features).CopyTo(destination.Slice(i * Features, Features));
        }

        return true;
    }

    /// <summary>Everything the window holds, to keep it over a restart (<see cref="Import"/>).</summary>
    public BearingWindowState Export()
    {
        var intervals = new float[Count * Features];
        for (var i = 0; i < Count; i++)
        {
            var slot = ((_head - Count + i) % Capacity + Capacity) % Capacity;
            _ring.AsSpan(slot * Features, Features).CopyTo(intervals.AsSpan(i * Features, Features));
        }

        return new BearingWindowState(_intervalMs, Capacity, intervals, LastIntervalEndMs, _currentInterval, [.. _sum], [.. _count], _running);
    }

    /// <summary>
    /// Takes back what <see cref="Export"/> gave, so the window goes on as if it had never stopped (the time the agent
    /// was down counts as intervals that did not count, like a machine at rest). Throws <see cref="InvalidDataException"/>
    /// naming what does not fit (another interval or capacity: another model); the window is then unchanged.
    /// </summary>
    public void Import(BearingWindowState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.IntervalMs != _intervalMs || state.Capacity != Capacity)
        {
            throw new InvalidDataException($"kept for {state.IntervalMs / 1000} s intervals × {state.Capacity}, the model now uses {_intervalMs / 1000} s × {Capacity}");
        }

        if (state.Intervals is null || state.Sums is null || state.Counts is null)
        {
            throw new InvalidDataException("intervals, sums or counts missing");
        }

        if (state.Intervals.Length % Features != 0 || state.Intervals.Length / Features > Capacity || state.Sums.Length != Features || state.Counts.Length != Features)
        {
            throw new InvalidDataException($"{state.Intervals.Length} interval values (a multiple of {Features}, at most {Capacity * Features}), {state.Sums.Length} sums and {state.Counts.Length} counts ({Features} each)");
        }

        Clear();
        Count = state.Intervals.Length / Features;
        state.Intervals.CopyTo(_ring, 0);
        _head = Count % Capacity;
        LastIntervalEndMs = state.LastIntervalEndMs;
        _currentInterval = state.CurrentInterval;
        state.Sums.CopyTo(_sum, 0);
        state.Counts.CopyTo(_count, 0);
        // The restored partial interval's readings are not kept one by one: it is not judged frozen.
        Array.Fill(_varied, true);
        _running = state.Running;
    }

    /// <summary>Forgets the history (a repaired machine, a model with another interval).</summary>
    public void Clear()
    {
        Count = 0;
        _head = 0;
        _currentInterval = long.MinValue;
        FrozenFeature = null;
        ClearPartial();
    }

    private void ClearPartial()
    {
        Array.Clear(_sum);
        Array.Clear(_count);
        Array.Clear(_varied);
    }

    private bool Close()
    {
        var ok = _currentInterval != long.MinValue;
        for (var f = 0; f < Features; f++)
        {
            ok &= _count[f] >= MinSamples;
        }

        if (ok)
        {
            // A reading that never moved over a running half hour is a dead or stuck transmitter, not a machine: left out,
            // so no RUL is made from it (the model's last estimate and any open prediction stay as they were).
            for (var f = 0; f < Features; f++)
            {
                if (!_varied[f] && _count[f] >= FrozenMinSamples)
                {
                    FrozenIntervals++;
                    FrozenFeature = (BearingFeature)f;
                    FrozenValue = _first[f];
                    ClearPartial();
                    return false;
                }
            }

            FrozenFeature = null;
            for (var f = 0; f < Features; f++)
            {
                _ring[(_head * Features) + f] = (float)(_sum[f] / _count[f]);
            }

            _head = (_head + 1) % Capacity;
            Count = Math.Min(Count + 1, Capacity);
            LastIntervalEndMs = (_currentInterval + 1) * _intervalMs;
        }

        ClearPartial();
        return ok;
    }
}
