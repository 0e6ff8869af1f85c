namespace EdgeTwin.Twin.Line.Oee;

/// <summary>
/// OEE of a whole line (ISO 22400-2 with the line as the work unit): the ideal cycle is the constraint stage's
/// (<see cref="LineStages.Constraint"/>; parallel machines add their rates), the time base is that stage's machines,
/// each booked at its share of the stage's rate (so a stage of two equal machines, one of them down, is half
/// available), and the quantities are the parts leaving the output station. Per state change or counter reading: an
/// array lookup and the <see cref="OeeTracker"/> update, no allocation.
/// </summary>
public sealed class LineOeeTracker
{
    private readonly double _idealCycle;
    private readonly OeeTracker[] _members;
    private readonly double[] _weights;
    private readonly int[] _memberOf; // line station index → member index, -1 outside the constraint stage
    private readonly OeeTracker _parts; // the output station's counters (its own time base is not used)

    /// <param name="line">The line.</param>
    /// <param name="outputStation">Index of the station whose parts are the line's output.</param>
    /// <param name="microStopSeconds">Faults and idles shorter than this are micro-stops.</param>
    /// <param name="staleAfterSeconds">A state without a fresh reading for this long becomes Unknown.</param>
    public LineOeeTracker(LineSpec line, int outputStation, double microStopSeconds = 120, double staleAfterSeconds = OeeTracker.DefaultStaleAfterSeconds)
    {
        ArgumentNullException.ThrowIfNull(line);
        Constraint = LineStages.Constraint(line);
        _idealCycle = Constraint.IdealCycleSeconds;
        _members = [.. Constraint.Stations.Select(i => new OeeTracker(line.Stations[i].CycleTimeSeconds, microStopSeconds, staleAfterSeconds))];
        _weights = [.. Constraint.Stations.Select(i => Constraint.RateShare(line, i))];
        _memberOf = Enumerable.Repeat(-1, line.Stations.Count).ToArray();
        for (int k = 0; k < Constraint.Stations.Count; k++) _memberOf[Constraint.Stations[k]] = k;
        _parts = new OeeTracker(line.Stations[outputStation].CycleTimeSeconds, microStopSeconds, staleAfterSeconds);
    }

    /// <summary>The stage whose ideal cycle and states the line OEE uses.</summary>
    public LineStage Constraint { get; }

    /// <summary>The line's ideal cycle (PRI): the constraint stage's.</summary>
    public double IdealCycleSeconds => _idealCycle;

    /// <summary>Whether the output station's counters gave a reading: without one the line's quantities are no data.</summary>
    public bool HasCounts => _parts.HasCounts;

    /// <summary>A state reading of line station <paramref name="station"/>; only the constraint stage's count.</summary>
    public void OnState(int station, long timestampMs, MachineState state)
    {
        int k = _memberOf[station];
        if (k >= 0) _members[k].OnState(timestampMs, state);
    }

    /// <summary>A good-part counter reading of the output station.</summary>
    public long OnGoodCounter(long timestampMs, ulong raw) => _parts.OnGoodCounter(timestampMs, raw);

    /// <summary>A reject counter reading of the output station.</summary>
    public long OnRejectCounter(long timestampMs, ulong raw) => _parts.OnRejectCounter(timestampMs, raw);

    /// <summary>Adds output parts counted elsewhere (a simulated shift).</summary>
    public void AddParts(long good, long reject) => _parts.AddParts(good, reject);

    /// <summary>Moves the reading times by <paramref name="ms"/> after a wall-clock step (<see cref="OeeTracker.Shift"/>).</summary>
    public void Shift(long ms)
    {
        foreach (var m in _members) m.Shift(ms);
        _parts.Shift(ms);
    }

    /// <summary>Starts a new period (a shift) for the time base and the counts.</summary>
    public void StartPeriod(long timestampMs)
    {
        foreach (var m in _members) m.StartPeriod(timestampMs);
        _parts.StartPeriod(timestampMs);
    }

    /// <summary>The line's KPIs for the period up to <paramref name="nowMs"/>.</summary>
    public OeeReport Report(long nowMs)
    {
        var secs = new double[MachineStates.Count];
        double micro = 0;
        for (int k = 0; k < _members.Length; k++) _members[k].AddTimes(nowMs, secs, ref micro, _weights[k]);
        var parts = _parts.Report(nowMs);
        return OeeTracker.Compute(secs, micro, _idealCycle, _parts.HasCounts, parts.GoodQuantity, parts.RejectQuantity)
            with { UnseenGoodQuantity = parts.UnseenGoodQuantity, UnseenRejectQuantity = parts.UnseenRejectQuantity };
    }
}
