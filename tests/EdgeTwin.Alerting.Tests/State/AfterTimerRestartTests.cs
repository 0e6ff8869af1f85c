using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Inputs;
using EdgeTwin.Alerting.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// A <c>stuck</c> or <c>missing</c> rule's <c>after</c> timer across an agent restart, restored as the <c>for:</c> holds
/// (<see cref="ForHoldRestartTests"/>: alerts.for_outage_tolerance, the alive mark, the downtime not counted): it began
/// from zero at every start, so a gateway restarted at minute 29 of a stuck probe waited 30 more minutes, and one
/// restarted more often than <c>after</c> never reported it.
/// </summary>
public sealed class AfterTimerRestartTests
{
    private const string StuckRules = """
        alerts:
          group_interval: 0s
          rules:
            - { name: inlet-stuck, type: stuck, match: { metric: inlet }, after: 30m, tolerance: 0.01, severity: info }
        """;

    private const string MissingRules = """
        alerts:
          group_interval: 0s
          rules:
            - { name: inlet-missing, type: missing, match: { metric: inlet }, after: 10m, severity: warning }
        """;

    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    /// <summary>Feeds <paramref name="value"/> every 30 s for <paramref name="span"/> or until <paramref name="rule"/> fires; whether it fired.</summary>
    private static bool Steady(Harness h, Core.Samples.SeriesId s, TimeSpan span, double value, string rule = "inlet-stuck")
    {
        for (var t = TimeSpan.Zero; t < span; t += TimeSpan.FromSeconds(30))
        {
            h.Feed(s, value);
            if (h.StateOf(rule) == AlertState.Firing)
            {
                return true;
            }

            h.Advance(TimeSpan.FromSeconds(30));
            if (h.StateOf(rule) == AlertState.Firing)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Advances in 1 s steps until <paramref name="rule"/> fires; how long that took (at most <paramref name="limit"/>).</summary>
    private static async Task<TimeSpan?> UntilFiringAsync(Harness h, string rule, TimeSpan limit)
    {
        for (var t = TimeSpan.Zero; t <= limit; t += TimeSpan.FromSeconds(1))
        {
            if (h.StateOf(rule) == AlertState.Firing)
            {
                await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
                return t;
            }

            h.Advance(TimeSpan.FromSeconds(1));
        }

        return null;
    }

    [Fact]
    public async Task Regression_a_stuck_sensor_was_never_reported_on_a_gateway_restarted_more_often_than_after()
    {
        // A probe stuck at 21.5 °C, the agent restarted every 20 min (2 min down): each run alone is shorter than the
        // rule's 30 min, so it never fired. Now the second run credits the 20 min of the first: it fires 10 min into it.
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(StuckRules, loggerFactory: new OneLoggerFactory(log));
        var firstSample = h.Time.GetUtcNow();
        DateTimeOffset? secondStart = null;
        var fired = false;
        for (var run = 0; run < 3 && !fired; run++)
        {
            fired = Steady(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(20), 21.5);
            if (!fired && run < 2)
            {
                h = await h.RestartAsync(TimeSpan.FromMinutes(2));
                secondStart ??= h.Time.GetUtcNow();
            }
        }

        await using (h)
        {
            Assert.True(fired, "the stuck probe was never reported: every run started its 30 min from zero");
            await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");

            // 30 min of the value unchanged, the 2 min down not counted: 10 min into the second run.
            var firedAt = h.Manager.Active().Single().FiredAt!.Value;
            Assert.Equal(firstSample + TimeSpan.FromMinutes(32), firedAt, TimeSpan.FromSeconds(31));
            Assert.Equal(secondStart!.Value + TimeSpan.FromMinutes(10), firedAt, TimeSpan.FromSeconds(31));
        }

        Assert.Contains("alert store: 1 stuck/missing after timers saved before the stop are kept (down 2m, within alerts.for_outage_tolerance 1h)", log.Text, StringComparison.Ordinal);
        Assert.Contains("alert inlet-stuck rack-r01/inlet: stuck after timer resumed after the restart (20m run before the stop, the downtime not counted); fires in 10m if the series stays at 21.5", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stuck_value_that_changed_during_the_downtime_is_dropped()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(StuckRules, loggerFactory: new OneLoggerFactory(log));
        Assert.False(Steady(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(20), 21.5));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            // The probe moved while the agent was down (and sticks again at 22): a new episode, from zero.
            var s2 = h2.Series("rack-r01", "inlet");
            Assert.False(Steady(h2, s2, TimeSpan.FromMinutes(29.5), 22));
            Assert.Equal(AlertState.Inactive, h2.StateOf("inlet-stuck"));
            Assert.True(Steady(h2, s2, TimeSpan.FromMinutes(1), 22));
        }

        Assert.Contains("alert inlet-stuck rack-r01/inlet: the stuck after timer saved before the stop is dropped: the first sample after the start reads 22, not the 21.5 seen stuck", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("after timer resumed", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_series_is_credited_across_a_restart()
    {
        // One sample, then nothing for 7 min; restarted (2 min down), the series still sends nothing: 3 min left, not 10.
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(MissingRules, loggerFactory: new OneLoggerFactory(log));
        h.Feed(h.Series("rack-r01", "inlet"), 21.5);
        h.Advance(TimeSpan.FromMinutes(7));
        Assert.Equal(AlertState.Inactive, h.StateOf("inlet-missing"));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            h2.Series("rack-r01", "inlet"); // registered at start (the profile's series), no sample
            var after = await UntilFiringAsync(h2, "inlet-missing", TimeSpan.FromMinutes(11));
            Assert.NotNull(after);
            Assert.InRange(after.Value, TimeSpan.FromSeconds(179), TimeSpan.FromSeconds(181));
        }

        Assert.Contains("alert inlet-missing rack-r01/inlet: missing after timer resumed after the restart (7m run before the stop, the downtime not counted); fires in 3m if no sample comes", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_credited_missing_timer_of_a_slow_poller_waits_twice_its_sample_gap_for_the_first_poll_after_the_start()
    {
        // A 2 min poller silent for 9.5 min (after: 10m), restarted: the 1 min grace of holds would report it missing
        // before its first poll after the start, although its device may have come back during the downtime.
        var h = await Harness.StartAsync(MissingRules);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 21.5);
        h.Advance(TimeSpan.FromMinutes(2));
        h.Feed(s, 21.5);
        h.Advance(TimeSpan.FromMinutes(9.5));
        Assert.Equal(AlertState.Inactive, h.StateOf("inlet-missing"));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            h2.Series("rack-r01", "inlet");
            var after = await UntilFiringAsync(h2, "inlet-missing", TimeSpan.FromMinutes(11));
            Assert.NotNull(after);
            Assert.InRange(after.Value, TimeSpan.FromSeconds(239), TimeSpan.FromSeconds(241)); // 2 × 2 min, not 1 min
        }
    }

    [Fact]
    public async Task A_missing_series_credited_across_a_restart_is_dropped_when_a_sample_comes()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(MissingRules, loggerFactory: new OneLoggerFactory(log));
        h.Feed(h.Series("rack-r01", "inlet"), 21.5);
        h.Advance(TimeSpan.FromMinutes(7));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Advance(TimeSpan.FromMinutes(2));
            h2.Feed(s2, 21.6); // it sends again before the 3 min left: the credit is gone

            // Silent again: the full 10 min from that sample, not the 1 min the credit had left.
            var after = await UntilFiringAsync(h2, "inlet-missing", TimeSpan.FromMinutes(11));
            Assert.NotNull(after);
            Assert.InRange(after.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
        }

        Assert.Contains("alert inlet-missing rack-r01/inlet: the missing after timer saved before the stop is dropped: the series sent a sample before its after ran out", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_after_timer_is_not_resumed_after_an_outage_longer_than_the_tolerance()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(StuckRules, loggerFactory: new OneLoggerFactory(log));
        Assert.False(Steady(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(20), 21.5));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(61)); // the default tolerance is 1h
        await using (h2)
        {
            var s2 = h2.Series("rack-r01", "inlet");
            Assert.False(Steady(h2, s2, TimeSpan.FromMinutes(29.5), 21.5));
            Assert.True(Steady(h2, s2, TimeSpan.FromMinutes(1), 21.5));
        }

        Assert.Contains("alert store: 1 stuck/missing after timers saved before the stop start from zero: the agent was down longer than alerts.for_outage_tolerance (1h): 61m since its last alive mark", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_idle_gateway_saves_no_after_timer_and_no_alive_mark()
    {
        // A probe that moves and reports every 30 s: no stuck or missing timer runs long enough to be worth a write.
        const string both = """
            alerts:
              group_interval: 0s
              rules:
                - { name: inlet-stuck, type: stuck, match: { metric: inlet }, after: 30m, tolerance: 0.01, severity: info }
                - { name: inlet-missing, type: missing, match: { metric: inlet }, after: 2m, severity: warning }
            """;
        var h = await Harness.StartAsync(both);
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 40; i++)
        {
            h.Feed(s, 21.5 + (i % 2 * 0.1));
            h.Advance(TimeSpan.FromSeconds(30));
        }

        await h.StopKeepingStateAsync();
        try
        {
            using var store = new AlertStore(Path.Combine(h.Dir, "alerts.db"));
            Assert.Empty(store.LoadAfters());
            Assert.Null(store.LoadAlive());
        }
        finally
        {
            Directory.Delete(h.Dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_stopped_timer_removes_its_saved_document_at_once()
    {
        var h = await Harness.StartAsync(StuckRules);
        var s = h.Series("rack-r01", "inlet");
        Assert.False(Steady(h, s, TimeSpan.FromMinutes(10), 21.5));
        await h.Manager.FlushAsync(Ct);
        await Wait.UntilAsync(() => h.Manager.Store.LoadAfters().Count == 1, "the stuck timer's document in alerts.db");
        Assert.Equal(21.5, h.Manager.Store.LoadAfters().Single().Value);

        // It moves: the timer restarts from zero, and its document goes with that sample, not at the next alive mark
        // (no time passes here).
        h.Feed(s, 22);
        await h.Manager.FlushAsync(Ct);
        await Wait.UntilAsync(() => h.Manager.Store.LoadAfters().Count == 0, "the document removed");
        await h.DisposeAsync();
    }

    [Fact]
    public async Task After_a_kill_a_stuck_timer_is_credited_up_to_the_last_alive_mark()
    {
        var time = NewClock();

        // SIGKILL at minute 20.5: the last alive mark is from minute 20.
        var killed = await RunThenKillAsync(StuckRules, time, h =>
        {
            Assert.False(Steady(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(20.5), 21.5));
            return Task.CompletedTask;
        });

        time.Advance(TimeSpan.FromMinutes(3));
        await using var h2 = await Harness.StartAsync(StuckRules, killed, time);
        h2.Feed(h2.Series("rack-r01", "inlet"), 21.5);

        // 20 min credited (up to the mark), not the 30 s after it nor the 3 min down: 10 min left.
        var after = await UntilFiringAsync(h2, "inlet-stuck", TimeSpan.FromMinutes(31));
        Assert.NotNull(after);
        Assert.InRange(after.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
    }

    [Fact]
    public async Task Regression_a_missing_series_that_sent_a_sample_just_before_a_kill_was_credited_the_time_before_that_sample()
    {
        // Silent 7 min (its timer saved with the alive marks), then its device comes back: a sample at 7:10, the agent
        // killed at 7:30, before the next mark. The document stayed until that mark, so the next start credited the
        // 7 min before the sample and reported the series missing 3 min in, although it had sent data 20 s before the kill.
        var time = NewClock();
        var killed = await RunThenKillAsync(MissingRules, time, async h =>
        {
            var s = h.Series("rack-r01", "inlet");
            h.Feed(s, 21.5);
            h.Advance(TimeSpan.FromMinutes(7));
            await h.Manager.FlushAsync(Ct);
            await Wait.UntilAsync(() => h.Manager.Store.LoadAfters().Count == 1, "the missing timer's document in alerts.db");

            h.Advance(TimeSpan.FromSeconds(10));
            h.Feed(s, 21.6);
            h.Advance(TimeSpan.FromSeconds(20));
        });

        using (var store = new AlertStore(Path.Combine(killed, "alerts.db")))
        {
            Assert.Empty(store.LoadAfters());
            Assert.NotNull(store.LoadAlive());
        }

        time.Advance(TimeSpan.FromMinutes(2));
        await using var h2 = await Harness.StartAsync(MissingRules, killed, time);
        h2.Series("rack-r01", "inlet");

        // No sample after the start: the full 10 min from the start, nothing credited from before the kill.
        var after = await UntilFiringAsync(h2, "inlet-missing", TimeSpan.FromMinutes(11));
        Assert.NotNull(after);
        Assert.InRange(after.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
    }

    [Fact]
    public async Task Regression_a_stuck_value_that_moved_and_came_back_just_before_a_kill_was_credited_the_stretch_before_the_move()
    {
        // Stuck at 21.5 for 20 min (saved), then 22 at 20:00 and 21.5 again at 20:20; killed at 20:30, before the next
        // mark. The stale document (21.5, 20 min) matched the first sample after the start: credited, it fired 10 min in,
        // although the value had moved 30 s before the kill.
        var time = NewClock();
        var killed = await RunThenKillAsync(StuckRules, time, async h =>
        {
            var s = h.Series("rack-r01", "inlet");
            Assert.False(Steady(h, s, TimeSpan.FromMinutes(20), 21.5));
            await h.Manager.FlushAsync(Ct);
            await Wait.UntilAsync(() => h.Manager.Store.LoadAfters().Count == 1, "the stuck timer's document in alerts.db");

            h.Feed(s, 22);
            h.Advance(TimeSpan.FromSeconds(20));
            h.Feed(s, 21.5);
            h.Advance(TimeSpan.FromSeconds(10));
        });

        using (var store = new AlertStore(Path.Combine(killed, "alerts.db")))
        {
            Assert.Empty(store.LoadAfters());
        }

        time.Advance(TimeSpan.FromMinutes(3));
        await using var h2 = await Harness.StartAsync(StuckRules, killed, time);
        h2.Feed(h2.Series("rack-r01", "inlet"), 21.5);

        // 10 s at 21.5 before the kill is all it had: the full 30 min from the start.
        var after = await UntilFiringAsync(h2, "inlet-stuck", TimeSpan.FromMinutes(31));
        Assert.NotNull(after);
        Assert.InRange(after.Value, TimeSpan.FromSeconds(1799), TimeSpan.FromSeconds(1801));
    }

    [Fact]
    public async Task A_start_with_the_wall_clock_behind_the_last_alive_mark_drops_the_after_timers_and_says_why()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(StuckRules, loggerFactory: new OneLoggerFactory(log));
        Assert.False(Steady(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(20), 21.5));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2), wallOffset: TimeSpan.FromHours(-3));
        await using (h2)
        {
            h2.Feed(h2.Series("rack-r01", "inlet"), 21.5);
            var after = await UntilFiringAsync(h2, "inlet-stuck", TimeSpan.FromMinutes(31));
            Assert.InRange(after!.Value, TimeSpan.FromSeconds(1799), TimeSpan.FromSeconds(1801));
        }

        Assert.Contains((Microsoft.Extensions.Logging.LogLevel.Warning, "alert store: the wall clock reads 178m earlier than the agent's last alive mark (booted with a clock behind, before NTP?): how long it was down is unknown, so 1 stuck/missing after timers saved before the stop start from zero"), log.Entries);
    }

    [Fact]
    public async Task The_after_timers_counter_counts_what_became_of_each_saved_timer()
    {
        // Two probes stuck over a restart: one still at its value (restored), one moved meanwhile (condition_gone).
        using var meters = new OneMeter();
        var outcomes = CountOutcomes(meters, out var listener);
        using var listening = listener;

        var h = await Harness.StartAsync(StuckRules, metrics: new AlertingMetrics(meters));
        var (a, b) = (h.Series("rack-r01", "inlet"), h.Series("rack-r02", "inlet"));
        for (var i = 0; i < 40; i++)
        {
            h.Feed(a, 21.5);
            h.Feed(b, 23.0);
            h.Advance(TimeSpan.FromSeconds(30));
        }

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            h2.Feed(h2.Series("rack-r01", "inlet"), 21.5);
            h2.Feed(h2.Series("rack-r02", "inlet"), 24.0);
        }

        lock (outcomes)
        {
            Assert.Equal(["condition_gone", "restored"], outcomes.Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task Regression_a_saved_timer_ended_by_the_sources_stuck_flag_or_by_its_series_leaving_was_not_counted()
    {
        // Six timers saved over a restart; each ends one way. Before, the one the source flagged stuck and the two whose
        // series left the device ended uncounted: the outcomes summed to 3 of 6.
        const string rules = """
            alerts:
              group_interval: 0s
              rules:
                - { name: inlet-stuck, type: stuck, match: { metric: inlet }, after: 30m, tolerance: 0.01, severity: info }
                - { name: outlet-missing, type: missing, match: { metric: outlet }, after: 1h, severity: warning }
            """;
        using var meters = new OneMeter();
        var outcomes = CountOutcomes(meters, out var listener);
        using var listening = listener;
        var log = new CapturingLogger();

        var h = await Harness.StartAsync(rules, metrics: new AlertingMetrics(meters), loggerFactory: new OneLoggerFactory(log));
        string[] devices = ["rack-r01", "rack-r02", "rack-r03", "pdu-r01", "room1-env"];
        var stuck = devices.Select(d => h.Series(d, "inlet")).ToArray();
        h.Feed(h.Series("crac-1", "outlet"), 12);
        for (var i = 0; i < 40; i++)
        {
            foreach (var s in stuck)
            {
                h.Feed(s, 21.5);
            }

            h.Advance(TimeSpan.FromSeconds(30));
        }

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            Assert.Equal(6, h2.Manager.Store.LoadAfters().Count);
            h2.Feed(h2.Series("rack-r01", "inlet"), 21.5);                                   // restored
            h2.Feed(h2.Series("rack-r02", "inlet"), 24.0);                                   // condition_gone: moved
            h2.Feed(h2.Series("rack-r03", "inlet"), 21.5, Core.Samples.SampleQuality.Stuck); // condition_gone: the source's flag
            h2.Registry.Retire(h2.Series("pdu-r01", "inlet"));                               // condition_gone: left the device
            h2.Registry.Retire(h2.Series("crac-1", "outlet"));                               // condition_gone: left the device
            h2.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(AlertState.Firing, h2.StateOf("inlet-stuck", "rack-r03/inlet"));

            // room1-env is never seen again: unclaimed once the tolerance (1h) has run out.
            h2.Advance(TimeSpan.FromMinutes(61));
            lock (outcomes)
            {
                Assert.Equal(["condition_gone", "condition_gone", "condition_gone", "condition_gone", "restored", "unclaimed"], outcomes.Order(StringComparer.Ordinal));
            }

            // Every ended timer's document is gone; the credited one runs on (it fired meanwhile: none left either).
            await h2.Manager.FlushAsync(Ct);
            await Wait.UntilAsync(() => h2.Manager.Store.LoadAfters().Count == 0, "no after document left in alerts.db");
        }

        Assert.Contains("alert inlet-stuck rack-r03/inlet: the stuck after timer saved before the stop is dropped: the source flags the first sample after the start stuck itself: the alert fires at once, without the saved time", log.Text, StringComparison.Ordinal);
        Assert.Contains("alert outlet-missing crac-1/outlet: the missing after timer saved before the stop is dropped: its series left the device (its table row is gone for row_retention)", log.Text, StringComparison.Ordinal);
    }

    /// <summary>The <c>outcome</c> tags of <c>edgetwin.alerts.after_timers</c> from <paramref name="meters"/> (lock the list to read it).</summary>
    private static List<string> CountOutcomes(OneMeter meters, out System.Diagnostics.Metrics.MeterListener listener)
    {
        var outcomes = new List<string>();
        listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == "edgetwin.alerts.after_timers")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "outcome")
                {
                    lock (outcomes)
                    {
                        outcomes.Add((string)tag.Value!);
                    }
                }
            }
        });
        listener.Start();
        return outcomes;
    }

    private static FakeTimeProvider NewClock() => new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    /// <summary>
    /// Runs <paramref name="run"/> on a fresh harness, then "kills" it: the directory returned holds only what the journal
    /// and LiteDB held at that moment (the harness is disposed after the copy).
    /// </summary>
    private static async Task<string> RunThenKillAsync(string rules, FakeTimeProvider time, Func<Harness, Task> run)
    {
        var killed = Directory.CreateTempSubdirectory("edgetwin-afterhold-kill-").FullName;
        await using var h = await Harness.StartAsync(rules, time: time);
        await run(h);
        await h.Manager.FlushAsync(Ct);
        await CopyAsKilledAsync(h, killed);
        return killed;
    }

    /// <summary>What a SIGKILL now leaves: the files as the journal and LiteDB hold them, copied to <paramref name="killed"/>.</summary>
    private static async Task CopyAsKilledAsync(Harness h, string killed)
    {
        foreach (var file in Directory.GetFiles(h.Dir))
        {
            await using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            await using var target = File.Create(Path.Combine(killed, Path.GetFileName(file)));
            await source.CopyToAsync(target, Ct);
        }
    }

    [Fact]
    public async Task A_sample_the_source_flags_stuck_after_a_restart_fires_at_once_and_a_good_one_clears_it_as_before()
    {
        var h = await Harness.StartAsync(StuckRules);
        Assert.False(Steady(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(20), 21.5));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 21.5, Core.Samples.SampleQuality.Stuck);
            Assert.Equal(AlertState.Firing, h2.StateOf("inlet-stuck"));

            // The saved timer went with the source's flag: a good sample clears the alert, as without a saved timer.
            h2.Advance(TimeSpan.FromSeconds(30));
            h2.Feed(s2, 21.5);
            Assert.Equal(AlertState.Inactive, h2.StateOf("inlet-stuck"));
        }
    }

    /// <summary>One meter for one test, so parallel tests' services are not counted.</summary>
    private sealed class OneMeter : System.Diagnostics.Metrics.IMeterFactory
    {
        public System.Diagnostics.Metrics.Meter? Meter { get; private set; }

        public System.Diagnostics.Metrics.Meter Create(System.Diagnostics.Metrics.MeterOptions options) =>
            Meter = new System.Diagnostics.Metrics.Meter(options.Name, options.Version, options.Tags, scope: this);

        public void Dispose() => Meter?.Dispose();
    }
}
