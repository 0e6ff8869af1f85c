namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// Adaptive-resonance anomaly detector for one series, in the spirit of ARTime (Mark Hampton's NAB entry; our own code):
/// the series is down-sampled into blocks (each block keeps its extreme if it is a spike, else its mean), normalised to the
/// range seen so far, quantised, snapped to the running median when close to it, and the last <c>window</c> block values
/// plus their Haar wavelet transform form a feature vector. A fuzzy-ART network with complement coding and two vigilance
/// levels (distributed-vigilance fuzzy ART) clusters these vectors online: a match above the upper vigilance learns
/// (the category box grows), a match between the two vigilances adds a category of a known kind, and a match below the
/// lower vigilance is a pattern never seen before: a new kind of category, the anomaly candidate. Both vigilances adapt
/// online to the similarities the series produces. The score is how far below the vigilances the best match fell
/// (and how far the present level lies outside the best category), emitted only when a new kind of category is created
/// and not masked by a recent one.
/// <para>Unlike ARTime it knows neither the series' full range nor its length in advance (no look-ahead): normalisation uses the
/// running range, and the learning period (<c>probation</c> samples) is fixed. At the end of that period the vigilance is
/// set once from the period's own features (an O(T²) batch over T ≈ 100 stored feature vectors, done in place).</para>
/// <para>Memory is fixed and allocated in the constructor: at most <c>capacity</c> categories; when they are all used, a new
/// category replaces the one matched least recently. Not thread-safe: one instance per series.</para>
/// </summary>
public sealed class ResonanceDetector
{
    private const int WindowsPerProbation = 13;
    private const double Chomp = 0.075;
    private const double SpikeFraction = 0.1;
    private const double InitialRho = 0.80;
    private const double UpperCap = 0.97;
    private const double LowerRise = 0.19;
    private const double MaxDrop = 0.37;

    private readonly int _window;
    private readonly int _dim;
    private readonly int _dimc;
    private readonly int _step;
    private readonly int _trend;
    private readonly int _mask;
    private readonly int _levels;
    private readonly int _capacity;
    private readonly bool _freezeRange;
    private readonly bool _knownRange;
    private readonly bool _rescale;
    private double _codedMin, _codedMax;

    // Replay (optional): the last blocks' representatives, re-run from scratch under the new range when it has widened enough.
    private readonly double[]? _replayRing;
    private readonly double _replayWidening;
    private int _replayPos;
    private int _replayCount;
    private double _replayedRange;
    private long _replays;

    // Blocks before the one the learned state starts from (0 unless a replay found the ring shorter than the history).
    private long _origin;

    // Down-sampling block.
    private int _blockCount;
    private double _blockSum, _blockMin, _blockMax;
    private double _movingAverage;
    private double _min, _max;
    private long _n;

    // Median of the quantised levels (histogram over all blocks so far).
    private readonly int[] _levelCounts;
    private readonly int[] _levelScratch;
    private int _levelTotal;

    private readonly double[] _recent;
    private readonly double[] _scratch;
    private readonly double[] _features;
    private readonly float[] _input;

    // Categories: complement-coded weight boxes, their L1 norms and the block index of their last match.
    private readonly float[] _weights;
    private readonly double[] _norms;
    private readonly long[] _lastUsed;
    private int _categories;

    // Features of the learning period, replayed once at its end.
    private readonly double[] _stored;
    private readonly double[] _simSums;
    private readonly int[] _order;

    // Vigilance adaptation.
    private double _rhoLower, _rhoUpper;
    private double _matchSum;
    private long _matchCount;
    private readonly double[] _simRing;
    private int _simPos;
    private readonly double[] _diffRing;
    private int _diffPos;
    private double _anomalySimSum;
    private int _anomalySimCount;
    private double _lastAnomalySim;

    private long _block;
    private long _lastAnomalyBlock;
    private long _lastRhoUpdate;
    private bool _maskAfterCategory;
    private int _sinceNewCategory;

    // Result of the last match.
    private double _bestMatch, _bestEnergy;

    /// <param name="window">Blocks per feature window (a power of two, 4..32).</param>
    /// <param name="probation">Samples of the learning period (no score) before the vigilance is set.</param>
    /// <param name="levels">Quantisation levels of the normalised block values.</param>
    /// <param name="capacity">Most categories kept.</param>
    /// <param name="step">Samples per block; 0 derives it from the learning period (about 13 windows fill it).</param>
    /// <param name="freezeRange">Keep the learning period's range (widened by a tenth each side) afterwards, clamping values outside it, instead of widening it with every new extreme.</param>
    /// <param name="knownRange">
    /// The series' whole range given in advance, as NAB hands it to ARTime (look-ahead: only for offline comparison with
    /// ARTime's protocol; the agent and <c>bench nab</c> never pass it).
    /// </param>
    /// <param name="rescale">When the range widens, re-express what was learned in the new range (an affine approximation).</param>
    /// <param name="replayBlocks">
    /// Null: no replay. Else the length of a ring of the last blocks' representatives (0 or less than the learning period's
    /// blocks: the learning period's blocks); when the range has widened by more than <paramref name="replayWidening"/> since
    /// the last replay, the learned state is rebuilt from scratch by re-running those blocks under the new range.
    /// </param>
    /// <param name="replayWidening">Relative growth of the range since the last replay that triggers the next one (0: every widening).</param>
    public ResonanceDetector(int window = 8, int probation = 600, int levels = 80, int capacity = 256, int step = 7, bool freezeRange = false, (double Min, double Max)? knownRange = null, bool rescale = true,
        int? replayBlocks = null, double replayWidening = 0.10)
    {
        if (window is < 4 or > 32 || (window & (window - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, "must be a power of two in 4..32");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(probation, 2 * window);
        ArgumentOutOfRangeException.ThrowIfLessThan(levels, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfNegative(replayWidening);
        _window = window;
        _freezeRange = freezeRange;
        _rescale = rescale;
        if (knownRange is { } r)
        {
            _knownRange = true;
            (_min, _max) = r;
        }
        _dim = 2 * window;
        _dimc = 2 * _dim;
        _step = step > 0 ? step : Math.Max(1, probation / (window * WindowsPerProbation));
        _trend = Math.Max(2 * window, probation / _step);
        _mask = window * 3 / 2;
        _levels = levels;
        _capacity = capacity;
        _levelCounts = new int[levels + 1];
        _levelScratch = new int[levels + 1];
        _recent = new double[window];
        _scratch = new double[window];
        _features = new double[_dim];
        _input = new float[_dimc];
        _weights = new float[capacity * _dimc];
        _norms = new double[capacity];
        _lastUsed = new long[capacity];
        _stored = new double[_trend * _dim];
        _simSums = new double[_trend];
        _order = new int[_trend];
        _simRing = new double[(_trend / 2) + 1];
        _diffRing = new double[_trend + 1];
        Array.Fill(_simRing, 1.0);
        if (replayBlocks is { } ring)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(ring, nameof(replayBlocks));
            _replayRing = new double[Math.Max(ring, _trend)];
            _replayWidening = replayWidening;
        }
    }

    /// <summary>Samples per block.</summary>
    public int Step => _step;

    /// <summary>True once the learning period is over (scores may be non-zero).</summary>
    public bool Learned => _block > _trend;

    /// <summary>Categories in use (at most <see cref="Capacity"/>).</summary>
    public int Categories => _categories;

    public int Capacity => _capacity;

    /// <summary>The vigilances: a match below the lower one is a new kind of pattern; above the upper one it is learned.</summary>
    public double LowerVigilance => _rhoLower;
    public double UpperVigilance => _rhoUpper;

    /// <summary>Blocks the replay ring holds (0 when replay is off).</summary>
    public int ReplayBlocks => _replayRing?.Length ?? 0;

    /// <summary>Replays so far (diagnostics).</summary>
    public long Replays => _replays;

    /// <summary>Approximate bytes held (bounded; set by the constructor's arguments).</summary>
    public int ApproximateBytes => 300 + (4 * _weights.Length) + (8 * (_norms.Length + _lastUsed.Length + _stored.Length + _simSums.Length
        + _simRing.Length + _diffRing.Length + _recent.Length + _scratch.Length + _features.Length + (_replayRing?.Length ?? 0))) + (4 * (_input.Length + _order.Length + _levelCounts.Length));

    /// <summary>Scores one sample. Non-zero only at the end of a block that starts a new kind of category; non-finite values score 0 and are not learned.</summary>
    public double Update(double value)
    {
        if (!double.IsFinite(value))
        {
            return 0.0;
        }

        _n++;
        var rangeFixed = _knownRange || (_freezeRange && _block >= _trend);
        if (_n == 1 && !rangeFixed)
        {
            _min = _max = value;
        }
        else if (!rangeFixed)
        {
            _min = Math.Min(_min, value);
            _max = Math.Max(_max, value);
        }

        if (_blockCount == 0)
        {
            _blockSum = 0;
            _blockMin = _blockMax = value;
        }
        else
        {
            _blockMin = Math.Min(_blockMin, value);
            _blockMax = Math.Max(_blockMax, value);
        }

        _blockSum += value;
        if (++_blockCount < _step)
        {
            return 0.0;
        }

        _blockCount = 0;
        _block++;
        return Block(_blockSum / _step);
    }

    private double Block(double mean)
    {
        // A block is represented by its extreme on the side away from the recent average when that extreme is a spike.
        _movingAverage = _block == 1 ? mean : (_movingAverage + mean) / 2;
        var ds = Math.Abs(_blockMax - _movingAverage) < Math.Abs(_blockMin - _movingAverage) ? _blockMin : _blockMax;
        if (Math.Abs(ds - mean) < SpikeFraction * Math.Abs(mean))
        {
            ds = mean;
        }

        var range = _max - _min;
        if (_replayRing is not null && range > 0 && range > _replayedRange * (1.0 + _replayWidening))
        {
            Replay();
        }
        else if (_rescale && range > 0)
        {
            Rescale();
        }

        var score = Process(ds, _block - _origin, live: true);
        if (_replayRing is not null)
        {
            _replayRing[_replayPos] = ds;
            _replayPos = (_replayPos + 1) % _replayRing.Length;
            _replayCount = Math.Min(_replayCount + 1, _replayRing.Length);
        }

        return score;
    }

    /// <summary>
    /// The range has widened by more than the replay threshold: forget everything learned and re-run the stored blocks (the
    /// ring, oldest first) through <see cref="Process"/> under the present range, as a detector that had known this range
    /// from the ring's first block would have done (its learning period and vigilance batch included), without scores.
    /// When the ring holds the whole history the state is exactly that of a detector given this range in advance; when it
    /// is shorter, the ring's first block stands for the start of the series (what was learned before it is forgotten).
    /// No allocation: every array is reset in place.
    /// </summary>
    private void Replay()
    {
        _replays++;
        _replayedRange = _max - _min;
        (_codedMin, _codedMax) = (_min, _max);
        _categories = 0;
        Array.Clear(_levelCounts);
        _levelTotal = 0;
        Array.Clear(_recent);
        Array.Clear(_stored);
        _rhoLower = _rhoUpper = 0;
        _matchSum = 0;
        _matchCount = 0;
        Array.Fill(_simRing, 1.0);
        _simPos = 0;
        Array.Clear(_diffRing);
        _diffPos = 0;
        _anomalySimSum = 0;
        _anomalySimCount = 0;
        _lastAnomalySim = 0;
        _lastAnomalyBlock = 0;
        _lastRhoUpdate = 0;
        _maskAfterCategory = false;
        _sinceNewCategory = 0;
        _bestMatch = _bestEnergy = 0;

        var ring = _replayRing!;
        var count = _replayCount;
        var start = count < ring.Length ? 0 : _replayPos;
        for (var k = 0; k < count; k++)
        {
            Process(ring[(start + k) % ring.Length], k + 1, live: false);
        }

        // The present block follows the replayed ones.
        _origin = _block - (count + 1);
    }

    /// <summary>Quantises, features and scores one block representative <paramref name="ds"/> as block <paramref name="i"/> of the learned state (<paramref name="live"/>: not a replayed one).</summary>
    private double Process(double ds, long i, bool live)
    {
        var range = _max - _min;
        var x = range > 0 ? (ds - _min) / range : 0.0;
        var level = Math.Clamp((int)Math.Round(x * _levels), 0, _levels);
        x = (double)level / _levels;
        _levelCounts[level]++;
        _levelTotal++;
        var median = (double)MedianLevel() / _levels;
        if (Math.Abs(x - median) < Chomp)
        {
            x = median;
        }

        Array.Copy(_recent, 1, _recent, 0, _window - 1);
        _recent[_window - 1] = x;
        Array.Clear(_features);
        if (i >= _window)
        {
            Features();
        }

        if (i <= _trend)
        {
            _features.AsSpan().CopyTo(_stored.AsSpan((int)(i - 1) * _dim, _dim));
            if (i == _trend)
            {
                if (live && _freezeRange && !_knownRange)
                {
                    var margin = 0.1 * (_max - _min);
                    _min -= margin;
                    _max += margin;
                }

                EndOfProbation();
            }

            return 0.0;
        }

        return Detect(_features, i);
    }

    /// <summary>
    /// The range widened since the last block: re-express every stored position (window, category boxes, learning-period
    /// features, level histogram) in the new range, so that what was learned stays comparable with what comes.
    /// O(categories × window), only on blocks where the range changed.
    /// </summary>
    private void Rescale()
    {
        var oldRange = _codedMax - _codedMin;
        var newRange = _max - _min;
        if (oldRange <= 0 || (_codedMin == _min && _codedMax == _max))
        {
            (_codedMin, _codedMax) = (_min, _max);
            return;
        }

        var a = oldRange / newRange;
        var b = (_codedMin - _min) / newRange;
        (_codedMin, _codedMax) = (_min, _max);
        for (var k = 0; k < _window; k++)
        {
            _recent[k] = (a * _recent[k]) + b;
        }

        for (var j = 0; j < _categories; j++)
        {
            var w = _weights.AsSpan(j * _dimc, _dimc);
            for (var k = _window; k < _dim; k++)
            {
                var lower = (a * w[k]) + b;
                var upper = (a * (1.0 - w[_dim + k])) + b;
                w[k] = (float)lower;
                w[_dim + k] = (float)(1.0 - upper);
            }

            var norm = 0.0;
            foreach (var v in w)
            {
                norm += v;
            }

            _norms[j] = norm;
        }

        for (var row = _window - 1; row < Math.Min(_block - _origin - 1, _trend); row++)
        {
            var f = _stored.AsSpan((int)row * _dim, _dim);
            for (var k = _window; k < _dim; k++)
            {
                f[k] = (a * f[k]) + b;
            }
        }

        Array.Clear(_levelScratch);
        for (var l = 0; l <= _levels; l++)
        {
            _levelScratch[Math.Clamp((int)Math.Round((a * l) + (b * _levels)), 0, _levels)] += _levelCounts[l];
        }

        _levelScratch.AsSpan().CopyTo(_levelCounts);
    }

    private int MedianLevel()
    {
        var half = (_levelTotal + 1) / 2;
        var seen = 0;
        for (var l = 0; l <= _levels; l++)
        {
            seen += _levelCounts[l];
            if (seen >= half)
            {
                return l;
            }
        }

        return _levels;
    }

    /// <summary>Features: the Haar transform of the window (shape, scaled to [0, 1] twice) followed by the window's levels (position).</summary>
    private void Features()
    {
        var lo = double.MaxValue;
        var hi = double.MinValue;
        foreach (var v in _recent)
        {
            lo = Math.Min(lo, v);
            hi = Math.Max(hi, v);
        }

        var span = hi - lo;
        for (var k = 0; k < _window; k++)
        {
            _scratch[k] = span > 0 ? (_recent[k] - lo) / span : 0.0;
        }

        // In-place orthonormal Haar transform: [approximation, coarsest detail, …, finest details].
        var f = _features.AsSpan(0, _window);
        for (var len = _window; len > 1; len /= 2)
        {
            var h = len / 2;
            for (var k = 0; k < h; k++)
            {
                var a = _scratch[2 * k];
                var b = _scratch[(2 * k) + 1];
                f[k] = (a + b) * Math.Sqrt(0.5);
                f[h + k] = (a - b) * Math.Sqrt(0.5);
            }

            f[..h].CopyTo(_scratch);
            if (h == 1)
            {
                break;
            }
        }

        lo = double.MaxValue;
        hi = double.MinValue;
        foreach (var v in f)
        {
            lo = Math.Min(lo, v);
            hi = Math.Max(hi, v);
        }

        span = hi - lo;
        for (var k = 0; k < _window; k++)
        {
            f[k] = span > 0 ? (f[k] - lo) / span : 0.0;
        }

        _recent.AsSpan().CopyTo(_features.AsSpan(_window));
    }

    /// <summary>
    /// The learning period ends: choose the starting vigilance from the period's own features (train a throw-away network at
    /// vigilance 0.8 on them, least typical first, and take the mean best match of the second half), then replay them in order.
    /// Both passes use the detector's own arrays.
    /// </summary>
    private void EndOfProbation()
    {
        var first = _window - 1;
        var count = _trend - first;
        for (var i = 0; i < count; i++)
        {
            var sum = 1.0;
            for (var j = 0; j < count; j++)
            {
                if (j != i)
                {
                    sum += Cosine(_stored.AsSpan((first + i) * _dim, _dim), _stored.AsSpan((first + j) * _dim, _dim));
                }
            }

            _simSums[i] = sum;
            _order[i] = first + i;
        }

        // Insertion sort by typicality (ascending); T is about 100 and this runs once.
        for (var i = 1; i < count; i++)
        {
            var key = _simSums[i];
            var idx = _order[i];
            var j = i - 1;
            while (j >= 0 && _simSums[j] > key)
            {
                _simSums[j + 1] = _simSums[j];
                _order[j + 1] = _order[j];
                j--;
            }

            _simSums[j + 1] = key;
            _order[j + 1] = idx;
        }

        _rhoLower = _rhoUpper = InitialRho;
        _categories = 0;
        var matchSum = 0.0;
        var matches = 0;
        for (var i = 0; i < count; i++)
        {
            Train(_stored.AsSpan(_order[i] * _dim, _dim), learn: true, i + 1);
            if (i >= count / 2)
            {
                matchSum += _bestMatch;
                matches++;
            }
        }

        var rho = matches > 0 ? matchSum / matches : InitialRho;
        _rhoLower = _rhoUpper = rho;
        _categories = 0;
        for (var i = 1; i <= _trend; i++)
        {
            Detect(_stored.AsSpan((i - 1) * _dim, _dim), i);
        }
    }

    private static double Cosine(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (var k = 0; k < a.Length; k++)
        {
            ab += a[k] * b[k];
            aa += a[k] * a[k];
            bb += b[k] * b[k];
        }

        var na = Math.Sqrt(aa);
        var nb = Math.Sqrt(bb);
        return na == 0 ? 1 - nb : nb == 0 ? 1 - na : ab / (na * nb);
    }

    private double Detect(ReadOnlySpan<double> f, long i)
    {
        var afterAnomaly = i - _lastAnomalyBlock;
        var updateAfterAnomaly = afterAnomaly == _mask;
        var updateForTrend = i - _lastRhoUpdate >= _trend / 2;
        var maskAfterAnomaly = afterAnomaly <= _mask;
        if (i > _trend + _mask && _maskAfterCategory && _sinceNewCategory >= _mask)
        {
            _maskAfterCategory = false;
        }

        // Blocks before the first full window only measure (keeps the similarity statistics aligned with the input).
        var newKind = i < _window ? !Train(f, learn: false, i) : Train(f, learn: true, i);
        _sinceNewCategory = newKind ? 0 : _sinceNewCategory + 1;
        var a = _bestMatch;
        _matchSum += a;
        _matchCount++;
        _simRing[_simPos] = a;
        _simPos = (_simPos + 1) % _simRing.Length;
        _diffRing[_diffPos] = _rhoUpper - a;
        _diffPos = (_diffPos + 1) % _diffRing.Length;

        // The lowest similarity during an anomaly's masking window stands for that anomaly.
        if (afterAnomaly < _mask && _anomalySimCount > 0 && a < _lastAnomalySim)
        {
            _anomalySimSum += a - _lastAnomalySim;
            _lastAnomalySim = a;
        }

        // After a new kind of category (or a vigilance change) further new kinds are its continuation, unless clearly worse.
        var masking = _maskAfterCategory || maskAfterAnomaly;
        var belowLast = a < _lastAnomalySim * (maskAfterAnomaly ? 0.90 : 0.70);
        var score = 0.0;
        if (i > _trend && newKind && (!masking || belowLast))
        {
            score = Confidence(a, _bestEnergy);
            _anomalySimSum += a;
            _anomalySimCount++;
            _lastAnomalySim = a;
            _lastAnomalyBlock = i;
        }

        _maskAfterCategory |= newKind;
        if (i > _trend && (updateAfterAnomaly || updateForTrend))
        {
            AdaptVigilance(i);
        }

        return score;
    }

    private void AdaptVigilance(long i)
    {
        var minSim = double.MaxValue;
        foreach (var s in _simRing)
        {
            minSim = Math.Min(minSim, s);
        }

        var upper = Math.Min(UpperCap, _matchSum / _matchCount);
        var lower = _rhoLower;
        if (lower <= minSim)
        {
            // Every recent best match cleared the lower vigilance: raise it part of the way (more selective).
            lower += (minSim - lower) * LowerRise;
        }
        else
        {
            // Some fell below: lower it by half the typical shortfall, but not below the usual similarity of past anomalies.
            var drop = 0.0;
            if (i > 2L * _trend)
            {
                var sum = 0.0;
                var n = 0;
                foreach (var d in _diffRing)
                {
                    if (d > 0.05)
                    {
                        sum += Math.Min(MaxDrop, d);
                        n++;
                    }
                }

                drop = n > 0 ? sum / n : 0.0;
            }

            lower -= Math.Max(0.01, drop) / 2;
            if (_anomalySimCount > 0)
            {
                lower = Math.Max(lower, _anomalySimSum / _anomalySimCount);
            }
        }

        _rhoLower = Math.Clamp(Math.Min(upper, lower), 0.0, 1.0);
        _rhoUpper = Math.Clamp(upper, 0.0, 1.0);
        _lastRhoUpdate = i;
        _maskAfterCategory = true;
    }

    private double Confidence(double sim, double energy)
    {
        sim = Math.Min(0.999, sim);
        var upper = ((1 - sim) - (1 - _rhoUpper)) / (1 - sim);
        var lower = ((1 - sim) - (1 - _rhoLower)) / (1 - sim);
        return Math.Clamp((upper * 0.35) + (lower * 0.65) + ((1.0 - energy) * 1.5), 0.0, 1.0);
    }

    /// <summary>
    /// One fuzzy-ART step on complement-coded <paramref name="f"/>: sets the best match and its energy similarity, learns
    /// every category matching above the upper vigilance, else adds a category; returns true when the best match was
    /// below the lower vigilance (a new kind of pattern).
    /// </summary>
    private bool Train(ReadOnlySpan<double> f, bool learn, long stamp)
    {
        for (var k = 0; k < _dim; k++)
        {
            _input[k] = (float)f[k];
            _input[_dim + k] = (float)(1.0 - f[k]);
        }

        var e = _dim - 1;
        var ec = _dimc - 1;
        var best = 0.0;
        var bestEnergy = 0.0;
        var anyUpper = false;
        for (var j = 0; j < _categories; j++)
        {
            var m = Activation(j, e, ec, out var energy);
            if (m > best)
            {
                best = m;
                bestEnergy = energy;
            }

            if (learn && m >= _rhoUpper)
            {
                Learn(j, stamp);
                anyUpper = true;
            }
        }

        _bestMatch = best;
        _bestEnergy = bestEnergy;
        if (!learn || anyUpper)
        {
            return false;
        }

        var first = _categories == 0;
        Commit(stamp);
        return !first && best < _rhoLower;
    }

    private double Activation(int j, int e, int ec, out double energy)
    {
        var w = _weights.AsSpan(j * _dimc, _dimc);
        // |min(input, w)|₁ with SIMD: the one loop that runs for every category of every block.
        var x = _input.AsSpan();
        var acc = System.Numerics.Vector<float>.Zero;
        var k = 0;
        for (; k <= w.Length - System.Numerics.Vector<float>.Count; k += System.Numerics.Vector<float>.Count)
        {
            acc += System.Numerics.Vector.Min(new System.Numerics.Vector<float>(x[k..]), new System.Numerics.Vector<float>(w[k..]));
        }

        double overlap = System.Numerics.Vector.Sum(acc);
        for (; k < w.Length; k++)
        {
            overlap += Math.Min(x[k], w[k]);
        }

        var boxE = w[e] + w[ec];
        energy = boxE > 0 ? (Math.Min(_input[e], w[e]) + Math.Min(_input[ec], w[ec])) / boxE : 1.0;
        var features = overlap / Math.Max(_norms[j], 0.001);
        return features * features * features * energy * energy;
    }

    private void Learn(int j, long stamp)
    {
        var w = _weights.AsSpan(j * _dimc, _dimc);
        var norm = 0.0;
        for (var k = 0; k < w.Length; k++)
        {
            w[k] = Math.Min(_input[k], w[k]);
            norm += w[k];
        }

        _norms[j] = norm;
        _lastUsed[j] = stamp;
    }

    /// <summary>A new category holding the input; when all are used, the one matched least recently is replaced.</summary>
    private void Commit(long stamp)
    {
        int j;
        if (_categories < _capacity)
        {
            j = _categories++;
        }
        else
        {
            j = 0;
            for (var c = 1; c < _capacity; c++)
            {
                if (_lastUsed[c] < _lastUsed[j])
                {
                    j = c;
                }
            }
        }

        var w = _weights.AsSpan(j * _dimc, _dimc);
        var norm = 0.0;
        for (var k = 0; k < w.Length; k++)
        {
            w[k] = _input[k];
            norm += w[k];
        }

        _norms[j] = norm;
        _lastUsed[j] = stamp;
    }
}
