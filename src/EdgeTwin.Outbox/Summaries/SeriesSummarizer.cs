using EdgeTwin.Core.Samples;

namespace EdgeTwin.Outbox.Summaries;

/// <summary>Settings of <see cref="SeriesSummarizer"/>.</summary>
public sealed class SummaryOptions
{
    /// <summary>Summary window; windows are aligned to multiples of it since the Unix epoch.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long after a window's end late samples may still arrive before <see cref="SeriesSummarizer.Flush"/> closes it.</summary>
    public TimeSpan LateGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A raw series reports at least this often even when its value stays inside the deadband. Default: the window.</summary>
    public TimeSpan? RawHeartbeat { get; init; }

    /// <summary>Raw points per raw record before it is emitted without waiting for the next flush.</summary>
    public int MaxRawPointsPerRecord { get; init; } = 256;

    /// <summary>
    /// When this summarizer started (Unix ms), or null. A series' first window that began before it is marked
    /// <c>partial</c>: the agent restarted inside it, so a summary of the window's first part was sent before the stop.
    /// </summary>
    public long? StartedAtMs { get; init; }
}

/// <summary>A window still open, as a checkpoint records it.</summary>
public readonly record struct OpenWindow(SeriesId Series, bool Partial, WindowAccumulator Window);

/// <summary>Marks a series as report-by-exception: a point goes up when it moves more than <see cref="Deadband"/>.</summary>
public readonly record struct RawPolicy(double Deadband);

/// <summary>
/// Turns samples into outbox records: per series and window, a summary (count, min, max, mean, last, stddev);
/// for series a profile marks as raw, report-by-exception points instead. Per-series state lives in an array
/// indexed by <see cref="SeriesId"/>, so adding a sample allocates nothing; records are built only when a window
/// closes or raw points are flushed. Not thread-safe: one caller at a time (<see cref="OutboxFeeder"/> serialises).
/// </summary>
public sealed class SeriesSummarizer
{
    private readonly SeriesRegistry _registry;
    private readonly UplinkIdentity _identity;
    private readonly Func<SeriesDescriptor, RawPolicy?> _rawPolicy;
    private readonly long _windowMs;
    private readonly long _graceMs;
    private readonly long _heartbeatMs;
    private readonly int _maxRawPoints;
    private readonly long _startedAtMs;
    private SeriesState[] _states = new SeriesState[64];

    // One bit per series: it closed a window since ClearClosed (a checkpoint's open window of it is then sent already).
    private ulong[] _closed = new ulong[1];
    private bool _closedChanged; // since the last ClearClosed or TakeClosedChanged

    public SeriesSummarizer(SeriesRegistry registry, UplinkIdentity identity, SummaryOptions? options = null, Func<SeriesDescriptor, RawPolicy?>? rawPolicy = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(identity);
        options ??= new SummaryOptions();
        if (options.Window <= TimeSpan.Zero || options.LateGrace < TimeSpan.Zero || options.MaxRawPointsPerRecord < 1)
        {
            throw new ArgumentException("Summary window must be positive, late grace not negative and raw points per record at least 1.", nameof(options));
        }

        _registry = registry;
        _identity = identity;
        _rawPolicy = rawPolicy ?? (_ => null);
        _windowMs = (long)options.Window.TotalMilliseconds;
        _graceMs = (long)options.LateGrace.TotalMilliseconds;
        _heartbeatMs = (long)(options.RawHeartbeat ?? options.Window).TotalMilliseconds;
        _maxRawPoints = options.MaxRawPointsPerRecord;
        _startedAtMs = options.StartedAtMs ?? long.MinValue;
    }

    /// <summary>Samples counted so far (all series, all windows).</summary>
    public long SamplesSeen { get; private set; }

    /// <summary>Raw-series samples held back by the deadband.</summary>
    public long SuppressedByDeadband { get; private set; }

    /// <summary>Which series closed a window since the last <see cref="ClearClosed"/>: bit <c>id % 64</c> of word <c>id / 64</c>.</summary>
    public ReadOnlySpan<ulong> ClosedSinceClear => _closed;

    /// <summary>Forgets which series closed a window (a checkpoint of the open windows was just taken).</summary>
    public void ClearClosed()
    {
        Array.Clear(_closed);
        _closedChanged = false;
    }

    /// <summary>Whether a window closed since the last call (or <see cref="ClearClosed"/>), resetting the flag.</summary>
    public bool TakeClosedChanged()
    {
        var changed = _closedChanged;
        _closedChanged = false;
        return changed;
    }

    /// <summary>Copies every open summary window (raw series have none) into <paramref name="output"/>, for a checkpoint.</summary>
    public void CopyOpenWindows(List<OpenWindow> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Clear();
        var count = Math.Min(_registry.Count, _states.Length);
        for (var i = 0; i < count; i++)
        {
            ref readonly var state = ref _states[i];
            if (state.Initialised && !state.Raw && state.Open && !state.Window.IsEmpty)
            {
                output.Add(new OpenWindow(new SeriesId(i), state.Partial, state.Window));
            }
        }
    }

    /// <summary>Adds samples; summaries of windows they close, and full raw records, are appended to <paramref name="output"/>.</summary>
    public void Add(ReadOnlySpan<Sample> samples, List<OutboxRecord> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        foreach (ref readonly var sample in samples)
        {
            ref var state = ref State(sample.Series);
            SamplesSeen++;
            if (state.Raw)
            {
                AddRaw(ref state, sample, output);
                continue;
            }

            var windowStart = FloorToWindow(sample.TimestampUnixMs);
            if (!state.Open)
            {
                state.Window.Reset(windowStart, windowStart + _windowMs);
                state.Open = true;
                state.Partial = windowStart < _startedAtMs; // restarted inside this window: its first part went before the stop
            }
            else if (windowStart > state.Window.StartMs || windowStart + _windowMs + _graceMs < state.Window.StartMs)
            {
                // The next window; or a sample more than a window and the late grace older than the open one: one
                // series' samples come in order, so the wall clock was stepped back (NTP). Before, that sample and all
                // after it were counted as "late" into the open window, which neither a later sample nor Flush closed
                // until the clock had caught up again: an hour of data in one window, no summary for an hour.
                Close(ref state, sample.Series.Value, partial: false, output);
                state.Window.Reset(windowStart, windowStart + _windowMs);
                state.Open = true;
                state.Partial = false;
            }

            // A late sample (older than the open window, by less than a window and the grace) is counted in the open window rather than lost.
            state.Window.Add(sample.Value, sample.TimestampUnixMs, sample.IsGood);
        }
    }

    /// <summary>
    /// Closes windows that ended at least the late grace before <paramref name="nowMs"/> and emits pending raw
    /// points. Call periodically, so a series that stopped reporting still gets its last window sent.
    /// </summary>
    public void Flush(long nowMs, List<OutboxRecord> output) => FlushCore(nowMs, all: false, output);

    /// <summary>
    /// Closes every open window and emits every pending raw point (shutdown). A window that has not ended by
    /// <paramref name="nowMs"/> is marked <c>partial</c>: after a restart the rest of it is summarised again, and the
    /// centre merges the two (Outbox README, "summary").
    /// </summary>
    public void FlushAll(long nowMs, List<OutboxRecord> output) => FlushCore(nowMs, all: true, output);

    private void FlushCore(long nowMs, bool all, List<OutboxRecord> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var count = Math.Min(_registry.Count, _states.Length);
        for (var i = 0; i < count; i++)
        {
            ref var state = ref _states[i];
            if (!state.Initialised)
            {
                continue;
            }

            if (state.Raw)
            {
                EmitRaw(ref state, new SeriesId(i), output);
            }
            else if (state.Open && (all || state.Window.EndMs + _graceMs <= nowMs))
            {
                Close(ref state, i, partial: all && state.Window.EndMs > nowMs, output);
            }
        }
    }

    /// <summary>
    /// A retired series (its row left the device): sends what it still holds (its open window, closed as it is, and its
    /// pending raw points), then frees its state. A sample of it that comes later starts afresh.
    /// </summary>
    public void Retire(SeriesId id, List<OutboxRecord> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if ((uint)id.Value >= (uint)_states.Length)
        {
            return;
        }

        ref var state = ref _states[id.Value];
        if (!state.Initialised)
        {
            return;
        }

        if (state.Raw)
        {
            EmitRaw(ref state, id, output);
        }
        else if (state.Open)
        {
            Close(ref state, id.Value, partial: false, output);
        }

        state = default;
    }

    private void AddRaw(ref SeriesState state, in Sample sample, List<OutboxRecord> output)
    {
        var report = !state.HasReported
            || sample.Quality != state.LastQuality
            || Math.Abs(sample.Value - state.LastReported) > state.Deadband
            || (double.IsNaN(sample.Value) != double.IsNaN(state.LastReported))
            || sample.TimestampUnixMs - state.LastReportedMs >= _heartbeatMs;
        if (!report)
        {
            SuppressedByDeadband++;
            return;
        }

        state.HasReported = true;
        state.LastReported = sample.Value;
        state.LastReportedMs = sample.TimestampUnixMs;
        state.LastQuality = sample.Quality;
        state.Points ??= new RawPoint[Math.Min(16, _maxRawPoints)];
        if (state.PointCount == state.Points.Length)
        {
            Array.Resize(ref state.Points, Math.Min(state.Points.Length * 2, _maxRawPoints));
        }

        state.Points[state.PointCount++] = new RawPoint(sample.TimestampUnixMs, sample.Value, (byte)sample.Quality);
        if (state.PointCount >= _maxRawPoints)
        {
            EmitRaw(ref state, sample.Series, output);
        }
    }

    private void EmitRaw(ref SeriesState state, SeriesId id, List<OutboxRecord> output)
    {
        if (state.PointCount == 0)
        {
            return;
        }

        output.Add(UplinkBodies.Raw(_identity, _registry[id], state.Points.AsSpan(0, state.PointCount)));
        state.PointCount = 0;
    }

    private void Close(ref SeriesState state, int id, bool partial, List<OutboxRecord> output)
    {
        if (!state.Window.IsEmpty)
        {
            output.Add(UplinkBodies.Summary(_identity, state.Descriptor!, state.Window, partial: partial || state.Partial));
            if ((id >> 6) >= _closed.Length)
            {
                Array.Resize(ref _closed, Math.Max(_closed.Length * 2, (id >> 6) + 1));
            }

            _closed[id >> 6] |= 1UL << (id & 63);
            _closedChanged = true;
        }

        state.Open = false;
        state.Partial = false;
    }

    private long FloorToWindow(long timestampMs)
    {
        var q = Math.DivRem(timestampMs, _windowMs, out var rem);
        return (rem < 0 ? q - 1 : q) * _windowMs;
    }

    private ref SeriesState State(SeriesId id)
    {
        if ((uint)id.Value >= (uint)_states.Length)
        {
            if (id.IsNone)
            {
                throw new ArgumentException("A sample without a series id (SeriesId.None) cannot be summarised.", nameof(id));
            }

            Array.Resize(ref _states, Math.Max(_states.Length * 2, id.Value + 1));
        }

        ref var state = ref _states[id.Value];
        if (!state.Initialised)
        {
            // Once per series: the descriptor lookup and the policy decision are not repeated per sample.
            state.Descriptor = _registry[id];
            var policy = _rawPolicy(state.Descriptor);
            state.Raw = policy is not null;
            state.Deadband = policy?.Deadband ?? 0;
            state.Initialised = true;
        }

        return ref state;
    }

    private struct SeriesState
    {
        public bool Initialised;
        public bool Raw;
        public bool Open;

        /// <summary>The open window began before this summarizer started (restart inside it).</summary>
        public bool Partial;
        public SeriesDescriptor? Descriptor;
        public WindowAccumulator Window;

        // Report-by-exception.
        public double Deadband;
        public bool HasReported;
        public double LastReported;
        public long LastReportedMs;
        public SampleQuality LastQuality;
        public RawPoint[]? Points;
        public int PointCount;
    }
}
