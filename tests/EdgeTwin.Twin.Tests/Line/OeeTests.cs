using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class OeeTests
{
    private const long S = 1000; // ms per second

    [Fact]
    public void Oee_by_hand_on_a_shift_hour_with_a_counter_reset()
    {
        var t = new OeeTracker(idealCycleSeconds: 10, microStopSeconds: 120, staleAfterSeconds: 3600);
        t.OnState(0, MachineState.Running);
        t.OnGoodCounter(0, 1000);
        t.OnRejectCounter(0, 5);
        t.OnState(600 * S, MachineState.Faulted);   // 300 s breakdown
        t.OnState(900 * S, MachineState.Running);
        t.OnGoodCounter(1200 * S, 1100);             // +100
        t.OnState(1500 * S, MachineState.Idle);      // 60 s: a micro-stop
        t.OnState(1560 * S, MachineState.Running);
        t.OnGoodCounter(1800 * S, 20);               // PLC restarted its counter: +20 since the reset
        t.OnState(2400 * S, MachineState.Setup);     // 300 s changeover
        t.OnState(2700 * S, MachineState.PlannedStop);
        t.OnState(3000 * S, MachineState.Running);
        t.OnGoodCounter(3600 * S, 150);              // +130
        t.OnRejectCounter(3600 * S, 15);             // +10
        var r = t.Report(3600 * S);

        Assert.Equal(1, t.CounterResets);
        Assert.Equal(3300, r.PlannedBusyTime, 6);
        Assert.Equal(2700, r.ActualProductionTime, 6);
        Assert.Equal(250, r.GoodQuantity);
        Assert.Equal(10, r.RejectQuantity);
        Assert.Equal(2700.0 / 3300, r.Availability, 9);
        Assert.Equal(10.0 * 260 / 2700, r.Effectiveness, 9);
        Assert.Equal(250.0 / 260, r.QualityRate, 9);
        Assert.Equal(10.0 * 250 / 3300, r.Oee, 9);
        Assert.Equal(300, r.Losses.Breakdowns, 6);
        Assert.Equal(300, r.Losses.Setups, 6);
        Assert.Equal(0, r.Losses.Waiting, 6);
        Assert.Equal(60, r.Losses.MicroStops, 6);
        Assert.Equal(40, r.Losses.SpeedLoss, 6);
        Assert.Equal(100, r.Losses.Rejects, 6);
        // Value-adding time plus every loss is the planned busy time.
        var l = r.Losses;
        Assert.Equal(r.PlannedBusyTime, 10.0 * r.GoodQuantity + l.Breakdowns + l.Setups + l.Waiting + l.MicroStops + l.SpeedLoss + l.Rejects, 6);
    }

    [Fact]
    public void A_long_stop_is_a_breakdown_and_an_open_one_is_counted_up_to_now()
    {
        var t = new OeeTracker(10, microStopSeconds: 120, staleAfterSeconds: 3600);
        t.OnState(0, MachineState.Running);
        t.OnState(100 * S, MachineState.Faulted);
        var early = t.Report(160 * S); // 60 s into the stop: still a micro-stop
        Assert.Equal(60, early.Losses.MicroStops, 6);
        var late = t.Report(400 * S);  // 300 s into the stop: a breakdown
        Assert.Equal(300, late.Losses.Breakdowns, 6);
        Assert.Equal(0, late.Losses.MicroStops, 6);
        Assert.Equal(100.0 / 400, late.Availability, 9);
    }

    [Fact]
    public void Missing_samples_turn_into_unknown_time_outside_planned_busy_time()
    {
        var t = new OeeTracker(10, staleAfterSeconds: 300);
        t.OnState(0, MachineState.Running);
        t.OnState(100 * S, MachineState.Running); // keep-alive
        t.OnState(1000 * S, MachineState.Running); // 900 s gap: 300 s held, 600 s unknown
        var r = t.Report(1000 * S);
        Assert.Equal(600, r.UnknownTime, 6);
        Assert.Equal(400, r.PlannedBusyTime, 6);
        Assert.Equal(1, r.Availability, 9);
        // Silence up to now is unknown as well.
        var r2 = t.Report(2000 * S);
        Assert.Equal(600 + 700, r2.UnknownTime, 6);
    }

    [Fact]
    public void Counters_wrap_reset_and_glitch()
    {
        var c = new PartCounter(bits: 16, maxRatePerSecond: 0.3);
        Assert.Equal(0, c.Update(0, 65_530));
        Assert.Equal(10, c.Update(60 * S, 4));        // wrapped at 2^16
        Assert.Equal(1, c.Wraps);
        Assert.Equal(5, c.Update(120 * S, 9));
        Assert.Equal(0, c.Update(130 * S, 40_000));   // impossible jump: glitch, re-baselined
        Assert.Equal(1, c.Glitches);
        Assert.Equal(3, c.Update(140 * S, 40_003));
        Assert.Equal(2, c.Update(150 * S, 2));        // reset to 0, then 2 parts
        Assert.Equal(1, c.Resets);
        // A 32-bit counter read as 16 bits would look like a reset; the width matters.
        var wide = new PartCounter(bits: 32, maxRatePerSecond: 0.3);
        wide.Update(0, uint.MaxValue - 1);
        Assert.Equal(3, wide.Update(60 * S, 1));
    }

    [Fact]
    public void Periods_restart_the_books_and_keep_the_state()
    {
        var t = new OeeTracker(10, staleAfterSeconds: 3600);
        t.OnState(0, MachineState.Running);
        t.AddParts(good: 50, reject: 0);
        t.StartPeriod(600 * S);
        t.OnState(900 * S, MachineState.Starved);
        var r = t.Report(1200 * S);
        Assert.Equal(0, r.GoodQuantity);
        Assert.Equal(600, r.PlannedBusyTime, 6);
        Assert.Equal(300, r.Losses.Waiting, 6);
        Assert.Equal(0.5, r.Availability, 9);
    }
}

public sealed class StackLightTests
{
    [Theory]
    [InlineData(true, false, true, MachineState.Faulted)]
    [InlineData(false, false, true, MachineState.Running)]
    [InlineData(false, true, false, MachineState.Idle)]
    [InlineData(false, false, false, MachineState.PlannedStop)]
    public void Lamps_give_the_state(bool red, bool amber, bool green, MachineState expected) =>
        Assert.Equal(expected, StackLight.Classify(red, amber, green));
}
