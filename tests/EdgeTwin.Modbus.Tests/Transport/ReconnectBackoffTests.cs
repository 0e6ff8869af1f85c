using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Modbus.Tests.Transport;

public sealed class ReconnectBackoffTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void Waits_double_from_the_minimum_up_to_the_maximum_and_one_success_resets_them()
    {
        var time = new FakeTimeProvider();
        var backoff = new ReconnectBackoff(S(0.2), S(30), time);
        var waits = new List<TimeSpan>();
        for (var i = 0; i < 10; i++)
        {
            backoff.Failure();
            waits.Add(backoff.Remaining);
            time.Advance(backoff.Remaining);
        }

        Assert.Equal([S(0.2), S(0.4), S(0.8), S(1.6), S(3.2), S(6.4), S(12.8), S(25.6), S(30), S(30)], waits);
        backoff.Success();
        Assert.Equal(TimeSpan.Zero, backoff.Remaining);
        backoff.Failure();
        Assert.Equal(S(0.2), backoff.Remaining);
    }

    [Fact]
    public void Regression_a_unit_back_behind_its_gateway_waited_out_the_30s_its_neighbours_failures_had_grown()
    {
        // Units behind one gateway share its transport: every unit's failed connect doubled the wait, up to 30 s, and each
        // poll inside it failed untried, counted by the scheduler as a failure that doubled that unit's own backoff. A
        // caller that spaces its own attempts (the device's poll interval) now waits at most that long after a failure.
        var time = new FakeTimeProvider();
        var backoff = new ReconnectBackoff(S(0.2), S(30), time);
        for (var i = 0; i < 9; i++)
        {
            time.Advance(backoff.Remaining);
            backoff.Failure();
        }

        Assert.Equal(S(30), backoff.Remaining);
        Assert.Equal(S(2), backoff.RemainingFor(S(2)));
        Assert.Equal(S(30), backoff.RemainingFor(null));

        time.Advance(S(1.5));
        Assert.Equal(S(0.5), backoff.RemainingFor(S(2)));
        time.Advance(S(0.5));
        Assert.Equal(TimeSpan.Zero, backoff.RemainingFor(S(2)));
        Assert.Equal(S(28), backoff.Remaining);

        // A cap longer than the wait left changes nothing, and the cap never shortens a short wait further.
        Assert.Equal(S(28), backoff.RemainingFor(S(60)));
        backoff.Success();
        backoff.Failure();
        Assert.Equal(S(0.2), backoff.RemainingFor(S(2)));
    }
}
