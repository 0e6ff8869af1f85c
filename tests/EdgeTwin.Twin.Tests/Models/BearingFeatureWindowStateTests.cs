using EdgeTwin.Twin.Models.Maintenance;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>A machine's feature history exported and imported goes on exactly as the one that never stopped.</summary>
public sealed class BearingFeatureWindowStateTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(30);
    private static readonly long T0 = new DateTimeOffset(2026, 3, 2, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    /// <summary>A sample of each feature every 30 s; the machine stands still for a while now and then; wear raises vibration.</summary>
    private static IEnumerable<(BearingFeature Feature, double Value, long Ms)> Samples(int count, int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var ms = T0 + (i * 30_000L);
            var atRest = (i / 200) % 7 == 3;
            yield return (BearingFeature.VibrationRms, atRest ? 0.1 : 1.5 + (i * 1e-4) + rng.NextDouble(), ms);
            yield return (BearingFeature.Kurtosis, 3 + rng.NextDouble(), ms);
            yield return (BearingFeature.BearingTemperature, 45 + (5 * rng.NextDouble()), ms);
        }
    }

    private static void AssertContinuesIdentically(int count, int split, int seed, int capacity)
    {
        var samples = Samples(count, seed).ToList();
        var unbroken = new BearingFeatureWindow(Interval, capacity);
        var before = new BearingFeatureWindow(Interval, capacity);
        foreach (var (f, v, ms) in samples.Take(split * 3))
        {
            unbroken.Add(f, v, ms);
            before.Add(f, v, ms);
        }

        var restarted = new BearingFeatureWindow(Interval, capacity);
        restarted.Import(before.Export());
        Assert.Equal(unbroken.Count, restarted.Count);
        Assert.Equal(unbroken.LastIntervalEndMs, restarted.LastIntervalEndMs);
        var expected = new float[48 * BearingFeatureWindow.Features];
        var actual = new float[48 * BearingFeatureWindow.Features];
        foreach (var (f, v, ms) in samples.Skip(split * 3))
        {
            Assert.Equal(unbroken.Add(f, v, ms), restarted.Add(f, v, ms));
            Assert.Equal(unbroken.Fill(48, expected), restarted.Fill(48, actual));
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(30)]
    [InlineData(61)]
    [InlineData(3000)]
    public void An_imported_window_closes_the_same_intervals_and_fills_the_same_model_input(int split) =>
        AssertContinuesIdentically(5000, split, seed: 3, capacity: 64);

    [Property(MaxTest = 30)]
    public Property Any_split_continues_identically(NonNegativeInt split, PositiveInt seed) =>
        Prop.ToProperty(Try(() => AssertContinuesIdentically(4000, split.Get % 4000, seed.Get, capacity: 48)));

    [Fact]
    public void History_kept_for_another_interval_or_capacity_is_refused_and_the_window_is_left_as_it_was()
    {
        var saved = new BearingFeatureWindow(Interval, 48);
        foreach (var (f, v, ms) in Samples(600, 1))
        {
            saved.Add(f, v, ms);
        }

        var other = new BearingFeatureWindow(TimeSpan.FromMinutes(10), 48);
        var e = Assert.Throws<InvalidDataException>(() => other.Import(saved.Export()));
        Assert.Contains("kept for 1800 s intervals × 48, the model now uses 600 s × 48", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, other.Count);
        Assert.Throws<InvalidDataException>(() => new BearingFeatureWindow(Interval, 32).Import(saved.Export()));
        Assert.Throws<InvalidDataException>(() => new BearingFeatureWindow(Interval, 48).Import(saved.Export() with { Sums = [1.0] }));
    }

    private static bool Try(Action check)
    {
        check();
        return true;
    }

    [Fact]
    public void Regression_a_backward_clock_step_stopped_the_bearing_feature_window_for_its_size()
    {
        // A sample of each feature every 30 s, 30-minute intervals; an hour in, the wall clock steps back an hour. Before,
        // every sample after the step was "late" (of an interval before the one being filled) until the clock caught up:
        // no interval closed and no RUL prediction for an hour.
        var samples = Samples(240, seed: 1).ToList();
        var window = new BearingFeatureWindow(Interval, capacity: 48);
        foreach (var (f, v, ms) in samples.Take(120 * 3))
        {
            window.Add(f, v, ms);
        }

        Assert.Equal(1, window.Count);
        var closed = samples.Skip(120 * 3).Count(s => window.Add(s.Feature, s.Value, s.Ms - 3_600_000));
        Assert.Equal(1, window.ClockSteps);
        Assert.Equal(1, closed); // the half hour from the step on (the partial one before it is dropped)
        Assert.Equal(2, window.Count);
        Assert.Equal(T0 + (long)Interval.TotalMilliseconds, window.LastIntervalEndMs);
    }
}
