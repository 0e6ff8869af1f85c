using System.Runtime.InteropServices;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Core.Scheduling;

/// <summary>
/// One device's schedule and state: its grid (phase + n × interval, as time elapsed on the monotonic clock since the
/// scheduler was created, never the wall clock: an NTP step must not move it), failure count, and the last value
/// of each of its series, which the quality checks and stale repeats need. Only its own loop touches it, except
/// <see cref="CaptureSink"/> which an abandoned (timed-out) poll may still write to.
/// </summary>
internal sealed class DeviceRunner
{
    private readonly Dictionary<SeriesId, SeriesState> _series = [];
    private RetiredSeriesCursor _retired;
    private readonly Random _random;
    private readonly double _jitterFraction;
    private Sample[] _out = new Sample[16];

    public DeviceRunner(PolledDevice device, TimeSpan phase, double jitterFraction, int seed)
    {
        Device = device;
        Interval = device.Interval;
        Timeout = device.Timeout <= TimeSpan.Zero || device.Timeout > device.Interval ? device.Interval : device.Timeout;
        Phase = phase;
        _jitterFraction = jitterFraction;
        _random = new Random(seed);
        Sink = new CaptureSink();
    }

    public PolledDevice Device { get; }

    public string DeviceId => Device.DeviceId;

    public TimeSpan Interval { get; }

    public TimeSpan Timeout { get; }

    public TimeSpan Phase { get; }

    public CaptureSink Sink { get; }

    public DeviceState State { get; set; }

    public int ConsecutiveFailures { get; set; }

    public DateTimeOffset? LastSuccess { get; set; }

    public DateTimeOffset? NextPoll { get; set; }

    public string? LastError { get; set; }

    public long Polls { get; set; }

    public long Failures { get; set; }

    /// <summary>True once a poll has succeeded; until then a failure is more likely the config than an outage.</summary>
    public bool HasAnswered { get; set; }

    public long Skipped { get; set; }

    /// <summary>A poll that outlived its timeout and ignored cancellation; no new poll starts until it ends.</summary>
    public Task? Abandoned { get; set; }

    /// <summary>Grid time of tick <paramref name="tick"/> (monotonic time since the scheduler's start), without jitter.</summary>
    public TimeSpan GridTime(long tick) => Phase + (Interval * tick);

    /// <summary>Grid time plus a fresh jitter draw; the jitter never accumulates, the grid stays fixed.</summary>
    public TimeSpan DueTime(long tick)
    {
        var jitter = _jitterFraction <= 0 ? TimeSpan.Zero : Interval * (_random.NextDouble() * _jitterFraction);
        return GridTime(tick) + jitter;
    }

    /// <summary>The first tick after <paramref name="previous"/> whose grid time is strictly after <paramref name="notBefore"/>.</summary>
    public long NextTick(long previous, TimeSpan notBefore)
    {
        var since = notBefore - Phase;
        var tick = since < TimeSpan.Zero ? 0 : (since.Ticks / Interval.Ticks) + 1;
        return Math.Max(tick, previous + 1);
    }

    /// <summary>Copies a poll's samples into this device's reusable array; sinks copy on write, so it is free again afterwards.</summary>
    public ReadOnlyMemory<Sample> Stage(List<Sample> samples)
    {
        if (_out.Length < samples.Count)
        {
            _out = new Sample[Math.Max(samples.Count, _out.Length * 2)];
        }

        samples.CopyTo(_out);
        return new ReadOnlyMemory<Sample>(_out, 0, samples.Count);
    }

    public DeviceStatus Snapshot() =>
        new(DeviceId, State, ConsecutiveFailures, LastSuccess, NextPoll, LastError, Polls, Failures, Skipped);

    /// <summary>
    /// Stamps quality flags on what the poll produced and remembers the last values. On a failed poll that has not
    /// yet made the device down, series the poll did not deliver are repeated as <see cref="SampleQuality.Stale"/>.
    /// </summary>
    public void ApplyQuality(List<Sample> buffer, SeriesRegistry registry, long acquiredAtUnixMs, bool pollFailed, bool emitStale)
    {
        // A retired series (its row left the device's table) must not come back as Stale repeats of its last value.
        while (_retired.TryNext(registry, out var retired))
        {
            _series.Remove(retired);
        }

        var span = CollectionsMarshal.AsSpan(buffer);
        for (var i = 0; i < span.Length; i++)
        {
            ref var sample = ref span[i];
            ref var state = ref CollectionsMarshal.GetValueRefOrAddDefault(_series, sample.Series, out var exists);
            if (!exists)
            {
                state.Rule = Device.Rules is null || sample.Series.IsNone ? QualityRule.None : Device.Rules(registry[sample.Series]);
            }

            state.SeenInPoll = true;
            if (sample.Quality != SampleQuality.Good)
            {
                continue; // the source already knows better (DeviceError, its own checks)
            }

            var quality = SampleQuality.Good;
            var value = sample.Value;
            if (double.IsNaN(value) || (state.Rule.Min is { } min && value < min) || (state.Rule.Max is { } max && value > max))
            {
                quality = SampleQuality.OutOfRange;
            }

            if (!state.HasValue || state.LastValue != value)
            {
                state.LastChangeUnixMs = sample.TimestampUnixMs;
            }
            else if (quality == SampleQuality.Good && state.Rule.StuckAfter is { } stuckAfter
                     && sample.TimestampUnixMs - state.LastChangeUnixMs >= (long)stuckAfter.TotalMilliseconds)
            {
                quality = SampleQuality.Stuck;
            }

            state.HasValue = true;
            state.LastValue = value;
            if (quality != SampleQuality.Good)
            {
                sample = sample with { Quality = quality };
            }
        }

        foreach (var (id, _) in _series)
        {
            ref var state = ref CollectionsMarshal.GetValueRefOrNullRef(_series, id);
            if (pollFailed && emitStale && !state.SeenInPoll && state.HasValue)
            {
                buffer.Add(new Sample(id, acquiredAtUnixMs, state.LastValue, SampleQuality.Stale));
            }

            state.SeenInPoll = false;
        }
    }

    private struct SeriesState
    {
        public QualityRule Rule;
        public bool HasValue;
        public bool SeenInPoll;
        public double LastValue;
        public long LastChangeUnixMs;
    }

    /// <summary>
    /// What the source writes into during one poll. Closed when the poll ends (or times out), so a late write
    /// from an abandoned poll is dropped instead of racing the next one.
    /// </summary>
    internal sealed class CaptureSink : ISampleSink
    {
        private readonly Lock _lock = new();
        private List<Sample> _buffer = new(64);
        private List<Sample> _spare = new(64);
        private bool _open;

        public void Open()
        {
            lock (_lock)
            {
                _buffer.Clear();
                _open = true;
            }
        }

        /// <summary>Closes the sink and hands out what was written; the list is reused at the next <see cref="Close"/>.</summary>
        public List<Sample> Close()
        {
            lock (_lock)
            {
                _open = false;
                (_buffer, _spare) = (_spare, _buffer);
                _buffer.Clear();
                return _spare;
            }
        }

        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                if (!_open)
                {
                    throw new OperationCanceledException("The poll this write belongs to has already ended (timed out or stopped).");
                }

                _buffer.AddRange(samples.Span);
            }

            return ValueTask.CompletedTask;
        }
    }
}
