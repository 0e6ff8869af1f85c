using EdgeTwin.Snmp.Client;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// The sizing the client keeps per agent after a tooBig, step by step (the round trips it saves against real agents are
/// measured in HostileAgentTests and in the integration tests' SnmpdTooBigTests).
/// </summary>
public sealed class FittingSizeTests
{
    private readonly FakeTimeProvider _time = new();

    /// <summary>An agent that took 6 of 10 and refused 7, learned the way a GET of 10 OIDs learns it.</summary>
    private FittingSize LearnedSix()
    {
        var size = new FittingSize(_time);
        Assert.Equal(5, size.TooBig(10));
        Answer(size, 5, 8);
        Assert.Equal(7, size.For(10)); // the probe halfway between 5 and 10
        Assert.Equal(5, size.TooBig(7));
        Answer(size, 5, 8);
        Assert.Equal(6, size.For(10));
        size.Answered(6);
        Assert.Equal("6 fit, 7 too big", size.ToString());
        return size;
    }

    private static void Answer(FittingSize size, int at, int times)
    {
        for (var i = 0; i < times; i++)
        {
            size.Answered(at);
        }
    }

    [Fact]
    public void A_tooBig_to_a_larger_request_than_the_learned_size_goes_back_to_that_size_not_to_half()
    {
        // A probe, or the hourly re-check of the refused size: what fitted is known, so the request is asked again at it.
        var size = LearnedSix();
        _time.Advance(FittingSize.RecheckAfter);
        Assert.Equal(7, size.For(10));
        Assert.Equal(6, size.TooBig(7));
        Assert.Equal(6, size.For(10));
    }

    [Fact]
    public void A_tooBig_at_the_learned_size_halves_once_then_probes_back_up_to_the_largest_size_that_fits()
    {
        // The answers grew (longer values): the learned 6 itself was refused. Nothing below it is known to fit any more,
        // so the request is asked again at half (one more tooBig at most unless the values more than doubled), 6 is
        // believed too big for an hour, and probing climbs back to the largest size below it.
        var size = LearnedSix();
        Assert.Equal(3, size.TooBig(6));
        Assert.Equal(3, size.For(10));
        size.Answered(4); // the rest of a split GET, in one request: 4 fit now
        Assert.Equal(4, size.For(10));
        Answer(size, 4, 8);
        Assert.Equal(5, size.For(10));
        size.Answered(5);
        Answer(size, 5, 16);
        Assert.Equal(5, size.For(10)); // 5 fit, 6 refused: adjacent, no probe more
        Assert.Equal("5 fit, 6 too big", size.ToString());

        // An hour later 6 is asked once again; when the agent takes it (the values got shorter), the bound is dropped.
        _time.Advance(FittingSize.RecheckAfter);
        Assert.Equal(6, size.For(10));
        size.Answered(6);
        Assert.Equal("6 fit, nothing too big", size.ToString());
    }

    [Fact]
    public void Sizes_up_to_the_learned_one_are_asked_as_wanted()
    {
        var size = LearnedSix();
        Assert.Equal([1, 2, 6, 6], new[] { size.For(1), size.For(2), size.For(6), size.For(40) });
    }
}
