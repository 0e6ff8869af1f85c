namespace EdgeTwin.Twin.Line.Oee;

/// <summary>
/// OEE of one machine (or of a line, seen at its last station with the line's ideal cycle time) over a
/// period such as a shift, with the ISO 22400-2 time elements (seconds) and KPIs:
/// <code>
///   PBT  planned busy time          = known time − planned stops
///   APT  actual production time     = running + micro-stops
///   Availability = APT / PBT
///   Effectiveness (performance) = PRI · PQ / APT       PRI = ideal cycle time, PQ = produced quantity
///   Quality rate = GQ / PQ                             GQ = good quantity
///   OEE = Availability · Effectiveness · Quality rate  (= PRI · GQ / PBT)
/// </code>
/// A ratio whose denominator is 0 is no data (null), not 0: a machine that never reported has no availability, one
/// without counter readings no effectiveness, quality, OEE, speed or reject loss, and quality needs a part made.
/// A machine that reported counters and made nothing in its planned busy time has an OEE of 0.
/// Loss breakdown (seconds; they sum with the value-adding time PRI·GQ to PBT): breakdowns (faults of at
/// least the micro-stop threshold), setups, waiting (idle, starved, blocked of at least the threshold),
/// micro-stops (shorter faults or idles, counted inside APT as ISO 22400 leaves short stops to the
/// performance term), speed loss (APT − PRI·PQ − micro-stops) and rejects (PRI · reject quantity).
/// </summary>
public sealed record OeeReport(
    double PlannedBusyTime,
    double ActualProductionTime,
    double UnknownTime,
    long ProducedQuantity,
    long GoodQuantity,
    long RejectQuantity,
    double? Availability,
    double? Effectiveness,
    double? QualityRate,
    double? Oee,
    OeeLosses Losses,
    IReadOnlyDictionary<string, double> SecondsByState)
{
    /// <summary>
    /// Good parts counted across a gap in the counter's readings longer than the tracker's staleAfter (the agent down, the
    /// PLC unreachable): made in time the books do not know, so they are in neither the quantities nor the KPIs, which
    /// would otherwise credit them to the known time (a performance above 1).
    /// </summary>
    public long UnseenGoodQuantity { get; init; }

    /// <summary>Rejects counted across such a gap.</summary>
    public long UnseenRejectQuantity { get; init; }

    /// <summary>
    /// The report with the figures that need the reject count as no data (a reject counter not reporting while the good
    /// counter does): performance, quality and the speed and reject losses; OEE = PRI·GQ/PBT needs only the good parts.
    /// </summary>
    public OeeReport WithoutRejects() =>
        this with { Effectiveness = null, QualityRate = null, Losses = Losses with { SpeedLoss = null, Rejects = null } };

    /// <summary>
    /// The report of a machine without a reject counter: its counter counts every part it makes, so availability and
    /// performance stand, but which parts were bad is not measured. ISO 22400-2's quality rate needs the scrap quantity:
    /// quality and the reject loss are no data (not 1.00), and the OEE left (PRI·PQ/PBT) is A × P only, to be labelled so.
    /// </summary>
    public OeeReport WithoutQuality() =>
        this with { QualityRate = null, Losses = Losses with { Rejects = null } };

    /// <summary>The report with every figure that needs the part counts as no data (a line whose output station is silent).</summary>
    public OeeReport WithoutQuantities() =>
        this with { Effectiveness = null, QualityRate = null, Oee = null, Losses = Losses with { SpeedLoss = null, Rejects = null } };
}

/// <summary>Loss breakdown in seconds.</summary>
/// <remarks>Speed loss and rejects need the part counts: null without any counter reading.</remarks>
public sealed record OeeLosses(double Breakdowns, double Setups, double Waiting, double MicroStops, double? SpeedLoss, double? Rejects);

/// <summary>
/// Incremental OEE tracker: state changes and counter readings in, <see cref="OeeReport"/> out. An
/// update is a few arithmetic operations and does not allocate (≤ 1 µs; see the Line benchmarks).
/// A state is held until the next reading when that comes within <c>staleAfter</c>; a longer gap is unknown from the last
/// reading on (and the parts counted across it are unseen, below): a machine that
/// stops reporting turns Unknown, and unknown time is left out of planned busy time.
/// Timestamps are milliseconds (any epoch) and must not go backwards (older readings are ignored): after a backward step
/// of the wall clock that stamps them, <see cref="Shift"/> moves the tracker's reading times back with it.
/// </summary>
public sealed class OeeTracker
{
    /// <summary>The hold: the longest gap between readings over which a state is held (the line twin, its learners and its checks use it too).</summary>
    public const double DefaultStaleAfterSeconds = 300;

    private readonly double _idealCycle;
    private readonly double _microStop;
    private readonly long _staleMs;
    private readonly double[] _seconds = new double[MachineStates.Count];
    private PartCounter _good;
    private PartCounter _reject;
    private long _periodStartMs;
    private long _lastMs;
    private long _intervalStartMs;
    private MachineState _state = MachineState.Unknown;
    private double _microStops;
    private long _goodQty;
    private bool _started;
    private long _rejectQty;
    private long _unseenGood;
    private long _unseenReject;
    private long _goodSinceRejectMoved; // good parts counted since the reject counter last moved: what a batch of scrap may book
    private bool _counted; // a counter reading (or parts added) was seen: the quantities are known
    private long _lastReadingMs = long.MinValue; // last state or counter reading

    /// <param name="idealCycleSeconds">Planned run time per item (PRI).</param>
    /// <param name="microStopSeconds">Faults and idles shorter than this are micro-stops.</param>
    /// <param name="staleAfterSeconds">A state without a fresh reading for this long becomes Unknown.</param>
    /// <param name="counterBits">Width of the PLC part counters.</param>
    public OeeTracker(double idealCycleSeconds, double microStopSeconds = 120, double staleAfterSeconds = DefaultStaleAfterSeconds, int counterBits = 32)
    {
        if (!(idealCycleSeconds > 0)) throw new ArgumentOutOfRangeException(nameof(idealCycleSeconds));
        _idealCycle = idealCycleSeconds;
        _microStop = microStopSeconds;
        _staleMs = (long)(staleAfterSeconds * 1000);
        // Counters may run up to 3x the ideal rate before a jump is called a glitch.
        _good = new PartCounter(counterBits, 3 / idealCycleSeconds);
        _reject = new PartCounter(counterBits, 3 / idealCycleSeconds);
    }

    public double IdealCycleSeconds => _idealCycle;

    public MachineState State => _state;

    public int CounterResets => _good.Resets + _reject.Resets;

    public int CounterWraps => _good.Wraps + _reject.Wraps;

    /// <summary>Whether a counter reading (or parts added) was seen, i.e. the quantities are data and not just zero.</summary>
    public bool HasCounts => _counted;

    /// <summary>Time of the reject counter's last reading (ms); <see cref="long.MinValue"/> when there was none.</summary>
    public long RejectCounterLastReadingMs => _reject.LastReadingMs;

    /// <summary>Whether any state or counter reading was seen.</summary>
    public bool HasReadings => _lastReadingMs != long.MinValue;

    /// <summary>Time of the last state or counter reading (ms); <see cref="long.MinValue"/> when there was none.</summary>
    public long LastReadingMs => _lastReadingMs;

    /// <summary>
    /// Moves the times of the readings seen so far by <paramref name="ms"/> (negative: back), for a wall-clock step between
    /// them and the next: the readings after a step back of an hour were older than the last one and ignored for that
    /// hour (the books froze). The booked seconds and the open state stay; the period's start moves too (it was read on
    /// the same clock: a shift that began at 06:00 on a clock an hour ahead began at 05:00).
    /// </summary>
    public void Shift(long ms)
    {
        if (_periodStartMs != 0) _periodStartMs += ms;
        if (!_started && _lastReadingMs == long.MinValue) return;
        _lastMs += ms;
        _intervalStartMs += ms;
        if (_lastReadingMs != long.MinValue) _lastReadingMs += ms;
        _good.Shift(ms);
        _reject.Shift(ms);
    }

    /// <summary>Starts a new period (e.g. a shift) at the given time; the current state carries over.</summary>
    public void StartPeriod(long timestampMs)
    {
        if (_started) Close(timestampMs);
        Array.Clear(_seconds);
        _microStops = 0;
        _goodQty = 0;
        _rejectQty = 0;
        _unseenGood = 0;
        _unseenReject = 0;
        _periodStartMs = timestampMs;
    }

    /// <summary>A state reading (a change, or the same state again as a keep-alive).</summary>
    public void OnState(long timestampMs, MachineState state)
    {
        if (timestampMs > _lastReadingMs) _lastReadingMs = timestampMs;
        if (!_started)
        {
            _started = true;
            if (_periodStartMs == 0) _periodStartMs = timestampMs;
            _state = state;
            _intervalStartMs = timestampMs;
            _lastMs = timestampMs;
            return;
        }
        if (timestampMs < _lastMs) return;
        Accrue(timestampMs);
        if (state != _state)
        {
            Close(timestampMs);
            _state = state;
            _intervalStartMs = timestampMs;
        }
        _lastMs = timestampMs;
    }

    /// <summary>
    /// A good-part counter reading; returns the parts it adds to the books: 0 for a baseline, reset start or glitch, and
    /// for a step across a gap in the counter's readings longer than staleAfter — those parts were made while the time
    /// was unknown, so they are counted apart (<see cref="OeeReport.UnseenGoodQuantity"/>), like that time.
    /// </summary>
    public long OnGoodCounter(long timestampMs, ulong raw)
    {
        long before = _goodQty + _unseenGood;
        var n = Count(ref _good, ref _goodQty, ref _unseenGood, timestampMs, raw, 0);
        _goodSinceRejectMoved += _goodQty + _unseenGood - before;
        return n;
    }

    /// <summary>
    /// A reject counter reading; returns the parts it adds to the books (as <see cref="OnGoodCounter"/>). A rise of at most
    /// the good parts counted since the reject counter last moved is counted whenever it comes: scrap booked in a batch
    /// on an HMI at the end of a run (it was dropped as a glitch: more than 3× the ideal rate over the last minute).
    /// </summary>
    public long OnRejectCounter(long timestampMs, ulong raw)
    {
        long moved = _reject.LastChangeMs;
        var n = Count(ref _reject, ref _rejectQty, ref _unseenReject, timestampMs, raw, _goodSinceRejectMoved);
        if (_reject.LastChangeMs != moved) _goodSinceRejectMoved = 0;
        return n;
    }

    private long Count(ref PartCounter counter, ref long booked, ref long unseen, long timestampMs, ulong raw, long madeSinceChange)
    {
        long last = counter.LastReadingMs;
        bool acrossGap = last != long.MinValue && timestampMs - last > _staleMs;
        var n = counter.Update(timestampMs, raw, madeSinceChange);
        if (acrossGap)
        {
            // Across a gap that began before this period (an outage over a shift change) the parts cannot be split
            // between the periods: they are in neither.
            if (last >= _periodStartMs) unseen += n;
            n = 0;
        }
        else
        {
            booked += n;
        }

        _counted = true;
        if (timestampMs > _lastReadingMs) _lastReadingMs = timestampMs;
        return n;
    }

    /// <summary>Adds parts counted elsewhere (e.g. a part-done pulse).</summary>
    public void AddParts(long good, long reject)
    {
        _goodQty += good;
        _rejectQty += reject;
        _counted = true;
    }

    // A gap in the readings longer than staleAfter is unknown from its start: nothing says when the state changed in it,
    // and the parts counted across it are kept out of the books too (holding the state for its first minutes booked
    // time without the parts, or with parts made in time the books did not have).
    private void Accrue(long nowMs)
    {
        if (_state == MachineState.Unknown || !_started) return;
        long gap = nowMs - _lastMs;
        if (gap <= _staleMs) return;
        Close(_lastMs);
        _state = MachineState.Unknown;
        _intervalStartMs = _lastMs;
    }

    // Books the open interval [start, until) to its state and starts a new one at `until`.
    private void Close(long untilMs)
    {
        double d = Math.Max(0, (untilMs - Math.Max(_intervalStartMs, _periodStartMs)) / 1000.0);
        if (d > 0) Book(_state, d);
        _intervalStartMs = untilMs;
    }

    private void Book(MachineState state, double seconds)
    {
        if ((state == MachineState.Faulted || state == MachineState.Idle) && seconds < _microStop)
            _microStops += seconds;
        else
            _seconds[(int)state] += seconds;
    }

    /// <summary>The KPIs for the period up to <paramref name="nowMs"/> (the open interval included).</summary>
    public OeeReport Report(long nowMs)
    {
        var secs = new double[MachineStates.Count];
        double micro = 0;
        AddTimes(nowMs, secs, ref micro, 1);
        return Compute(secs, micro, _idealCycle, _counted, _goodQty, _rejectQty) with { UnseenGoodQuantity = _unseenGood, UnseenRejectQuantity = _unseenReject };
    }

    /// <summary>
    /// Adds this period's seconds per state (the open interval included, without closing it) times <paramref name="weight"/>
    /// to <paramref name="secs"/> and <paramref name="micro"/>: a stage of parallel machines books each machine's time at its
    /// share of the stage's rate.
    /// </summary>
    internal void AddTimes(long nowMs, double[] secs, ref double micro, double weight)
    {
        for (int i = 0; i < secs.Length; i++) secs[i] += weight * _seconds[i];
        micro += weight * _microStops;
        if (!_started)
        {
            // Never reported since its period started (a shift start): all of it is unknown.
            if (_periodStartMs > 0) secs[(int)MachineState.Unknown] += weight * Math.Max(0, (nowMs - _periodStartMs) / 1000.0);
            return;
        }
        // Include the open interval without closing it (a stop still open may yet grow past the threshold).
        long from = Math.Max(_intervalStartMs, _periodStartMs);
        if (_state != MachineState.Unknown && nowMs - _lastMs > _staleMs)
        {
            AddOpen(secs, ref micro, _state, Math.Max(0, (_lastMs - from) / 1000.0), weight);
            secs[(int)MachineState.Unknown] += weight * Math.Max(0, (nowMs - Math.Max(_lastMs, from)) / 1000.0);
        }
        else
        {
            AddOpen(secs, ref micro, _state, Math.Max(0, (nowMs - from) / 1000.0), weight);
        }
    }

    private void AddOpen(double[] secs, ref double micro, MachineState state, double seconds, double weight)
    {
        if ((state == MachineState.Faulted || state == MachineState.Idle) && seconds < _microStop) micro += weight * seconds;
        else secs[(int)state] += weight * seconds;
    }

    /// <summary>The KPIs from the time elements (seconds per state, micro-stops) and the quantities.</summary>
    internal static OeeReport Compute(double[] secs, double micro, double idealCycle, bool counted, long good, long reject)
    {
        double total = 0;
        foreach (var s in secs) total += s;
        total += micro;
        double unknown = secs[(int)MachineState.Unknown];
        double pbt = total - unknown - secs[(int)MachineState.PlannedStop];
        double apt = secs[(int)MachineState.Running] + micro;
        long pq = good + reject;
        // 0/0 is no data: a 0 here would be charted and alarmed on as a machine at 0 %.
        double? availability = pbt > 0 ? apt / pbt : null;
        double? effectiveness = counted && apt > 0 ? idealCycle * pq / apt : null;
        double? quality = pq > 0 ? (double)good / pq : null;
        double? oee = counted && pbt > 0 ? idealCycle * good / pbt : null;
        double ideal = idealCycle * pq;
        var losses = new OeeLosses(
            Breakdowns: secs[(int)MachineState.Faulted],
            Setups: secs[(int)MachineState.Setup],
            Waiting: secs[(int)MachineState.Idle] + secs[(int)MachineState.Starved] + secs[(int)MachineState.Blocked],
            MicroStops: micro,
            // More parts than the running time allows at the ideal cycle (a line seen over a window shorter than its
            // buffers take to drain, a cycle configured too long) is no loss: performance above 1 shows it, not a negative loss.
            SpeedLoss: counted ? Math.Max(0, apt - micro - ideal) : null,
            Rejects: counted ? idealCycle * reject : null);
        var byState = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < secs.Length; i++) byState[MachineStates.Name((MachineState)i)] = secs[i];
        byState["micro_stop"] = micro;
        return new OeeReport(pbt, apt, unknown, pq, good, reject, availability, effectiveness, quality, oee, losses, byState);
    }
}
