using EdgeTwin.Core.Config;

namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// The one configuration of <see cref="StreamingAnomalyDetector"/>. Defaults are the figures measured on NAB (README.md);
/// the site config may override a few per series (threshold, counter handling, warm-up).
/// </summary>
public sealed record AnomalyDetectorOptions
{
    public static readonly AnomalyDetectorOptions Default = new();

    /// <summary>Treat the input as a monotonically increasing counter and score its rate per second (wraps and resets are skipped).</summary>
    public bool IsCounter { get; init; }

    /// <summary>Samples learned before any score above zero is emitted.</summary>
    public int WarmUpSamples { get; init; } = 150;

    /// <summary>Smoothing factors of the level predictors (several time scales).</summary>
    public double FastAlpha { get; init; } = 0.5;
    public double MediumAlpha { get; init; } = 0.1;
    public double SlowAlpha { get; init; } = 0.01;

    /// <summary>Smoothing of the residual scale (mean absolute residual) of every predictor.</summary>
    public double ScaleAlpha { get; init; } = 0.0003;

    /// <summary>z at which a residual's raw score reaches one half.</summary>
    public double ResidualZHalf { get; init; } = 3.0;

    /// <summary>Residual z (in mean absolute residuals) below which a residual scores 0.</summary>
    public double ResidualZFloor { get; init; }

    /// <summary>Residual z from which the residual's score is output directly, bypassing the likelihood stage (gross outliers); 0 turns it off.</summary>
    public double OutlierZ { get; init; }

    /// <summary>Value quantisation levels of the contextual component.</summary>
    public int Levels { get; init; } = 12;

    /// <summary>Forgetting per sample of the contextual counts (1/memory in samples).</summary>
    public double ContextForgetting { get; init; } = 1.0 / 3000.0;

    /// <summary>Weight of each component in the raw score (residual, transition context, time-of-day context, flat line).</summary>
    public double ResidualWeight { get; init; } = 0.5;
    public double TransitionWeight { get; init; } = 0.1;
    public double TimeOfDayWeight { get; init; } = 0.5;
    public double FlatLineWeight { get; init; } = 1.0;

    /// <summary>
    /// Separate likelihoods for the residual and the context components (the larger counts, the context one weighted by
    /// <see cref="ContextLikelihoodWeight"/>) instead of one for their mix. Off by default: it did not win on the tuning half of NAB.
    /// </summary>
    public bool SplitLikelihood { get; init; }
    public double ContextLikelihoodWeight { get; init; } = 0.9;

    /// <summary>
    /// Contextual novelty (<see cref="ContextNoveltyDetector"/>, CAD-like): weight in the raw mix, weight of its own output
    /// bypassing the likelihood stage (0 turns either off), quantisation bins, longest context and table slots.
    /// </summary>
    public double NoveltyWeight { get; init; }
    public double NoveltyDirect { get; init; }
    public double NoveltyLikelihood { get; init; }
    public int NoveltyLevels { get; init; } = 8;
    public int NoveltyOrders { get; init; } = 6;
    public int NoveltyCapacity { get; init; } = 1024;

    /// <summary>
    /// Which detector scores the series: <see cref="AnomalyAlgorithm.Residual"/> (the components above, the default),
    /// <see cref="AnomalyAlgorithm.Resonance"/> (<see cref="ResonanceDetector"/>, ARTime-like) or <see cref="AnomalyAlgorithm.Max"/>
    /// (the larger of the two, the resonance score weighted by <see cref="ResonanceWeight"/>).
    /// </summary>
    public AnomalyAlgorithm Algorithm { get; init; } = AnomalyAlgorithm.Residual;

    /// <summary>Resonance detector: blocks per feature window, learning period (samples), quantisation levels, most categories.</summary>
    public int ResonanceWindow { get; init; } = 8;
    public int ResonanceProbation { get; init; } = 600;
    public int ResonanceLevels { get; init; } = 80;
    public int ResonanceCapacity { get; init; } = 256;
    public double ResonanceWeight { get; init; } = 1.0;

    /// <summary>Samples per resonance block (7, the best on the tuning half; ARTime derives about 5 from its learning period); 0 derives it from <see cref="ResonanceProbation"/> (13 windows fill the learning period).</summary>
    public int ResonanceStep { get; init; } = 7;

    /// <summary>Keep the resonance learning period's range (plus a tenth each side) instead of widening it with each new extreme.</summary>
    public bool ResonanceFreezeRange { get; init; }

    /// <summary>When the range widens, re-express the learned categories and the recent window in the new range (instead of leaving them stale).</summary>
    public bool ResonanceRescale { get; init; } = true;

    /// <summary>
    /// When the range has widened by more than <see cref="ResonanceReplayWidening"/> (relative) since the last replay, rebuild
    /// what the resonance detector learned from scratch by re-running the last <see cref="ResonanceReplayBlocks"/> blocks under
    /// the new range (exact when the ring holds the whole history; smaller widenings are rescaled as usual). Off by default.
    /// </summary>
    public bool ResonanceReplay { get; init; }

    /// <summary>Blocks kept for the replay (8 bytes each; 0 or fewer than the learning period's blocks: the learning period's blocks).</summary>
    public int ResonanceReplayBlocks { get; init; } = 4096;

    /// <summary>Relative widening of the range since the last replay that triggers the next one (bounds the replays' CPU).</summary>
    public double ResonanceReplayWidening { get; init; } = 0.10;

    /// <summary>In <see cref="AnomalyAlgorithm.Max"/>, the weight of the residual score once the resonance detector has learned (1 before; 0.5 was the best on the tuning half, with rescaling).</summary>
    public double ResonanceResidualWeight { get; init; } = 0.5;

    /// <summary>
    /// Learning period of an early resonance stage (0 = none): a second, quickly learned detector whose score stands in for
    /// the main one until the main one has learned, so a new series is watched by resonance after this many samples
    /// instead of <see cref="ResonanceProbation"/>. It stops being updated once the main stage has learned.
    /// </summary>
    public int ResonanceEarlyProbation { get; init; }

    /// <summary>Samples per block of the early stage (0 derives it from <see cref="ResonanceEarlyProbation"/>, as for the main stage).</summary>
    public int ResonanceEarlyStep { get; init; }

    /// <summary>Anomaly likelihood: short average of raw scores compared with their long-run distribution.</summary>
    public int ShortWindow { get; init; } = 5;
    public double LongAlpha { get; init; } = 0.00003;
    public double MinLikelihoodStd { get; init; } = 0.01;

    /// <summary>Weight of the likelihood of the single latest raw score (0: only the short average counts).</summary>
    public double InstantWeight { get; init; }

    /// <summary>Score at and above which the detector considers itself alarmed and suppresses repeats.</summary>
    public double AlarmScore { get; init; } = 0.4;

    /// <summary>Samples after an alarm during which scores are multiplied by <see cref="SuppressionFactor"/>.</summary>
    public int SuppressionSamples { get; init; } = 100;
    public double SuppressionFactor { get; init; }

    /// <summary>Default threshold of the agent's anomaly events (score ≥ threshold opens an episode; raised for fast polls when <see cref="ThresholdInterval"/> is set).</summary>
    public double Threshold { get; init; } = 0.4;

    /// <summary>
    /// Off (zero) by default. Else the sampling interval <see cref="Threshold"/> is meant for (e.g. 5m, NAB's data on which
    /// the default was chosen): a faster-polled series gets a raised threshold, for about as few events per day
    /// (<see cref="EventThreshold"/>; fewer false events, and fewer detections, measured in the anomaly README).
    /// </summary>
    public TimeSpan ThresholdInterval { get; init; }

    /// <summary>The keys <see cref="With"/> accepts (site config <c>twin.anomaly</c> and <c>bench nab --set</c>).</summary>
    public static IReadOnlyList<string> Keys { get; } =
    [
        "threshold", "threshold_interval", "counter", "warm_up", "fast_alpha", "medium_alpha", "slow_alpha", "scale_alpha", "residual_z_half", "residual_z_floor", "outlier_z", "levels",
        "context_forgetting", "residual_weight", "transition_weight", "time_of_day_weight", "flat_line_weight", "split_likelihood", "context_likelihood_weight", "short_window",
        "long_alpha", "min_likelihood_std", "instant_weight", "alarm_score", "suppression_samples", "suppression_factor",
        "novelty_weight", "novelty_direct", "novelty_likelihood", "novelty_levels", "novelty_orders", "novelty_capacity",
        "algorithm", "resonance_window", "resonance_probation", "resonance_levels", "resonance_capacity", "resonance_weight", "resonance_step", "resonance_residual_weight", "resonance_freeze_range", "resonance_rescale",
        "resonance_early_probation", "resonance_early_step", "resonance_replay", "resonance_replay_blocks", "resonance_replay_widening",
    ];

    /// <summary>A copy with one option set from its config key; throws <see cref="FormatException"/> naming the key when the value does not parse.</summary>
    public AnomalyDetectorOptions With(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        double D() => double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
            ? d
            : throw new FormatException($"'{key}' must be a number, got '{value}'");
        int I() => int.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var i)
            ? i
            : throw new FormatException($"'{key}' must be an integer, got '{value}'");
        bool B() => bool.TryParse(value, out var b) ? b : throw new FormatException($"'{key}' must be true or false, got '{value}'");
        return key switch
        {
            "threshold" => this with { Threshold = D() },
            "threshold_interval" => this with
            {
                ThresholdInterval = value.Trim() == "0" ? TimeSpan.Zero
                    : Durations.TryParse(value, out var interval) ? interval
                    : throw new FormatException($"'{key}' must be a duration (10s, 5m, 1h) or 0, got '{value}'"),
            },
            "counter" => this with { IsCounter = B() },
            "warm_up" => this with { WarmUpSamples = I() },
            "fast_alpha" => this with { FastAlpha = D() },
            "medium_alpha" => this with { MediumAlpha = D() },
            "slow_alpha" => this with { SlowAlpha = D() },
            "scale_alpha" => this with { ScaleAlpha = D() },
            "residual_z_half" => this with { ResidualZHalf = D() },
            "residual_z_floor" => this with { ResidualZFloor = D() },
            "outlier_z" => this with { OutlierZ = D() },
            "levels" => this with { Levels = I() },
            "context_forgetting" => this with { ContextForgetting = D() },
            "residual_weight" => this with { ResidualWeight = D() },
            "transition_weight" => this with { TransitionWeight = D() },
            "time_of_day_weight" => this with { TimeOfDayWeight = D() },
            "flat_line_weight" => this with { FlatLineWeight = D() },
            "short_window" => this with { ShortWindow = I() },
            "split_likelihood" => this with { SplitLikelihood = B() },
            "context_likelihood_weight" => this with { ContextLikelihoodWeight = D() },
            "long_alpha" => this with { LongAlpha = D() },
            "min_likelihood_std" => this with { MinLikelihoodStd = D() },
            "instant_weight" => this with { InstantWeight = D() },
            "alarm_score" => this with { AlarmScore = D() },
            "suppression_samples" => this with { SuppressionSamples = I() },
            "suppression_factor" => this with { SuppressionFactor = D() },
            "novelty_weight" => this with { NoveltyWeight = D() },
            "novelty_direct" => this with { NoveltyDirect = D() },
            "novelty_likelihood" => this with { NoveltyLikelihood = D() },
            "novelty_levels" => this with { NoveltyLevels = I() },
            "novelty_orders" => this with { NoveltyOrders = I() },
            "novelty_capacity" => this with { NoveltyCapacity = I() },
            "algorithm" => this with
            {
                Algorithm = value.Trim().ToLowerInvariant() switch
                {
                    "residual" => AnomalyAlgorithm.Residual,
                    "resonance" => AnomalyAlgorithm.Resonance,
                    "max" => AnomalyAlgorithm.Max,
                    _ => throw new FormatException($"'{key}' must be residual, resonance or max, got '{value}'"),
                },
            },
            "resonance_window" => this with { ResonanceWindow = I() },
            "resonance_probation" => this with { ResonanceProbation = I() },
            "resonance_levels" => this with { ResonanceLevels = I() },
            "resonance_capacity" => this with { ResonanceCapacity = I() },
            "resonance_weight" => this with { ResonanceWeight = D() },
            "resonance_step" => this with { ResonanceStep = I() },
            "resonance_freeze_range" => this with { ResonanceFreezeRange = B() },
            "resonance_rescale" => this with { ResonanceRescale = B() },
            "resonance_residual_weight" => this with { ResonanceResidualWeight = D() },
            "resonance_early_probation" => this with { ResonanceEarlyProbation = I() },
            "resonance_early_step" => this with { ResonanceEarlyStep = I() },
            "resonance_replay" => this with { ResonanceReplay = B() },
            "resonance_replay_blocks" => this with { ResonanceReplayBlocks = I() },
            "resonance_replay_widening" => this with { ResonanceReplayWidening = D() },
            _ => throw new FormatException($"unknown anomaly option '{key}' (known: {string.Join(", ", Keys)})"),
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> with the first of <see cref="Problems"/>.</summary>
    public void Validate()
    {
        if (Problems() is [var first, ..])
        {
            throw new ArgumentException(first.Message);
        }
    }

    /// <summary>
    /// Every option out of range, each with the config keys it involves (the first one set in a mapping is where the
    /// site config's error points), so <c>edgetwin check</c> names the key and not the enclosing section.
    /// </summary>
    public IReadOnlyList<OptionProblem> Problems()
    {
        var problems = new List<OptionProblem>();
        void Check(bool ok, string what, params string[] keys)
        {
            if (!ok)
            {
                problems.Add(new OptionProblem(keys, $"anomaly detector option {what}"));
            }
        }

        Check(WarmUpSamples >= 0, "warm_up must be >= 0", "warm_up");
        Check(FastAlpha is > 0 and <= 1, "fast_alpha must be in (0, 1]", "fast_alpha");
        Check(MediumAlpha is > 0 and <= 1, "medium_alpha must be in (0, 1]", "medium_alpha");
        Check(SlowAlpha is > 0 and <= 1, "slow_alpha must be in (0, 1]", "slow_alpha");
        Check(ScaleAlpha is > 0 and <= 1, "scale_alpha must be in (0, 1]", "scale_alpha");
        Check(Levels is >= 2 and <= 64, "levels must be in 2..64", "levels");
        Check(ShortWindow is >= 1 and <= 64, "short_window must be in 1..64", "short_window");
        Check(LongAlpha is > 0 and < 1, "long_alpha must be in (0, 1)", "long_alpha");
        Check(Threshold is > 0 and <= 1, "threshold must be in (0, 1]", "threshold");
        Check(ThresholdInterval >= TimeSpan.Zero && ThresholdInterval <= TimeSpan.FromDays(1), "threshold_interval must be in 0..1d (0: the threshold as is at every poll interval)", "threshold_interval");
        Check(AlarmScore is > 0 and <= 1, "alarm_score must be in (0, 1]", "alarm_score");
        Check(ResidualWeight >= 0, "residual_weight must be >= 0", "residual_weight");
        Check(TransitionWeight >= 0, "transition_weight must be >= 0", "transition_weight");
        Check(TimeOfDayWeight >= 0, "time_of_day_weight must be >= 0", "time_of_day_weight");
        Check(FlatLineWeight >= 0, "flat_line_weight must be >= 0", "flat_line_weight");
        Check(ResidualWeight + TransitionWeight + TimeOfDayWeight > 0, "residual_weight, transition_weight and time_of_day_weight must not all be zero",
            "residual_weight", "transition_weight", "time_of_day_weight");
        Check(ContextForgetting is > 0 and < 0.5, "context_forgetting must be in (0, 0.5)", "context_forgetting");
        Check(ContextLikelihoodWeight is >= 0 and <= 1, "context_likelihood_weight must be in [0, 1]", "context_likelihood_weight");
        Check(InstantWeight is >= 0 and <= 1, "instant_weight must be in [0, 1]", "instant_weight");
        Check(ResidualZHalf > 0, "residual_z_half must be > 0", "residual_z_half");
        Check(ResidualZFloor >= 0, "residual_z_floor must be >= 0", "residual_z_floor");
        Check(OutlierZ >= 0, "outlier_z must be >= 0", "outlier_z");
        Check(MinLikelihoodStd > 0, "min_likelihood_std must be > 0", "min_likelihood_std");
        Check(NoveltyWeight >= 0, "novelty_weight must be >= 0", "novelty_weight");
        Check(NoveltyDirect is >= 0 and <= 1, "novelty_direct must be in [0, 1]", "novelty_direct");
        Check(NoveltyLikelihood is >= 0 and <= 1, "novelty_likelihood must be in [0, 1]", "novelty_likelihood");
        Check(NoveltyLevels is >= 2 and <= 250, "novelty_levels must be in 2..250", "novelty_levels");
        Check(NoveltyOrders is >= 1 and <= 32, "novelty_orders must be in 1..32", "novelty_orders");
        Check(NoveltyCapacity is >= ContextNoveltyDetector.Ways and <= 65536, $"novelty_capacity must be in {ContextNoveltyDetector.Ways}..65536", "novelty_capacity");
        Check(Enum.IsDefined(Algorithm), "algorithm must be residual, resonance or max", "algorithm");
        Check(ResonanceWindow is 4 or 8 or 16 or 32, "resonance_window must be 4, 8, 16 or 32", "resonance_window");
        Check(ResonanceProbation >= 2 * ResonanceWindow && ResonanceProbation <= 100_000, "resonance_probation must be in 2 x resonance_window..100000", "resonance_probation", "resonance_window");
        Check(ResonanceLevels is >= 2 and <= 1000, "resonance_levels must be in 2..1000", "resonance_levels");
        Check(ResonanceCapacity is >= 2 and <= 4096, "resonance_capacity must be in 2..4096", "resonance_capacity");
        Check(ResonanceWeight is >= 0 and <= 1, "resonance_weight must be in [0, 1]", "resonance_weight");
        Check(ResonanceResidualWeight is >= 0 and <= 1, "resonance_residual_weight must be in [0, 1]", "resonance_residual_weight");
        Check(ResonanceStep is >= 0 and <= 1000, "resonance_step must be in 0..1000 (0: derived from resonance_probation)", "resonance_step");
        Check(ResonanceEarlyProbation == 0 || (ResonanceEarlyProbation >= 2 * ResonanceWindow && ResonanceEarlyProbation < ResonanceProbation),
            "resonance_early_probation must be 0 (off) or in 2 x resonance_window..resonance_probation - 1", "resonance_early_probation", "resonance_probation", "resonance_window");
        Check(ResonanceEarlyStep is >= 0 and <= 1000, "resonance_early_step must be in 0..1000 (0: derived from resonance_early_probation)", "resonance_early_step");
        Check(ResonanceReplayBlocks is >= 0 and <= 65536, "resonance_replay_blocks must be in 0..65536 (0: the learning period's blocks)", "resonance_replay_blocks");
        Check(ResonanceReplayWidening is >= 0 and <= 1, "resonance_replay_widening must be in [0, 1]", "resonance_replay_widening");
        Check(SuppressionSamples >= 0, "suppression_samples must be >= 0", "suppression_samples");
        Check(SuppressionFactor is >= 0 and <= 1, "suppression_factor must be in [0, 1]", "suppression_factor");
        return problems;
    }
}

/// <summary>One out-of-range option: the config keys involved (most specific first) and the message.</summary>
public sealed record OptionProblem(IReadOnlyList<string> Keys, string Message);

/// <summary>The scoring algorithm of <see cref="StreamingAnomalyDetector"/> (site config key <c>algorithm</c>).</summary>
public enum AnomalyAlgorithm
{
    /// <summary>Prediction residuals, quantised context, flat line, anomaly likelihood (the default).</summary>
    Residual,

    /// <summary>Adaptive resonance (<see cref="ResonanceDetector"/>) only.</summary>
    Resonance,

    /// <summary>The larger of the residual score and the weighted resonance score.</summary>
    Max,
}
