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
        Assert.Equal(2700.0 / 3300, r.Availability!.Value, 9);
        Assert.Equal(10.0 * 260 / 2700, r.Effectiveness!.Value, 9);
        Assert.Equal(250.0 / 260, r.QualityRate!.Value, 9);
        Assert.Equal(10.0 * 250 / 3300, r.Oee!.Value, 9);
        Assert.Equal(300, r.Losses.Breakdowns, 6);
        Assert.Equal(300, r.Losses.Setups, 6);
        Assert.Equal(0, r.Losses.Waiting, 6);
        Assert.Equal(60, r.Losses.MicroStops, 6);
        Assert.Equal(40, r.Losses.SpeedLoss!.Value, 6);
        Assert.Equal(100, r.Losses.Rejects!.Value, 6);
        // Value-adding time plus every loss is the planned busy time.
        var l = r.Losses;
        Assert.Equal(r.PlannedBusyTime, 10.0 * r.GoodQuantity + l.Breakdowns + l.Setups + l.Waiting + l.MicroStops + l.SpeedLoss!.Value + l.Rejects!.Value, 6);
    }

    [Fact]
    public void Regression_a_machine_that_never_reported_showed_0_percent_availability_quality_and_oee()
    {
        // 0/0 is no data: no planned busy time, no counts, no parts. Before, every one of them read 0 %.
        var silent = new OeeTracker(30, 120, 300);
        silent.StartPeriod(60 * S); // a shift start
        var r = silent.Report(3600 * S);
        Assert.Equal((null, null, null, null), (r.Availability, r.Effectiveness, r.QualityRate, r.Oee));
        Assert.Null(r.Losses.SpeedLoss);
        Assert.Equal(3540, r.UnknownTime, 6);

        // States but no counter readings: availability is known, everything that needs the parts is not.
        var statesOnly = new OeeTracker(30, 120, 3600);
        statesOnly.OnState(0, MachineState.Running);
        r = statesOnly.Report(3600 * S);
        Assert.Equal((1.0, null, null, null), (r.Availability, r.Effectiveness, r.QualityRate, r.Oee));

        // Counters that read and made nothing in an hour of planned time, faulted throughout: an OEE of 0 is the truth.
        var idle = new OeeTracker(30, 120, 3600);
        idle.OnState(0, MachineState.Faulted);
        idle.OnGoodCounter(0, 500);
        idle.OnGoodCounter(3600 * S, 500);
        r = idle.Report(3600 * S);
        Assert.Equal((0.0, null, null, 0.0), (r.Availability, r.Effectiveness, r.QualityRate, r.Oee));
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
        Assert.Equal(100.0 / 400, late.Availability!.Value, 9);
    }

    [Fact]
    public void Missing_samples_turn_into_unknown_time_outside_planned_busy_time()
    {
        var t = new OeeTracker(10, staleAfterSeconds: 300);
        t.OnState(0, MachineState.Running);
        t.OnState(100 * S, MachineState.Running); // keep-alive
        t.OnState(1000 * S, MachineState.Running); // a 900 s gap, longer than the 300 s hold: unknown from its start
        var r = t.Report(1000 * S);
        Assert.Equal(900, r.UnknownTime, 6);
        Assert.Equal(100, r.PlannedBusyTime, 6);
        Assert.Equal(1, r.Availability!.Value, 9);
        // Silence up to now is unknown as well, from the last reading on once it outlasts the hold.
        Assert.Equal(900, t.Report(1200 * S).UnknownTime, 6); // 200 s of silence: still held
        var r2 = t.Report(2000 * S);
        Assert.Equal(900 + 1000, r2.UnknownTime, 6);
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

    /// <summary>
    /// Plant manager: scrap is booked on the HMI at the end of a run (the operator enters 40), and the reject counter's
    /// jump from 0 to 40 after an hour standing still was dropped as a glitch (more than 3× the ideal rate over the last
    /// minute): quality 100 % for a run with 40 scrap. A rise up to the parts made since the reject counter last moved is
    /// now counted; a bit flip or a replaced counter (far more than was made) still is a glitch.
    /// </summary>
    [Fact]
    public void Regression_an_hmi_batch_booking_of_scrap_was_dropped_as_a_glitch()
    {
        const double cycle = 30;
        var t = new OeeTracker(cycle);
        long ms = 0;
        t.OnState(ms, MachineState.Running);
        t.OnGoodCounter(ms, 0);
        t.OnRejectCounter(ms, 0);
        for (var i = 1; i <= 120; i++)
        {
            // An hour's run, polled every 30 s: a part per cycle, the reject counter untouched.
            ms = i * 30_000L;
            t.OnState(ms, MachineState.Running);
            t.OnGoodCounter(ms, (ulong)i);
            t.OnRejectCounter(ms, 0);
        }

        ms += 30_000;
        Assert.Equal(40, t.OnRejectCounter(ms, 40)); // the run's scrap, booked at its end
        Assert.Equal(40, t.Report(ms).RejectQuantity);
        Assert.Equal(120.0 / 160, t.Report(ms).QualityRate!.Value, 9);

        // The next run: 20 parts, then a bit flip (bit 20) and a counter replaced by one reading 5,000,000 — glitches.
        for (var i = 1; i <= 20; i++)
        {
            ms += 30_000;
            t.OnGoodCounter(ms, (ulong)(120 + i));
        }

        ms += 30_000;
        Assert.Equal(0, t.OnRejectCounter(ms, 40 + (1UL << 20)));
        ms += 30_000;
        Assert.Equal(0, t.OnRejectCounter(ms, 5_000_000));
        // More scrap than the parts made since the counter last moved is no booking either (here: none made since the flip).
        ms += 30_000;
        Assert.Equal(0, t.OnRejectCounter(ms, 5_000_030));
        Assert.Equal(40, t.Report(ms).RejectQuantity);
    }

    [Fact]
    public void Regression_parts_made_while_the_counter_read_frozen_were_dropped_as_a_glitch()
    {
        // CI: a 2-core machine stalled the simulated PLCs' register refresh for seconds; the agent polled every 100 ms
        // and saw the counters stand still, then jump by the parts made meanwhile. Measured from the previous reading
        // (100 ms) the jump was implausible and dropped: every station's OEE came out 12 % low, availability right.
        const double cycle = 0.5;
        var t = new OeeTracker(cycle);
        long ms = 0;
        ulong count = 1_000;
        t.OnState(ms, MachineState.Running);
        t.OnGoodCounter(ms, count);
        long booked = 0;
        for (var i = 0; i < 50; i++)
        {
            // 5 s in 100 ms polls: the counter reads frozen at 1000 ...
            ms += 100;
            t.OnState(ms, MachineState.Running);
            booked += t.OnGoodCounter(ms, count);
        }

        // ... then the refresh catches up: 10 parts made in those 5 s at the ideal rate.
        ms += 100;
        count += 10;
        booked += t.OnGoodCounter(ms, count);
        Assert.Equal(10, booked);
        Assert.Equal(10, t.Report(ms).GoodQuantity);
        Assert.Equal(1.0, t.Report(ms).Effectiveness!.Value, 1);

        // A batch-booking PLC (a layer of 12 bottles at once, every 6 s at the ideal rate) counts every batch.
        var batches = new PartCounter(bits: 32, maxRatePerSecond: 3 / cycle);
        batches.Update(0, 0);
        long counted = 0;
        for (var poll = 1; poll <= 600; poll++)
        {
            counted += batches.Update(poll * 100L, (ulong)(poll / 60 * 12));
        }

        Assert.Equal(120, counted);
        Assert.Equal(0, batches.Glitches);
    }

    [Fact]
    public void A_counter_that_stood_still_for_long_still_calls_an_impossible_jump_a_glitch()
    {
        // The catch-up reaches back a minute at most: an idle hour does not make a replaced counter's jump plausible.
        var c = new PartCounter(bits: 32, maxRatePerSecond: 3 / 0.5);
        c.Update(0, 500);
        for (var s = 1; s <= 3600; s++)
        {
            Assert.Equal(0, c.Update(s * 1000L, 500));
        }

        Assert.Equal(0, c.Update(3601 * 1000L, 500 + 2_000));
        Assert.Equal(1, c.Glitches);
        Assert.Equal(4, c.Update(3602 * 1000L, 500 + 2_004));
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
        Assert.Equal(0.5, r.Availability!.Value, 9);
    }
}

public sealed class StackLightTests
{
    private const StackLamp R = StackLamp.Red;
    private const StackLamp A = StackLamp.Amber;
    private const StackLamp G = StackLamp.Green;

    [Theory]
    [InlineData(true, false, true, MachineState.Faulted)]
    [InlineData(false, false, true, MachineState.Running)]
    [InlineData(false, true, false, MachineState.Idle)]
    [InlineData(false, false, false, MachineState.PlannedStop)]
    public void Lamps_give_the_state(bool red, bool amber, bool green, MachineState expected) =>
        Assert.Equal(expected, StackLight.Classify(red, amber, green));

    // Feeds lamp readings (seconds, lamp, lit) and returns every state reading, plus the state changes alone.
    private static (List<StateReading> All, List<(double Seconds, MachineState State)> Changes) Feed(StackLightDecoder d, params (double S, StackLamp Lamp, bool Lit)[] readings)
    {
        var all = new List<StateReading>();
        Span<StateReading> buf = stackalloc StateReading[4];
        foreach (var (sec, lamp, lit) in readings)
        {
            int n = d.Apply((long)Math.Round(sec * 1000), lamp, lit, buf);
            for (int k = 0; k < n; k++) all.Add(buf[k]);
        }
        for (int k = 1; k < all.Count; k++) Assert.True(all[k].TimestampMs >= all[k - 1].TimestampMs, $"reading {k} goes back in time: {all[k - 1]} then {all[k]}");
        var changes = new List<(double, MachineState)>();
        foreach (var r in all)
            if (changes.Count == 0 || changes[^1].Item2 != r.State) changes.Add((r.TimestampMs / 1000.0, r.State));
        return (all, changes);
    }

    private static StackLightDecoder Tower() => new(red: true, amber: true, green: true, TimeSpan.FromMilliseconds(1500));

    // Every lamp reports its level once at start (what the GPIO inputs publish when they open).
    private static (double, StackLamp, bool)[] Start(double s, bool red, bool amber, bool green) => [(s, R, red), (s, A, amber), (s, G, green)];

    [Fact]
    public void Nothing_is_decoded_until_every_wired_lamp_has_reported()
    {
        var d = Tower();
        var (all, _) = Feed(d, (0, R, false), (0.1, G, true));
        Assert.Empty(all);
        Assert.Equal(MachineState.Unknown, d.State);
        var (after, changes) = Feed(d, (0.2, A, false));
        Assert.Equal([(0.2, MachineState.Running)], changes);
        Assert.Single(after);

        // A tower wired with red and green only needs those two.
        var two = new StackLightDecoder(red: true, amber: false, green: true, TimeSpan.FromSeconds(1));
        Assert.Equal([(0.0, MachineState.Running)], Feed(two, (0, R, false), (0, G, true)).Changes);
        Assert.Empty(Feed(two, (1, A, true)).All); // an unwired lamp is ignored
    }

    [Fact]
    public void A_flashing_red_lamp_is_one_fault_from_its_first_flash_to_its_last()
    {
        var d = Tower();
        var seq = new List<(double, StackLamp, bool)>(Start(0, false, false, true));
        seq.Add((10.0, G, false));                    // the PLC switches green off …
        for (double t = 10.2; t < 16; t += 1.0)       // … and red on 200 ms later, blinking at 1 Hz
        {
            seq.Add((t, R, true));
            seq.Add((t + 0.5, R, false));
        }
        seq.Add((15.9, G, true));                     // fault cleared: red stays dark (last off 15.7), green on
        seq.Add((30, G, true));                       // keep-alive
        var (_, changes) = Feed(d, [.. seq]);
        // The fault starts when green goes out (the PLC changed lamps) and ends when red last went dark.
        Assert.Equal([(0.0, MachineState.Running), (10.0, MachineState.Faulted), (15.7, MachineState.Running)], changes);

        // Booked: 10 s running, 5.7 s faulted (a micro-stop under the 20 s limit), 14.3 s running; no planned stop.
        var oee = new OeeTracker(1, microStopSeconds: 20);
        foreach (var r in Feed(Tower(), [.. seq]).All) oee.OnState(r.TimestampMs, r.State);
        var report = oee.Report(30_000);
        Assert.Equal(5.7, report.SecondsByState["micro_stop"], 6);
        Assert.Equal(24.3, report.SecondsByState["running"], 6);
        Assert.Equal(0, report.SecondsByState["planned_stop"]);
        Assert.Equal(30, report.PlannedBusyTime, 6);
    }

    [Fact]
    public void A_short_all_dark_gap_while_lamps_change_is_not_a_planned_stop_but_a_long_one_is()
    {
        var d = Tower();
        var (_, changes) = Feed(d, [.. Start(0, false, false, true),
            (5.0, G, false), (5.4, A, true),                     // green → amber with 400 ms all dark
            (9.0, A, false), (9.3, G, true),                     // amber → green with 300 ms all dark
            (20.0, G, false), (20.5, G, false), (40.0, A, false), // machine switched off: dark, keep-alives
            (60.0, G, true)]);
        // A steady lamp's state ends when it goes dark (running at 5.0, idle at 9.0); the gaps are never a planned stop.
        Assert.Equal([(0.0, MachineState.Running), (5.0, MachineState.Idle), (9.0, MachineState.Running), (20.0, MachineState.PlannedStop), (60.0, MachineState.Running)], changes);
    }

    [Fact]
    public void All_dark_is_dated_when_the_last_lamp_went_dark_even_when_no_reading_follows_for_a_while()
    {
        var d = Tower();
        Feed(d, Start(0, false, false, true));
        Feed(d, (100.0, G, false));
        Span<StateReading> buf = stackalloc StateReading[4];
        Assert.Equal(0, d.Advance(101_000, buf)); // still within the hold: could be a blink
        Assert.Equal(1, d.Advance(130_000, buf));
        Assert.Equal(new StateReading(100_000, MachineState.PlannedStop), buf[0]);
        Assert.Equal(MachineState.PlannedStop, d.State);
    }

    [Fact]
    public void Red_with_green_is_a_fault_and_red_going_out_returns_to_running_when_it_went_out()
    {
        var d = Tower();
        var (_, changes) = Feed(d, [.. Start(0, false, false, true),
            (3.0, R, true),               // red on while green stays lit
            (8.0, R, false),              // red out; green still lit
            (8.5, G, true), (12.0, G, true)]);
        Assert.Equal([(0.0, MachineState.Running), (3.0, MachineState.Faulted), (8.0, MachineState.Running)], changes);
    }

    [Fact]
    public void Contact_bounce_that_passes_the_debounce_changes_nothing()
    {
        var d = Tower();
        var (_, changes) = Feed(d, [.. Start(0, false, true, false),
            (2.000, G, true), (2.004, G, false), (2.009, G, true), (2.015, A, false), // green on with bounce, amber off
            (7.000, G, false), (7.003, G, true), (7.006, G, false), (7.300, R, true), // green off with bounce, red on
            (9.0, R, true), (9.5, G, false)]);
        // Bounce shorter than MinBlink does not make green a blinking lamp: red ends its hold, dated at its last edge.
        Assert.Equal([(0.0, MachineState.Idle), (2.0, MachineState.Running), (7.006, MachineState.Faulted)], changes);
    }

    [Fact]
    public void Late_and_missing_readings_are_repaired_by_the_next_keep_alive()
    {
        var d = Tower();
        var (all, changes) = Feed(d, [.. Start(0, false, false, true),
            (10.0, R, true), (9.0, G, false),  // green's off arrives after red's on, stamped earlier: taken at 10 s
            (20.0, R, false),                  // red out; green's on was lost …
            (30.0, G, true),                   // … until its keep-alive
            (30.0, R, false)]);
        Assert.Equal([(0.0, MachineState.Running), (10.0, MachineState.Faulted), (20.0, MachineState.PlannedStop), (30.0, MachineState.Running)], changes);
        Assert.All(all, r => Assert.True(r.TimestampMs <= 30_000));
    }

    [Fact]
    public void Short_waits_between_parts_are_seen_but_a_blinking_lamp_keeps_its_hold()
    {
        var d = Tower();
        var (_, changes) = Feed(d, [.. Start(0, false, false, true),
            (4.00, G, false), (4.05, A, true),   // starved for 0.6 s between two parts
            (4.60, A, false), (4.65, G, true),
            (10.0, G, false), (10.05, A, true),  // setup: amber blinks at 1 Hz for 4 s, green dark
            (10.55, A, false), (11.05, A, true), (11.55, A, false), (12.05, A, true), (12.55, A, false), (13.05, A, true), (13.55, A, false),
            (13.60, G, true),                    // running again while amber is still on hold
            (20.0, G, true)]);
        Assert.Equal([(0.0, MachineState.Running), (4.0, MachineState.Idle), (4.65, MachineState.Running), (10.0, MachineState.Idle), (13.6, MachineState.Running)], changes);
    }
}
