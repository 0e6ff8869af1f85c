using EdgeTwin.Tests.Shared;
using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Twin.Tests.Anomaly;

/// <summary>The CAD-like contextual novelty component: learns the contexts of a series, scores what it has not seen, stays bounded.</summary>
public sealed class ContextNoveltyDetectorTests
{
    private const long Minute = 60_000;
    private static readonly long T0 = new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    /// <summary>A sawtooth 0..7, one level per bin.</summary>
    private static double Saw(int i) => i % 8;

    [Fact]
    public void A_learned_pattern_scores_zero_and_a_novel_turn_in_it_scores_high()
    {
        var d = new ContextNoveltyDetector(levels: 8, orders: 4, capacity: 1024);
        for (var i = 0; i < 800; i++)
        {
            d.Update(Saw(i));
        }

        for (var i = 800; i < 880; i++)
        {
            Assert.Equal(0.0, d.Update(Saw(i)));
        }

        // 0 1 2 3 4 5, then 3 instead of 6: every known history now continues in a way never seen.
        for (var i = 880; i < 886; i++)
        {
            Assert.Equal(0.0, d.Update(Saw(i)));
        }

        Assert.Equal(1.0, d.Update(3));
        Assert.True(d.LastNovel >= 1);
    }

    [Fact]
    public void A_spike_and_a_level_shift_are_novel_and_the_new_level_is_learned()
    {
        var d = new ContextNoveltyDetector(levels: 8, orders: 3, capacity: 1024);
        var rng = new Random(3);
        for (var i = 0; i < 2000; i++)
        {
            d.Update(10 + (rng.NextDouble() * 2));
        }

        // Range so far ~10..12; a spike to 16 expands it and lands in a bin no history continued into.
        Assert.True(d.Update(16) > 0.5);

        // A lasting shift to a level never seen: novel at first, then its contexts are known.
        var first = 0.0;
        var late = 0.0;
        for (var i = 0; i < 2000; i++)
        {
            var s = d.Update(20 + (rng.NextDouble() * 2));
            if (i < 20)
            {
                first = Math.Max(first, s);
            }
            else if (i >= 1500)
            {
                late += s;
            }
        }

        Assert.True(first > 0.5, $"first {first}");
        Assert.True(late / 500 < 0.05, $"late mean {late / 500}");
    }

    [Fact]
    public void The_table_is_bounded_and_forgets_the_least_recently_seen_contexts()
    {
        var d = new ContextNoveltyDetector(levels: 8, orders: 2, capacity: 16);
        var bytes = d.ApproximateBytes;
        for (var i = 0; i < 400; i++)
        {
            d.Update(Saw(i));
        }

        Assert.Equal(0.0, d.Update(Saw(400)));

        // Many other contexts (a random walk over all bins) push the sawtooth's out of the 16 slots.
        var rng = new Random(5);
        for (var i = 0; i < 5000; i++)
        {
            d.Update(rng.Next(8));
        }

        var novel = 0.0;
        for (var i = 0; i < 16; i++)
        {
            novel += d.Update(Saw(i));
        }

        Assert.True(novel > 0, "the sawtooth's contexts should have been forgotten");
        Assert.Equal(bytes, d.ApproximateBytes);
    }

    [Fact]
    public void Update_allocates_nothing()
    {
        var d = new ContextNoveltyDetector(levels: 8, orders: 6, capacity: 4096);
        var rng = new Random(9);
        d.Update(1.0);
        var sum = 0.0;

        // The runtime's tier-up of this loop (OSR, tier-1 JIT) allocated 7,864 bytes on this thread once in a CI run on a
        // loaded machine; the detector itself must allocate nothing in a round after that.
        Allocations.AssertSomeRoundAllocatesNothing(
            () =>
            {
                for (var i = 0; i < 100_000; i++)
                {
                    sum += d.Update(rng.NextDouble() * 100);
                }
            },
            "100,000 updates",
            rounds: 3);
        Assert.True(sum >= 0);
    }

    [Fact]
    public void The_detector_with_novelty_finds_a_novel_pattern_allocation_free_and_bounded()
    {
        var o = AnomalyDetectorOptions.Default.With("novelty_likelihood", "0.8").With("novelty_levels", "8").With("novelty_orders", "4");
        var d = new StreamingAnomalyDetector(o);
        var bytes = d.ApproximateBytes;
        Assert.True(bytes > new StreamingAnomalyDetector().ApproximateBytes);
        var i = 0;
        for (; i < 3000; i++)
        {
            d.Update(T0 + (i * Minute), Saw(i));
        }

        var quiet = 0.0;
        for (; i < 4000; i++)
        {
            quiet = Math.Max(quiet, d.Update(T0 + (i * Minute), Saw(i)));
        }

        Assert.True(quiet < o.Threshold, $"quiet max {quiet}");
        var before = GC.GetAllocatedBytesForCurrentThread();

        // The sawtooth runs backwards for a while: every value is in range and every step the usual size, only the order is new.
        var peak = 0.0;
        for (var k = 0; k < 24; k++, i++)
        {
            peak = Math.Max(peak, d.Update(T0 + (i * Minute), 7 - Saw(k)));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(peak >= o.Threshold, $"peak {peak}");
        Assert.Equal(bytes, d.ApproximateBytes);
    }

    [Fact]
    public void Bad_sizes_are_rejected_by_the_constructor_and_the_options()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ContextNoveltyDetector(1, 3, 64));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ContextNoveltyDetector(8, 0, 64));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ContextNoveltyDetector(8, 3, 2));
        Assert.Throws<ArgumentException>(() => new StreamingAnomalyDetector(AnomalyDetectorOptions.Default.With("novelty_capacity", "1000000")));
        Assert.Throws<ArgumentException>(() => new StreamingAnomalyDetector(AnomalyDetectorOptions.Default.With("novelty_direct", "2")));
        Assert.Equal(12, AnomalyDetectorOptions.Default.With("novelty_orders", "12").NoveltyOrders);
    }
}
