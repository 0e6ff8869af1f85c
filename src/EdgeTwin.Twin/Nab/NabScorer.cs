namespace EdgeTwin.Twin.Nab;

/// <summary>One NAB cost profile (SCORING.md table).</summary>
public sealed record NabProfile(string Name, double TpWeight, double FpWeight, double FnWeight)
{
    public static readonly NabProfile Standard = new("standard", 1.0, 0.11, 1.0);
    public static readonly NabProfile RewardLowFp = new("reward_low_FP_rate", 1.0, 0.22, 1.0);
    public static readonly NabProfile RewardLowFn = new("reward_low_FN_rate", 1.0, 0.11, 2.0);

    public static IReadOnlyList<NabProfile> All { get; } = [Standard, RewardLowFp, RewardLowFn];
}

/// <summary>An anomaly window as inclusive row indices into its file.</summary>
public readonly record struct NabWindow(int Left, int Right)
{
    public int Width => Right - Left + 1;
}

/// <summary>One scored file: its anomaly scores (one per row) and its windows.</summary>
public sealed record NabScoredFile(string Name, IReadOnlyList<double> Scores, IReadOnlyList<NabWindow> Windows)
{
    public int Rows => Scores.Count;

    /// <summary>Rows never scored: <c>min(floor(0.15 n), 750)</c>.</summary>
    public int ProbationaryRows => Math.Min((int)Math.Floor(0.15 * Rows), 750);
}

/// <summary>The corpus result for one profile.</summary>
public sealed record NabProfileResult(NabProfile Profile, double Threshold, double RawScore, double NullScore, double PerfectScore, int TruePositives, int FalseNegatives, int FalsePositives)
{
    public double NormalisedScore => 100.0 * (RawScore - NullScore) / (PerfectScore - NullScore);
}

/// <summary>
/// The NAB rules exactly as SCORING.md states them: windows, the scaled sigmoid, one threshold per profile swept over
/// every distinct score of the whole corpus, normalisation between the null and the perfect detector.
/// </summary>
public static class NabScorer
{
    /// <summary>Scaled sigmoid: <c>2 / (1 + exp(5x)) - 1</c> for x ≤ 3, else -1.</summary>
    public static double ScaledSigmoid(double x) => x > 3.0 ? -1.0 : (2.0 / (1.0 + Math.Exp(5.0 * x))) - 1.0;

    /// <summary>
    /// The sweep score of every row of a file for one profile (what a detection on that row is worth), and for rows inside a
    /// window the window's index (else -1). Probationary rows get <see cref="double.NaN"/>: they count for nothing.
    /// </summary>
    public static (double[] Sweep, int[] WindowOf) RowScores(NabScoredFile file, NabProfile profile)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(profile);
        var n = file.Rows;
        var sweep = new double[n];
        var windowOf = new int[n];
        Array.Fill(windowOf, -1);
        var windows = file.Windows.OrderBy(w => w.Left).ToArray();
        var sMinus1 = ScaledSigmoid(-1.0);
        var next = 0;
        NabWindow? previous = null;
        for (var i = 0; i < n; i++)
        {
            while (next < windows.Length && windows[next].Right < i)
            {
                previous = windows[next];
                next++;
            }

            if (next < windows.Length && windows[next].Left <= i)
            {
                var w = windows[next];
                var x = -(double)(w.Right - i + 1) / w.Width;
                sweep[i] = ScaledSigmoid(x) * profile.TpWeight / sMinus1;
                windowOf[i] = next;
            }
            else if (previous is { } p)
            {
                var x = Math.Abs(p.Right - i) / (double)Math.Max(p.Width - 1, 1);
                sweep[i] = ScaledSigmoid(x) * profile.FpWeight;
            }
            else
            {
                sweep[i] = -profile.FpWeight;
            }
        }

        for (var i = 0; i < Math.Min(file.ProbationaryRows, n); i++)
        {
            sweep[i] = double.NaN;
        }

        return (sweep, windowOf);
    }

    /// <summary>Raw score of the corpus at one threshold (a row is detected when its score ≥ threshold).</summary>
    public static double RawScore(IReadOnlyList<NabScoredFile> files, NabProfile profile, double threshold)
    {
        ArgumentNullException.ThrowIfNull(files);
        var total = 0.0;
        foreach (var file in files)
        {
            var (sweep, windowOf) = RowScores(file, profile);
            var best = new double[file.Windows.Count];
            var hit = new bool[file.Windows.Count];
            for (var i = 0; i < file.Rows; i++)
            {
                if (double.IsNaN(sweep[i]) || file.Scores[i] < threshold)
                {
                    continue;
                }

                var w = windowOf[i];
                if (w < 0)
                {
                    total += sweep[i];
                }
                else if (!hit[w] || sweep[i] > best[w])
                {
                    hit[w] = true;
                    best[w] = sweep[i];
                }
            }

            for (var w = 0; w < best.Length; w++)
            {
                total += hit[w] ? best[w] : -profile.FnWeight;
            }
        }

        return total;
    }

    /// <summary>
    /// Sweeps every distinct score of the corpus as the threshold (plus "above every score", the null detector) and keeps
    /// the one with the largest raw score. O(N log N): rows are visited once in decreasing score order.
    /// </summary>
    public static NabProfileResult Score(IReadOnlyList<NabScoredFile> files, NabProfile profile)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(profile);
        var windowCount = files.Sum(f => f.Windows.Count);
        var nullScore = -profile.FnWeight * windowCount;
        var perfect = profile.TpWeight * windowCount;

        // Every scored row with its file-global window slot.
        var rows = new List<(double Score, double Sweep, int Window)>();
        var slot = 0;
        foreach (var file in files)
        {
            var (sweep, windowOf) = RowScores(file, profile);
            for (var i = 0; i < file.Rows; i++)
            {
                if (!double.IsNaN(sweep[i]))
                {
                    rows.Add((file.Scores[i], sweep[i], windowOf[i] < 0 ? -1 : slot + windowOf[i]));
                }
            }

            slot += file.Windows.Count;
        }

        rows.Sort((a, b) => b.Score.CompareTo(a.Score));
        var best = new double[windowCount];
        var hit = new bool[windowCount];
        var raw = nullScore;
        var bestRaw = nullScore;
        var bestThreshold = double.PositiveInfinity;
        int tp = 0, fp = 0, bestTp = 0, bestFp = 0;
        for (var k = 0; k < rows.Count;)
        {
            var threshold = rows[k].Score;
            for (; k < rows.Count && rows[k].Score == threshold; k++)
            {
                var (_, s, w) = rows[k];
                if (w < 0)
                {
                    raw += s;
                    fp++;
                }
                else if (!hit[w])
                {
                    hit[w] = true;
                    best[w] = s;
                    raw += s + profile.FnWeight;
                    tp++;
                }
                else if (s > best[w])
                {
                    raw += s - best[w];
                    best[w] = s;
                }
            }

            if (raw > bestRaw)
            {
                bestRaw = raw;
                bestThreshold = threshold;
                bestTp = tp;
                bestFp = fp;
            }
        }

        return new NabProfileResult(profile, bestThreshold, bestRaw, nullScore, perfect, bestTp, windowCount - bestTp, bestFp);
    }
}
