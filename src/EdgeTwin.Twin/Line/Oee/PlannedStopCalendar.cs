namespace EdgeTwin.Twin.Line.Oee;

/// <summary>Receives the states the OEE books should see (the machine's, or planned_stop inside a calendar stop).</summary>
public interface IBookedStateSink
{
    void OnBookedState(int station, long timestampMs, MachineState state);
}

/// <summary>
/// The shift calendar's planned stops in the OEE books. Inside a stop only production is busy time: every state but
/// running books as planned_stop (a machine idle or faulted during the break loses nothing), and at the stop's end the
/// state the signals last gave is booked again. Stops begin and end on the calendar whether or not a reading arrives
/// then (call <see cref="Advance"/> with the latest time); before a station's first reading only the flag moves, so its
/// books start at that reading. Per station the windows are merged (start, end) pairs; no allocation per reading.
/// </summary>
public sealed class PlannedStopCalendar
{
    private readonly long[][] _windows;
    private readonly int[] _count;
    private readonly int[] _next; // first window not yet ended
    private readonly bool[] _inStop;
    private readonly MachineState[] _raw;
    // NotBooked = nothing booked yet. Not 0: a state log's times count from the shift's start, so 0 is its first reading
    // (taken for "nothing booked", a station idle from 0 through the break had the break booked as waiting).
    private readonly long[] _bookedMs;
    private const long NotBooked = long.MinValue;
    private readonly IBookedStateSink _sink;

    public PlannedStopCalendar(int stations, IBookedStateSink sink)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stations);
        _sink = sink ?? throw new ArgumentNullException(nameof(sink));
        _windows = new long[stations][];
        for (int s = 0; s < stations; s++) _windows[s] = new long[8];
        _count = new int[stations];
        _next = new int[stations];
        _inStop = new bool[stations];
        _raw = new MachineState[stations];
        _bookedMs = new long[stations];
        Array.Fill(_bookedMs, NotBooked);
    }

    /// <summary>Whether the station is inside a planned stop of the calendar (as of the last call).</summary>
    public bool InStop(int station) => _inStop[station];

    /// <summary>
    /// Replaces the windows with a shift's: <paramref name="stops"/> are seconds from <paramref name="shiftStartMs"/>
    /// (sorted by start, as <see cref="LineTwinConfig.PlannedWindows"/> gives them); with <paramref name="offShiftFromSeconds"/>
    /// everything from then on is planned too (no production is planned between shifts). A station still held in a stop
    /// goes back to what its signals say at the shift start.
    /// </summary>
    public void Schedule(IReadOnlyList<PlannedWindow> stops, long shiftStartMs, double? offShiftFromSeconds = null)
    {
        ArgumentNullException.ThrowIfNull(stops);
        for (int s = 0; s < _windows.Length; s++)
        {
            if (_inStop[s] && _bookedMs[s] != NotBooked) Book(s, Math.Max(shiftStartMs, _bookedMs[s]), _raw[s]);
            int n = 0;
            foreach (var w in stops)
            {
                if (w.Station < 0 || w.Station == s) Add(s, ref n, shiftStartMs + (long)(w.StartSeconds * 1000), shiftStartMs + (long)(w.EndSeconds * 1000));
            }

            if (offShiftFromSeconds is { } off) Add(s, ref n, shiftStartMs + (long)(off * 1000), long.MaxValue);
            _count[s] = n;
            _next[s] = 0;
            _inStop[s] = false;
        }
    }

    private void Add(int s, ref int n, long start, long end)
    {
        // Sorted by start: a window overlapping the one before (a line-wide break and a station's own stop) merges with it.
        if (n > 0 && start <= _windows[s][2 * n - 1])
        {
            _windows[s][2 * n - 1] = Math.Max(_windows[s][2 * n - 1], end);
            return;
        }

        if (2 * n + 2 > _windows[s].Length) Array.Resize(ref _windows[s], _windows[s].Length * 2);
        _windows[s][2 * n] = start;
        _windows[s][2 * n + 1] = end;
        n++;
    }

    /// <summary>A state reading of the station: books it (as planned_stop inside a stop) unless it is older than what is booked.</summary>
    public void OnState(int station, long timestampMs, MachineState state)
    {
        Advance(station, timestampMs);
        _raw[station] = state; // the latest word on the machine, even if older than a calendar boundary already booked
        if (timestampMs >= _bookedMs[station]) Book(station, timestampMs, Planned(station, state));
    }

    /// <summary>Books the stops' starts and ends up to <paramref name="timestampMs"/> for the station.</summary>
    public void Advance(int station, long timestampMs)
    {
        var w = _windows[station];
        int i = _next[station], n = _count[station];
        while (i < n)
        {
            bool booked = _bookedMs[station] != NotBooked;
            if (!_inStop[station])
            {
                if (w[2 * i] > timestampMs) break;
                if (booked && w[2 * i + 1] <= _bookedMs[station])
                {
                    // Over before what is booked (a shift's stops taken up from its start after a clock step back into
                    // it): entering and leaving it there was a stop of no length that split the state booked across it.
                    i++;
                    continue;
                }

                _inStop[station] = true;
                if (booked) Book(station, Math.Max(w[2 * i], _bookedMs[station]), Planned(station, _raw[station]));
            }

            if (w[2 * i + 1] > timestampMs) break;
            _inStop[station] = false;
            if (booked) Book(station, Math.Max(w[2 * i + 1], _bookedMs[station]), _raw[station]); // back to what its signals say
            i++;
        }

        _next[station] = i;
    }

    /// <summary>
    /// After a wall-clock step (by <paramref name="ms"/>, negative: back) seen at <paramref name="nowMs"/>: the booked times
    /// move with the clock (a reading older than the last booked one was not booked: a step back of an hour froze the books
    /// for that hour); the windows stay where the calendar puts them, and a station whose place in them changed is booked
    /// at <paramref name="nowMs"/> as the calendar now says.
    /// </summary>
    public void Shift(long ms, long nowMs)
    {
        for (int s = 0; s < _windows.Length; s++)
        {
            if (_bookedMs[s] == NotBooked) continue;
            _bookedMs[s] = Math.Min(_bookedMs[s] + ms, nowMs);
            var w = _windows[s];
            int i = 0, n = _count[s];
            while (i < n && w[2 * i + 1] <= nowMs) i++;
            bool inStop = i < n && w[2 * i] <= nowMs;
            _next[s] = i;
            if (inStop == _inStop[s]) continue;
            _inStop[s] = inStop;
            Book(s, nowMs, Planned(s, _raw[s]));
        }
    }

    /// <summary>
    /// After the books are read back from a state file: builds before this one wrote 0 for a station with nothing booked
    /// (the live twin's times are Unix milliseconds, never 0), which would now read as booked in 1970.
    /// </summary>
    public void AfterRestore()
    {
        for (int s = 0; s < _bookedMs.Length; s++)
            if (_bookedMs[s] == 0) _bookedMs[s] = NotBooked;
    }

    /// <summary><see cref="Advance(int, long)"/> for every station.</summary>
    public void Advance(long timestampMs)
    {
        for (int s = 0; s < _windows.Length; s++) Advance(s, timestampMs);
    }

    private MachineState Planned(int station, MachineState state) =>
        _inStop[station] && state != MachineState.Running ? MachineState.PlannedStop : state;

    private void Book(int station, long timestampMs, MachineState state)
    {
        _bookedMs[station] = timestampMs;
        _sink.OnBookedState(station, timestampMs, state);
    }
}
