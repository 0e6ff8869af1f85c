using EdgeTwin.Snmp.Security;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Snmp.Tests.Security;

/// <summary>The receiver's notion of a trap sender's clock, step by step (against real snmptrap: ReceiverTests).</summary>
public sealed class TrapSenderClockTests
{
    private readonly FakeTimeProvider _time = new();

    private TrapSenderClock Learned(int boots = 5, int time = 50_000) => new([0x80, 0, 0x1f, 0x88, 0x80, 2], boots, time, _time);

    private SenderVerdict Trap(TrapSenderClock clock, int msgId, int boots, int time) => clock.Accept(msgId, boots, time, out _);

    [Fact]
    public void Regression_v3_trap_sender_whose_clock_went_back_without_its_boots_rising_was_rejected_until_restart()
    {
        // A management card that reloaded its firmware without keeping its boots sends (5, 10), (5, 40), ... while we
        // expect (5, 50 000+): before, every trap was refused until the agent restarted. Now three consecutive ones on one
        // new clock (distinct msgIDs, times not going back, the same offset to our clock) re-learn it.
        var clock = Learned();
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 1, 5, 10));
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 2, 5, 40));
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(SenderVerdict.Relearned, clock.Accept(3, 5, 71, out var previous));
        Assert.Equal((5, 50_090), previous);
        Assert.Equal((5, 71), clock.Now());
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(SenderVerdict.Timely, Trap(clock, 4, 5, 76));
    }

    [Fact]
    public void A_config_restore_with_lower_boots_is_relearnt_too()
    {
        var clock = Learned(boots: 9);
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 1, 7, 100));
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 2, 7, 100)); // two traps in one second
        Assert.Equal(SenderVerdict.Relearned, Trap(clock, 3, 7, 101));
        Assert.Equal((7, 101), clock.Now());
    }

    [Fact]
    public void One_trap_replayed_again_and_again_never_relearns()
    {
        var clock = Learned();
        for (var i = 0; i < 10; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(SenderVerdict.Behind, Trap(clock, 77, 5, 1000)); // the same msgID each time
        }
        Assert.Equal(5, clock.Now().Boots);
        Assert.True(clock.Now().Time > 50_000);
    }

    [Fact]
    public void Old_traps_replayed_out_of_order_or_on_different_clocks_do_not_relearn()
    {
        var clock = Learned();
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 1, 5, 3000));
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 2, 5, 2000)); // time went back: starts again
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 3, 5, 9000)); // another offset: starts again
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 4, 4, 9000)); // another boots: starts again
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 5, 5, 100));
        Assert.Equal(SenderVerdict.Timely, Trap(clock, 6, 5, 50_000)); // the real sender in between: starts again
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 7, 5, 101));
        Assert.Equal(SenderVerdict.Behind, Trap(clock, 8, 5, 102));
        Assert.Equal(5, clock.Now().Boots);
        Assert.True(clock.Now().Time >= 50_000);
    }

    [Fact]
    public void After_a_relearn_a_replayed_trap_of_the_old_clock_does_not_pull_our_notion_back()
    {
        // Taken as newer (RFC 3414 3.2.7 b), a captured trap of the old clock would be timely again and move our notion.
        var clock = Learned();
        Trap(clock, 1, 5, 10);
        Trap(clock, 2, 5, 11);
        Assert.Equal(SenderVerdict.Relearned, Trap(clock, 3, 5, 12));
        Assert.Equal(SenderVerdict.Abandoned, Trap(clock, 90, 5, 49_990));
        Assert.Equal(SenderVerdict.Abandoned, Trap(clock, 91, 5, 50_000));
        Assert.Equal((5, 12), clock.Now());
        Assert.Equal(SenderVerdict.Timely, Trap(clock, 4, 5, 13));
        Assert.Equal(SenderVerdict.Timely, Trap(clock, 5, 5, 150)); // ahead within the window: the new clock's own
        Assert.Equal(SenderVerdict.Timely, Trap(clock, 6, 5, 50_001)); // past the old clock's latest: newer than both
        Assert.Equal(SenderVerdict.Timely, Trap(clock, 7, 6, 0)); // a real reboot
    }

    [Fact]
    public void A_second_reset_is_relearnt_as_well()
    {
        var clock = Learned();
        Trap(clock, 1, 5, 1000);
        Trap(clock, 2, 5, 1000);
        Assert.Equal(SenderVerdict.Relearned, Trap(clock, 3, 5, 1001));
        Trap(clock, 4, 5, 3);
        Trap(clock, 5, 5, 4);
        Assert.Equal(SenderVerdict.Relearned, Trap(clock, 6, 5, 5));
        Assert.Equal((5, 5), clock.Now());
    }
}
