namespace EdgeTwin.Twin.Models.Maintenance;

/// <summary>What <see cref="MachineHealthMonitor"/> keeps of one machine over a restart (<paramref name="Open"/>: its open
/// prediction; files written before it had only <paramref name="Raised"/> and <paramref name="LowSince"/>).</summary>
public sealed record MachineHealthState(BearingWindowState Window, double LastRul, double LastProbability, bool Raised, DateTimeOffset? LowSince, RaisedPrediction? Open = null);

/// <summary>
/// Machine health for a set of machines: live samples in, maintenance predictions out. Each machine's samples are
/// averaged into the model's intervals (<see cref="BearingFeatureWindow"/>); when an interval closes the RUL model
/// runs on the machine's window and <see cref="MaintenancePredictor"/> turns RUL and its uncertainty into a failure
/// probability and, past the threshold, one prediction. Used as is by the agent's maintenance stage and by
/// <c>edgetwin bench bearing</c>, so the bench measures the code the gateway runs.
/// Not thread-safe: one caller at a time. <see cref="Observe"/> allocates only when it raises a prediction.
/// </summary>
public sealed class MachineHealthMonitor : IDisposable
{
    /// <summary>Interval used until a model says otherwise.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMinutes(30);

    private readonly string[] _machines;
    private readonly Dictionary<string, int> _index;
    private readonly MachineHealthRunner _runner;
    private readonly MaintenancePredictor _predictor;
    private readonly int _capacity;
    private readonly double[] _lastRul;
    private readonly double[] _lastProbability;
    private BearingFeatureWindow[] _windows;
    private TimeSpan _interval;

    public MachineHealthMonitor(IReadOnlyList<string> machines, MachineHealthRunner runner, MaintenancePredictor predictor, int windowCapacity = 256)
    {
        ArgumentNullException.ThrowIfNull(machines);
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(predictor);
        _machines = [.. machines];
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < _machines.Length; i++)
        {
            _index[_machines[i]] = i;
        }

        _runner = runner;
        _predictor = predictor;
        _capacity = windowCapacity;
        _lastRul = new double[_machines.Length];
        _lastProbability = new double[_machines.Length];
        Array.Fill(_lastRul, double.NaN);
        Array.Fill(_lastProbability, double.NaN);
        _interval = runner.Refresh() && runner.Input is { } input ? input.Interval : DefaultInterval;
        _windows = NewWindows(_interval, runner.Input?.MinSamples ?? 3);
    }

    public IReadOnlyList<string> Machines => _machines;

    /// <summary>Index of a machine, or -1.</summary>
    public int IndexOf(string machine) => _index.GetValueOrDefault(machine, -1);

    /// <summary>Model inferences run.</summary>
    public long Inferences { get; private set; }

    /// <summary>Intervals closed while the model was unavailable.</summary>
    public long Unavailable { get; private set; }

    /// <summary>
    /// Set when the model in use cannot answer the configured horizon (its RUL is capped below it): the longest horizon it
    /// can answer, in RUL units (hours); null while it can. The model still runs, but nothing is raised, updated or withdrawn.
    /// </summary>
    public double? HorizonBeyondModel { get; private set; }

    public double LastRul(int machine) => _lastRul[machine];

    /// <summary>The signal of <paramref name="machine"/> that read one value (<paramref name="value"/>) for the whole of its last closed interval, which was left out; null when that interval counted.</summary>
    public BearingFeature? Frozen(int machine, out double value)
    {
        value = _windows[machine].FrozenValue;
        return _windows[machine].FrozenFeature;
    }

    /// <summary>Intervals of all machines left out because a signal was frozen.</summary>
    public long FrozenIntervals
    {
        get
        {
            var n = 0L;
            foreach (var w in _windows)
            {
                n += w.FrozenIntervals;
            }

            return n;
        }
    }

    public double LastProbability(int machine) => _lastProbability[machine];

    /// <summary>Intervals the model in use reads (its window), or null before it first served.</summary>
    public int? ModelWindow => _runner.Input?.Window;

    /// <summary>Averaging interval in use (the current model's).</summary>
    public TimeSpan Interval => _interval;

    /// <summary>Adds one sample; returns the prediction it raised, if any.</summary>
    public MaintenancePrediction? Observe(int machine, BearingFeature feature, double value, long timestampMs)
    {
        var window = _windows[machine];
        if (!window.Add(feature, value, timestampMs))
        {
            return null;
        }

        if (!_runner.TryPredict(window, out var rul) || _runner.Uncertainty is not { } uncertainty || _runner.Entry is not { } entry)
        {
            Unavailable++;
            return null;
        }

        Inferences++;
        if (_runner.Input!.Interval != _interval)
        {
            // A reloaded model with another interval: the averages so far do not fit it; start over.
            _interval = _runner.Input.Interval;
            _windows = NewWindows(_interval, _runner.Input.MinSamples);
            return null;
        }

        // The model was trained on a target capped at its cap: more is extrapolation (a frozen transmitter read 166 h
        // from the 120 h model), not a longer life.
        if (entry.Outputs[0].Cap is { } cap)
        {
            rul = (float)Math.Min(rul, cap);
            var longest = MaintenancePredictor.LongestHorizon(cap, uncertainty);
            if (_predictor.HorizonUnits > longest)
            {
                HorizonBeyondModel = longest;
                _lastRul[machine] = rul;
                _lastProbability[machine] = double.NaN;
                return null;
            }
        }

        HorizonBeyondModel = null;
        var now = DateTimeOffset.FromUnixTimeMilliseconds(window.LastIntervalEndMs);
        _lastRul[machine] = rul;
        _lastProbability[machine] = _predictor.FailureProbability(rul, uncertainty);
        var modelWindow = _runner.Input.Window;
        return _predictor.Evaluate(_machines[machine], rul, uncertainty, entry, now, _interval * Math.Min(window.Count, modelWindow), _interval * modelWindow);
    }

    /// <summary>Intervals closed so far (with or without a model to run): what changes the monitor's state worth keeping.</summary>
    public long IntervalsClosed => Inferences + Unavailable;

    /// <summary>A machine's history, last estimates and raised prediction, to keep over a restart.</summary>
    public MachineHealthState Export(int machine)
    {
        var open = _predictor.OpenPrediction(_machines[machine]);
        return new(_windows[machine].Export(), _lastRul[machine], _lastProbability[machine], open is not null, open?.LowSince, open);
    }

    /// <summary>Takes back what <see cref="Export"/> gave; throws <see cref="InvalidDataException"/> when the history does not fit the model in use.</summary>
    public void Import(int machine, MachineHealthState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _windows[machine].Import(state.Window);
        _lastRul[machine] = state.LastRul;
        _lastProbability[machine] = state.LastProbability;
        if (state.Open is not null)
        {
            _predictor.RestoreRaised(_machines[machine], state.Open);
        }
        else if (state.Raised)
        {
            // Kept by an older agent: no id or estimate kept; the machine id stands for the id, and only a critical
            // probability updates it.
            _predictor.RestoreRaised(_machines[machine], new RaisedPrediction(_machines[machine], state.LowSince, DateTimeOffset.MinValue, state.LastProbability));
        }
    }

    /// <summary>
    /// The machine was repaired (its bearing replaced, reported by the operator): its history is forgotten — the model
    /// read the worn bearing's day of intervals for a day after the repair — and its open prediction, returned, is closed.
    /// </summary>
    public RaisedPrediction? Repaired(int machine)
    {
        Reset(machine);
        _lastRul[machine] = double.NaN;
        _lastProbability[machine] = double.NaN;
        return _predictor.Repaired(_machines[machine]);
    }

    /// <summary>Forgets a machine's history (its bearing was replaced).</summary>
    public void Reset(int machine) => _windows[machine].Clear();

    private BearingFeatureWindow[] NewWindows(TimeSpan interval, int minSamples)
    {
        var w = new BearingFeatureWindow[_machines.Length];
        for (var i = 0; i < w.Length; i++)
        {
            w[i] = new BearingFeatureWindow(interval, _capacity, minSamples);
        }

        return w;
    }

    public void Dispose() => _runner.Dispose();
}
