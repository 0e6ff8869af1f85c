using EdgeTwin.Twin.Anomaly;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Twin.Tests.Anomaly;

/// <summary>
/// A detector saved and read back must go on exactly as the one that never stopped: the same score, bit for bit, for
/// every later sample. That checks the codec saves everything the detector learned, for every part the options switch on.
/// </summary>
public sealed class DetectorStateCodecTests
{
    private const long Minute = 60_000;
    private static readonly long T0 = new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    public static TheoryData<string> Variants => ["residual", "novelty", "resonance", "resonance-replay-early", "counter", "split-likelihood"];

    private static AnomalyDetectorOptions Options(string variant) => variant switch
    {
        "residual" => AnomalyDetectorOptions.Default,
        "novelty" => AnomalyDetectorOptions.Default with { NoveltyWeight = 0.5, NoveltyDirect = 0.3, NoveltyLikelihood = 0.2 },
        "resonance" => AnomalyDetectorOptions.Default with { Algorithm = AnomalyAlgorithm.Max, ResonanceProbation = 200 },
        "resonance-replay-early" => AnomalyDetectorOptions.Default with { Algorithm = AnomalyAlgorithm.Max, ResonanceProbation = 300, ResonanceReplay = true, ResonanceEarlyProbation = 100, ResonanceEarlyStep = 3 },
        "counter" => AnomalyDetectorOptions.Default with { IsCounter = true },
        "split-likelihood" => AnomalyDetectorOptions.Default with { SplitLikelihood = true, InstantWeight = 0.3, SuppressionFactor = 0.5 },
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };

    /// <summary>Daily load with noise, a level shift, a spike, a flat stretch and (for counters) a wrap.</summary>
    private static double[] Series(int length, int seed, bool counter)
    {
        var rng = new Random(seed);
        var values = new double[length];
        var total = 0.0;
        for (var i = 0; i < length; i++)
        {
            var v = 50 + (10 * Math.Sin(2 * Math.PI * i / 1440.0)) + rng.NextDouble() + (i > length / 2 ? 8 : 0) + (i == length / 3 ? 40 : 0);
            if (i > 2 * length / 3 && i < (2 * length / 3) + 60)
            {
                v = 55;
            }

            total = counter && i == 3 * length / 4 ? 0 : total + Math.Max(0, v);
            values[i] = counter ? total : v;
        }

        return values;
    }

    private static StreamingAnomalyDetector RoundTrip(StreamingAnomalyDetector detector, AnomalyDetectorOptions options)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            DetectorStateCodec.Write(w, detector);
        }

        Assert.Equal(DetectorStateCodec.Size(detector), buffer.Length);
        buffer.Position = 0;
        using var r = new BinaryReader(buffer);
        var restored = DetectorStateCodec.Read(r, options);
        Assert.Equal(buffer.Length, buffer.Position);
        return restored;
    }

    private static void AssertContinuesIdentically(string variant, int length, int split, int seed)
    {
        var options = Options(variant);
        var values = Series(length, seed, options.IsCounter);
        var unbroken = new StreamingAnomalyDetector(options);
        var restarted = new StreamingAnomalyDetector(options);
        for (var i = 0; i < split; i++)
        {
            unbroken.Update(T0 + (i * Minute), values[i]);
            restarted.Update(T0 + (i * Minute), values[i]);
        }

        restarted = RoundTrip(restarted, options);
        Assert.Equal(unbroken.Count, restarted.Count);
        for (var i = split; i < length; i++)
        {
            var expected = unbroken.Update(T0 + (i * Minute), values[i]);
            var actual = restarted.Update(T0 + (i * Minute), values[i]);
            Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual),
                $"{variant}: sample {i} (restored after {split}) scored {actual:R}, the detector that never stopped {expected:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void A_restored_detector_scores_every_later_sample_as_the_one_that_never_stopped(string variant)
    {
        // After warm-up and probation, mid-episode (the spike at length/3 is followed by suppression), and before any sample.
        foreach (var split in new[] { 0, 1, 120, 1001, 1003, 2500 })
        {
            AssertContinuesIdentically(variant, 4000, split, seed: 7);
        }
    }

    [Property(MaxTest = 40)]
    public Property Any_split_of_any_series_continues_identically(PositiveInt seed, NonNegativeInt splitAt, bool counter)
    {
        var length = 1500;
        var split = splitAt.Get % length;
        AssertContinuesIdentically(counter ? "counter" : "resonance-replay-early", length, split, seed.Get);
        return true.ToProperty();
    }

    [Fact]
    public void State_saved_under_other_options_is_refused_with_the_field_that_differs()
    {
        var saved = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with { Levels = 12 });
        saved.Update(T0, 1.0);
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            DetectorStateCodec.Write(w, saved);
        }

        buffer.Position = 0;
        using var r = new BinaryReader(buffer);
        var e = Assert.Throws<InvalidDataException>(() => DetectorStateCodec.Read(r, AnomalyDetectorOptions.Default with { Levels = 16 }));
        Assert.Contains("StreamingAnomalyDetector._levels", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_state_is_an_end_of_stream_not_a_half_restored_detector()
    {
        var saved = new StreamingAnomalyDetector(Options("resonance"));
        foreach (var (v, i) in Series(500, 1, counter: false).Select((v, i) => (v, i)))
        {
            saved.Update(T0 + (i * Minute), v);
        }

        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            DetectorStateCodec.Write(w, saved);
        }

        using var truncated = new MemoryStream(buffer.ToArray()[..(int)(buffer.Length / 2)]);
        using var r = new BinaryReader(truncated);
        Assert.Throws<EndOfStreamException>(() => DetectorStateCodec.Read(r, Options("resonance")));
    }

    [Fact]
    public void The_options_fingerprint_ignores_the_threshold_only()
    {
        var d = AnomalyDetectorOptions.Default;
        Assert.Equal(DetectorStateCodec.OptionsFingerprint(d), DetectorStateCodec.OptionsFingerprint(d with { Threshold = 0.9 }));
        Assert.NotEqual(DetectorStateCodec.OptionsFingerprint(d), DetectorStateCodec.OptionsFingerprint(d with { WarmUpSamples = 151 }));
        Assert.NotEqual(DetectorStateCodec.OptionsFingerprint(d), DetectorStateCodec.OptionsFingerprint(d with { SlowAlpha = 0.0100000001 }));
        Assert.NotEqual(DetectorStateCodec.OptionsFingerprint(d), DetectorStateCodec.OptionsFingerprint(d with { IsCounter = true }));
        Assert.Equal(32, DetectorStateCodec.LayoutFingerprint.Length);
    }
}
