using EdgeTwin.Tests.Shared;

namespace EdgeTwin.Core.Tests.Support;

/// <summary>The zero-allocation check itself: it must still catch a per-call allocation in every round.</summary>
public sealed class AllocationsTests
{
    private static object? _kept;

    [Fact]
    public void A_round_that_allocates_every_time_fails_every_round_and_one_that_does_not_stops_at_the_first()
    {
        var allocating = Allocations.PerRound(() => _kept = new byte[64], rounds: 4);
        Assert.Equal(4, allocating.Count);
        Assert.All(allocating, bytes => Assert.True(bytes >= 64, $"{bytes} bytes"));
        var e = Assert.ThrowsAny<Exception>(() => Allocations.AssertSomeRoundAllocatesNothing(() => _kept = new byte[64], "64-byte arrays", rounds: 2));
        Assert.StartsWith("64-byte arrays: bytes allocated per round: ", e.Message, StringComparison.Ordinal);

        var sum = 0;
        var quiet = Allocations.PerRound(() => sum += 1);
        Assert.Equal(0, quiet[^1]);
        Assert.True(quiet.Count <= 5);
        Assert.NotNull(_kept);
    }
}
