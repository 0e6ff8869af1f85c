using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Line;

/// <summary>Why a buffer's counted level is not known (for the log line that says so).</summary>
public enum BufferCountLoss : byte
{
    /// <summary>A counter of a station feeding or emptying the buffer went back without a plausible wrap: a reset.</summary>
    Reset,

    /// <summary>A counter jumped up more than the station can have made: a glitch or a replaced counter.</summary>
    Jump,
}

/// <summary>
/// Buffer levels counted from the stations' part counters, for the buffers no conveyor measures: parts the upstream
/// station(s) put out minus parts the downstream station(s) took in, re-anchored by what the twin observes — a station
/// starved on its only input buffer says that buffer is empty, a station blocked says its output buffer is full.
/// <para>
/// Conventions (those of <see cref="LineSimulator"/>): a station counts a part (good or reject) when it puts it out, and
/// takes one part from each input buffer when it starts it, so a downstream station that is working, blocked, down or
/// in setup holds one part taken from each of its inputs and not counted yet (subtracted from the count). A reject goes
/// on into the next buffer like a good part (as the forecast's good share takes it: rejects are scrapped at the end, the
/// flow is the same; the project's Modbus simulator does the same). Parallel machines sharing a buffer add their counts;
/// an assembly station takes one part from each of its inputs per part it makes. An assembly station starved does not
/// say which input is empty: it anchors one only when every other input is counted non-empty.
/// </para>
/// <para>
/// A buffer is countable when every station feeding it and every station taking from it has a good counter. The count is
/// unknown until the first anchor (the live twin never knows where a buffer stood when it started: a buffer's
/// <c>initial</c> is a simulation's start, not the line's state at the agent's start), and again after a counter of one of
/// those stations reset or jumped (<see cref="BufferCountLoss"/>). It is not saved over restarts: the parts moved while
/// the agent was down are known only if no counter was reset meanwhile (a PLC restarted by the same power cut), which the
/// first reading cannot tell apart from a wrap, so a restart starts the count unknown until the next anchor.
/// Per reading: a few array updates, no allocation.
/// </para>
/// </summary>
public sealed class CountedBuffers
{
    /// <summary>A count whose counters have not all been read for this long is not used (as a measured level).</summary>
    public const long StaleMs = 5 * 60_000;

    private readonly int[] _capacity;
    private readonly int[][] _producers; // per buffer: the stations putting parts into it
    private readonly int[][] _consumers; // per buffer: the stations taking parts from it
    private readonly bool[] _countable;
    private readonly long[] _count; // per buffer: anchor + parts put in − parts counted out by the consumers (includes the parts they hold)
    private readonly bool[] _known;
    private readonly int[] _output; // per station: its output buffer, -1 for none
    private readonly int[][] _inputs; // per station: its input buffers
    private readonly PartCounter[] _good, _reject;
    private readonly bool[] _hasGood, _hasReject;
    private readonly long[] _goodReadMs, _rejectReadMs;
    private readonly MachineState[] _state;
    private readonly bool[] _stateSeen;

    /// <param name="line">The line.</param>
    /// <param name="goodBits">Per station: the width of its good counter, 0 without one.</param>
    /// <param name="rejectBits">Per station: the width of its reject counter, 0 without one.</param>
    public CountedBuffers(LineSpec line, IReadOnlyList<int> goodBits, IReadOnlyList<int> rejectBits)
    {
        ArgumentNullException.ThrowIfNull(line);
        ArgumentNullException.ThrowIfNull(goodBits);
        ArgumentNullException.ThrowIfNull(rejectBits);
        int nb = line.Buffers.Count, ns = line.Stations.Count;
        _capacity = [.. line.Buffers.Select(b => b.Capacity)];
        _producers = [.. line.Buffers.Select(b => Enumerable.Range(0, ns).Where(s => line.Stations[s].Output == b.Id).ToArray())];
        _consumers = [.. line.Buffers.Select(b => Enumerable.Range(0, ns).Where(s => line.Stations[s].Inputs.Contains(b.Id)).ToArray())];
        _countable = [.. Enumerable.Range(0, nb).Select(b => _producers[b].Concat(_consumers[b]).All(s => goodBits[s] > 0))];
        _count = new long[nb];
        _known = new bool[nb];
        _output = [.. line.Stations.Select(s => s.Output is null ? -1 : line.BufferIndex(s.Output))];
        _inputs = [.. line.Stations.Select(s => s.Inputs.Select(line.BufferIndex).ToArray())];
        _good = new PartCounter[ns];
        _reject = new PartCounter[ns];
        _hasGood = new bool[ns];
        _hasReject = new bool[ns];
        for (int s = 0; s < ns; s++)
        {
            // The OEE books' plausible rate (3× the ideal): a rise beyond it is a jump, not parts.
            double rate = 3 / line.Stations[s].CycleTimeSeconds;
            _hasGood[s] = goodBits[s] > 0;
            if (_hasGood[s]) _good[s] = new PartCounter(goodBits[s], rate);
            _hasReject[s] = rejectBits[s] > 0;
            if (_hasReject[s]) _reject[s] = new PartCounter(rejectBits[s], rate);
        }
        _goodReadMs = Enumerable.Repeat(long.MinValue, ns).ToArray();
        _rejectReadMs = Enumerable.Repeat(long.MinValue, ns).ToArray();
        _state = new MachineState[ns];
        _stateSeen = new bool[ns];
    }

    /// <summary>Whether the buffer can be counted at all (every station around it has a good counter).</summary>
    public bool Countable(int buffer) => _countable[buffer];

    /// <summary>Whether the buffer's count is anchored and no counter around it reset or jumped since.</summary>
    public bool Known(int buffer) => _known[buffer];

    /// <summary>
    /// The counted level is usable now: anchored, no reset since, and every counter around the buffer read within
    /// <see cref="StaleMs"/> (a silent counter would miss the parts moving now).
    /// </summary>
    public bool Trusted(int buffer, long nowMs)
    {
        if (!_known[buffer]) return false;
        foreach (var s in _producers[buffer])
            if (!Fresh(s, nowMs)) return false;
        foreach (var s in _consumers[buffer])
            if (!Fresh(s, nowMs)) return false;
        return true;
    }

    private bool Fresh(int s, long nowMs) =>
        nowMs - _goodReadMs[s] <= StaleMs && (!_hasReject[s] || nowMs - _rejectReadMs[s] <= StaleMs);

    /// <summary>The counted level, 0..capacity (meaningful while <see cref="Known"/>).</summary>
    public int Level(int buffer) => (int)Math.Clamp(_count[buffer] - Held(buffer), 0, _capacity[buffer]);

    // Parts the downstream stations took from the buffer and have not counted yet: one per station working on one.
    private int Held(int buffer)
    {
        int held = 0;
        foreach (var c in _consumers[buffer])
            if (Holds(_state[c])) held++;
        return held;
    }

    private static bool Holds(MachineState s) => s is MachineState.Running or MachineState.Blocked or MachineState.Faulted or MachineState.Setup;

    /// <summary>
    /// A counter reading of a station. Returns the buffer whose count this reading made unknown (a reset or a jump of a
    /// counter of a station around it; the first such buffer, -1 for none) so the caller can say so.
    /// </summary>
    public int OnCounter(int station, bool reject, long ms, ulong raw, out BufferCountLoss loss)
    {
        loss = BufferCountLoss.Reset;
        if (!(reject ? _hasReject[station] : _hasGood[station])) return -1;
        ref var counter = ref reject ? ref _reject[station] : ref _good[station];
        int resets = counter.Resets, glitches = counter.Glitches;
        long n = counter.Update(ms, raw);
        if (reject) _rejectReadMs[station] = Math.Max(_rejectReadMs[station], ms);
        else _goodReadMs[station] = Math.Max(_goodReadMs[station], ms);
        if (counter.Resets != resets || counter.Glitches != glitches)
        {
            loss = counter.Resets != resets ? BufferCountLoss.Reset : BufferCountLoss.Jump;
            return Forget(station);
        }
        if (n == 0) return -1;
        if (_output[station] is int o and >= 0) Add(o, n);
        foreach (var b in _inputs[station]) Add(b, -n);
        return -1;
    }

    private void Add(int buffer, long n)
    {
        // The count is physically bounded: the buffer plus one part in each downstream station. Counter readings of
        // neighbours come in different polls, so a bound reached is a soft re-anchor, not an error.
        _count[buffer] = Math.Clamp(_count[buffer] + n, 0, _capacity[buffer] + _consumers[buffer].Length);
    }

    // A counter of this station cannot be trusted across this reading: the buffers around it are unknown until anchored.
    private int Forget(int station)
    {
        int first = -1;
        void Lose(int b)
        {
            if (!_known[b]) return;
            _known[b] = false;
            if (first < 0) first = b;
        }
        if (_output[station] >= 0) Lose(_output[station]);
        foreach (var b in _inputs[station]) Lose(b);
        return first;
    }

    /// <summary>
    /// A state the station's signals gave: starved anchors its input empty (of an assembly's inputs, the one not counted
    /// non-empty), blocked anchors its output full; every state says whether the station holds a part taken from its inputs.
    /// </summary>
    public void OnState(int station, MachineState state)
    {
        // A station first seen working holds a part it took before the twin could see it: that part left the buffers then,
        // not now (without this an anchor taken before its first state read one part high).
        if (!_stateSeen[station] && Holds(state))
            foreach (var b in _inputs[station]) _count[b]++;
        _stateSeen[station] = true;
        _state[station] = state;
        if (state == MachineState.Starved && EmptyInput(station) is int input and >= 0)
        {
            _count[input] = Held(input); // empty: only the parts other (parallel) stations are working on are not counted out
            _known[input] = true;
        }
        else if (state == MachineState.Blocked && _output[station] is int o and >= 0 && _countable[o])
        {
            _count[o] = _capacity[o] + Held(o);
            _known[o] = true;
        }
    }

    // The input a starved station says is empty: its only one, or of an assembly station's inputs the one not known to
    // hold a part (the others counted non-empty); -1 when that is not clear.
    private int EmptyInput(int station)
    {
        if (_inputs[station] is [var only]) return _countable[only] ? only : -1;
        int empty = -1;
        foreach (var b in _inputs[station])
        {
            if (_known[b] && Level(b) > 0) continue;
            if (empty >= 0) return -1;
            empty = b;
        }
        return empty >= 0 && _countable[empty] ? empty : -1;
    }

    /// <summary>Where the buffer stands, from a measurement or a known start (tests, a level given by hand).</summary>
    public void Anchor(int buffer, int level)
    {
        if (!_countable[buffer]) return;
        _count[buffer] = Math.Clamp(level, 0, _capacity[buffer]) + Held(buffer);
        _known[buffer] = true;
    }

    /// <summary>The wall clock stepped by <paramref name="ms"/>: the times read so far move with it.</summary>
    public void Shift(long ms)
    {
        for (int s = 0; s < _good.Length; s++)
        {
            if (_hasGood[s]) _good[s].Shift(ms);
            if (_hasReject[s]) _reject[s].Shift(ms);
            if (_goodReadMs[s] != long.MinValue) _goodReadMs[s] += ms;
            if (_rejectReadMs[s] != long.MinValue) _rejectReadMs[s] += ms;
        }
    }
}
