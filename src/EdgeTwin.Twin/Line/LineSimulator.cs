namespace EdgeTwin.Twin.Line;

/// <summary>What a station does during one tick.</summary>
public enum StationState : byte
{
    Working = 0,
    Starved = 1,
    Blocked = 2,
    Down = 3,
    PlannedStop = 4,
}

/// <summary>Receives a station's state whenever it changes (for OEE, bottleneck detection, tests).</summary>
public interface IStationStateObserver
{
    void OnStateChange(long tick, int station, StationState state);
}

/// <summary>Live state of a line at one instant, as the gateway can observe it: buffer levels and which stations are down.</summary>
public sealed record LineSnapshot(IReadOnlyList<int> BufferLevels, IReadOnlyList<bool> StationDown)
{
    /// <summary>
    /// The level a buffer is assumed at when nothing measures it: half full. The one assumption of the live twin's
    /// forecast and what-ifs, the maintenance cost hook and the CLI what-ifs, so that they answer the same question alike.
    /// </summary>
    public static int AssumedLevel(BufferSpec buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        return buffer.Capacity / 2;
    }

    /// <summary>Every buffer at its <see cref="AssumedLevel"/>, no station down.</summary>
    public static LineSnapshot Assumed(LineSpec line)
    {
        ArgumentNullException.ThrowIfNull(line);
        return new LineSnapshot([.. line.Buffers.Select(AssumedLevel)], new bool[line.Stations.Count]);
    }
}

/// <summary>
/// Fixed-increment (discrete-time) simulation of a line of unreliable machines with finite buffers.
/// Per tick, every station that is up and neither starved nor blocked works one tick of its part;
/// while working it fails with probability p = tick / MTBF (operation-dependent failures, geometric
/// up times), and a failed station is repaired with probability r = tick / MTTR per tick (geometric
/// repair times; exponential in the limit of a small tick). Starvation and blocking are judged on the
/// buffer levels at the start of the tick, so with one-tick cycle times the simulation is exactly
/// Gershwin's deterministic-processing-time line (Manufacturing Systems Engineering, 1994, ch. 3–4),
/// which <see cref="TwoMachineLine"/> and <see cref="Decomposition"/> solve analytically.
/// Up and repair times are drawn once per failure (memoryless, same law as per-tick draws), so a tick
/// costs a few comparisons per station. Not thread-safe: one instance per thread; it reuses its arrays
/// across runs, so a run does not allocate.
/// </summary>
public sealed class LineSimulator
{
    private readonly LineSpec _spec;
    private readonly int _n;
    private readonly int[] _meanTicks;
    private readonly double[] _cv;
    private readonly double[] _pFail;
    private readonly double[] _pRepair;
    private readonly int[] _inStart; // CSR: inputs of station s are _inBuf[_inStart[s] .. _inStart[s+1])
    private readonly int[] _inBuf;
    private readonly int[] _outBuf; // -1 = line output
    private readonly int[] _cap;
    private readonly int[] _level;
    private readonly int[] _taken;
    private readonly int[] _put;
    private readonly Xoshiro[] _rng;
    private readonly long[] _repairLeft;
    private readonly long[] _ttf;
    private readonly int[] _progress;
    private readonly int[] _curTicks;
    private readonly bool[] _holding;
    private readonly StationState[] _last;
    private readonly long[] _stateTicks; // [station * 5 + state]
    private readonly long[] _completed;
    private readonly long[][] _stops; // per station: planned stop windows as (start, end) pairs, sorted by start
    private readonly int[] _stopCount;
    private readonly int[] _stopCursor; // first window of the station whose end is after the present tick
    private readonly long[] _busyUntil; // ticks before this are already simulated in bulk (working mid-part, or down)

    public LineSimulator(LineSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var errors = spec.Validate();
        if (errors.Count > 0) throw new ArgumentException("invalid line: " + string.Join("; ", errors), nameof(spec));
        _spec = spec;
        _n = spec.Stations.Count;
        int nb = spec.Buffers.Count;
        _meanTicks = new int[_n];
        _cv = new double[_n];
        _pFail = new double[_n];
        _pRepair = new double[_n];
        _inStart = new int[_n + 1];
        _outBuf = new int[_n];
        var inputs = new List<int>();
        for (int s = 0; s < _n; s++)
        {
            var st = spec.Stations[s];
            _meanTicks[s] = Math.Max(1, (int)Math.Round(st.CycleTimeSeconds / spec.TickSeconds));
            _cv[s] = st.CycleTimeCv;
            _pFail[s] = st.MtbfSeconds > 0 && !double.IsPositiveInfinity(st.MtbfSeconds) ? Math.Min(1, spec.TickSeconds / st.MtbfSeconds) : 0;
            _pRepair[s] = _pFail[s] > 0 ? Math.Min(1, spec.TickSeconds / st.MttrSeconds) : 1;
            _inStart[s] = inputs.Count;
            foreach (var i in st.Inputs) inputs.Add(spec.BufferIndex(i));
            _outBuf[s] = st.Output is null ? -1 : spec.BufferIndex(st.Output);
        }
        _inStart[_n] = inputs.Count;
        _inBuf = inputs.ToArray();
        _cap = spec.Buffers.Select(b => b.Capacity).ToArray();
        _level = new int[nb];
        _taken = new int[nb];
        _put = new int[nb];
        _rng = new Xoshiro[_n];
        _repairLeft = new long[_n];
        _ttf = new long[_n];
        _progress = new int[_n];
        _curTicks = new int[_n];
        _holding = new bool[_n];
        _last = new StationState[_n];
        _stateTicks = new long[_n * 5];
        _completed = new long[_n];
        _stops = new long[_n][];
        for (int s = 0; s < _n; s++) _stops[s] = new long[4];
        _stopCount = new int[_n];
        _stopCursor = new int[_n];
        _busyUntil = new long[_n];
        Reset(1);
    }

    public LineSpec Spec => _spec;

    /// <summary>Ticks simulated since the last reset.</summary>
    public long Tick { get; private set; }

    /// <summary>Parts that left the line since the last reset.</summary>
    public long Output { get; private set; }

    public int TicksFor(double seconds) => (int)Math.Round(seconds / _spec.TickSeconds);

    /// <summary>Starts a new run: buffers at their initial levels (or the snapshot's), all stations up (or down as in the snapshot).</summary>
    public void Reset(ulong seed, LineSnapshot? from = null)
    {
        if (from is not null && (from.BufferLevels.Count != _level.Length || from.StationDown.Count != _n))
            throw new ArgumentException("snapshot does not match the line's buffers and stations", nameof(from));
        for (int b = 0; b < _level.Length; b++)
        {
            _level[b] = from is null ? _spec.Buffers[b].InitialLevel : Math.Clamp(from.BufferLevels[b], 0, _cap[b]);
            _taken[b] = 0;
            _put[b] = 0;
        }
        for (int s = 0; s < _n; s++)
        {
            _rng[s] = new Xoshiro(Xoshiro.Mix(seed, (ulong)s));
            _ttf[s] = _rng[s].Geometric0(_pFail[s]);
            // A station seen down stays down a geometric (memoryless) remaining repair time.
            _repairLeft[s] = from is not null && from.StationDown[s] ? 1 + _rng[s].Geometric0(_pRepair[s]) : 0;
            _progress[s] = 0;
            _holding[s] = false;
            _curTicks[s] = SampleTicks(s);
            _last[s] = (StationState)255;
            _stopCount[s] = 0;
            _stopCursor[s] = 0;
            _completed[s] = 0;
            _busyUntil[s] = 0;
        }
        Array.Clear(_stateTicks);
        Tick = 0;
        Output = 0;
    }

    /// <summary>
    /// Keeps a station stopped (planned: it neither works nor fails) from tick start (inclusive) to end (exclusive),
    /// counted from the reset. A station may have several windows (the shift's breaks and a what-if's stop); they may
    /// overlap. Reset clears them.
    /// </summary>
    public void ScheduleStop(int station, long startTick, long endTick)
    {
        // Stretches already simulated in bulk could overlap the window: stops are set before the run.
        if (Tick != 0) throw new InvalidOperationException("schedule stops right after Reset, before advancing");
        if (endTick <= startTick) return;
        var w = _stops[station];
        int n = _stopCount[station];
        if (2 * n + 2 > w.Length) _stops[station] = w = Grow(w);
        int at = n;
        while (at > 0 && w[2 * (at - 1)] > startTick)
        {
            w[2 * at] = w[2 * (at - 1)];
            w[2 * at + 1] = w[2 * (at - 1) + 1];
            at--;
        }
        w[2 * at] = startTick;
        w[2 * at + 1] = endTick;
        _stopCount[station] = n + 1;
    }

    private static long[] Grow(long[] w)
    {
        var bigger = new long[w.Length * 2];
        Array.Copy(w, bigger, w.Length);
        return bigger;
    }

    /// <summary>Whether tick t is inside a planned stop of the station; moves the station's cursor past windows that ended.</summary>
    private bool InStop(int s, long t)
    {
        var w = _stops[s];
        int c = _stopCursor[s], n = _stopCount[s];
        while (c < n && w[2 * c + 1] <= t) c++;
        _stopCursor[s] = c;
        // Sorted by start: if the first window not yet ended has not begun, no later one has.
        return c < n && w[2 * c] <= t;
    }

    /// <summary>Start of the station's next planned stop after the present tick (call after <see cref="InStop"/>), or long.MaxValue.</summary>
    private long NextStopStart(int s) => _stopCursor[s] < _stopCount[s] ? _stops[s][2 * _stopCursor[s]] : long.MaxValue;

    /// <summary>Advances the line by the given number of ticks.</summary>
    public void Advance(long ticks, IStationStateObserver? observer = null)
    {
        long end = Tick + ticks;
        int nb = _level.Length;
        // Stretches are counted in full when they start; the part past the previous run's end was taken
        // back then (so that TicksIn is exact between runs) and is counted again now.
        for (int s = 0; s < _n; s++)
            if (_busyUntil[s] > Tick) _stateTicks[s * 5 + (int)_last[s]] += _busyUntil[s] - Tick;
        for (long t = Tick; t < end; t++)
        {
            for (int s = 0; s < _n; s++)
            {
                if (t < _busyUntil[s]) continue; // inside a stretch already accounted for
                var state = Step(s, t);
                _stateTicks[s * 5 + (int)state]++;
                if (observer is not null && state != _last[s]) observer.OnStateChange(t, s, state);
                _last[s] = state;
            }
            for (int b = 0; b < nb; b++)
            {
                _level[b] += _put[b] - _taken[b];
                _put[b] = 0;
                _taken[b] = 0;
            }
        }
        for (int s = 0; s < _n; s++)
            if (_busyUntil[s] > end) _stateTicks[s * 5 + (int)_last[s]] -= _busyUntil[s] - end;
        Tick = end;
    }

    private StationState Step(int s, long t)
    {
        if (InStop(s, t)) return StationState.PlannedStop;
        if (_repairLeft[s] > 0)
        {
            _repairLeft[s]--;
            SkipDown(s, t);
            return StationState.Down;
        }
        int i0 = _inStart[s], i1 = _inStart[s + 1];
        if (!_holding[s])
        {
            // Starved when an input had no part at the start of the tick (or parallel stations took it).
            for (int i = i0; i < i1; i++)
            {
                int b = _inBuf[i];
                if (_level[b] - _taken[b] <= 0) return StationState.Starved;
            }
        }
        int o = _outBuf[s];
        // Blocked before the last tick of a part when the output was full at the start of the tick.
        if (o >= 0 && _progress[s] + 1 >= _curTicks[s] && _level[o] + _put[o] >= _cap[o]) return StationState.Blocked;
        // Gershwin's convention: a machine cannot fail in the time unit in which it is repaired.
        bool repairTick = _last[s] == StationState.Down;
        if (!repairTick && _ttf[s] == 0)
        {
            _repairLeft[s] = _rng[s].Geometric0(_pRepair[s]);
            _ttf[s] = _rng[s].Geometric0(_pFail[s]);
            SkipDown(s, t);
            return StationState.Down;
        }
        if (!repairTick) _ttf[s]--;
        if (!_holding[s])
        {
            for (int i = i0; i < i1; i++) _taken[_inBuf[i]]++;
            _holding[s] = true;
        }
        if (++_progress[s] >= _curTicks[s])
        {
            if (o >= 0) _put[o]++;
            else Output++;
            _completed[s]++;
            _holding[s] = false;
            _progress[s] = 0;
            _curTicks[s] = SampleTicks(s);
        }
        else
        {
            // The next ticks up to the part's last one touch no buffer and can only end by a failure or a
            // planned stop, so they are simulated at once (this is where a long cycle time costs nothing).
            long m = Math.Min(_curTicks[s] - 1 - _progress[s], _ttf[s]);
            long next = NextStopStart(s);
            if (next > t) m = Math.Min(m, next - t - 1);
            if (m > 0)
            {
                _progress[s] += (int)m;
                _ttf[s] -= m;
                _stateTicks[s * 5 + (int)StationState.Working] += m;
                _busyUntil[s] = t + 1 + m;
            }
        }
        return StationState.Working;
    }

    // A station down for repair stays down, untouched by the buffers, until repaired or a planned stop begins.
    private void SkipDown(int s, long t)
    {
        long m = _repairLeft[s];
        long next = NextStopStart(s);
        if (next > t) m = Math.Min(m, next - t - 1);
        if (m <= 0) return;
        _repairLeft[s] -= m;
        _stateTicks[s * 5 + (int)StationState.Down] += m;
        _busyUntil[s] = t + 1 + m;
    }

    private int SampleTicks(int s)
    {
        if (_cv[s] <= 0) return _meanTicks[s];
        // Normal noise, truncated to keep at least one tick.
        double v = _meanTicks[s] * (1 + _cv[s] * _rng[s].NextGaussian());
        return Math.Max(1, (int)Math.Round(v));
    }

    public long Completed(int station) => _completed[station];

    public long TicksIn(int station, StationState state) => _stateTicks[station * 5 + (int)state];

    public int BufferLevel(int buffer) => _level[buffer];

    public StationState CurrentState(int station) => _last[station];

    /// <summary>What the gateway would observe now: buffer levels and stations down.</summary>
    public LineSnapshot Snapshot()
    {
        var down = new bool[_n];
        for (int s = 0; s < _n; s++) down[s] = _repairLeft[s] > 0 || (_busyUntil[s] > Tick && _last[s] == StationState.Down);
        return new LineSnapshot((int[])_level.Clone(), down);
    }

    /// <summary>Convenience: one run of the given length from a reset; returns the parts out.</summary>
    public long Run(double seconds, ulong seed, LineSnapshot? from = null)
    {
        Reset(seed, from);
        Advance(TicksFor(seconds));
        return Output;
    }
}
