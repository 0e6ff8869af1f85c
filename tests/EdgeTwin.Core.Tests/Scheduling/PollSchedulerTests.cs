using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Tests.Scheduling;

public sealed class PollSchedulerTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(2);

    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static TimeSpan[] Offsets(FakeSource source) => [.. source.PollTimes.Select(SchedulerHarness.Since)];

    [Fact]
    public async Task Devices_with_one_interval_are_spread_evenly_and_keep_their_grid()
    {
        await using var h = new SchedulerHarness();
        var sources = Enumerable.Range(0, 4).Select(i => h.Source($"d{i}")).ToArray();
        await h.StartAsync([.. sources.Select(s => new PolledDevice(s, Interval, PollTimeout))]);

        await h.AdvanceAsync(S(34.9));

        Assert.Equal([S(0), S(10), S(20), S(30)], Offsets(sources[0]));
        Assert.Equal([S(2.5), S(12.5), S(22.5), S(32.5)], Offsets(sources[1]));
        Assert.Equal([S(5), S(15), S(25)], Offsets(sources[2]));
        Assert.Equal([S(7.5), S(17.5), S(27.5)], Offsets(sources[3]));
    }

    [Fact]
    public async Task Samples_carry_the_acquisition_time_of_their_poll()
    {
        await using var h = new SchedulerHarness();
        var a = h.Source("a", "inlet", "outlet");
        await h.StartAsync(new PolledDevice(a, Interval, PollTimeout));

        await h.AdvanceAsync(S(25));

        var times = h.Samples.Samples.Select(s => SchedulerHarness.Since(s.Timestamp)).ToArray();
        Assert.Equal([S(0), S(0), S(10), S(10), S(20), S(20)], times);
        Assert.All(h.Samples.Samples, s => Assert.Equal(SampleQuality.Good, s.Quality));
    }

    [Fact]
    public async Task A_dead_device_never_shifts_another_devices_poll_times()
    {
        // Two slots, one of them held for the full timeout by the dead device on every poll.
        await using var h = new SchedulerHarness(new PollSchedulerOptions { JitterFraction = 0, MaxConcurrency = 2, RandomSeed = 1 });
        var dead = h.Source("dead");
        dead.Behavior = _ => PollBehavior.Hang;
        var good = h.Source("good");
        var slow = h.Source("slow");
        slow.Behavior = _ => PollBehavior.Slow;
        slow.SlowFor = S(1.5);
        var interval = S(9);
        await h.StartAsync(
            new PolledDevice(dead, interval, PollTimeout),
            new PolledDevice(good, interval, PollTimeout),
            new PolledDevice(slow, interval, PollTimeout));

        await h.AdvanceAsync(S(120));

        Assert.Equal(Enumerable.Range(0, 14).Select(n => S(3) + (interval * n)), Offsets(good));
        Assert.Equal(Enumerable.Range(0, 13).Select(n => S(6) + (interval * n)), Offsets(slow));
        Assert.Equal(14, h.Samples.Samples.Count(s => h.Registry[s.Series].DeviceId == "good" && s.IsGood));
        Assert.Equal(13, h.Samples.Samples.Count(s => h.Registry[s.Series].DeviceId == "slow" && s.IsGood));
    }

    [Fact]
    public async Task An_unreachable_device_times_out_goes_down_once_and_backs_off_exponentially()
    {
        await using var h = new SchedulerHarness();
        var dead = h.Source("dead");
        dead.Behavior = _ => PollBehavior.Hang;
        await h.StartAsync(new PolledDevice(dead, Interval, PollTimeout));

        await h.AdvanceAsync(S(400));

        // Three timeouts on the grid, then gaps of 20 s, 40 s, 80 s, 160 s, capped at MaxBackoff (5 min).
        Assert.Equal([S(0), S(10), S(20), S(40), S(80), S(160), S(320)], Offsets(dead));
        var down = Assert.Single(h.Events.Events);
        Assert.Equal(EdgeEventKind.DeviceDown, down.Kind);
        Assert.Equal("dead", down.Source);
        Assert.Equal(SchedulerHarness.Start + S(20), down.Time);
        Assert.Equal("device 'dead' down after 3 failed polls: device 'dead': no answer within 2s", down.Message);
        Assert.Equal("timeout", down.Attributes!["reason"]);

        var status = Assert.Single(h.Scheduler!.Status());
        Assert.Equal(DeviceState.Down, status.State);
        Assert.Equal(7, status.ConsecutiveFailures);
        Assert.Equal(SchedulerHarness.Start + S(620), status.NextPoll);
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_stopped_all_polling()
    {
        // The grid was wall-clock (anchor = GetUtcNow, wait = due - GetUtcNow): after NTP stepped the clock back one
        // hour every device loop slept one hour, and a later forward step could not shorten the armed timer.
        await using var h = new SchedulerHarness();
        var a = h.Source("a");
        var b = h.Source("b");
        await h.StartAsync(new PolledDevice(a, Interval, PollTimeout), new PolledDevice(b, Interval, PollTimeout));

        await h.AdvanceAsync(S(25));
        h.Clock.Step(TimeSpan.FromHours(-1));
        await h.AdvanceAsync(S(30));
        h.Clock.Step(TimeSpan.FromDays(1));
        await h.AdvanceAsync(S(20));

        // Polls keep the steady (monotonic) cadence through both steps: none missed, none skipped, no burst.
        Assert.Equal(Enumerable.Range(0, 8).Select(n => Interval * n), Offsets(a));
        Assert.Equal(Enumerable.Range(0, 8).Select(n => S(5) + (Interval * n)), Offsets(b));
        Assert.All(h.Scheduler!.Status(), s => Assert.Equal(0, s.SkippedPolls));

        // Samples are stamped with the wall clock, stepped as it was.
        var stamps = h.Samples.Samples.Where(s => h.Registry[s.Series].DeviceId == "a").Select(s => s.Timestamp).ToArray();
        Assert.Equal(SchedulerHarness.Start + S(20), stamps[2]);
        Assert.Equal(SchedulerHarness.Start + S(30) - TimeSpan.FromHours(1), stamps[3]);
        Assert.Equal(SchedulerHarness.Start + S(70) + TimeSpan.FromDays(1) - TimeSpan.FromHours(1), stamps[7]);

        // Status shows the next poll on the wall clock as it now reads.
        var status = h.Scheduler.Status().Single(s => s.DeviceId == "a");
        Assert.Equal(h.Clock.GetUtcNow() + S(5), status.NextPoll);
    }

    [Fact]
    public async Task Regression_a_wrong_unit_id_logged_nothing_above_debug_until_down_and_only_no_answer_within_2s()
    {
        // The scheduler's deadline replaced the source's account (unit, function, address) with a generic text, and
        // the first failures of a device that had never answered were Debug only: a wrong unit_id showed up as a bare
        // "no answer" several intervals after start.
        await using var h = new SchedulerHarness();
        var dead = h.Source("meter1");
        dead.Behavior = _ => PollBehavior.HangThenExplain;
        await h.StartAsync(new PolledDevice(dead, Interval, PollTimeout));

        await h.AdvanceAsync(S(25));

        const string Detail = "device 'meter1': tcp://127.0.0.1:502 unit 1: no answer to ReadHoldingRegisters at 0 within 2 s";
        var warnings = h.Logs.Where(l => l.Level >= LogLevel.Warning).Select(l => l.Message).ToList();
        Assert.Equal(
        [
            "Device meter1: first poll failed (timeout); it has not answered since start: " + Detail,
            "Device meter1 is down after 3 failed polls; next try in 20.0s: " + Detail,
        ], warnings);
        Assert.Equal(["Device meter1: poll failed (timeout, 2 in a row): " + Detail, "Device meter1: poll failed (timeout, 3 in a row): " + Detail], h.Logs.Where(l => l.Level == LogLevel.Debug && l.Message.Contains("poll failed", StringComparison.Ordinal)).Select(l => l.Message));
        Assert.Equal("device 'meter1' down after 3 failed polls: " + Detail, Assert.Single(h.Events.Events).Message);
    }

    [Fact]
    public async Task A_device_that_answered_once_logs_its_first_failure_at_debug()
    {
        await using var h = new SchedulerHarness();
        var flaky = h.Source("flaky");
        flaky.Behavior = i => i == 0 ? PollBehavior.Good : PollBehavior.Fail;
        await h.StartAsync(new PolledDevice(flaky, Interval, PollTimeout));

        await h.AdvanceAsync(S(15));

        Assert.DoesNotContain(h.Logs, l => l.Level >= LogLevel.Warning);
        Assert.Contains(h.Logs, l => l.Level == LogLevel.Debug && l.Message == "Device flaky: poll failed (error, 1 in a row): device 'flaky': connection refused");
    }

    [Fact]
    public async Task Backoff_is_capped_by_MaxBackoff()
    {
        await using var h = new SchedulerHarness(new PollSchedulerOptions { JitterFraction = 0, FailuresBeforeDown = 1, MaxBackoff = S(30), RandomSeed = 1 });
        var dead = h.Source("dead");
        dead.Behavior = _ => PollBehavior.Fail;
        await h.StartAsync(new PolledDevice(dead, Interval, PollTimeout));

        await h.AdvanceAsync(S(150));

        Assert.Equal([S(0), S(20), S(50), S(80), S(110), S(140)], Offsets(dead));
    }

    [Fact]
    public async Task A_device_that_comes_back_raises_device_up_and_returns_to_its_grid()
    {
        await using var h = new SchedulerHarness();
        var other = h.Source("other");
        var flaky = h.Source("flaky");
        flaky.Behavior = n => n < 4 ? PollBehavior.Fail : PollBehavior.Good;
        await h.StartAsync(new PolledDevice(other, Interval, PollTimeout), new PolledDevice(flaky, Interval, PollTimeout));

        await h.AdvanceAsync(S(80));

        // Fails at 5, 15, 25 (down), then 45 (after a 20 s backoff); the next try waits 40 s.
        Assert.Equal([S(5), S(15), S(25), S(45)], Offsets(flaky));
        await h.AdvanceAsync(S(30));

        Assert.Equal([S(5), S(15), S(25), S(45), S(85), S(95), S(105)], Offsets(flaky));
        Assert.Equal([EdgeEventKind.DeviceDown, EdgeEventKind.DeviceUp], h.Events.Events.Select(e => e.Kind));
        var up = h.Events.Events[1];
        Assert.Equal(SchedulerHarness.Start + S(85), up.Time);
        Assert.Equal("device 'flaky' answers again after 4 failed polls", up.Message);
        Assert.Equal(DeviceState.Up, h.Scheduler!.Status()[1].State);
    }

    [Fact]
    public async Task A_failed_poll_repeats_the_last_values_as_stale_until_the_device_is_down()
    {
        await using var h = new SchedulerHarness();
        var d = h.Source("d", "inlet", "outlet");
        d.Behavior = n => n == 0 ? PollBehavior.Good : PollBehavior.Fail;
        d.Value = _ => 23.25;
        await h.StartAsync(new PolledDevice(d, Interval, PollTimeout));

        await h.AdvanceAsync(S(35));

        var got = h.Samples.Samples.Select(s => (h.Registry[s.Series].Metric, SchedulerHarness.Since(s.Timestamp), s.Value, s.Quality)).ToArray();
        Assert.Equal(
            [
                ("inlet", S(0), 23.25, SampleQuality.Good), ("outlet", S(0), 23.25, SampleQuality.Good),
                ("inlet", S(10), 23.25, SampleQuality.Stale), ("outlet", S(10), 23.25, SampleQuality.Stale),
                ("inlet", S(20), 23.25, SampleQuality.Stale), ("outlet", S(20), 23.25, SampleQuality.Stale),
            ],
            got);
    }

    [Fact]
    public async Task A_retired_series_is_not_repeated_as_stale_after_its_row_left_the_device()
    {
        await using var h = new SchedulerHarness();
        var d = h.Source("d", "inlet", "outlet");
        d.Behavior = n => n == 0 ? PollBehavior.Good : PollBehavior.Fail;
        d.Value = _ => 23.25;
        await h.StartAsync(new PolledDevice(d, Interval, PollTimeout));
        await h.AdvanceAsync(S(5));

        h.Registry.Retire(d.Series[1]);
        await h.AdvanceAsync(S(30));

        var got = h.Samples.Samples.Select(s => (h.Registry[s.Series].Metric, SchedulerHarness.Since(s.Timestamp), s.Quality)).ToArray();
        Assert.Equal(
            [
                ("inlet", S(0), SampleQuality.Good), ("outlet", S(0), SampleQuality.Good),
                ("inlet", S(10), SampleQuality.Stale), ("inlet", S(20), SampleQuality.Stale),
            ],
            got);
    }

    [Fact]
    public async Task Values_outside_the_profile_range_are_flagged_out_of_range()
    {
        await using var h = new SchedulerHarness();
        var d = h.Source("d");
        double[] values = [20, 60, double.NaN, -1, 50];
        d.Value = n => values[n];
        await h.StartAsync(new PolledDevice(d, Interval, PollTimeout, _ => new QualityRule(Min: 0, Max: 50)));

        await h.AdvanceAsync(S(45));

        Assert.Equal(
            [SampleQuality.Good, SampleQuality.OutOfRange, SampleQuality.OutOfRange, SampleQuality.OutOfRange, SampleQuality.Good],
            h.Samples.Samples.Select(s => s.Quality));
    }

    [Fact]
    public async Task A_value_unchanged_for_longer_than_allowed_is_flagged_stuck_until_it_moves()
    {
        await using var h = new SchedulerHarness();
        var d = h.Source("d");
        double[] values = [5, 5, 5, 5, 6, 6];
        d.Value = n => values[n];
        await h.StartAsync(new PolledDevice(d, Interval, PollTimeout, _ => new QualityRule(StuckAfter: S(25))));

        await h.AdvanceAsync(S(55));

        Assert.Equal(
            [SampleQuality.Good, SampleQuality.Good, SampleQuality.Good, SampleQuality.Stuck, SampleQuality.Good, SampleQuality.Good],
            h.Samples.Samples.Select(s => s.Quality));
    }

    [Fact]
    public async Task Concurrency_is_bounded_and_waiting_polls_run_in_order()
    {
        var probe = new ConcurrencyProbe();
        await using var h = new SchedulerHarness(new PollSchedulerOptions { JitterFraction = 0, MaxConcurrency = 2, RandomSeed = 3 });
        var sources = Enumerable.Range(0, 5).Select(i => h.Source($"s{i}")).ToArray();
        foreach (var s in sources)
        {
            s.Behavior = _ => PollBehavior.Slow;
            s.SlowFor = S(0.9);
            s.Probe = probe;
        }

        // Five polls of 0.9 s every 2 s, phases 0.4 s apart: without the gate up to three would overlap.
        await h.StartAsync([.. sources.Select(s => new PolledDevice(s, S(2), S(1)))]);
        await h.AdvanceAsync(S(20));

        Assert.Equal(2, probe.Max);
        Assert.All(sources, s => Assert.True(s.PollTimes.Count >= 8, $"{s.DeviceId} polled {s.PollTimes.Count} times"));
        Assert.Empty(h.Events.Events);
    }

    [Fact]
    public async Task A_poll_that_ignores_cancellation_is_abandoned_and_frees_its_slot()
    {
        await using var h = new SchedulerHarness(new PollSchedulerOptions { JitterFraction = 0, MaxConcurrency = 1, RandomSeed = 5 });
        var stuck = h.Source("stuck");
        stuck.Behavior = n => n == 0 ? PollBehavior.HangIgnoringCancellation : PollBehavior.Good;
        var good = h.Source("good");
        await h.StartAsync(new PolledDevice(stuck, Interval, PollTimeout), new PolledDevice(good, Interval, PollTimeout));

        await h.AdvanceAsync(S(25));
        Assert.Equal([S(0)], Offsets(stuck));
        Assert.Equal([S(5), S(15), S(25)], Offsets(good));
        Assert.Equal(2, h.Scheduler!.Status()[0].SkippedPolls);

        stuck.Release();
        await h.AdvanceAsync(S(10));
        Assert.Equal([S(0), S(30)], Offsets(stuck));
        Assert.Contains(h.Samples.Samples, s => h.Registry[s.Series].DeviceId == "stuck" && SchedulerHarness.Since(s.Timestamp) == S(30) && s.IsGood);
        Assert.DoesNotContain(h.Samples.Samples, s => h.Registry[s.Series].DeviceId == "stuck" && SchedulerHarness.Since(s.Timestamp) == S(0));
    }

    [Fact]
    public async Task Jitter_stays_within_its_fraction_does_not_drift_and_is_reproducible_with_a_seed()
    {
        async Task<TimeSpan[]> RunAsync()
        {
            await using var h = new SchedulerHarness(new PollSchedulerOptions { JitterFraction = 0.1, RandomSeed = 42 });
            var a = h.Source("a");
            var b = h.Source("b");
            await h.StartAsync(new PolledDevice(a, Interval, PollTimeout), new PolledDevice(b, Interval, PollTimeout));
            await h.AdvanceAsync(S(300));
            return Offsets(b);
        }

        var first = await RunAsync();
        var second = await RunAsync();

        Assert.Equal(first, second);
        Assert.Equal(30, first.Length);
        for (var n = 0; n < first.Length; n++)
        {
            var grid = S(5) + (Interval * n);
            Assert.InRange(first[n], grid, grid + S(1) + TimeSpan.FromMilliseconds(100));
        }

        Assert.True(first.Distinct().Select(t => (t - S(5)).Ticks % Interval.Ticks).Distinct().Count() > 1, "jitter never varied");
    }

    [Fact]
    public async Task Stop_lets_the_poll_in_flight_finish_and_forwards_its_samples()
    {
        await using var h = new SchedulerHarness();
        var d = h.Source("d");
        d.Behavior = _ => PollBehavior.Slow;
        d.SlowFor = S(1.5);
        await h.StartAsync(new PolledDevice(d, Interval, PollTimeout));
        await h.AdvanceAsync(S(1));

        var stop = h.Scheduler!.StopAsync(CancellationToken.None);
        Assert.False(stop.IsCompleted);
        await h.AdvanceAsync(S(1));
        await stop.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        var sample = Assert.Single(h.Samples.Samples);
        Assert.Equal(SchedulerHarness.Start, sample.Timestamp);
        Assert.Equal([S(0)], Offsets(d));
    }

    [Fact]
    public async Task Stop_with_an_expired_token_cancels_polls_in_flight()
    {
        await using var h = new SchedulerHarness();
        var d = h.Source("d");
        d.Behavior = _ => PollBehavior.Hang;
        await h.StartAsync(new PolledDevice(d, Interval, PollTimeout));

        using var expired = new CancellationTokenSource();
        await expired.CancelAsync();
        await h.Scheduler!.StopAsync(expired.Token).WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Empty(h.Samples.Samples);
        Assert.Empty(h.Events.Events);
    }

    [Fact]
    public void Scheduling_one_device_twice_is_refused_with_its_name()
    {
        var h = new SchedulerHarness();
        var a = h.Source("pdu-1");
        var ex = Assert.Throws<ArgumentException>(() => new PollScheduler(
            [new PolledDevice(a, Interval, PollTimeout), new PolledDevice(h.Source("pdu-1"), Interval, PollTimeout)],
            h.Registry, h.Samples, h.Events));
        Assert.StartsWith("Device 'pdu-1' is scheduled twice.", ex.Message);
    }

    [Fact]
    public async Task Regression_time_queued_for_a_shared_line_counted_against_the_device_timeout()
    {
        // RS-485 units take turns on one line. A healthy unit queued behind a dead one used to time out on the queue:
        // its deadline ran from the start of its poll. Now a source that reports its wait for the line (PollDeadline)
        // has the timeout cover only its own exchange; the plain rule stays for sources that report nothing.
        await using var h = new SchedulerHarness();
        var queued = h.Source("queued");
        queued.Behavior = _ => PollBehavior.QueuedThenSlow;
        queued.QueueFor = S(1.5);
        queued.SlowFor = S(1.5); // 3 s in all, 1.5 s of it on the line: within the 2 s timeout
        var tooSlow = h.Source("too-slow");
        tooSlow.Behavior = _ => PollBehavior.QueuedThenSlow;
        tooSlow.QueueFor = S(1);
        tooSlow.SlowFor = S(2.5); // the on-line part alone exceeds the timeout
        var plain = h.Source("plain");
        plain.Behavior = _ => PollBehavior.Slow;
        plain.SlowFor = S(2.5);
        await h.StartAsync(new PolledDevice(queued, Interval, PollTimeout), new PolledDevice(tooSlow, Interval, PollTimeout), new PolledDevice(plain, Interval, PollTimeout));

        // Phases 0, 3.3 and 6.7 s: three polls each, the last of them over by 29 s.
        await h.AdvanceAsync(S(29));

        var status = h.Scheduler!.Status().ToDictionary(d => d.DeviceId);
        Assert.Equal((3L, 0L), (status["queued"].Polls, status["queued"].Failures));
        Assert.Equal(3, h.Samples.Samples.Count(s => h.Registry[s.Series].DeviceId == "queued" && s.IsGood));
        Assert.Equal((3L, 3L), (status["too-slow"].Polls, status["too-slow"].Failures));
        Assert.Equal("device 'too-slow': no answer within 2s", status["too-slow"].LastError);
        Assert.Equal((3L, 3L), (status["plain"].Polls, status["plain"].Failures));
    }

    [Fact]
    public async Task A_poll_stuck_waiting_for_its_shared_line_fails_at_the_wait_bound_and_says_it_was_not_sent()
    {
        await using var h = new SchedulerHarness();
        var stuck = h.Source("stuck");
        stuck.Behavior = _ => PollBehavior.QueuedForever;
        stuck.QueueBound = S(5);
        await h.StartAsync(new PolledDevice(stuck, Interval, PollTimeout));

        // Past its 2 s timeout, but the wait for the line has its own bound.
        await h.AdvanceAsync(S(4.9));
        Assert.Equal(0, h.Scheduler!.Status()[0].Failures);

        await h.AdvanceAsync(S(0.2));
        var status = h.Scheduler.Status()[0];
        Assert.Equal(1, status.Failures);
        Assert.Equal("device 'stuck': still waiting for its shared line after 5.0s (not sent)", status.LastError);
        Assert.Contains(h.Logs, l => l.Level == LogLevel.Warning && l.Message == "Device stuck: first poll failed (timeout); it has not answered since start: device 'stuck': still waiting for its shared line after 5.0s (not sent)");
    }
}
