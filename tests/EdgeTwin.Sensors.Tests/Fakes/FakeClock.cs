using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Sensors.Tests.Fakes;

internal static class FakeClock
{
    /// <summary>
    /// Moves fake time in small steps until <paramref name="done"/> holds, yielding real time between steps so the code
    /// under test can arm its timers (it may not have reached its next await yet). Fails after 20 s of real time.
    /// </summary>
    public static async Task AdvanceUntilAsync(this FakeTimeProvider time, Func<bool> done, TimeSpan step, TimeSpan? limit = null)
    {
        var realDeadline = DateTime.UtcNow.AddSeconds(20);
        var moved = TimeSpan.Zero;
        while (!done())
        {
            if (DateTime.UtcNow > realDeadline || (limit is { } l && moved > l))
            {
                throw new TimeoutException($"condition not met after advancing fake time by {moved}");
            }

            time.Advance(step);
            moved += step;
            await Task.Delay(5);
        }
    }

    /// <summary>Advances by <paramref name="total"/> in steps, yielding real time between steps.</summary>
    public static async Task AdvanceSlowlyAsync(this FakeTimeProvider time, TimeSpan total, TimeSpan step)
    {
        for (var moved = TimeSpan.Zero; moved < total; moved += step)
        {
            time.Advance(step);
            await Task.Delay(5);
        }
    }
}
