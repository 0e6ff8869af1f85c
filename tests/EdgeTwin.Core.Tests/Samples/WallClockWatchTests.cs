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

    [Fact]
    public void Regression_a_pause_between_the_wall_and_the_monotonic_read_counted_as_a_step()
    {
        // The watch read the wall clock, then the monotonic one: a thread stopped between the two (a stop-the-world GC, a
        // VM suspended by its host for 90 s) advanced only the second reading: that read reported a step back of 90 s and
        // the next one a step forward, each moving the set-point schedule. Both clocks ran during the pause: no step.
        var inner = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        var clock = new PausingClock(inner);
        var watch = new WallClockWatch(clock);
        watch.Read(out _);
        inner.Advance(TimeSpan.FromSeconds(5));
        clock.PauseAfterNextWallRead = TimeSpan.FromSeconds(90);
        watch.Read(out var step);
        Assert.Equal(0, step);
        inner.Advance(TimeSpan.FromSeconds(5));
        watch.Read(out step);
        Assert.Equal(0, step);

        // And a real step is still seen, at the watch's own tolerance.
        var fine = new WallClockWatch(clock, toleranceMs: 2_000);
        fine.Read(out _);
        inner.Advance(TimeSpan.FromSeconds(5));
        clock.PauseAfterNextWallRead = TimeSpan.FromSeconds(3);
        fine.Read(out step);
        Assert.Equal(0, step);
        inner.Advance(TimeSpan.FromSeconds(5));
        clock.Offset += TimeSpan.FromSeconds(2.5);
        fine.Read(out step);
        Assert.Equal(2_500, step);
    }

    /// <summary>A clock whose caller is descheduled right after one wall-clock read: both clocks run on meanwhile.</summary>
    private sealed class PausingClock(FakeTimeProvider inner) : TimeProvider
    {
        public TimeSpan PauseAfterNextWallRead { get; set; }

        public TimeSpan Offset { get; set; }

        public override DateTimeOffset GetUtcNow()
        {
            var now = inner.GetUtcNow() + Offset;
            if (PauseAfterNextWallRead > TimeSpan.Zero)
            {
                inner.Advance(PauseAfterNextWallRead);
                PauseAfterNextWallRead = TimeSpan.Zero;
            }

            return now;
        }

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;
    }
}
