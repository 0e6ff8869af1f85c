namespace EdgeTwin.Twin.Line.Quality;

/// <summary>
/// The live quality model of one station (<see cref="LineTwinStage"/>): the latest value of each process input, and
/// test-then-train on the parts the counters report. Each part counted is a run scored with the inputs as last read
/// (<see cref="OnlineLogisticModel.Observe"/>, calibrated fail probability kept), then learned with the label its
/// counter gives (good → pass, reject → fail). With an inspection delay of N parts (an end-of-line test, a lab), the
/// result a counter reports belongs to the part made N parts before: the part just made is scored with the present
/// inputs, and the label is learned with the inputs kept for the part it belongs to (a ring of N input vectors) — the
/// same test-then-train order as <c>edgetwin bench secom --label-delay N</c>. Approximation: parts counted in one poll
/// interval share the process values of the last reading, and the counters move once per part inspected.
/// The predicted rate is over the last <c>window</c> parts scored, the observed one over the last <c>window</c> results
/// (ring buffers); the long-run observed rate counts every result since start. No allocation per part; state bounded by
/// the window and the delay.
/// </summary>
public sealed class StationQuality
{
    /// <summary>At most this many parts are scored per counter step (a counter jump after an outage is not replayed part by part).</summary>
    public const int MaxPartsPerStep = 1000;

    /// <summary>Alert rule: predicted window rate above this multiple of the long-run observed rate …</summary>
    public const double AlertRatio = 2.0;

    /// <summary>… and above this absolute rate.</summary>
    public const double AlertFloor = 0.05;

    /// <summary>Re-armed once the predicted rate falls below this multiple of the long-run rate (or the floor).</summary>
    public const double RearmRatio = 1.5;

    /// <summary>Most inputs × delay parts kept for delayed labels (8 MB of doubles).</summary>
    public const int MaxDelayedValues = 1_000_000;

    private readonly OnlineLogisticModel _model;
    private readonly double[] _x;
    private readonly long[] _xMs; // when each input was last read; long.MaxValue: set without a time (never stale)
    private readonly double[] _delayed; // inspection delay × inputs, one row per part awaiting its result
    private readonly int _delay;
    private int _delayedParts, _delayedNext;
    private readonly double[] _p;
    private readonly bool[] _rejected;
    private int _n, _next;
    private double _sumP;
    private int _sumRejected;
    private bool _alerted;
    // Exponentially weighted lag-window covariance and variance of the scored probabilities about the long-run rate:
    // how long the present rate persists (RateAhead).
    private double _lagCov, _lagVar;
    private long _lagPairs;

    public StationQuality(OnlineLogisticModel model, int inputs, int window, int inspectionDelay = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(inspectionDelay);
        if (inputs != model.InputWidth) throw new ArgumentException($"the model takes {model.InputWidth} inputs, {inputs} given", nameof(inputs));
        if ((long)inspectionDelay * inputs > MaxDelayedValues) throw new ArgumentOutOfRangeException(nameof(inspectionDelay), $"{inspectionDelay} parts × {inputs} inputs exceeds {MaxDelayedValues} kept values");
        _model = model;
        _delay = inspectionDelay;
        _delayed = new double[inspectionDelay * inputs];
        _x = new double[inputs];
        Array.Fill(_x, double.NaN); // not read yet: the model fills a missing value with its mean
        _xMs = new long[inputs];
        Array.Fill(_xMs, long.MaxValue);
        _p = new double[window];
        _rejected = new bool[window];
    }

    public OnlineLogisticModel Model => _model;

    /// <summary>Inspection results since start (each scored part, and with a delay, learned once its result came).</summary>
    public long TotalParts { get; private set; }

    /// <summary>Parts between a part being made and its result on the counters.</summary>
    public int InspectionDelay => _delay;

    /// <summary>Of those, rejects.</summary>
    public long TotalRejects { get; private set; }

    /// <summary>Parts in the window (up to its size).</summary>
    public int WindowParts => _n;

    public int Window => _p.Length;

    /// <summary>Mean calibrated fail probability over the window (NaN before the first part).</summary>
    public double PredictedRate => _n == 0 ? double.NaN : Math.Clamp(_sumP / _n, 0, 1);

    /// <summary>Weight of each new pair in the persistence estimate (about the last 2,000 parts).</summary>
    public const double PersistenceAlpha = 1.0 / 2000;

    /// <summary>
    /// Parts over which the present rate fades toward the long-run one (an AR(1) correlation length, from the scored
    /// probabilities' autocorrelation at the window's lag, −window / ln ρ); the window itself until two windows were
    /// scored or when the rate does not vary.
    /// </summary>
    public double PersistenceParts
    {
        get
        {
            if (_lagPairs < _p.Length || _lagVar <= 1e-12) return _p.Length;
            var rho = Math.Clamp(_lagCov / _lagVar, 1e-3, 0.999);
            return -_p.Length / Math.Log(rho);
        }
    }

    /// <summary>
    /// The expected reject rate of the next <paramref name="parts"/> parts: the window's predicted rate now, fading toward
    /// the long-run rate the model tracks (<see cref="OnlineLogisticModel.FailRate"/>) over <see cref="PersistenceParts"/>,
    /// averaged over those parts. Over a few parts it is the window's; over a shift of tool cycles the long-run one — the
    /// window at a worn tool's end of life no longer stood for every part to the end of the shift (NaN before the first part).
    /// </summary>
    public double RateAhead(double parts)
    {
        var now = PredictedRate;
        if (double.IsNaN(now) || parts <= 0) return now;
        var longRun = _model.FailRate;
        var l = PersistenceParts;
        return Math.Clamp(longRun + ((now - longRun) * l * (1 - Math.Exp(-parts / l)) / parts), 0, 1);
    }

    /// <summary>Share of rejects over the window, from the counters (NaN before the first part).</summary>
    public double ObservedRate => _n == 0 ? double.NaN : (double)_sumRejected / _n;

    /// <summary>Share of rejects over every part since start (NaN before the first part).</summary>
    public double LongRunRate => TotalParts == 0 ? double.NaN : (double)TotalRejects / TotalParts;

    /// <summary>
    /// An input older than this when parts are counted is missing (the model fills it with its mean): the hold of the
    /// line's books. Regression: a process value whose sensor went silent scored (and taught the model) every later part
    /// with its last reading, for hours.
    /// </summary>
    public const long InputHoldMs = (long)(Oee.OeeTracker.DefaultStaleAfterSeconds * 1000);

    /// <summary>Sets an input without a time (it never goes stale).</summary>
    public void SetInput(int index, double value)
    {
        _x[index] = value;
        _xMs[index] = long.MaxValue;
    }

    /// <summary>Sets an input read at <paramref name="timestampMs"/>; it is missing once older than <see cref="InputHoldMs"/>.</summary>
    public void SetInput(int index, double value, long timestampMs)
    {
        _x[index] = value;
        _xMs[index] = timestampMs;
    }

    /// <summary>The input's value is not known (an out-of-range, stuck or failed reading): missing until read again.</summary>
    public void SetMissing(int index)
    {
        _x[index] = double.NaN;
        _xMs[index] = long.MaxValue;
    }

    /// <summary>Whether input <paramref name="index"/> is missing at <paramref name="nowMs"/> (never read, a bad reading, or older than the hold).</summary>
    public bool InputMissing(int index, long nowMs) =>
        double.IsNaN(_x[index]) || (_xMs[index] != long.MaxValue && nowMs - _xMs[index] > InputHoldMs);

    /// <summary>Test then train on <paramref name="parts"/> parts that the counters say were good or rejected.</summary>
    /// <param name="nowMs">When the counter moved: inputs older than <see cref="InputHoldMs"/> then are missing (no time: not checked).</param>
    public void OnParts(long parts, bool rejected, long nowMs = long.MinValue)
    {
        if (parts <= 0) return;
        if (nowMs != long.MinValue)
        {
            for (int i = 0; i < _x.Length; i++)
                if (_xMs[i] != long.MaxValue && nowMs - _xMs[i] > InputHoldMs) SetMissing(i);
        }
        long n = Math.Min(parts, MaxPartsPerStep);
        for (long k = 0; k < n; k++)
        {
            double p = _model.Calibrated(_model.Observe(_x));
            LearnResult(rejected);
            if (_n == _p.Length)
            {
                // The part scored a window ago against this one, both about the long-run rate.
                double m = _model.FailRate, a = p - m, b = _p[_next] - m;
                _lagCov += PersistenceAlpha * ((a * b) - _lagCov);
                _lagVar += PersistenceAlpha * ((0.5 * ((a * a) + (b * b))) - _lagVar);
                _lagPairs++;
                _sumP -= _p[_next];
                if (_rejected[_next]) _sumRejected--;
            }
            else
            {
                _n++;
            }
            _p[_next] = p;
            _rejected[_next] = rejected;
            _sumP += p;
            if (rejected) _sumRejected++;
            _next = (_next + 1) % _p.Length;
            if (_next == 0) Resum(); // once per lap, wherever a step ends: no drift of the running sum
            TotalParts++;
            if (rejected) TotalRejects++;
        }
    }

    // The result belongs to the part made _delay parts ago: learned with the inputs it was made with, then this part's
    // inputs take its slot. Results of parts made before the model saw them (the first _delay) are counted, not learned.
    private void LearnResult(bool rejected)
    {
        if (_delay == 0)
        {
            _model.Learn(_x, rejected);
            return;
        }

        var row = _delayed.AsSpan(_delayedNext * _x.Length, _x.Length);
        if (_delayedParts == _delay)
        {
            _model.Learn(row, rejected);
        }
        else
        {
            _delayedParts++;
        }

        _x.CopyTo(row);
        _delayedNext = (_delayedNext + 1) % _delay;
    }

    private void Resum()
    {
        double s = 0;
        for (int i = 0; i < _n; i++) s += _p[i];
        _sumP = s;
    }

    /// <summary>
    /// True once when the predicted rate over a full window exceeds <see cref="AlertRatio"/> × the long-run observed
    /// rate and <see cref="AlertFloor"/> (with at least two windows of history); false again until the predicted
    /// rate has fallen below <see cref="RearmRatio"/> × the long-run rate or the floor.
    /// </summary>
    /// <summary>Whether a warning was given and the predicted rate has not fallen back yet (see <see cref="CheckAlert"/>).</summary>
    public bool Alerted => _alerted;

    public bool CheckAlert()
    {
        if (_n < _p.Length || TotalParts < 2L * _p.Length) return false;
        double predicted = PredictedRate, longRun = LongRunRate;
        if (_alerted)
        {
            if (predicted < RearmRatio * longRun || predicted < AlertFloor) _alerted = false;
            return false;
        }
        if (predicted > AlertRatio * longRun && predicted > AlertFloor)
        {
            _alerted = true;
            return true;
        }
        return false;
    }
}
