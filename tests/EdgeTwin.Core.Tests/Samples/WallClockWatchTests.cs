using EdgeTwin.Core.Samples;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Core.Tests.Samples;

public sealed class WallClockWatchTests
{
    [Fact]
    public void Regression_a_backward_step_held_the_set_point_schedule_and_a_forward_one_ended_a_rollback_pause_early()
    {
        // The set-point controller kept its schedule (next optimisation, writes, settle time, rollback pause) in wall-clock
        // times: an NTP step back of an hour held it for an hour. The watch gives the step so the schedule moves with it.
        var inner = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        var clock = new SteppableClock(inner);
        var watch = new WallClockWatch(clock);

        var first = watch.Read(out var step);
        Assert.Equal(0, step); // nothing to compare with yet

        inner.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(first + 10_000, watch.Read(out step));
        Assert.Equal(0, step); // time ran: no step

        inner.Advance(TimeSpan.FromSeconds(10));
        clock.Step(TimeSpan.FromHours(-1));
        var afterBack = watch.Read(out step);
        Assert.Equal(first + 20_000 - 3_600_000, afterBack);
        Assert.Equal(-3_600_000, step);

        inner.Advance(TimeSpan.FromSeconds(10));
        clock.Step(TimeSpan.FromDays(1));
        watch.Read(out step);
        Assert.Equal(86_400_000, step);

        inner.Advance(TimeSpan.FromSeconds(10));
        watch.Read(out step);
        Assert.Equal(0, step); // a step is reported once
    }

    [Fact]
    public void Slewing_and_timer_jitter_within_a_minute_are_not_steps()
    {
        var inner = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        var clock = new SteppableClock(inner);
        var watch = new WallClockWatch(clock);
        watch.Read(out _);
        inner.Advance(TimeSpan.FromSeconds(5));
        clock.Step(TimeSpan.FromSeconds(-59));
        watch.Read(out var step);
        Assert.Equal(0, step);
        inner.Advance(TimeSpan.FromSeconds(5));
        clock.Step(TimeSpan.FromSeconds(61));
        watch.Read(out step);
        Assert.Equal(61_000, step);
    }
}
