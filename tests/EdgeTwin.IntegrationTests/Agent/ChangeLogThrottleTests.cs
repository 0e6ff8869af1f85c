using EdgeTwin.Agent.Sources;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>The rate limit of the SNMP and Modbus sources' "unreadable" lines, on a fake clock.</summary>
public sealed class ChangeLogThrottleTests
{
    private static readonly TimeSpan Every = TimeSpan.FromMinutes(5);

    [Fact]
    public void Changes_further_apart_than_the_period_are_each_logged_without_a_note()
    {
        var time = new FakeTimeProvider();
        var throttle = new ChangeLogThrottle(time, Every);

        Assert.False(throttle.ShouldLog(changed: false, out _));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(throttle.ShouldLog(changed: true, out var note));
            Assert.Equal("", note);
            time.Advance(Every);
            Assert.False(throttle.ShouldLog(changed: false, out _));
        }
    }

    [Fact]
    public void A_flapping_state_is_logged_at_its_first_change_then_once_per_period_with_the_count()
    {
        var time = new FakeTimeProvider();
        var throttle = new ChangeLogThrottle(time, Every);
        Assert.True(throttle.ShouldLog(changed: true, out _));

        var logged = 0;
        string last = "";
        for (var i = 0; i < 60; i++) // 10 minutes of changes every 10 s
        {
            time.Advance(TimeSpan.FromSeconds(10));
            if (throttle.ShouldLog(changed: true, out var note))
            {
                logged++;
                last = note;
            }
        }

        Assert.Equal(2, logged); // at 5 and at 10 minutes, not 60
        Assert.Equal(" (after 29 more changes in 5m 0s that were not logged: it keeps changing, and is logged at most every 5m 0s while it does)", last);
    }

    [Fact]
    public void The_state_a_flapping_device_ends_in_is_logged_once_the_period_is_over()
    {
        var time = new FakeTimeProvider();
        var throttle = new ChangeLogThrottle(time, Every);
        Assert.True(throttle.ShouldLog(changed: true, out _));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(throttle.ShouldLog(changed: true, out _));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(throttle.ShouldLog(changed: true, out _));

        time.Advance(TimeSpan.FromMinutes(4));
        Assert.False(throttle.ShouldLog(changed: false, out _)); // still inside the period
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(throttle.ShouldLog(changed: false, out var note)); // no change now, but the journal is behind
        Assert.Equal(" (after 2 more changes in 5m 20s that were not logged: it keeps changing, and is logged at most every 5m 0s while it does)", note);

        time.Advance(TimeSpan.FromHours(1));
        Assert.False(throttle.ShouldLog(changed: false, out _)); // caught up: quiet
        Assert.True(throttle.ShouldLog(changed: true, out note));
        Assert.Equal("", note);
    }

    [Fact]
    public void One_held_back_change_says_why_it_comes_late_not_that_it_keeps_changing()
    {
        var time = new FakeTimeProvider();
        var throttle = new ChangeLogThrottle(time, Every);
        Assert.True(throttle.ShouldLog(changed: true, out _));
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.False(throttle.ShouldLog(changed: true, out _));
        time.Advance(TimeSpan.FromMinutes(65));

        Assert.True(throttle.ShouldLog(changed: false, out var note));
        Assert.Equal(" (after 1 more change in 1h 5m that was not logged: a change within 5m 0s of the last line is logged when they are over)", note);
    }
}
