// Shared by the test projects that check a hot path allocates nothing (linked into the others).
namespace EdgeTwin.Tests.Shared;

/// <summary>
/// "Allocates nothing" as a loaded CI machine can check it. The runtime allocates on the test's own thread now and then
/// while it re-compiles a hot loop (tiered JIT, on-stack replacement: 3–8 KB once in CI runs), which a single measured
/// loop counts as the code's. A per-call allocation shows in every round; the runtime's in one. So the check is that some
/// round of a few allocates nothing.
/// </summary>
internal static class Allocations
{
    /// <summary>Bytes allocated on this thread by each round of <paramref name="round"/>, stopping at the first that allocates nothing.</summary>
    public static IReadOnlyList<long> PerRound(Action round, int rounds = 5)
    {
        ArgumentNullException.ThrowIfNull(round);
        var allocated = new List<long>(rounds);
        for (var k = 0; k < rounds && (allocated.Count == 0 || allocated[^1] != 0); k++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            round();
            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return allocated;
    }

    /// <summary>Fails, with the bytes of every round, unless some round of <paramref name="round"/> allocates nothing.</summary>
    public static void AssertSomeRoundAllocatesNothing(Action round, string what, int rounds = 5)
    {
        var allocated = PerRound(round, rounds);
        Xunit.Assert.True(allocated[^1] == 0, $"{what}: bytes allocated per round: {string.Join(", ", allocated)}");
    }
}
