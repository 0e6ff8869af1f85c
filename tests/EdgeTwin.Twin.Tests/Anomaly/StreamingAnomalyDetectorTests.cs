using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Twin.Tests.Anomaly;

/// <summary>Synthetic series with one known fault each; the default configuration (the one tuned on NAB) must find the fault soon after it starts and stay below its threshold on the clean part.</summary>
public sealed class StreamingAnomalyDetectorTests
{
    private const long Minute = 60_000;
    private static readonly long T0 = new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    private static double Gaussian(Random rng) => Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2.0 * Math.PI * rng.NextDouble());

    private static double[] Run(double[] values, long step = Minute, AnomalyDetectorOptions? options = null)
    {
        var d = new StreamingAnomalyDetector(options);
        var scores = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            scores[i] = d.Update(T0 + (i * step), values[i]);
            Assert.InRange(scores[i], 0.0, 1.0);
        }

        return scores;
    }

    private static int FirstAlarm(double[] scores, int from) => Array.FindIndex(scores, from, s => s >= AnomalyDetectorOptions.Default.Threshold);

    private static void AssertAlarm(double[] scores, int from, int within)
    {
        var first = FirstAlarm(scores, from);
        Assert.True(first >= from && first <= from + within,
            $"first alarm at {first}, expected {from}..{from + within}; scores from {from}: {string.Join(' ', scores.Skip(from).Take(Math.Min(within + 5, 40)).Select(x => x.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))}");
    }

    /// <summary>Alarms on the clean part (after warm-up) must be rare: at most one per 1,000 samples.</summary>
    private static void AssertQuiet(double[] scores, int from, int to)
    {
        var alarms = 0;
        for (var i = from; i < to; i++)
        {
            alarms += scores[i] >= AnomalyDetectorOptions.Default.Threshold ? 1 : 0;
        }

        Assert.True(alarms <= Math.Max(1, (to - from) / 1000), $"{alarms} alarms on the clean part ({from}..{to})");
    }

    private static double[] Noise(int n, double mean, double std, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => mean + (std * Gaussian(rng))).ToArray();
    }

    [Fact]
    public void Spike_stands_out_and_is_alarmed_at_once_with_the_outlier_gate()
    {
        var v = Noise(2000, 10, 1, 1);
        v[1500] += 12;

        // The NAB-tuned default averages raw scores over 5 samples (NAB counts isolated spikes in busy series as noise), so
        // a lone spike raises the score without necessarily crossing the threshold; it still stands above all the noise.
        var s = Run(v);
        AssertQuiet(s, 400, 1500);
        var peak = s.Skip(1500).Take(6).Max();
        var typical = s.Skip(400).Take(1100).Average();
        Assert.True(peak > 3 * typical, $"spike peak {peak} not well above the clean part's mean score {typical}");

        // With the outlier gate (site config: outlier_z) the spike itself alarms.
        var gated = Run(v, options: AnomalyDetectorOptions.Default with { OutlierZ = 12 });
        AssertQuiet(gated, 400, 1500);
        AssertAlarm(gated, 1500, 1);
    }

    /// <summary>
    /// With <c>outlier_z</c> set, an outlet current reported in 0.1 A steps, standing on one value for minutes at a 1 s poll,
    /// raised an event at every one-step change (a live 1 s run: most of its events were outlet currents moving by 0.1 A):
    /// the residual scale of a series that stood still is near zero, so one step was a gross outlier. The gate now measures
    /// against at least the series' step; a jump of many steps still passes it at once.
    /// </summary>
    [Fact]
    public void Regression_outlier_z_took_a_one_step_change_of_a_coarse_gauge_for_a_gross_outlier()
    {
        var rng = new Random(7);
        var v = new double[6000];
        var level = 9;
        for (var i = 0; i < v.Length; i++)
        {
            // A random walk in whole steps that moves about once in 300 polls.
            level += rng.Next(300) == 0 ? (rng.Next(2) == 0 ? -1 : 1) : 0;
            level = Math.Clamp(level, 7, 11);
            v[i] = level * 0.1;
        }

        for (var i = 5500; i < v.Length; i++)
        {
            v[i] += 2.2; // 0.5 kW more on the outlet: 22 steps
        }

        // The default detector's own alarms on such a series (the coarse-gauge limit in the README) are the baseline: the
        // outlier gate may not add to them.
        int OneStepAlarms(double[] scores) => Enumerable.Range(400, 5100).Count(i => scores[i] >= AnomalyDetectorOptions.Default.Threshold && Math.Abs(v[i] - v[i - 1]) is > 0 and < 0.15);
        var gated = Run(v, step: 1000, options: AnomalyDetectorOptions.Default with { OutlierZ = 20 });
        var plain = Run(v, step: 1000);
        var steps = Enumerable.Range(400, 5100).Count(i => Math.Abs(v[i] - v[i - 1]) is > 0 and < 0.15);
        Assert.True(OneStepAlarms(gated) <= OneStepAlarms(plain), $"{OneStepAlarms(gated)} of {steps} one-step changes alarmed with outlier_z 20, {OneStepAlarms(plain)} without");
        AssertAlarm(gated, 5500, 0);
    }

    [Fact]
    public void Level_shift_is_found_and_then_learned()
    {
        var v = Noise(4000, 10, 1, 2);
        for (var i = 1500; i < v.Length; i++)
        {
            v[i] += 8;
        }

        var s = Run(v);
        AssertQuiet(s, 400, 1500);
        AssertAlarm(s, 1500, 10);

        // The new level becomes normal: no alarms long after the shift.
        AssertQuiet(s, 2500, 4000);
    }

    [Fact]
    public void Split_likelihood_finds_the_level_shift_and_stays_quiet_on_noise()
    {
        var v = Noise(4000, 10, 1, 2);
        for (var i = 1500; i < v.Length; i++)
        {
            v[i] += 8;
        }

        var options = AnomalyDetectorOptions.Default.With("split_likelihood", "true").With("context_likelihood_weight", "0.9");
        Assert.Equal((true, 0.9), (options.SplitLikelihood, options.ContextLikelihoodWeight));
        var s = Run(v, options: options);
        AssertQuiet(s, 400, 1500);
        AssertAlarm(s, 1500, 10);
        AssertQuiet(s, 2500, 4000);
        Assert.Throws<ArgumentException>(() => new StreamingAnomalyDetector(options with { ContextLikelihoodWeight = 1.5 }));
    }

    [Fact]
    public void Drift_is_found_before_it_is_large()
    {
        var v = Noise(3000, 10, 1, 3);
        for (var i = 1500; i < v.Length; i++)
        {
            v[i] += 0.1 * (i - 1500);
        }

        var s = Run(v);
        AssertQuiet(s, 400, 1500);

        // Within 200 samples the drift is 20 standard deviations; found before that.
        AssertAlarm(s, 1500, 200);
    }

    [Fact]
    public void Flat_lining_sensor_is_found()
    {
        var rng = new Random(4);
        var v = Enumerable.Range(0, 3000).Select(i => 20 + (3 * Math.Sin(i * 2 * Math.PI / 120)) + (0.3 * Gaussian(rng))).ToArray();
        for (var i = 2000; i < v.Length; i++)
        {
            v[i] = v[1999];
        }

        var s = Run(v);
        AssertQuiet(s, 400, 2000);
        AssertAlarm(s, 2000, 40);
    }

    [Fact]
    public void Daily_seasonality_is_learned_and_an_out_of_phase_day_is_found()
    {
        // 5-minute samples, 288 a day; a daily load curve with noise. On day 12 the night is as busy as the day.
        const int PerDay = 288;
        var rng = new Random(5);
        var v = new double[PerDay * 14];
        for (var i = 0; i < v.Length; i++)
        {
            var phase = 2 * Math.PI * (i % PerDay) / PerDay;
            v[i] = 50 + (30 * Math.Sin(phase)) + (2 * Gaussian(rng));
        }

        var faultStart = (PerDay * 12) + (PerDay * 3 / 4);
        for (var i = faultStart; i < faultStart + 60; i++)
        {
            v[i] = 80 + (2 * Gaussian(rng));
        }

        var s = Run(v, step: 5 * Minute);
        AssertQuiet(s, PerDay * 2, faultStart);
        AssertAlarm(s, faultStart, 30);
    }

    [Fact]
    public void Counter_wrap_is_not_an_anomaly_but_a_rate_jump_is()
    {
        // A 32-bit octet counter at ~1000/s with noise, sampled every 10 s; it wraps near sample 1200; the rate quintuples at 2500.
        var rng = new Random(6);
        var options = AnomalyDetectorOptions.Default with { IsCounter = true };
        var d = new StreamingAnomalyDetector(options);
        var counter = (double)uint.MaxValue - (1200 * 10_000.0);
        var scores = new double[3000];
        var wrapped = -1;
        for (var i = 0; i < scores.Length; i++)
        {
            var rate = (i >= 2500 ? 5000 : 1000) + (50 * Gaussian(rng));
            counter += rate * 10;
            if (counter > uint.MaxValue)
            {
                counter -= (double)uint.MaxValue + 1;
                wrapped = i;
            }

            scores[i] = d.Update(T0 + (i * 10_000L), counter);
        }

        Assert.InRange(wrapped, 1100, 1300);
        AssertQuiet(scores, 400, 2500);
        AssertAlarm(scores, 2500, 5);
    }

    /// <summary>An outlet's energy in 0.1 kWh steps, polled every 2 s: <paramref name="kw"/> ± 5 %, stopping at <paramref name="stopAt"/>.</summary>
    private static double[] CoarseEnergyCounter(double kw, int n, int stopAt, int seed)
    {
        var rng = new Random(seed);
        var d = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with { IsCounter = true });
        var energyKwh = 12.34;
        var scores = new double[n];
        for (var i = 0; i < n; i++)
        {
            energyKwh += i >= stopAt ? 0 : kw * (1 + (0.05 * Gaussian(rng))) * 2 / 3600;
            scores[i] = d.Update(T0 + (i * 2_000L), Math.Round(energyKwh, 1));
        }

        return scores;
    }

    [Theory]
    [InlineData(0.17)] // a 170 W server: a step every ~35 min
    [InlineData(1.7)] // a step every ~3.5 min
    public void Regression_every_step_of_a_coarse_energy_counter_was_an_anomaly(double kw)
    {
        // Rates per poll of 0, 0, …, 0.1 kWh / 2 s made each step a spike: an alarm at every step (every outlet of a site).
        for (var seed = 1; seed <= 5; seed++)
        {
            var scores = CoarseEnergyCounter(kw, 20_000, int.MaxValue, seed);
            var alarms = scores.Count(x => x >= AnomalyDetectorOptions.Default.Threshold);
            Assert.True(alarms <= 1, $"seed {seed}: {alarms} alarms in 20,000 polls at {kw} kW");
        }
    }

    [Fact]
    public void A_coarse_counter_that_stops_is_an_anomaly()
    {
        // 5 kW: a 0.1 kWh step every ~36 polls (600 steps learned); the load stops at 22,000. Overdue by twice the usual
        // time, the rate the next step would give is observed, falling.
        var scores = CoarseEnergyCounter(5, 24_000, 22_000, 3);
        AssertQuiet(scores, 0, 22_000);
        AssertAlarm(scores, 22_000, 200);
    }

    [Fact]
    public void Repeats_after_an_alarm_are_suppressed()
    {
        var v = Noise(3000, 10, 1, 7);
        for (var i = 1500; i < v.Length; i++)
        {
            v[i] += i < 1500 || i >= 1540 ? 0 : 8;
        }

        var s = Run(v);
        AssertAlarm(s, 1500, 10);
        var first = FirstAlarm(s, 1500);

        // The level comes back and leaves again within the suppression period: no second alarm.
        Assert.True(s.Skip(first + 1).Take(AnomalyDetectorOptions.Default.SuppressionSamples - 1).All(x => x < AnomalyDetectorOptions.Default.Threshold));
    }

    [Fact]
    public void Non_finite_values_score_zero_and_are_not_learned()
    {
        var d = new StreamingAnomalyDetector();
        for (var i = 0; i < 500; i++)
        {
            d.Update(T0 + (i * Minute), 10 + (i % 2));
        }

        Assert.Equal(0.0, d.Update(T0 + (500 * Minute), double.NaN));
        Assert.Equal(0.0, d.Update(T0 + (501 * Minute), double.PositiveInfinity));
        Assert.Equal(500, d.Count);
    }

    [Fact]
    public void Memory_is_bounded_by_the_configuration_not_the_series()
    {
        var d = new StreamingAnomalyDetector();
        var before = d.ApproximateBytes;
        var rng = new Random(8);
        for (var i = 0; i < 50_000; i++)
        {
            d.Update(T0 + (i * Minute), rng.NextDouble() * 1000);
        }

        Assert.Equal(before, d.ApproximateBytes);
        Assert.True(before < 8192, $"{before} bytes per series");
    }

    [Fact]
    public void Options_parse_from_config_keys_and_reject_bad_values()
    {
        var o = AnomalyDetectorOptions.Default.With("threshold", "0.7").With("counter", "true").With("suppression_samples", "50");
        Assert.Equal((0.7, true, 50), (o.Threshold, o.IsCounter, o.SuppressionSamples));
        Assert.Contains("threshold", Assert.Throws<FormatException>(() => AnomalyDetectorOptions.Default.With("threshold", "high")).Message, StringComparison.Ordinal);
        Assert.Contains("unknown anomaly option", Assert.Throws<FormatException>(() => AnomalyDetectorOptions.Default.With("nope", "1")).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with { Threshold = 2 }));
        foreach (var key in AnomalyDetectorOptions.Keys)
        {
            Assert.Throws<FormatException>(() => AnomalyDetectorOptions.Default.With(key, "not-a-value"));
        }
    }
}
