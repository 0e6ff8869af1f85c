namespace EdgeTwin.Twin.Line.Scenarios;

/// <summary>A mean with a two-sided interval (confidence interval of the mean, or a prediction interval; the field says which).</summary>
/// <param name="Level">The interval's level as a fraction (0.9: a 90 % interval), carried so outputs state the level used rather than assume one.</param>
public readonly record struct Estimate(double Mean, double Low, double High, double Level);

/// <summary>Where the line is now: seconds into the shift, parts out so far and what the gateway sees (buffer levels, stations down).</summary>
public sealed record LineNow(double ElapsedSeconds, long OutputSoFar, LineSnapshot? Snapshot);

/// <summary>End-of-shift output: the mean forecast, the confidence interval of that mean, and a prediction interval (5 %–95 % of replications).</summary>
public sealed record ShiftForecast(double ShiftSeconds, double ElapsedSeconds, long OutputSoFar, Estimate Mean, Estimate Prediction, int Replications);

/// <summary>
/// A what-if against the baseline: the mean output of both over the rest of the shift (CI of each mean), the paired loss
/// (baseline − scenario, CI of the mean; negative when the change gains parts) and its cost.
/// </summary>
public sealed record ScenarioResult(string Kind, string Target, Estimate Baseline, Estimate Scenario, Estimate LostOutput, Estimate Cost, int Replications)
{
    public double BaselineOutput => Baseline.Mean;

    public double ScenarioOutput => Scenario.Mean;
}

/// <summary>One candidate start for a maintenance window.</summary>
public sealed record WindowCandidate(double StartSeconds, Estimate LostOutput);

/// <summary>Best start for a maintenance window and every candidate tried.</summary>
public sealed record MaintenanceWindowResult(string Station, double DurationSeconds, WindowCandidate Best, IReadOnlyList<WindowCandidate> Candidates, double MarginPerUnit, int Replications);

/// <summary>
/// Line what-ifs (machine_down, buffer_change, cycle_time_change, maintenance_window) and end-of-shift
/// forecasts, answered by replications of <see cref="LineSimulator"/> from the line's present state.
/// Baseline and scenario replication i use the same seed, and every station draws from its own random
/// stream, so their difference is a paired comparison with common random numbers: the interval of the
/// loss is much narrower than the intervals of the two outputs. Intervals of means are Student-t.
/// </summary>
public sealed class LineScenarios
{
    private readonly LineSpec _line;
    private readonly double _shiftSeconds;
    private readonly double _marginPerUnit;

    /// <param name="line">The line as configured (cycle times, MTBF/MTTR learned from the machine states).</param>
    /// <param name="shiftSeconds">Length of the shift.</param>
    /// <param name="marginPerUnit">Margin lost per part not made (currency units).</param>
    public LineScenarios(LineSpec line, double shiftSeconds, double marginPerUnit)
    {
        ArgumentNullException.ThrowIfNull(line);
        var errors = line.Validate();
        if (errors.Count > 0) throw new ArgumentException("invalid line: " + string.Join("; ", errors), nameof(line));
        if (!(shiftSeconds > 0)) throw new ArgumentOutOfRangeException(nameof(shiftSeconds));
        _line = line;
        _shiftSeconds = shiftSeconds;
        _marginPerUnit = marginPerUnit;
    }

    public int Replications { get; init; } = 100;

    /// <summary>The shift calendar's planned stops (seconds from the shift's start): no station works or fails in them, in the baseline and in every scenario.</summary>
    public IReadOnlyList<PlannedWindow> PlannedStops { get; init; } = [];

    public ulong Seed { get; init; } = 1;

    /// <summary>Confidence level of the intervals (two-sided).</summary>
    public double Confidence { get; init; } = 0.9;

    private double Remaining(LineNow now) => Math.Max(0, _shiftSeconds - now.ElapsedSeconds);

    public ShiftForecast ForecastEndOfShift(LineNow now)
    {
        ArgumentNullException.ThrowIfNull(now);
        var outputs = RunReplications(new LineSimulator(_line), now, null);
        for (int i = 0; i < outputs.Length; i++) outputs[i] += now.OutputSoFar;
        var sorted = (double[])outputs.Clone();
        Array.Sort(sorted);
        double alpha = (1 - Confidence) / 2;
        var prediction = new Estimate(outputs.Average(), Quantile(sorted, alpha), Quantile(sorted, 1 - alpha), Confidence);
        return new ShiftForecast(_shiftSeconds, now.ElapsedSeconds, now.OutputSoFar, MeanInterval(outputs), prediction, outputs.Length);
    }

    /// <summary>machine_down: the station stops now (or after <paramref name="startInSeconds"/>) for the given duration.</summary>
    public ScenarioResult MachineDown(LineNow now, string station, double durationSeconds, double startInSeconds = 0)
    {
        ArgumentNullException.ThrowIfNull(now);
        if (!(durationSeconds > 0)) throw new ArgumentOutOfRangeException(nameof(durationSeconds), durationSeconds, "duration must be > 0");
        int s = _line.StationIndex(station);
        var sim = new LineSimulator(_line);
        var baseline = RunReplications(sim, now, null);
        var scenario = RunReplications(sim, now, x => x.ScheduleStop(s, x.TicksFor(startInSeconds), x.TicksFor(startInSeconds + durationSeconds)));
        return Compare("machine_down", $"{station} for {durationSeconds / 60:0.#} min", baseline, scenario);
    }

    /// <summary>buffer_change: the buffer gets a new capacity.</summary>
    public ScenarioResult BufferChange(LineNow now, string buffer, int capacity)
    {
        ArgumentNullException.ThrowIfNull(now);
        int b = _line.BufferIndex(buffer);
        var changed = _line with { Buffers = _line.Buffers.Select((x, i) => i == b ? x with { Capacity = capacity, InitialLevel = Math.Min(x.InitialLevel, capacity) } : x).ToArray() };
        var baseline = RunReplications(new LineSimulator(_line), now, null);
        var scenario = RunReplications(new LineSimulator(changed), now, null);
        return Compare("buffer_change", $"{buffer} capacity {capacity}", baseline, scenario);
    }

    /// <summary>cycle_time_change: the station gets a new ideal cycle time.</summary>
    public ScenarioResult CycleTimeChange(LineNow now, string station, double cycleTimeSeconds)
    {
        ArgumentNullException.ThrowIfNull(now);
        int s = _line.StationIndex(station);
        var changed = _line with { Stations = _line.Stations.Select((x, i) => i == s ? x with { CycleTimeSeconds = cycleTimeSeconds } : x).ToArray() };
        var baseline = RunReplications(new LineSimulator(_line), now, null);
        var scenario = RunReplications(new LineSimulator(changed), now, null);
        return Compare("cycle_time_change", $"{station} cycle time {cycleTimeSeconds:0.###} s", baseline, scenario);
    }

    /// <summary>
    /// maintenance_window: tries every start from now to the end of the shift in steps of
    /// <paramref name="stepSeconds"/> (the window must fit in the shift) and returns the start with the
    /// least lost output. All candidates share the baseline and the seeds (common random numbers).
    /// </summary>
    public MaintenanceWindowResult MaintenanceWindow(LineNow now, string station, double durationSeconds, double stepSeconds = 900)
    {
        ArgumentNullException.ThrowIfNull(now);
        if (!(durationSeconds > 0)) throw new ArgumentOutOfRangeException(nameof(durationSeconds), durationSeconds, "duration must be > 0");
        if (!(stepSeconds > 0)) throw new ArgumentOutOfRangeException(nameof(stepSeconds));
        int s = _line.StationIndex(station);
        double remaining = Remaining(now);
        if (durationSeconds > remaining) throw new ArgumentOutOfRangeException(nameof(durationSeconds), durationSeconds, $"a {durationSeconds} s window does not fit in the {remaining} s left in the shift");
        var sim = new LineSimulator(_line);
        var baseline = RunReplications(sim, now, null);
        var candidates = new List<WindowCandidate>();
        for (double start = 0; start + durationSeconds <= remaining + 1e-9; start += stepSeconds)
        {
            double st = start;
            var scenario = RunReplications(sim, now, x => x.ScheduleStop(s, x.TicksFor(st), x.TicksFor(st + durationSeconds)));
            var lost = new double[baseline.Length];
            for (int i = 0; i < lost.Length; i++) lost[i] = baseline[i] - scenario[i];
            candidates.Add(new WindowCandidate(now.ElapsedSeconds + start, MeanInterval(lost)));
        }
        var best = candidates.MinBy(c => c.LostOutput.Mean)!;
        return new MaintenanceWindowResult(station, durationSeconds, best, candidates, _marginPerUnit, baseline.Length);
    }

    private double[] RunReplications(LineSimulator sim, LineNow now, Action<LineSimulator>? setup)
    {
        int n = Math.Max(2, Replications);
        long ticks = sim.TicksFor(Remaining(now));
        var outputs = new double[n];
        for (int i = 0; i < n; i++)
        {
            sim.Reset(Xoshiro.Mix(Seed, (ulong)i), now.Snapshot);
            ScheduleCalendar(sim, PlannedStops, now.ElapsedSeconds);
            setup?.Invoke(sim);
            sim.Advance(ticks);
            outputs[i] = sim.Output;
        }
        return outputs;
    }

    /// <summary>Schedules the calendar's stops on a simulator reset at <paramref name="elapsedSeconds"/> into the shift (what has passed is dropped).</summary>
    public static void ScheduleCalendar(LineSimulator sim, IReadOnlyList<PlannedWindow> stops, double elapsedSeconds)
    {
        ArgumentNullException.ThrowIfNull(sim);
        ArgumentNullException.ThrowIfNull(stops);
        foreach (var w in stops)
        {
            if (w.EndSeconds <= elapsedSeconds) continue;
            long start = sim.TicksFor(Math.Max(0, w.StartSeconds - elapsedSeconds)), end = sim.TicksFor(w.EndSeconds - elapsedSeconds);
            if (w.Station >= 0)
            {
                sim.ScheduleStop(w.Station, start, end);
                continue;
            }
            for (int s = 0; s < sim.Spec.Stations.Count; s++) sim.ScheduleStop(s, start, end);
        }
    }

    private ScenarioResult Compare(string kind, string target, double[] baseline, double[] scenario)
    {
        var lost = new double[baseline.Length];
        for (int i = 0; i < lost.Length; i++) lost[i] = baseline[i] - scenario[i];
        var l = MeanInterval(lost);
        var cost = new Estimate(l.Mean * _marginPerUnit, l.Low * _marginPerUnit, l.High * _marginPerUnit, l.Level);
        return new ScenarioResult(kind, target, MeanInterval(baseline), MeanInterval(scenario), l, cost, baseline.Length);
    }

    private Estimate MeanInterval(double[] x)
    {
        double mean = x.Average();
        double var = 0;
        foreach (var v in x) var += (v - mean) * (v - mean);
        var /= x.Length - 1;
        double t = MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, x.Length - 1, 1 - (1 - Confidence) / 2);
        double half = t * Math.Sqrt(var / x.Length);
        return new Estimate(mean, mean - half, mean + half, Confidence);
    }

    private static double Quantile(double[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(sorted.Length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
