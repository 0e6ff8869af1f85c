using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeTwin.Twin.Line.Quality;

/// <summary>
/// The quality model's file format "edgetwin-online-logistic/3" (written by models/secom/train_base.py,
/// described in models/secom/MODEL_CARD.md). Version 3 adds optional boosted stumps per member; "/2" files (no
/// stumps) still load.
/// </summary>
public sealed class OnlineLogisticFile
{
    [JsonPropertyName("format")] public string Format { get; set; } = "";
    [JsonPropertyName("input_width")] public int InputWidth { get; set; }
    [JsonPropertyName("clip")] public double Clip { get; set; } = 5;
    [JsonPropertyName("learning_rate")] public double LearningRate { get; set; }
    [JsonPropertyName("l2")] public double L2 { get; set; }
    [JsonPropertyName("weight_fail")] public double WeightFail { get; set; } = 1;
    [JsonPropertyName("weight_pass")] public double WeightPass { get; set; } = 1;
    [JsonPropertyName("members")] public OnlineLogisticMember[] Members { get; set; } = [];
    [JsonPropertyName("mix")] public MemberMixFile? Mix { get; set; }
    [JsonPropertyName("decision")] public BalancedDecisionFile? Decision { get; set; }

    /// <summary>What the training script fitted on (optional): lets a bench say when it scores the training runs.</summary>
    [JsonPropertyName("trained_on")] public TrainedOnFile? TrainedOn { get; set; }
}

/// <summary>The training data of a quality model: the runs, fails and the data file's name.</summary>
public sealed class TrainedOnFile
{
    [JsonPropertyName("runs")] public int Runs { get; set; }
    [JsonPropertyName("fails")] public int Fails { get; set; }
    [JsonPropertyName("data")] public string? Data { get; set; }
}

/// <summary>How member logits combine: "mean", or "hedge" (exponential weights from each member's discounted,
/// class-weighted log loss on the labels received).</summary>
public sealed class MemberMixFile
{
    [JsonPropertyName("mode")] public string Mode { get; set; } = "mean";
    [JsonPropertyName("eta")] public double Eta { get; set; }
    [JsonPropertyName("discount")] public double Discount { get; set; } = 1;
}

/// <summary>One ensemble member: its drift rate, columns, EW standardisation state and logistic weights.</summary>
public sealed class OnlineLogisticMember
{
    /// <summary>EW rate of the label-free standardisation (0 = frozen training mean/variance).</summary>
    [JsonPropertyName("alpha")] public double Alpha { get; set; }
    [JsonPropertyName("columns")] public int[] Columns { get; set; } = [];
    [JsonPropertyName("mean")] public double[] Mean { get; set; } = [];
    [JsonPropertyName("var")] public double[] Var { get; set; } = [];
    [JsonPropertyName("weights")] public double[] Weights { get; set; } = [];
    [JsonPropertyName("bias")] public double Bias { get; set; }
    /// <summary>Optional gradient-boosted stumps on the member's standardised columns (format 3).</summary>
    [JsonPropertyName("stumps")] public StumpsFile? Stumps { get; set; }
}

/// <summary>
/// Boosted depth-1 trees on a member's clipped z-scores: score = init + Σᵢ (z[featureᵢ] ≤ thresholdᵢ ? leftᵢ : rightᵢ),
/// added to the member logit times <c>weight</c>. Fitted once in training (static); the z-scores follow the drift.
/// </summary>
public sealed class StumpsFile
{
    [JsonPropertyName("weight")] public double Weight { get; set; }
    [JsonPropertyName("init")] public double Init { get; set; }
    /// <summary>Index into the member's <c>columns</c> (not a raw input column).</summary>
    [JsonPropertyName("feature")] public int[] Feature { get; set; } = [];
    [JsonPropertyName("threshold")] public double[] Threshold { get; set; } = [];
    [JsonPropertyName("left")] public double[] Left { get; set; } = [];
    [JsonPropertyName("right")] public double[] Right { get; set; } = [];
}

/// <summary>The online balanced decision (threshold from recent labelled runs) and the tracked fail rate.</summary>
public sealed class BalancedDecisionFile
{
    /// <summary>"eer" (equal-error-rate threshold of the recent labelled passes and fails) or "none".</summary>
    [JsonPropertyName("mode")] public string Mode { get; set; } = "eer";
    [JsonPropertyName("window_pass")] public int WindowPass { get; set; } = 200;
    [JsonPropertyName("window_fail")] public int WindowFail { get; set; } = 20;
    [JsonPropertyName("min_fails")] public int MinFails { get; set; } = 5;
    /// <summary>Initial fail rate (training base rate), tracked by an EW mean of the arriving labels.</summary>
    [JsonPropertyName("prior")] public double Prior { get; set; } = 0.07;
    [JsonPropertyName("prior_alpha")] public double PriorAlpha { get; set; } = 0.01;
}

/// <summary>
/// Online quality model: "this run fails inspection" from its process values. An ensemble of logistic members,
/// each standardising its columns by an exponentially weighted mean/variance of the runs before (label-free drift
/// adaptation at its own rate), averaged in the logit; a member may add boosted stumps (static depth-1 trees) on its
/// clipped z-scores to its logit (format 3), which catches threshold effects the linear part misses. Test-then-train: <see cref="Observe"/> scores a run and then
/// updates the drift statistics; <see cref="Learn"/> takes one class-weighted SGD step per member when the
/// inspection result arrives and moves the balanced decision threshold. The published score is shifted so that
/// 0.5 separates the recent passes and fails evenly (balanced decision); <see cref="Calibrated"/> turns it into a
/// probability under the tracked fail rate. Observe, Predict and Learn do not allocate; state is bounded by the
/// model file (columns) and the decision windows.
/// </summary>
public sealed class OnlineLogisticModel
{
    public const string FormatName = "edgetwin-online-logistic/3";
    /// <summary>The previous format (no stumps), still accepted.</summary>
    public const string FormatV2 = "edgetwin-online-logistic/2";
    private const double Eps = 1e-18;

    private readonly int[][] _cols;
    private readonly double[][] _mu;
    private readonly double[][] _var;
    private readonly double[][] _w;
    private readonly double[] _b;
    private readonly double[] _alpha;
    // Stumps per member (null arrays when the member has none).
    private readonly int[]?[] _sf;
    private readonly double[]?[] _st, _sl, _sr;
    private readonly double[] _sInit, _sWeight;
    private readonly double[][] _z;
    private readonly double[][] _a;
    private readonly double _clip, _lr, _l2, _wf, _wp, _priorAlpha;
    private readonly BalancedThreshold? _threshold;
    private readonly bool _hedge;
    private readonly double _eta, _discount;
    private readonly double[] _loss, _pi, _lm;
    private double _prior;

    public OnlineLogisticModel(OnlineLogisticFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Format != FormatName && file.Format != FormatV2)
            throw new InvalidDataException($"format: '{file.Format}', expected '{FormatName}' (or '{FormatV2}')");
        if (file.InputWidth <= 0) throw new InvalidDataException($"input_width: {file.InputWidth}, must be > 0");
        if (!(file.Clip > 0)) throw new InvalidDataException($"clip: {file.Clip}, must be > 0");
        if (file.LearningRate < 0 || file.L2 < 0) throw new InvalidDataException("learning_rate and l2 must be >= 0");
        if (!(file.WeightFail > 0) || !(file.WeightPass > 0)) throw new InvalidDataException("weight_fail and weight_pass must be > 0");
        if (file.Members is null || file.Members.Length == 0) throw new InvalidDataException("members: at least one member is required");
        int n = file.Members.Length;
        _cols = new int[n][];
        _mu = new double[n][];
        _var = new double[n][];
        _w = new double[n][];
        _b = new double[n];
        _alpha = new double[n];
        _sf = new int[n][];
        _st = new double[n][];
        _sl = new double[n][];
        _sr = new double[n][];
        _sInit = new double[n];
        _sWeight = new double[n];
        _z = new double[n][];
        _a = new double[n][];
        for (int m = 0; m < n; m++)
        {
            var f = file.Members[m] ?? throw new InvalidDataException($"members[{m}]: null");
            string key = $"members[{m}]";
            int k = f.Columns?.Length ?? 0;
            if (k == 0) throw new InvalidDataException($"{key}.columns: empty");
            CheckLength(f.Mean, k, key + ".mean");
            CheckLength(f.Var, k, key + ".var");
            CheckLength(f.Weights, k, key + ".weights");
            if (f.Alpha < 0 || f.Alpha >= 1) throw new InvalidDataException($"{key}.alpha: {f.Alpha}, must be in [0, 1)");
            for (int j = 0; j < k; j++)
            {
                int c = f.Columns![j];
                if (c < 0 || c >= file.InputWidth) throw new InvalidDataException($"{key}.columns[{j}]: {c} outside the input width {file.InputWidth}");
                if (!(f.Var[j] >= 0)) throw new InvalidDataException($"{key}.var[{j}]: {f.Var[j]}, must be >= 0");
            }
            _cols[m] = (int[])f.Columns!.Clone();
            _mu[m] = (double[])f.Mean.Clone();
            _var[m] = (double[])f.Var.Clone();
            _w[m] = (double[])f.Weights.Clone();
            _b[m] = f.Bias;
            _alpha[m] = f.Alpha;
            if (f.Stumps is { } st)
            {
                if (file.Format == FormatV2) throw new InvalidDataException($"{key}.stumps: needs format '{FormatName}'");
                int ns = st.Feature?.Length ?? 0;
                if (ns == 0) throw new InvalidDataException($"{key}.stumps.feature: empty");
                CheckLength(st.Threshold, ns, key + ".stumps.threshold", "stump");
                CheckLength(st.Left, ns, key + ".stumps.left", "stump");
                CheckLength(st.Right, ns, key + ".stumps.right", "stump");
                if (!double.IsFinite(st.Weight) || st.Weight < 0) throw new InvalidDataException($"{key}.stumps.weight: {st.Weight}, must be >= 0");
                if (!double.IsFinite(st.Init)) throw new InvalidDataException($"{key}.stumps.init: {st.Init}, must be finite");
                for (int i = 0; i < ns; i++)
                {
                    if (st.Feature![i] < 0 || st.Feature[i] >= k)
                        throw new InvalidDataException($"{key}.stumps.feature[{i}]: {st.Feature[i]} outside the member's {k} columns");
                    if (double.IsNaN(st.Threshold[i])) throw new InvalidDataException($"{key}.stumps.threshold[{i}]: NaN");
                    if (!double.IsFinite(st.Left[i]) || !double.IsFinite(st.Right[i]))
                        throw new InvalidDataException($"{key}.stumps.left/right[{i}]: must be finite");
                }
                _sf[m] = (int[])st.Feature!.Clone();
                _st[m] = (double[])st.Threshold.Clone();
                _sl[m] = (double[])st.Left.Clone();
                _sr[m] = (double[])st.Right.Clone();
                _sInit[m] = st.Init;
                _sWeight[m] = st.Weight;
            }
            _z[m] = new double[k];
            _a[m] = new double[k];
        }
        var mix = file.Mix ?? new MemberMixFile();
        switch (mix.Mode)
        {
            case "mean":
                break;
            case "hedge":
                if (!(mix.Eta >= 0)) throw new InvalidDataException($"mix.eta: {mix.Eta}, must be >= 0");
                if (!(mix.Discount > 0 && mix.Discount <= 1)) throw new InvalidDataException($"mix.discount: {mix.Discount}, must be in (0, 1]");
                _hedge = true;
                break;
            default:
                throw new InvalidDataException($"mix.mode: '{mix.Mode}', expected 'mean' or 'hedge'");
        }
        _eta = mix.Eta;
        _discount = mix.Discount;
        _loss = new double[n];
        _lm = new double[n];
        _pi = new double[n];
        Array.Fill(_pi, 1.0 / n);
        var d = file.Decision ?? throw new InvalidDataException("decision: missing");
        if (!(d.Prior > 0 && d.Prior < 1)) throw new InvalidDataException($"decision.prior: {d.Prior}, must be in (0, 1)");
        if (d.PriorAlpha < 0 || d.PriorAlpha >= 1) throw new InvalidDataException($"decision.prior_alpha: {d.PriorAlpha}, must be in [0, 1)");
        switch (d.Mode)
        {
            case "none":
                break;
            case "eer":
                if (d.WindowPass < 1 || d.WindowFail < 1) throw new InvalidDataException("decision.window_pass and decision.window_fail must be >= 1");
                if (d.MinFails < 1 || d.MinFails > d.WindowFail || d.MinFails > d.WindowPass)
                    throw new InvalidDataException($"decision.min_fails: {d.MinFails}, must be in [1, min(window_fail, window_pass)]");
                _threshold = new BalancedThreshold(d.WindowPass, d.WindowFail, d.MinFails);
                break;
            default:
                throw new InvalidDataException($"decision.mode: '{d.Mode}', expected 'eer' or 'none'");
        }
        InputWidth = file.InputWidth;
        _clip = file.Clip;
        _lr = file.LearningRate;
        _l2 = file.L2;
        _wf = file.WeightFail;
        _wp = file.WeightPass;
        _prior = d.Prior;
        _priorAlpha = d.PriorAlpha;
    }

    private static void CheckLength(double[]? a, int k, string key, string per = "column")
    {
        if (a is null || a.Length != k) throw new InvalidDataException($"{key}: length {a?.Length ?? 0}, expected {k} (one per {per})");
    }

    /// <summary>Loads a model file; errors name the file and the offending key.</summary>
    public static OnlineLogisticModel Load(string path)
    {
        OnlineLogisticFile? f;
        try
        {
            using var s = File.OpenRead(path);
            f = JsonSerializer.Deserialize<OnlineLogisticFile>(s);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: {(ex.Path is { } p ? "key " + p + ": " : "")}{ex.Message}", ex);
        }
        if (f is null) throw new InvalidDataException($"{path}: empty quality model");
        try
        {
            return new OnlineLogisticModel(f) { TrainedOn = f.TrainedOn };
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    public int InputWidth { get; }

    /// <summary>The training data named in the file, if any.</summary>
    public TrainedOnFile? TrainedOn { get; private init; }

    /// <summary>Logit shift of the balanced decision (0 until enough labels arrived).</summary>
    public double DecisionOffset => _threshold?.Offset ?? 0;

    /// <summary>EW fail rate of the labels received (starts at the training base rate).</summary>
    public double FailRate => _prior;

    // Standardised features of member m into _z[m]; the filled raw values (missing -> current mean) into _a[m].
    private double MemberLogit(int m, ReadOnlySpan<double> raw)
    {
        var cols = _cols[m];
        var mu = _mu[m];
        var v = _var[m];
        var w = _w[m];
        var z = _z[m];
        var a = _a[m];
        double s = 0;
        for (int j = 0; j < cols.Length; j++)
        {
            double x = raw[cols[j]];
            if (double.IsNaN(x)) x = mu[j];
            a[j] = x;
            z[j] = Math.Clamp((x - mu[j]) / Math.Sqrt(v[j] + Eps), -_clip, _clip);
            s += w[j] * z[j];
        }
        double l = _b[m] + s;
        if (_sf[m] is { } sf)
        {
            // Sequential sum in stump order, as stump_sum in train_base.py.
            var th = _st[m]!;
            var left = _sl[m]!;
            var right = _sr[m]!;
            double t = _sInit[m];
            for (int i = 0; i < sf.Length; i++) t += z[sf[i]] <= th[i] ? left[i] : right[i];
            l += _sWeight[m] * t;
        }
        return l;
    }

    // Mixed logit; leaves each member's logit in _lm and its features in _z.
    private double Logit(ReadOnlySpan<double> raw)
    {
        double s = 0;
        for (int m = 0; m < _w.Length; m++)
        {
            _lm[m] = MemberLogit(m, raw);
            s += _pi[m] * _lm[m];
        }
        return s;
    }

    /// <summary>Current weight of each member in the mixed logit (equal under "mean").</summary>
    public ReadOnlySpan<double> MemberWeights => _pi;

    private void CheckWidth(ReadOnlySpan<double> raw)
    {
        if (raw.Length < InputWidth) throw new ArgumentException($"expected {InputWidth} values, got {raw.Length}", nameof(raw));
    }

    /// <summary>Balanced fail score of a run (fail decided at ≥ 0.5) without changing any state.</summary>
    public double Predict(ReadOnlySpan<double> raw)
    {
        CheckWidth(raw);
        return Sigmoid(Logit(raw) - DecisionOffset);
    }

    /// <summary>
    /// Scores a run (balanced fail score, fail decided at ≥ 0.5) and then updates the label-free drift statistics
    /// with it. Call once per run, in time order, before its label can arrive.
    /// </summary>
    public double Observe(ReadOnlySpan<double> raw)
    {
        CheckWidth(raw);
        double l = Logit(raw);
        for (int m = 0; m < _w.Length; m++)
        {
            double al = _alpha[m];
            if (al <= 0) continue;
            var mu = _mu[m];
            var v = _var[m];
            var a = _a[m]; // filled by Logit for this run
            for (int j = 0; j < mu.Length; j++)
            {
                double d = a[j] - mu[j];
                mu[j] += al * d;
                v[j] = (1 - al) * (v[j] + al * d * d);
            }
        }
        return Sigmoid(l - DecisionOffset);
    }

    /// <summary>
    /// Probability of failing under the tracked fail rate (Saerens-style prior correction of the balanced score):
    /// logit p = logit score + logit rate. Use it for expected reject counts; use the score for decisions.
    /// </summary>
    public double Calibrated(double score)
    {
        double s = Math.Clamp(score, 1e-300, 1 - 1e-16);
        return Sigmoid(Math.Log(s / (1 - s)) + Math.Log(_prior / (1 - _prior)));
    }

    /// <summary>Learns an inspection result: one class-weighted SGD step per member, the fail rate, the decision threshold.</summary>
    public void Learn(ReadOnlySpan<double> raw, bool failed)
    {
        CheckWidth(raw);
        double l = Logit(raw);
        double weight = failed ? _wf : _wp;
        double y = failed ? 1 : 0;
        if (_hedge)
        {
            double lo = double.PositiveInfinity;
            for (int m = 0; m < _w.Length; m++)
            {
                double u = failed ? -_lm[m] : _lm[m];
                _loss[m] = _discount * _loss[m] + weight * (Math.Max(u, 0) + Math.Log(1 + Math.Exp(-Math.Abs(u))));
                lo = Math.Min(lo, _loss[m]);
            }
            double sum = 0;
            for (int m = 0; m < _w.Length; m++) sum += _pi[m] = Math.Exp(-_eta * (_loss[m] - lo));
            for (int m = 0; m < _w.Length; m++) _pi[m] /= sum;
        }
        if (_lr > 0)
        {
            for (int m = 0; m < _w.Length; m++)
            {
                // _z[m] and _lm[m] hold this run's features and logit under the current state (from Logit above).
                double g = (Sigmoid(_lm[m]) - y) * weight;
                var w = _w[m];
                var z = _z[m];
                for (int j = 0; j < w.Length; j++) w[j] -= _lr * (g * z[j] + _l2 * w[j]);
                _b[m] -= _lr * g;
            }
        }
        _prior = (1 - _priorAlpha) * _prior + _priorAlpha * y;
        _threshold?.Add(l, failed);
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}

/// <summary>
/// Online balanced decision threshold: the logits of the last labelled passes and fails (two ring buffers), and
/// the threshold where the fails' miss rate equals the passes' false-alarm rate (equal error rate), recomputed on
/// each label once both windows hold at least <c>minFails</c> entries. Fixed buffers, no allocation.
/// </summary>
public sealed class BalancedThreshold
{
    private readonly double[] _pass, _fail, _sp, _sf, _all;
    private readonly int _minFails;
    private int _np, _nf, _ip, _if;

    public BalancedThreshold(int windowPass, int windowFail, int minFails)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowPass, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowFail, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(minFails, 1);
        _pass = new double[windowPass];
        _fail = new double[windowFail];
        _sp = new double[windowPass];
        _sf = new double[windowFail];
        _all = new double[windowPass + windowFail];
        _minFails = minFails;
    }

    /// <summary>Current threshold on the logit (0 until both windows hold enough labels).</summary>
    public double Offset { get; private set; }

    public void Add(double logit, bool failed)
    {
        if (failed)
        {
            _fail[_if] = logit;
            _if = (_if + 1) % _fail.Length;
            if (_nf < _fail.Length) _nf++;
        }
        else
        {
            _pass[_ip] = logit;
            _ip = (_ip + 1) % _pass.Length;
            if (_np < _pass.Length) _np++;
        }
        if (_nf >= _minFails && _np >= _minFails) Offset = EqualErrorThreshold();
    }

    // Midpoints between the sorted pooled logits (and one below/above all); the candidate with the smallest
    // |miss rate − false-alarm rate|, ties to the lowest. Mirrors eer_threshold in models/secom/train_base.py.
    private double EqualErrorThreshold()
    {
        var p = _sp.AsSpan(0, _np);
        var f = _sf.AsSpan(0, _nf);
        var v = _all.AsSpan(0, _np + _nf);
        _pass.AsSpan(0, _np).CopyTo(p);
        _fail.AsSpan(0, _nf).CopyTo(f);
        p.CopyTo(v);
        f.CopyTo(v[_np..]);
        p.Sort();
        f.Sort();
        v.Sort();
        double best = 0, bestGap = double.PositiveInfinity;
        int ip = 0, jf = 0;
        for (int i = 0; i <= v.Length; i++)
        {
            double th;
            if (i == 0) th = v[0] - 1.0;
            else if (i == v.Length) th = v[^1] + 1.0;
            else
            {
                if (v[i] == v[i - 1]) continue;
                th = 0.5 * (v[i - 1] + v[i]);
            }
            while (jf < f.Length && f[jf] < th) jf++;
            while (ip < p.Length && p[ip] < th) ip++;
            double fnr = (double)jf / f.Length;
            double fpr = (double)(p.Length - ip) / p.Length;
            double gap = Math.Abs(fnr - fpr);
            if (gap < bestGap - 1e-12)
            {
                best = th;
                bestGap = gap;
            }
        }
        return best;
    }
}
