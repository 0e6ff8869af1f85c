using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Twin.Tests.Anomaly;

/// <summary>The adaptive-resonance detector on synthetic series: faults after a periodic regime score high, the regime itself settles low, memory stays fixed.</summary>
public sealed class ResonanceDetectorTests
{
    private const int Period = 60;
    private const int Fault = 2400;
    private const long Minute = 60_000;

    private static double Gaussian(Random rng) => Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2.0 * Math.PI * rng.NextDouble());

    /// <summary>A daily-like wave (period 60 samples) with a little noise: the regime the detector must learn.</summary>
    private static double[] Periodic(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(i => 50 + (20 * Math.Sin(2 * Math.PI * i / Period)) + (0.3 * Gaussian(rng))).ToArray();
    }

    private static double[] Run(ResonanceDetector d, double[] values)
    {
        var scores = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            scores[i] = d.Update(values[i]);
            Assert.InRange(scores[i], 0.0, 1.0);
        }

        return scores;
    }

    private static double Peak(double[] scores, int from, int to) => scores.Skip(from).Take(to - from).Max();

    private static int Nonzero(double[] scores, int from, int to) => scores.Skip(from).Take(to - from).Count(s => s > 0);

    private static string Around(double[] scores, int from, int count) =>
        string.Join(' ', Enumerable.Range(from, count).Where(i => scores[i] > 0).Select(i => $"{i}:{scores[i]:F2}"));

    [Fact]
    public void A_steady_periodic_series_settles_low()
    {
        var d = new ResonanceDetector();
        var s = Run(d, Periodic(6000, 1));

        Assert.True(d.Learned);
        // Nothing during the learning period; afterwards new kinds of category become rare as the wave is learned.
        Assert.Equal(0, Nonzero(s, 0, 600));
        Assert.True(Nonzero(s, 3000, 6000) <= 2, $"late scores: {Around(s, 3000, 3000)}");
        Assert.True(d.LowerVigilance > 0 && d.LowerVigilance <= d.UpperVigilance, $"vigilances {d.LowerVigilance} / {d.UpperVigilance}");
    }

    [Fact]
    public void A_spike_after_a_periodic_regime_scores_high()
    {
        var v = Periodic(3000, 2);
        var clean = Run(new ResonanceDetector(), v);
        v[Fault] += 60;
        var d = new ResonanceDetector();
        var s = Run(d, v);

        var peak = Peak(s, Fault, Fault + (2 * d.Step) + 1);
        Assert.True(peak >= 0.5, $"peak {peak}; scores: {Around(s, Fault - 50, 100)}");
        Assert.True(peak > Peak(clean, 1500, 3000), $"spike {peak} vs clean {Peak(clean, 1500, 3000)}");
    }

    [Fact]
    public void A_level_shift_after_a_periodic_regime_scores_high()
    {
        var v = Periodic(3000, 3);
        for (var i = Fault; i < v.Length; i++)
        {
            v[i] += 45;
        }

        var d = new ResonanceDetector();
        var s = Run(d, v);

        var peak = Peak(s, Fault, Fault + (3 * d.Step) + 1);
        Assert.True(peak >= 0.5, $"peak {peak}; scores: {Around(s, Fault - 50, 150)}");
    }

    [Fact]
    public void A_new_pattern_within_the_usual_range_scores_high()
    {
        // The wave turns into a square wave of the same amplitude and period: no new value, only a new shape.
        var v = Periodic(3000, 4);
        for (var i = Fault; i < v.Length; i++)
        {
            v[i] = 50 + (20 * Math.Sign(Math.Sin(2 * Math.PI * i / Period)));
        }

        var d = new ResonanceDetector();
        var s = Run(d, v);

        var peak = Peak(s, Fault, Fault + Period);
        Assert.True(peak >= 0.3, $"peak {peak}; scores: {Around(s, Fault - 50, 150)}");
        Assert.True(peak > Peak(s, 1500, Fault), $"new pattern {peak} vs regime {Peak(s, 1500, Fault)}");
    }

    [Fact]
    public void A_range_known_in_advance_is_kept_and_non_finite_values_are_skipped()
    {
        // ARTime's protocol (offline comparison only): the range is given, so the spike lands inside it instead of widening it.
        var v = Periodic(3000, 8);
        v[Fault] += 60;
        var d = new ResonanceDetector(knownRange: (v.Min(), v.Max()));
        var s = Run(d, v);
        Assert.True(Peak(s, Fault, Fault + (2 * d.Step) + 1) >= 0.3, $"scores: {Around(s, Fault - 50, 100)}");

        var e = new ResonanceDetector();
        Assert.Equal(0.0, e.Update(double.NaN));
        Assert.Equal(0.0, e.Update(double.PositiveInfinity));
        Assert.Equal(Run(new ResonanceDetector(), v), Run(e, v));
    }

    [Fact]
    public void After_a_range_widening_spike_the_learned_regime_is_still_recognised_with_rescaling()
    {
        // One huge spike triples the range; without rescaling every learned category is stale in the new scale and the
        // ordinary wave afterwards keeps producing new kinds of pattern.
        var v = Periodic(4000, 9);
        v[1500] += 120;
        var rescaling = new ResonanceDetector(rescale: true);
        var staying = new ResonanceDetector(rescale: false);
        var rescaled = Run(rescaling, v);
        Run(staying, v);

        Assert.True(Nonzero(rescaled, 1600, 4000) <= 2, $"rescaled: {Around(rescaled, 1600, 2400)}");
        Assert.True(rescaling.Categories < staying.Categories, $"categories: rescaled {rescaling.Categories} vs stale {staying.Categories}");
        Assert.True(Peak(rescaled, 1500, 1510) >= 0.5, $"spike: {Around(rescaled, 1490, 30)}");
    }

    [Theory]
    [InlineData(1500, 0.05)]   // the range is reached after the learning period (EndOfProbation is replayed)
    [InlineData(300, 0.0)]     // within the learning period, replaying on every widening
    public void After_a_replay_the_scores_are_those_of_a_detector_given_the_new_range_in_advance(int at, double widening)
    {
        // A dip and then a spike set the series' final range; nothing leaves it afterwards. With a ring holding the whole
        // history the replay rebuilds exactly the state of a detector that knew this range from the first sample, so from
        // the spike on the scores are equal, bit for bit; the rescaling detector only approximates that state.
        var v = Periodic(6000, 11);
        v[at - 200] -= 120;
        v[at] += 120;
        v[4000] += 80;  // a later anomaly inside the range, so that the equal scores include non-zero ones
        var replaying = new ResonanceDetector(replayBlocks: 4096, replayWidening: widening);
        var known = new ResonanceDetector(knownRange: (v.Min(), v.Max()));
        var rescaling = new ResonanceDetector();
        var r = Run(replaying, v);
        var k = Run(known, v);
        Run(rescaling, v);

        Assert.True(replaying.Replays >= 2, $"replays {replaying.Replays}");
        Assert.Equal(k.Skip(at), r.Skip(at));
        Assert.Equal(known.Categories, replaying.Categories);
        Assert.Equal(known.LowerVigilance, replaying.LowerVigilance);
        Assert.True(Nonzero(r, at, v.Length) > 0, $"replayed: {Around(r, at, v.Length - at)}");
        Assert.NotEqual(known.Categories, rescaling.Categories);   // what the affine rescaling learned is not that state
    }

    [Fact]
    public void A_replay_with_a_ring_shorter_than_the_history_restarts_from_the_ring()
    {
        // The ring holds the last 200 blocks (1,400 samples): the replay at the spike (block 429) learns as if the series had
        // begun at the ring's first block, which is what a detector given the new range and fed only those samples does.
        // The series is constant within each block of 7, so that a block's representative does not depend on the moving
        // average that the replaying detector carries over from the blocks before its ring.
        const int spike = 3000;
        var w = Periodic(800, 12);
        var v = Enumerable.Range(0, 5600).Select(i => w[i / 7]).ToArray();
        v[1000] -= 120;   // before the ring: sets the low end of the range
        v[spike] += 120;
        v[4500] += 80;
        var d = new ResonanceDetector(replayBlocks: 200);
        var r = Run(d, v);

        var block = (spike / d.Step) + 1;      // the block holding the spike (1-based)
        var from = (block - 1 - 200) * d.Step; // first sample of the ring's oldest block
        var fresh = new ResonanceDetector(knownRange: (v.Min(), v.Max()));
        var f = Run(fresh, v.Skip(from).ToArray());

        Assert.Equal(200, d.ReplayBlocks);
        Assert.True(d.Replays >= 2, $"replays {d.Replays}");
        Assert.True(from > 1000);
        Assert.Equal(f.Skip(spike - from), r.Skip(spike));
        Assert.Equal(fresh.Categories, d.Categories);
        Assert.True(Nonzero(r, spike, v.Length) > 0, $"replayed: {Around(r, spike, v.Length - spike)}");
    }

    [Fact]
    public void Replay_off_keeps_the_rescaling_detector_and_the_ring_is_its_only_extra_memory()
    {
        var v = Periodic(4000, 13);
        v[1500] += 120;
        Assert.Equal(Run(new ResonanceDetector(), v), Run(new ResonanceDetector(rescale: true, replayBlocks: null), v));

        var plain = new ResonanceDetector();
        var ring = new ResonanceDetector(replayBlocks: 1024);
        Assert.Equal(plain.ApproximateBytes + (8 * 1024), ring.ApproximateBytes);
        Assert.Equal(85, new ResonanceDetector(replayBlocks: 0).ReplayBlocks);   // 600 samples in blocks of 7
        Assert.Equal(0, plain.ReplayBlocks);
    }

    [Fact]
    public void Replay_allocates_nothing()
    {
        var options = AnomalyDetectorOptions.Default.With("algorithm", "max").With("resonance_replay", "true")
            .With("resonance_replay_blocks", "1024").With("resonance_replay_widening", "0.02");
        var d = new StreamingAnomalyDetector(options);
        var v = Periodic(12_000, 14);
        for (var i = 0; i < v.Length; i++)
        {
            v[i] += i / 200.0;   // a slow rise keeps widening the range (replays before and after the ring fills)
        }

        v[8000] += 200;
        d.Update(0, v[0]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 1; i < v.Length; i++)
        {
            d.Update(i * Minute, v[i]);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(d.Resonance!.Replays > 5, $"replays {d.Resonance.Replays}");
        Assert.True(d.Resonance.Learned);
    }

    [Fact]
    public void Memory_stays_fixed_when_the_categories_fill_up()
    {
        var d = new ResonanceDetector(capacity: 8);
        var bytes = d.ApproximateBytes;
        var rng = new Random(5);

        // White noise keeps producing new kinds of pattern: the eight categories fill and are then recycled.
        var nonzero = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var score = d.Update(rng.NextDouble() * 100);
            Assert.InRange(score, 0.0, 1.0);
            nonzero += score > 0 ? 1 : 0;
        }

        Assert.Equal(8, d.Categories);
        Assert.Equal(bytes, d.ApproximateBytes);
        Assert.True(nonzero > 0, "a full network still scores new patterns");
        Assert.True(new ResonanceDetector(capacity: 512).ApproximateBytes > bytes);
    }

    [Fact]
    public void Update_allocates_nothing_including_the_end_of_the_learning_period()
    {
        var d = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with { Algorithm = AnomalyAlgorithm.Max });
        var v = Periodic(10_000, 6);
        v[8000] += 60;
        d.Update(0, v[0]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var peak = 0.0;
        for (var i = 1; i < v.Length; i++)
        {
            peak = Math.Max(peak, d.Update(i * Minute, v[i]));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(d.Resonance is { Learned: true });
        Assert.True(peak >= 0.5, $"peak {peak}");
    }

    [Fact]
    public void An_early_stage_watches_a_new_series_before_the_main_stage_has_learned()
    {
        const int spike = 450; // after the early stage's 240 learning samples, before the main stage's 600
        var v = Periodic(3000, 8);
        v[spike] += 60;
        v[Fault] += 60;
        var options = AnomalyDetectorOptions.Default with { Algorithm = AnomalyAlgorithm.Resonance };
        var single = new StreamingAnomalyDetector(options);
        var staged = new StreamingAnomalyDetector(options.With("resonance_early_probation", "240"));
        var alone = new double[v.Length];
        var s = new double[v.Length];
        staged.Update(0, v[0]);
        single.Update(0, v[0]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 1; i < v.Length; i++)
        {
            s[i] = staged.Update(i * Minute, v[i]);
            alone[i] = single.Update(i * Minute, v[i]);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(0.0, Peak(alone, 0, 600));
        var early = Peak(s, spike, spike + 20);
        Assert.True(early >= 0.5, $"early stage peak {early}; scores: {Around(s, spike - 50, 100)}");
        Assert.Equal(0, Nonzero(s, 0, 240));

        // Once the main stage has learned it alone scores, exactly as without the early stage.
        Assert.Equal(alone.Skip(600), s.Skip(600));
        Assert.True(Peak(s, Fault, Fault + 20) >= 0.5, $"main stage peak {Peak(s, Fault, Fault + 20)}");
        Assert.True(staged.ApproximateBytes > single.ApproximateBytes);
    }

    [Fact]
    public void The_algorithm_key_selects_the_detector()
    {
        var v = Periodic(3000, 7);
        v[Fault] += 60;
        var options = AnomalyDetectorOptions.Default.With("algorithm", "resonance").With("resonance_probation", "600").With("resonance_capacity", "128");
        var d = new StreamingAnomalyDetector(options);
        var alone = new ResonanceDetector(capacity: 128);
        for (var i = 0; i < v.Length; i++)
        {
            Assert.Equal(alone.Update(v[i]), d.Update(i * Minute, v[i]));
        }

        Assert.Null(new StreamingAnomalyDetector().Resonance);

        // Max with the residual at full weight: never below the residual detector alone.
        var max = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default.With("algorithm", "max").With("resonance_residual_weight", "1"));
        var residual = new StreamingAnomalyDetector();
        for (var i = 0; i < v.Length; i++)
        {
            Assert.True(max.Update(i * Minute, v[i]) >= residual.Update(i * Minute, v[i]));
        }
    }

    [Fact]
    public void Bad_options_name_their_key()
    {
        static string Parse(string key, string value) => Assert.Throws<FormatException>(() => AnomalyDetectorOptions.Default.With(key, value)).Message;
        static string Invalid(string key, string value) =>
            Assert.Throws<ArgumentException>(() => new StreamingAnomalyDetector(AnomalyDetectorOptions.Default.With(key, value))).Message;

        Assert.Contains("algorithm", Parse("algorithm", "artime"), StringComparison.Ordinal);
        Assert.Contains("resonance_probation", Parse("resonance_probation", "long"), StringComparison.Ordinal);
        Assert.Contains("resonance_window", Invalid("resonance_window", "6"), StringComparison.Ordinal);
        Assert.Contains("resonance_probation", Invalid("resonance_probation", "10"), StringComparison.Ordinal);
        Assert.Contains("resonance_levels", Invalid("resonance_levels", "1"), StringComparison.Ordinal);
        Assert.Contains("resonance_capacity", Invalid("resonance_capacity", "100000"), StringComparison.Ordinal);
        Assert.Contains("resonance_weight", Invalid("resonance_weight", "2"), StringComparison.Ordinal);
        Assert.Contains("resonance_step", Invalid("resonance_step", "-1"), StringComparison.Ordinal);
        Assert.Contains("resonance_early_probation", Invalid("resonance_early_probation", "600"), StringComparison.Ordinal);
        Assert.Contains("resonance_early_probation", Parse("resonance_early_probation", "soon"), StringComparison.Ordinal);
        Assert.Contains("resonance_early_step", Invalid("resonance_early_step", "-2"), StringComparison.Ordinal);
        Assert.Contains("resonance_replay", Parse("resonance_replay", "yes"), StringComparison.Ordinal);
        Assert.Contains("resonance_replay_blocks", Invalid("resonance_replay_blocks", "-1"), StringComparison.Ordinal);
        Assert.Contains("resonance_replay_blocks", Invalid("resonance_replay_blocks", "100000"), StringComparison.Ordinal);
        Assert.Contains("resonance_replay_widening", Invalid("resonance_replay_widening", "-0.1"), StringComparison.Ordinal);
        Assert.Contains("resonance_replay_widening", Parse("resonance_replay_widening", "much"), StringComparison.Ordinal);
        Assert.False(AnomalyDetectorOptions.Default.ResonanceReplay);
        Assert.True(AnomalyDetectorOptions.Default.With("resonance_replay", "true").ResonanceReplay);
        Assert.Equal(AnomalyAlgorithm.Max, AnomalyDetectorOptions.Default.With("algorithm", "Max").Algorithm);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResonanceDetector(window: 12));
    }
}
