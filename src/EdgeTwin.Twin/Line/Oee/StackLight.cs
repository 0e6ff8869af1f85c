namespace EdgeTwin.Twin.Line.Oee;

/// <summary>
/// Machine state from the three lamps of a stack light (IEC 60073 colours): red = fault, green = running,
/// amber alone = waiting (idle), all dark = the machine is off (planned stop). Red wins over green, since a
/// machine that shows a fault is not producing even if the green lamp is still lit.
/// </summary>
public static class StackLight
{
    public static MachineState Classify(bool red, bool amber, bool green) =>
        red ? MachineState.Faulted
        : green ? MachineState.Running
        : amber ? MachineState.Idle
        : MachineState.PlannedStop;
}

/// <summary>The lamps of a stack light, in the order of <see cref="StackLight.Classify"/>.</summary>
public enum StackLamp : byte
{
    Red = 0,
    Amber = 1,
    Green = 2,
}

/// <summary>A machine state that holds from <see cref="TimestampMs"/> on (what an <see cref="OeeTracker"/> takes).</summary>
public readonly record struct StateReading(long TimestampMs, MachineState State);

/// <summary>
/// Turns the lamp readings of one stack light (each lamp a GPIO input that reports its changes and a periodic
/// keep-alive) into machine states, robust to what real towers and inputs do:
/// <list type="bullet">
/// <item>flashing lamps (a fault or attention call blinks at 0.4–2.8 Hz, IEC 60073): a lamp that goes dark counts as
/// lit for <c>hold</c> longer, so a blink's dark phase changes nothing;</item>
/// <item>short all-dark gaps while the PLC changes lamps (old one off, new one on a few hundred ms later): the gap
/// is shorter than <c>hold</c>, so it is never read as a planned stop; and when the new lamp lights, a steady old
/// lamp (its last on-phase longer than the hold) is taken as out since it went dark, so short waits between parts
/// (green → amber → green) are seen as they happen, while a blinking lamp keeps its hold;</item>
/// <item>contact bounce that passes the input's debounce: a bounce shorter than <c>hold</c> is a blink;</item>
/// <item>missing or late samples: a lamp counts only once it has reported, readings of different lamps that arrive
/// out of order are taken at the latest time seen, and each keep-alive re-asserts the level.</item>
/// </list>
/// When a dark lamp's hold runs out the state changes back-dated to when the lamp went dark, so the hold delays the
/// answer but does not shift time between states: the readings this writes are in time order and never earlier
/// than one already written (keep-alives are stamped no later than the oldest lamp still on hold). No allocation.
/// </summary>
public sealed class StackLightDecoder
{
    private readonly long _holdMs;
    private readonly bool[] _present = new bool[3];
    private readonly bool[] _seen = new bool[3];
    private readonly bool[] _lit = new bool[3];
    private readonly bool[] _held = new bool[3];
    private readonly long[] _offAt = new long[3];
    private readonly long[] _onAt = new long[3];
    private readonly bool[] _blinks = new bool[3];
    private long _clock = long.MinValue;
    private long _lastOut = long.MinValue;

    /// <param name="red">The tower has a red lamp wired (a lamp not wired is dark for good).</param>
    /// <param name="amber">The tower has an amber lamp wired.</param>
    /// <param name="green">The tower has a green lamp wired.</param>
    /// <param name="hold">How long a lamp that went dark still counts as lit: longer than the slowest blink's dark phase and the PLC's lamp-change gap.</param>
    public StackLightDecoder(bool red, bool amber, bool green, TimeSpan hold)
    {
        if (!(red || amber || green)) throw new ArgumentException("a stack light needs at least one lamp");
        if (hold < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(hold), hold, "the hold cannot be negative");
        _present[0] = red;
        _present[1] = amber;
        _present[2] = green;
        _holdMs = (long)hold.TotalMilliseconds;
    }

    /// <summary>On-phases shorter than this are contact bounce or glitches, not blinks (a 2.8 Hz blink is lit ≈ 180 ms).</summary>
    public const long MinBlinkMs = 100;

    /// <summary>Default hold: the dark phase of a slow blink (0.4 Hz, IEC 60073) is 1.25 s.</summary>
    public static readonly TimeSpan DefaultHold = TimeSpan.FromMilliseconds(1500);

    /// <summary>The state decoded so far (Unknown until every wired lamp has reported).</summary>
    public MachineState State { get; private set; } = MachineState.Unknown;

    /// <summary>
    /// A reading of one lamp at <paramref name="timestampMs"/>; writes the resulting state readings (at most 4: expired
    /// holds, then this one) to <paramref name="output"/> and returns how many.
    /// </summary>
    public int Apply(long timestampMs, StackLamp lamp, bool lit, Span<StateReading> output)
    {
        int i = (int)lamp;
        if (!_present[i]) return 0;
        long ms = Math.Max(timestampMs, _clock);
        int n = Expire(ms, output);
        _clock = ms;
        _seen[i] = true;
        long changeAt = ms;
        if (lit && !_lit[i])
        {
            _lit[i] = true;
            _held[i] = false;
            _onAt[i] = ms;
            // Another lamp lighting ends the hold of a steady lamp that just went dark: the PLC changed lamps, and the
            // old lamp's state ended when it went dark. A blinking lamp keeps its hold (it may be in its dark phase).
            for (int j = 0; j < 3; j++)
            {
                if (j == i || !_held[j] || _blinks[j]) continue;
                _held[j] = false;
                changeAt = Math.Min(changeAt, _offAt[j]);
            }
        }
        else if (!lit && _lit[i])
        {
            // An on-phase shorter than the hold is a blink; one shorter than MinBlink is bounce and says nothing.
            long phase = ms - _onAt[i];
            if (phase >= MinBlinkMs) _blinks[i] = phase < _holdMs;
            _lit[i] = false;
            _held[i] = true;
            _offAt[i] = ms;
        }

        if (!AllSeen()) return n;
        var state = Classify();
        if (state != State)
        {
            State = state;
            n += Write(changeAt, state, change: true, output[n..]);
        }
        else
        {
            // A keep-alive: no later than the oldest lamp on hold, which may yet end the state back then.
            n += Write(Math.Min(ms, OldestHold()), state, change: false, output[n..]);
        }

        return n;
    }

    /// <summary>
    /// Moves the lamp times by <paramref name="ms"/> after a wall-clock step: a step back of an hour held the decoder's
    /// clock an hour ahead, and every reading in that hour was dated at it.
    /// </summary>
    public void Shift(long ms)
    {
        if (_clock != long.MinValue) _clock += ms;
        if (_lastOut != long.MinValue) _lastOut += ms;
        for (int i = 0; i < 3; i++)
        {
            _onAt[i] += ms;
            _offAt[i] += ms;
        }
    }

    /// <summary>Time passes without a reading (e.g. the end of a batch): ends the holds that ran out.</summary>
    public int Advance(long timestampMs, Span<StateReading> output)
    {
        if (timestampMs <= _clock) return 0;
        int n = Expire(timestampMs, output);
        _clock = timestampMs;
        return n;
    }

    // Ends holds in the order the lamps went dark; a change of state is dated when its lamp went dark.
    private int Expire(long ms, Span<StateReading> output)
    {
        int n = 0;
        while (true)
        {
            int first = -1;
            for (int i = 0; i < 3; i++)
                if (_held[i] && ms - _offAt[i] >= _holdMs && (first < 0 || _offAt[i] < _offAt[first])) first = i;
            if (first < 0) return n;
            _held[first] = false;
            if (!AllSeen()) continue;
            var state = Classify();
            if (state == State) continue;
            State = state;
            n += Write(_offAt[first], state, change: true, output[n..]);
        }
    }

    // A change is never dated before a reading already given (it moves up to it); a keep-alive that would be is dropped.
    private int Write(long ms, MachineState state, bool change, Span<StateReading> output)
    {
        if (ms < _lastOut)
        {
            if (!change) return 0;
            ms = _lastOut;
        }
        _lastOut = ms;
        output[0] = new StateReading(ms, state);
        return 1;
    }

    private long OldestHold()
    {
        long oldest = long.MaxValue;
        for (int i = 0; i < 3; i++)
            if (_held[i] && _offAt[i] < oldest) oldest = _offAt[i];
        return oldest;
    }

    private bool AllSeen()
    {
        for (int i = 0; i < 3; i++)
            if (_present[i] && !_seen[i]) return false;
        return true;
    }

    private MachineState Classify() =>
        StackLight.Classify(_lit[0] || _held[0], _lit[1] || _held[1], _lit[2] || _held[2]);
}
