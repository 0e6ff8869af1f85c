using EdgeTwin.Uplink.Delivery;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Uplink.Tests.Delivery;

public sealed class AckTrackerTests
{
    [Fact]
    public void Position_moves_only_over_a_gap_free_run()
    {
        var t = new AckTracker(10);
        Assert.Equal(10, t.Complete(12));
        Assert.Equal(10, t.Complete(14));
        Assert.Equal(2, t.PendingRanges);
        Assert.Equal(12, t.Complete(11));
        Assert.Equal(14, t.Complete(13));
        Assert.Equal(0, t.PendingRanges);
    }

    [Fact]
    public void Completions_at_or_below_the_position_are_ignored()
    {
        var t = new AckTracker(5);
        Assert.Equal(5, t.Complete(3));
        Assert.Equal(5, t.Complete(1, 5));
        Assert.True(t.IsComplete(5));
        Assert.False(t.IsComplete(6));
    }

    [Fact]
    public void Ranges_merge_and_answer_IsComplete()
    {
        var t = new AckTracker(0);
        t.Complete(10, 20);
        t.Complete(30, 40);
        t.Complete(21, 29);
        Assert.Equal(1, t.PendingRanges);
        Assert.True(t.IsComplete(25));
        Assert.False(t.IsComplete(9));
        Assert.False(t.IsComplete(41));
        Assert.Equal(40, t.Complete(1, 9));
    }

    [Property(MaxTest = 200)]
    public Property Any_completion_order_ends_at_the_last_sequence_and_never_moves_back(PositiveInt count, int seed)
    {
        var n = Math.Min(count.Get, 500);
        var order = Enumerable.Range(1, n).Select(i => (long)i).ToArray();
        new Random(seed).Shuffle(order);
        var t = new AckTracker(0);
        var done = new HashSet<long>();
        long last = 0;
        var ok = true;
        foreach (var s in order)
        {
            done.Add(s);
            var p = t.Complete(s);
            long expected = 0;
            while (done.Contains(expected + 1))
            {
                expected++;
            }

            ok &= p == expected && p >= last;
            last = p;
        }

        return (ok && t.Position == n && t.PendingRanges == 0).ToProperty();
    }
}
