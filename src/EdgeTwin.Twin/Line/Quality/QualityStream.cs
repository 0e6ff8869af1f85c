using System.Globalization;

namespace EdgeTwin.Twin.Line.Quality;

/// <summary>Scores of a streamed evaluation.</summary>
public sealed record QualityScores(int Runs, int Fails, double RocAuc, double PrAuc, double BalancedAccuracy, double RocAucLow, double RocAucHigh);

/// <summary>
/// Streams runs in time order exactly as the gateway meets them: predict run t with what was learned
/// before, then learn the label of run t − delay (its inspection result arrives late). No look-ahead.
/// </summary>
public static class QualityStream
{
    public static double[] Run(OnlineLogisticModel model, IReadOnlyList<double[]> runs, IReadOnlyList<bool> failed, int labelDelay)
        => Run(model, runs, failed, labelDelay, calibrated: null);

    /// <summary>As <see cref="Run(OnlineLogisticModel, IReadOnlyList{double[]}, IReadOnlyList{bool}, int)"/>; also
    /// writes each run's calibrated fail probability (prior-corrected with the fail rate known at that time).</summary>
    public static double[] Run(OnlineLogisticModel model, IReadOnlyList<double[]> runs, IReadOnlyList<bool> failed, int labelDelay, double[]? calibrated)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(failed);
        ArgumentOutOfRangeException.ThrowIfNegative(labelDelay);
        if (calibrated is not null && calibrated.Length < runs.Count) throw new ArgumentException("one calibrated slot per run", nameof(calibrated));
        var p = new double[runs.Count];
        for (int t = 0; t < runs.Count; t++)
        {
            p[t] = model.Observe(runs[t]);
            if (calibrated is not null) calibrated[t] = model.Calibrated(p[t]);
            int learn = t - labelDelay;
            if (learn >= 0) model.Learn(runs[learn], failed[learn]);
        }
        return p;
    }

    /// <summary>Reads SECOM-style files: space-separated values with NaN, and labels "-1|1 \"timestamp\"" (1 = fail).</summary>
    public static (List<double[]> Runs, List<bool> Failed) ReadSecom(string dataFile, string labelsFile) => ReadSecom(dataFile, labelsFile, width: null);

    /// <summary>
    /// As <see cref="ReadSecom(string, string)"/>; with <paramref name="width"/>, a run with another number of values is
    /// refused naming the file and line (a model reads its inputs by position, so a short or long run is misaligned).
    /// </summary>
    public static (List<double[]> Runs, List<bool> Failed) ReadSecom(string dataFile, string labelsFile, int? width)
    {
        var runs = new List<double[]>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(dataFile))
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (width is { } w && parts.Length != w)
                throw new FormatException($"{dataFile}:{lineNo}: {parts.Length} values, the model needs {w} per run");
            var v = new double[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]))
                    throw new FormatException($"{dataFile}:{lineNo}: value {i + 1} '{parts[i]}' is not a number");
            }
            runs.Add(v);
        }
        var failed = new List<bool>();
        lineNo = 0;
        foreach (var line in File.ReadLines(labelsFile))
        {
            lineNo++;
            var t = line.Trim();
            if (t.Length == 0) continue;
            var first = t.Split(' ', 2)[0];
            failed.Add(first switch
            {
                "1" => true,
                "-1" => false,
                _ => throw new FormatException($"{labelsFile}:{lineNo}: label '{first}' must be -1 (pass) or 1 (fail)"),
            });
        }
        if (runs.Count != failed.Count) throw new FormatException($"{dataFile} has {runs.Count} runs but {labelsFile} has {failed.Count} labels");
        return (runs, failed);
    }

    public static QualityScores Score(IReadOnlyList<double> p, IReadOnlyList<bool> y, int bootstrap = 1000, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(y);
        int fails = y.Count(f => f);
        double auc = RocAuc(p, y);
        // Percentile bootstrap over runs for the AUC's 95 % interval (few fails make it wide).
        var rnd = new Random(seed);
        var aucs = new List<double>(bootstrap);
        var bp = new double[p.Count];
        var by = new bool[p.Count];
        for (int b = 0; b < bootstrap; b++)
        {
            for (int i = 0; i < p.Count; i++)
            {
                int k = rnd.Next(p.Count);
                bp[i] = p[k];
                by[i] = y[k];
            }
            double a = RocAuc(bp, by);
            if (!double.IsNaN(a)) aucs.Add(a);
        }
        aucs.Sort();
        double lo = aucs.Count > 0 ? aucs[(int)(0.025 * (aucs.Count - 1))] : double.NaN;
        double hi = aucs.Count > 0 ? aucs[(int)(0.975 * (aucs.Count - 1))] : double.NaN;
        return new QualityScores(p.Count, fails, auc, AveragePrecision(p, y), BalancedAccuracy(p, y, 0.5), lo, hi);
    }

    /// <summary>ROC AUC by the Mann–Whitney statistic with mid-ranks for ties; NaN without both classes.</summary>
    public static double RocAuc(IReadOnlyList<double> p, IReadOnlyList<bool> y)
    {
        int n = p.Count;
        var idx = Enumerable.Range(0, n).OrderBy(i => p[i]).ToArray();
        double rankSumPos = 0;
        int pos = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && p[idx[j + 1]] == p[idx[i]]) j++;
            double mid = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++)
                if (y[idx[k]]) { rankSumPos += mid; pos++; }
            i = j + 1;
        }
        int neg = n - pos;
        if (pos == 0 || neg == 0) return double.NaN;
        return (rankSumPos - pos * (pos + 1) / 2.0) / ((double)pos * neg);
    }

    /// <summary>Average precision (as scikit-learn computes it: precision at each distinct threshold weighted by the recall step).</summary>
    public static double AveragePrecision(IReadOnlyList<double> p, IReadOnlyList<bool> y)
    {
        int n = p.Count;
        int pos = y.Count(f => f);
        if (pos == 0) return double.NaN;
        var idx = Enumerable.Range(0, n).OrderByDescending(i => p[i]).ToArray();
        double ap = 0, prevRecall = 0;
        int tp = 0, seen = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && p[idx[j + 1]] == p[idx[i]]) j++;
            for (int k = i; k <= j; k++) { seen++; if (y[idx[k]]) tp++; }
            double recall = (double)tp / pos;
            ap += (recall - prevRecall) * ((double)tp / seen);
            prevRecall = recall;
            i = j + 1;
        }
        return ap;
    }

    public static double BalancedAccuracy(IReadOnlyList<double> p, IReadOnlyList<bool> y, double threshold)
    {
        int tp = 0, fn = 0, tn = 0, fp = 0;
        for (int i = 0; i < p.Count; i++)
        {
            bool pred = p[i] >= threshold;
            if (y[i]) { if (pred) tp++; else fn++; }
            else { if (pred) fp++; else tn++; }
        }
        double tpr = tp + fn > 0 ? (double)tp / (tp + fn) : 0;
        double tnr = tn + fp > 0 ? (double)tn / (tn + fp) : 0;
        return (tpr + tnr) / 2;
    }

    /// <summary>Baseline that sees no sensor value: the exponentially weighted fail rate of the labels received so far.</summary>
    public static double[] LabelsOnly(IReadOnlyList<bool> failed, int labelDelay, double prior, double alpha = 0.05)
    {
        ArgumentNullException.ThrowIfNull(failed);
        var p = new double[failed.Count];
        double rate = prior;
        for (int t = 0; t < failed.Count; t++)
        {
            p[t] = rate;
            int learn = t - labelDelay;
            if (learn >= 0) rate = (1 - alpha) * rate + alpha * (failed[learn] ? 1 : 0);
        }
        return p;
    }
}
