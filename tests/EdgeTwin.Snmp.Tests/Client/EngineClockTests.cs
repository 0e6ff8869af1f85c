using EdgeTwin.Snmp.Client;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// RFC 3414 3.2.7(b) step by step: what the client makes of each authenticated message's boots and time (the same
/// against a real snmpd that reboots, is replaced or latches its boots: EngineClockAgainstSnmpdTests).
/// </summary>
public sealed class EngineClockTests
{
    private readonly FakeTimeProvider _time = new();

    private EngineClock Synced(int boots = 5, int time = 1000) => new([0x80, 0, 0x1f, 0x88, 0x80, 1], boots, time, _time);

    [Fact]
    public void Our_notion_of_the_agent_time_runs_on_with_our_own_clock_between_messages()
    {
        var clock = Synced();
        _time.Advance(TimeSpan.FromSeconds(42.7));
        Assert.Equal((5, 1042), clock.Now());
    }

    [Fact]
    public void Regression_v3_response_more_than_150_s_behind_our_notion_of_the_agent_clock_was_accepted()
    {
        // Before, a response's boots and time were only ever taken (when newer) and never checked: a replayed response
        // from before the agent's reboot, or one 10 minutes old, was taken as the answer.
        // A time later than the latest received is taken as the agent's (a slow agent clock); an older one is checked.
        var clock = Synced();
        _time.Advance(TimeSpan.FromSeconds(600));
        Assert.Equal(Timeliness.Behind, clock.Accept(5, 900));
        Assert.Equal(Timeliness.Behind, clock.Accept(4, 99_999));
        Assert.Equal((5, 1600), clock.Now());
        Assert.Equal(Timeliness.Behind, clock.Accept(5, 1000)); // the same as the latest, 600 s on: a replay
        Assert.Equal(Timeliness.InWindow, clock.Accept(5, 1449));
        Assert.Equal((5, 1449), clock.Now());
        Assert.Equal(Timeliness.InWindow, clock.Accept(6, 3));
        Assert.Equal((6, 3), clock.Now());
    }

    [Fact]
    public void Regression_v3_our_notion_did_not_follow_an_agent_clock_slower_than_ours()
    {
        // Before, the agent's time was taken only when it was ahead of our estimate, so against an agent whose clock runs
        // slower than ours the estimate drifted until the agent refused a request (a notInTimeWindow round trip each time).
        // RFC 3414 3.2.7(b) takes any time later than the latest received.
        var clock = Synced();
        _time.Advance(TimeSpan.FromSeconds(100));
        Assert.Equal(Timeliness.InWindow, clock.Accept(5, 1090));
        Assert.Equal((5, 1090), clock.Now());
        _time.Advance(TimeSpan.FromSeconds(100));
        Assert.Equal(Timeliness.InWindow, clock.Accept(5, 1180));
        Assert.Equal((5, 1180), clock.Now());
    }

    [Fact]
    public void An_older_message_is_timely_within_150_s_of_our_notion_and_never_moves_it_back()
    {
        var clock = Synced();
        _time.Advance(TimeSpan.FromSeconds(160));
        Assert.Equal(Timeliness.InWindow, clock.Accept(5, 1010));
        Assert.Equal((5, 1010), clock.Now());
        Assert.Equal(Timeliness.InWindow, clock.Accept(5, 1000 - 140));
        Assert.Equal(Timeliness.Behind, clock.Accept(5, 1000 - 141));
        Assert.Equal((5, 1010), clock.Now());
    }

    [Fact]
    public void Boots_at_2147483647_are_latched_and_values_outside_the_integer_range_refused()
    {
        var clock = Synced();
        Assert.Equal(Timeliness.Latched, clock.Accept(int.MaxValue, 0));
        Assert.Equal(Timeliness.Latched, clock.Accept(int.MaxValue, 10));
        Assert.Contains("latched", clock.Explain(Timeliness.Latched, int.MaxValue, 10), StringComparison.Ordinal);
        Assert.Equal(Timeliness.OutOfRange, Synced().Accept(int.MinValue, 3));
        Assert.Equal(Timeliness.OutOfRange, Synced().Accept(5, -1));
    }

    [Fact]
    public void An_unauthenticated_report_forces_its_values_as_before()
    {
        var clock = Synced();
        clock.Force(5, 20);
        Assert.Equal((5, 20), clock.Now());
    }
}
