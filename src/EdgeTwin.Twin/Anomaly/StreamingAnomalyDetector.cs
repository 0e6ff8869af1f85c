namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// Streaming anomaly detector for one series: one sample in, a score in [0, 1] out, no look-ahead, fixed memory
/// (allocated once in the constructor), no allocation per sample. Four raw components learned online from the series:
/// <list type="bullet">
/// <item>robust z of the residuals of level predictors at three time scales (spikes, level shifts, drift);</item>
/// <item>surprise of the quantised value given the previous quantised value (shape/context changes);</item>
/// <item>surprise of the quantised value given the hour of day (daily seasonality);</item>
/// <item>a flat line where the series normally moves (stuck sensors).</item>
/// </list>
/// The raw score goes through an anomaly-likelihood stage (short average of raw scores against their long-run
/// distribution, Gaussian tail, log scale) so that a series' usual noise level maps to low scores; after an alarm
/// repeats are suppressed for a while, since one alarm per episode is what operators (and NAB) want.
/// Not thread-safe: one instance per series, called from one thread.
/// </summary>
public sealed class StreamingAnomalyDetector
{
    private const int Hours = 24;
    private const double Tiny = 1e-12;

    private readonly AnomalyDetectorOptions _o;
    private readonly int _levels;

    // Contextual counts, scaled by a growing increment so that forgetting costs O(1) per sample.
    private readonly float[] _transition;
    private readonly float[] _transitionRow;
    private readonly float[] _hourly;
    private readonly float[] _hourlyRow;
    private double _increment = 1.0;
    private readonly double _growth;
    private readonly double _inverseLogNorm;

    private readonly double[] _shortRing;
    private int _shortPos;
    private int _shortCount;
    private double _shortSum;

    private long _n;
    private bool _hasPrevious;
    private double _previousRaw;
    private long _previousTs;
    private bool _hasChanged;
    private double _rateResolution;
    private long _lastPollTs;
    private double _lastRate = double.NaN;
    private double _lastIncrement;

    private double _fastLevel, _mediumLevel, _slowLevel;
    private double _fastScale, _mediumScale, _slowScale;
    private double _min, _max;
    private int _previousLevel;
    private double _previousX;
    private double _flatFraction;
    private int _flatRun;
    private double _likelihoodMean, _likelihoodVar;
    private double _instantMean, _instantVar;
    private long _likelihoodN;
    private int _suppress;
    private readonly double[] _contextRing;
    private double _contextSum;
    private double _contextMean, _contextVar;
    private double _lastContext;
    private double _gross;
    private readonly ContextNoveltyDetector? _novelty;
    private double _noveltyRaw;
    private double _noveltyAverage, _noveltyMean, _noveltyVar;
    private readonly ResonanceDetector? _resonance;
    private readonly ResonanceDetector? _earlyResonance;

    // The sampling interval, learned from the stamps (an average of the gaps, each clipped at four times the average so an
    // outage nudges it instead of resetting it), and what it adds to the thresholds (EventThreshold).
    private long _intervalLastTs = long.MinValue;
    private double _intervalMs;
    private int _intervalGaps;
    private double _thresholdRaise;

    // The smallest change between consecutive values seen (a quantised gauge's step), for the gross-outlier gate.
    private double _step;

    public StreamingAnomalyDetector(AnomalyDetectorOptions? options = null)
    {
        _o = options ?? AnomalyDetectorOptions.Default;
        _o.Validate();
        _levels = _o.Levels;
        _transition = new float[_levels * _levels];
        _transitionRow = new float[_levels];
        _hourly = new float[Hours * _levels];
        _hourlyRow = new float[Hours];
        _growth = 1.0 / (1.0 - _o.ContextForgetting);
        _inverseLogNorm = 1.0 / Math.Log(20.0 * _levels);
        _shortRing = new double[_o.ShortWindow];
        _contextRing = new double[_o.ShortWindow];
        if (_o.NoveltyWeight > 0 || _o.NoveltyDirect > 0 || _o.NoveltyLikelihood > 0)
        {
            _novelty = new ContextNoveltyDetector(_o.NoveltyLevels, _o.NoveltyOrders, _o.NoveltyCapacity);
        }

        if (_o.Algorithm != AnomalyAlgorithm.Residual)
        {
            int? replay = _o.ResonanceReplay ? _o.ResonanceReplayBlocks : null;
            _resonance = new ResonanceDetector(_o.ResonanceWindow, _o.ResonanceProbation, _o.ResonanceLevels, _o.ResonanceCapacity, _o.ResonanceStep, _o.ResonanceFreezeRange,
                rescale: _o.ResonanceRescale, replayBlocks: replay, replayWidening: _o.ResonanceReplayWidening);
            if (_o.ResonanceEarlyProbation > 0)
            {
                _earlyResonance = new ResonanceDetector(_o.ResonanceWindow, _o.ResonanceEarlyProbation, _o.ResonanceLevels, _o.ResonanceCapacity, _o.ResonanceEarlyStep, _o.ResonanceFreezeRange,
                    rescale: _o.ResonanceRescale, replayBlocks: replay, replayWidening: _o.ResonanceReplayWidening);
            }
        }
    }

    public AnomalyDetectorOptions Options => _o;

    /// <summary>Samples seen (after counter differencing).</summary>
    public long Count => _n;

    /// <summary>The last raw score (before the likelihood stage), for diagnostics.</summary>
    public double LastRaw { get; private set; }

    /// <summary>Approximate bytes held by this detector (bounded; independent of the series length).</summary>
    public int ApproximateBytes => 200 + (4 * (_transition.Length + _transitionRow.Length + _hourly.Length + _hourlyRow.Length)) + (8 * _shortRing.Length) + (_novelty?.ApproximateBytes ?? 0) + (_resonance?.ApproximateBytes ?? 0) + (_earlyResonance?.ApproximateBytes ?? 0);

    /// <summary>The resonance detector when <see cref="AnomalyDetectorOptions.Algorithm"/> uses it (diagnostics).</summary>
    public ResonanceDetector? Resonance => _resonance;

    /// <summary>
    /// The score at which the agent opens an anomaly episode for this series: <see cref="AnomalyDetectorOptions.Threshold"/>,
    /// raised for a series sampled faster than <see cref="AnomalyDetectorOptions.ThresholdInterval"/> (<see cref="Anomaly.EventThreshold"/>).
    /// The detector's own alarm suppression starts at the larger of this and <see cref="AnomalyDetectorOptions.AlarmScore"/> (raised
    /// the same way), so a score below the event threshold never silences what follows it.
    /// </summary>
    public double EventThreshold => Anomaly.EventThreshold.Apply(_o.Threshold, _thresholdRaise);

    /// <summary>The sampling interval learned from the series' stamps (zero before its second sample).</summary>
    public TimeSpan SampleInterval => TimeSpan.FromMilliseconds(_intervalMs);

    /// <summary>Scores one sample. Non-finite values score 0 and are not learned.</summary>
    public double Update(long timestampUnixMs, double value)
    {
        if (!double.IsFinite(value))
        {
            return 0.0;
        }

        LearnInterval(timestampUnixMs);

        var x = value;
        if (_o.IsCounter)
        {
            if (!_hasPrevious || value < _previousRaw || timestampUnixMs <= _previousTs)
            {
                // First reading, a wrap or a reset: no rate yet. Resume from here.
                _hasPrevious = true;
                _hasChanged = false;
                _lastRate = double.NaN;
                _previousRaw = value;
                _previousTs = _lastPollTs = timestampUnixMs;
                return 0.0;
            }

            x = CounterRate(value, timestampUnixMs);
            _lastPollTs = timestampUnixMs;
            if (double.IsNaN(x))
            {
                return 0.0; // no whole interval between two changes yet: no rate to learn from
            }
        }

        _n++;
        if (_resonance is not null)
        {
            var resonance = _resonance.Update(x);
            if (_earlyResonance is not null && !_resonance.Learned)
            {
                // Until the main stage has learned, the quickly learned one watches the series.
                resonance = _earlyResonance.Update(x);
            }

            if (_o.Algorithm == AnomalyAlgorithm.Resonance)
            {
                LastRaw = resonance;
                return resonance;
            }

            // The residual detector covers the resonance detector's learning period, then counts with its own weight.
            var residual = ResidualScore(timestampUnixMs, x) * (_resonance.Learned ? _o.ResonanceResidualWeight : 1.0);
            return Math.Max(_o.ResonanceWeight * resonance, residual);
        }

        return ResidualScore(timestampUnixMs, x);
    }

    /// <summary>
    /// The counter's rate over the time since it last changed; NaN when this poll measured nothing. A coarse counter (an
    /// outlet's energy in 0.1 kWh steps) stays unchanged for many polls and then steps by one unit: rates per poll of 0, 0,
    /// …, unit/interval made every step a spike and an anomaly, and holding the last rate between steps made the series so
    /// flat that the next step's timing jitter was one. So only a step is a measurement; a step overdue by twice its usual
    /// time is observed as the (falling) rate it would give now, so a counter that stopped still shows up. A counter that
    /// moves every poll is scored as before.
    /// </summary>
    private double CounterRate(double value, long timestampUnixMs)
    {
        var elapsedSeconds = (timestampUnixMs - _previousTs) / 1000.0;
        if (value > _previousRaw)
        {
            // The first change after a (re)start ends a partial interval: it only marks where whole intervals begin.
            var first = !_hasChanged;
            _hasChanged = true;
            _lastIncrement = value - _previousRaw;
            _lastRate = first ? double.NaN : _lastIncrement / elapsedSeconds;
            // How much one poll earlier or later would have moved this rate: the finest rate change it can show.
            var pollSeconds = (timestampUnixMs - _lastPollTs) / 1000.0;
            _rateResolution = first ? 0.0 : _lastRate * pollSeconds / (elapsedSeconds + pollSeconds);
            _previousRaw = value;
            _previousTs = timestampUnixMs;
            return _lastRate;
        }

        // Unchanged: no new measurement (_previousRaw/_previousTs stay at the last change), unless the step is overdue by
        // twice its usual time: then the rate it would give now (falling) is observed, so a counter that stopped is seen.
        var bound = _lastIncrement / elapsedSeconds;
        return bound < 0.5 * _lastRate ? bound : double.NaN;
    }

    private double ResidualScore(long timestampUnixMs, double x)
    {
        if (_n == 1)
        {
            _fastLevel = _mediumLevel = _slowLevel = x;
            _min = _max = x;
            _previousX = x;
            _previousLevel = 0;
        }

        var raw = RawScore(timestampUnixMs, x);
        LastRaw = raw;
        return Likelihood(raw);
    }

    private double RawScore(long ts, double x)
    {
        // Range for quantisation and scale floors: expanding, so a level shift widens it rather than saturating.
        if (x < _min)
        {
            _min = x;
        }

        if (x > _max)
        {
            _max = x;
        }

        var range = _max - _min;
        var floor = (1e-3 * range) + (1e-9 * Math.Abs(x)) + Tiny;

        // A counter's rate cannot be measured finer than one poll's timing: a residual that small is not a surprise
        // however long the rate stood still before it. (A gauge's step size as a floor was tried and lost; README.)
        var resolutionFloor = _o.IsCounter ? Math.Max(floor, _rateResolution) : floor;

        // The gross-outlier gate measures the same residuals against at least one quantisation step: a coarse gauge (0.1 A)
        // that stood still for minutes has a near-zero scale, and its next one-step change is not a gross outlier.
        var grossZ = _o.OutlierZ > 0 ? GrossZ(x, Math.Max(resolutionFloor, _step)) : 0.0;

        // 1. Residuals of level predictors at three time scales, each against its own mean absolute residual.
        var warm = Math.Max(_o.ScaleAlpha, 1.0 / _n);
        var z = Residual(x, ref _fastLevel, ref _fastScale, _o.FastAlpha, warm, resolutionFloor);
        z = Math.Max(z, Residual(x, ref _mediumLevel, ref _mediumScale, _o.MediumAlpha, warm, resolutionFloor));
        z = Math.Max(z, Residual(x, ref _slowLevel, ref _slowScale, _o.SlowAlpha, warm, resolutionFloor));
        // Sparse: ordinary noise (z below the floor) scores exactly 0, so a lone surprise stands out of the short average.
        var excess = Math.Max(z - _o.ResidualZFloor, 0.0);
        var residual = excess / (excess + _o.ResidualZHalf);

        // 2 and 3. Quantised context: surprise of this level after the previous level, and at this hour of day.
        var level = range <= Tiny ? 0 : Math.Clamp((int)((x - _min) / range * _levels), 0, _levels - 1);
        var hour = (int)(((ts / 3_600_000L) % Hours + Hours) % Hours);
        var transition = Surprise(_transition, _transitionRow, _previousLevel, level);
        var hourly = Surprise(_hourly, _hourlyRow, hour, level);
        Learn(_transition, _transitionRow, _previousLevel, level);
        Learn(_hourly, _hourlyRow, hour, level);
        _previousLevel = level;

        // 4. Flat line: a run of identical values where identical values are normally rare.
        var change = Math.Abs(x - _previousX);
        var flat = change <= floor * 1e-3;
        if (!flat && (change < _step || _step == 0))
        {
            _step = change; // the smallest change seen: a quantised gauge's resolution
        }

        _flatRun = flat ? _flatRun + 1 : 0;
        var flatScore = 0.0;
        if (_flatRun >= 5)
        {
            flatScore = Math.Clamp(1.0 - (_flatFraction / 0.1), 0.0, 1.0) * Math.Clamp((_flatRun - 5) / 10.0, 0.0, 1.0);
        }

        _flatFraction += Math.Max(_o.ContextForgetting, 1.0 / _n) * ((flat ? 1.0 : 0.0) - _flatFraction);
        _previousX = x;

        _noveltyRaw = _novelty?.Update(x) ?? 0.0;
        if (_o.SplitLikelihood)
        {
            _lastContext = ((_o.TransitionWeight * transition) + (_o.TimeOfDayWeight * hourly)) / Math.Max(_o.TransitionWeight + _o.TimeOfDayWeight, Tiny);
            _gross = _o.OutlierZ > 0 && grossZ >= _o.OutlierZ ? residual : 0.0;
            return Math.Max(residual, _o.FlatLineWeight * flatScore);
        }

        var weights = _o.ResidualWeight + _o.TransitionWeight + _o.TimeOfDayWeight + _o.NoveltyWeight;
        var mixed = ((_o.ResidualWeight * residual) + (_o.TransitionWeight * transition) + (_o.TimeOfDayWeight * hourly) + (_o.NoveltyWeight * _noveltyRaw)) / weights;
        // A gross outlier (z far beyond the series' usual residuals) scores its residual directly, bypassing the averaging.
        _gross = _o.OutlierZ > 0 && grossZ >= _o.OutlierZ ? residual : 0.0;

        return Math.Max(mixed, _o.FlatLineWeight * flatScore);
    }

    private double GrossZ(double x, double floor) => Math.Max(
        Math.Abs(x - _fastLevel) / Math.Max(_fastScale, floor),
        Math.Max(Math.Abs(x - _mediumLevel) / Math.Max(_mediumScale, floor), Math.Abs(x - _slowLevel) / Math.Max(_slowScale, floor)));

    private static double Residual(double x, ref double level, ref double scale, double alpha, double scaleAlpha, double floor)
    {
        var r = Math.Abs(x - level);
        var z = r / Math.Max(scale, floor);
        level += alpha * (x - level);
        scale += scaleAlpha * (r - scale);
        return z;
    }

    private double Surprise(float[] counts, float[] rows, int context, int level)
    {
        var rowEffective = rows[context] / _increment;
        var p = ((counts[(context * _levels) + level] / _increment) + 0.05) / (rowEffective + (0.05 * _levels));
        var surprise = Math.Clamp(-Math.Log(p) * _inverseLogNorm, 0.0, 1.0);
        return surprise * (rowEffective / (rowEffective + 10.0));
    }

    private void Learn(float[] counts, float[] rows, int context, int level)
    {
        counts[(context * _levels) + level] += (float)_increment;
        rows[context] += (float)_increment;
    }

    private void Forget()
    {
        _increment *= _growth;
        if (_increment > 1e20)
        {
            var s = (float)(1.0 / _increment);
            Scale(_transition, s);
            Scale(_transitionRow, s);
            Scale(_hourly, s);
            Scale(_hourlyRow, s);
            _increment = 1.0;
        }

        static void Scale(float[] a, float s)
        {
            for (var i = 0; i < a.Length; i++)
            {
                a[i] *= s;
            }
        }
    }

    private double Likelihood(double raw)
    {
        Forget();

        // Short moving average of raw scores.
        if (_shortCount == _shortRing.Length)
        {
            _shortSum -= _shortRing[_shortPos];
        }
        else
        {
            _shortCount++;
        }

        _shortRing[_shortPos] = raw;
        _shortSum += raw;
        var mc = 0.0;
        if (_o.SplitLikelihood)
        {
            if (_shortCount == _shortRing.Length && _likelihoodN >= _shortRing.Length)
            {
                _contextSum -= _contextRing[_shortPos];
            }

            _contextRing[_shortPos] = _lastContext;
            _contextSum += _lastContext;
            mc = _contextSum / _shortCount;
        }

        _shortPos = (_shortPos + 1) % _shortRing.Length;
        var m = _shortSum / _shortCount;

        // Compare with the long-run distribution of that average (and of the single raw score, so that a lone spike is not
        // averaged away), learned before this sample is added.
        var zl = Standardise(m, ref _likelihoodMean, ref _likelihoodVar);
        var zc = _o.SplitLikelihood ? Standardise(mc, ref _contextMean, ref _contextVar) : 0.0;
        var zn = 0.0;
        if (_o.NoveltyLikelihood > 0)
        {
            // Novel contexts more frequent than usual for this series: its own short average against its own long-run distribution.
            _noveltyAverage += (_noveltyRaw - _noveltyAverage) / _o.ShortWindow;
            zn = Standardise(_noveltyAverage, ref _noveltyMean, ref _noveltyVar);
        }

        var zi = _o.InstantWeight > 0 ? Standardise(raw, ref _instantMean, ref _instantVar) : 0.0;
        _likelihoodN++;

        if (_n <= _o.WarmUpSamples)
        {
            return 0.0;
        }

        var score = Math.Max(LogTail(zl), _gross);
        score = Math.Max(score, Math.Max(_o.NoveltyDirect * _noveltyRaw, _o.NoveltyLikelihood * LogTail(zn)));
        if (_o.SplitLikelihood)
        {
            score = Math.Max(score, _o.ContextLikelihoodWeight * LogTail(zc));
        }

        if (_o.InstantWeight > 0)
        {
            score = Math.Max(score, _o.InstantWeight * LogTail(zi));
        }
        if (_suppress > 0)
        {
            _suppress--;
            return score * _o.SuppressionFactor;
        }

        // Suppression starts where an event would: from a score between the alarm score and a higher event threshold it
        // silenced the rest of the episode, so the event never came (Regression_a_raised_threshold_…).
        if (score >= _o.AlarmScore && score >= Anomaly.EventThreshold.Apply(Math.Max(_o.AlarmScore, _o.Threshold), _thresholdRaise))
        {
            _suppress = _o.SuppressionSamples;
        }

        return score;
    }

    private void LearnInterval(long timestampUnixMs)
    {
        var previous = _intervalLastTs;
        if (timestampUnixMs == previous)
        {
            return; // a repeated stamp is not a gap
        }

        _intervalLastTs = timestampUnixMs;
        if (previous == long.MinValue || timestampUnixMs < previous)
        {
            return; // the first stamp, or the clock stepped back: the next gap is measured from here
        }

        double gap = timestampUnixMs - previous;
        _intervalMs = _intervalGaps == 0 ? gap : _intervalMs + (0.05 * (Math.Min(gap, 4 * _intervalMs) - _intervalMs));
        _intervalGaps = Math.Min(_intervalGaps + 1, int.MaxValue - 1);

        // The resonance score is not a tail probability: its thresholds stay as configured.
        if ((_intervalGaps <= 16 || (_intervalGaps & 15) == 0) && _o.Algorithm != AnomalyAlgorithm.Resonance)
        {
            _thresholdRaise = Anomaly.EventThreshold.Raise(_o.ThresholdInterval.TotalMilliseconds, _intervalMs);
        }
    }

    private double Standardise(double v, ref double mean, ref double variance)
    {
        var std = Math.Max(Math.Sqrt(variance), _o.MinLikelihoodStd);
        var z = _likelihoodN == 0 ? 0.0 : (v - mean) / std;
        var a = Math.Max(_o.LongAlpha, 1.0 / (_likelihoodN + 1));
        var d = v - mean;
        mean += a * d;
        variance = (1 - a) * (variance + (a * d * d));
        return z;
    }

    /// <summary>Gaussian upper tail of z on a log scale: 0 for z ≤ 0 (an average at or below its usual level), 0.5 at a tail of 1e-5, 1 at 1e-10.</summary>
    private static double LogTail(double z)
    {
        if (z <= 0)
        {
            return 0.0;
        }

        var tail = 0.5 * Erfc(z / Math.Sqrt(2.0));
        return Math.Clamp(Math.Log(tail + 1e-10) / Math.Log(1e-10), 0.0, 1.0);
    }

    /// <summary>Complementary error function (Numerical Recipes erfcc, |error| &lt; 1.2e-7): cheap and allocation-free.</summary>
    internal static double Erfc(double x)
    {
        var z = Math.Abs(x);
        var t = 1.0 / (1.0 + (0.5 * z));
        var poly = -1.26551223 + (t * (1.00002368 + (t * (0.37409196 + (t * (0.09678418 + (t * (-0.18628806
            + (t * (0.27886807 + (t * (-1.13520398 + (t * (1.48851587 + (t * (-0.82215223 + (t * 0.17087277)))))))))))))))));
        var r = t * Math.Exp(-(z * z) + poly);
        return x >= 0 ? r : 2.0 - r;
    }
}
