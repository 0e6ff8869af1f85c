using EdgeTwin.Twin.Nab;

namespace EdgeTwin.Twin.Tests.Nab;

/// <summary>Hand-computed cases from SCORING.md (numbers worked out from its formulas, not from the code).</summary>
public sealed class NabScorerTests
{
    private const double Eps = 1e-9;

    // 100 rows: probation = floor(0.15 * 100) = 15 rows; one window at rows 40..49 (W = 10).
    private static NabScoredFile File(params (int Row, double Score)[] detections)
    {
        var scores = new double[100];
        foreach (var (row, score) in detections)
        {
            scores[row] = score;
        }

        return new NabScoredFile("cat/f.csv", scores, [new NabWindow(40, 49)]);
    }

    [Fact]
    public void Scaled_sigmoid_matches_the_formula()
    {
        Assert.Equal(0.0, NabScorer.ScaledSigmoid(0.0), 12);
        Assert.Equal(0.9866142981514305, NabScorer.ScaledSigmoid(-1.0), 12);
        Assert.Equal(-0.9999993881955461, NabScorer.ScaledSigmoid(3.0), 12);
        Assert.Equal(-1.0, NabScorer.ScaledSigmoid(3.0001), 12);
    }

    [Fact]
    public void Probation_is_fifteen_percent_capped_at_750()
    {
        Assert.Equal(15, new NabScoredFile("a", new double[100], []).ProbationaryRows);
        Assert.Equal(150, new NabScoredFile("a", new double[1003], []).ProbationaryRows);
        Assert.Equal(750, new NabScoredFile("a", new double[22_000], []).ProbationaryRows);
    }

    [Fact]
    public void Detection_at_the_left_edge_of_a_window_earns_the_full_tp_weight()
    {
        Assert.Equal(1.0, NabScorer.RawScore([File((40, 1.0))], NabProfile.Standard, 0.5), 9);
    }

    [Fact]
    public void Detection_in_the_middle_earns_the_scaled_sigmoid_and_only_the_best_row_of_a_window_counts()
    {
        // Row 45: x = -(49 - 45 + 1) / 10 = -0.5 → S(-0.5) / S(-1) = 0.8597925669; row 48: x = -0.2, less. Only the best counts.
        Assert.Equal(0.8597925669097837, NabScorer.RawScore([File((45, 1.0), (48, 1.0))], NabProfile.Standard, 0.5), 9);

        // Row 49 (right edge): x = -0.1 → 0.2482415498.
        Assert.Equal(0.24824154977542992, NabScorer.RawScore([File((49, 1.0))], NabProfile.Standard, 0.5), 9);
    }

    [Fact]
    public void False_positives_cost_fp_weight_before_the_window_and_a_sigmoid_after_it()
    {
        // Row 20: before the first window → -0.11; the window is missed → -1.
        Assert.Equal(-1.11, NabScorer.RawScore([File((20, 1.0))], NabProfile.Standard, 0.5), 9);

        // Row 50: x = |49 - 50| / (10 - 1) = 1/9 → S(1/9) * 0.11 = -0.0297931830; row 59: x = 10/9 → -0.1091527729.
        Assert.Equal(-1.0 - 0.029793183036839352, NabScorer.RawScore([File((50, 1.0))], NabProfile.Standard, 0.5), 9);
        Assert.Equal(-1.0 - 0.10915277288169534, NabScorer.RawScore([File((59, 1.0))], NabProfile.Standard, 0.5), 9);

        // reward_low_FP_rate doubles the cost of a false positive.
        Assert.Equal(-1.22, NabScorer.RawScore([File((20, 1.0))], NabProfile.RewardLowFp, 0.5), 9);
    }

    [Fact]
    public void Probationary_rows_count_for_nothing_and_missed_windows_cost_fn_weight()
    {
        // A detection on row 10 (probation) is ignored; the missed window costs 1 (standard) or 2 (reward_low_FN_rate).
        Assert.Equal(-1.0, NabScorer.RawScore([File((10, 1.0))], NabProfile.Standard, 0.5), 9);
        Assert.Equal(-2.0, NabScorer.RawScore([File((10, 1.0))], NabProfile.RewardLowFn, 0.5), 9);
    }

    [Fact]
    public void Threshold_is_swept_over_the_corpus_and_normalised_between_null_and_perfect()
    {
        // Two files, one window each. Scores: a true detection at 0.9 (left edge of file A's window), a false positive at 0.8
        // before file B's window, B's window detected only at 0.7 on its left edge.
        // threshold 0.9: 1 - 1 = 0;  0.8: 1 - 0.11 - 1 = -0.11;  0.7: 1 - 0.11 + 1 = 1.89 (best);  null: -2.
        var a = File((40, 0.9));
        var b = File((20, 0.8), (40, 0.7));
        var result = NabScorer.Score([a, b], NabProfile.Standard);
        Assert.Equal(0.7, result.Threshold, 12);
        Assert.Equal(1.89, result.RawScore, 9);
        Assert.Equal(-2.0, result.NullScore, 12);
        Assert.Equal(2.0, result.PerfectScore, 12);
        Assert.Equal(100.0 * 3.89 / 4.0, result.NormalisedScore, 9);
        Assert.Equal((2, 0, 1), (result.TruePositives, result.FalseNegatives, result.FalsePositives));

        // Under reward_low_FP_rate the FP costs 0.22: 1 - 0.22 + 1 = 1.78 at 0.7.
        Assert.Equal(1.78, NabScorer.Score([a, b], NabProfile.RewardLowFp).RawScore, 9);
    }

    [Fact]
    public void A_detector_that_never_fires_scores_zero_and_a_perfect_one_scores_hundred()
    {
        var silent = NabScorer.Score([File()], NabProfile.Standard);
        Assert.Equal(0.0, silent.NormalisedScore, 9);

        var perfect = NabScorer.Score([File((40, 1.0))], NabProfile.RewardLowFn);
        Assert.Equal(100.0, perfect.NormalisedScore, 9);
    }

    [Fact]
    public void Sweep_agrees_with_scoring_at_each_threshold()
    {
        var rng = new Random(7);
        var files = Enumerable.Range(0, 5).Select(f =>
        {
            var scores = Enumerable.Range(0, 400).Select(_ => Math.Round(rng.NextDouble(), 2)).ToArray();
            return new NabScoredFile($"c/{f}.csv", scores, [new NabWindow(100 + (f * 10), 140 + (f * 10)), new NabWindow(300, 320)]);
        }).ToList();
        foreach (var profile in NabProfile.All)
        {
            var swept = NabScorer.Score(files, profile);
            var brute = files.SelectMany(f => f.Scores).Distinct().Max(t => NabScorer.RawScore(files, profile, t));
            Assert.Equal(brute, swept.RawScore, 9);
            Assert.Equal(swept.RawScore, NabScorer.RawScore(files, profile, swept.Threshold), 9);
        }
    }
}
