using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Inputs;
using EdgeTwin.Alerting.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// A pending alert's <c>for:</c> hold across an agent restart (as Prometheus's ALERTS_FOR_STATE restore with
/// <c>--rules.alert.for-outage-tolerance</c>): it began from zero at every start, so a gateway restarted daily never fired a
/// 24 h hold, and a 10 min hold restarted at minute 9 waited 10 more minutes.
/// </summary>
public sealed class ForHoldRestartTests
{
    private const string Rules = """
        alerts:
          group_interval: 0s
          rules:
            - { name: inlet-warm, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, for: 10m, severity: warning }
        """;

    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    /// <summary>Feeds 35 °C every 30 s for <paramref name="span"/> (the tick runs on the way).</summary>
    private static void Hot(Harness h, Core.Samples.SeriesId s, TimeSpan span, double value = 35)
    {
        for (var t = TimeSpan.Zero; t < span; t += TimeSpan.FromSeconds(30))
        {
            h.Feed(s, value);
            h.Advance(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>Advances in 1 s steps until the alert fires; how long that took after the call (at most <paramref name="limit"/>).</summary>
    private static async Task<TimeSpan?> UntilFiringAsync(Harness h, TimeSpan limit)
    {
        for (var t = TimeSpan.Zero; t <= limit; t += TimeSpan.FromSeconds(1))
        {
            if (h.StateOf("inlet-warm") == AlertState.Firing)
            {
                await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
                return t;
            }

            h.Advance(TimeSpan.FromSeconds(1));
        }

        return null;
    }

    [Fact]
    public async Task Regression_a_for_hold_restarted_from_zero_at_every_agent_restart()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(Rules, loggerFactory: new OneLoggerFactory(log));
        var since = h.Time.GetUtcNow();
        Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9));
        Assert.Equal(AlertState.Pending, h.StateOf("inlet-warm"));

        // Restarted at minute 9 (a deploy), 2 min down; the first poll after the start still reads 35 °C.
        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 35);
            var pending = h2.Active("inlet-warm")!;
            Assert.Equal(AlertState.Pending, pending.State);

            var shown = h2.Manager.PendingSince()[pending.Id];

            // The 9 min held before the stop count (the 2 min down do not): it fires one minute later, not ten.
            var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
            Assert.NotNull(after);
            Assert.InRange(after.Value, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(61));

            // `alerts list` showed it pending since it first went pending, before the restart.
            Assert.Equal(since, shown);
        }

        Assert.Contains("1 pending for: holds saved before the stop are kept (down 2m", log.Text, StringComparison.Ordinal);
        Assert.Contains("alert inlet-warm rack-r01/inlet: for: hold resumed after the restart", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_24h_hold_fires_on_a_gateway_restarted_every_ten_hours()
    {
        // The shipped ups-battery-not-recharging holds 24 h; a gateway restarted more often than that (deploys, upgrades,
        // the watchdog) never fired it. Three runs of 10 h with 5 min down between: it fires 4 h into the third.
        const string daily = """
            alerts:
              group_interval: 0s
              tick: 10s
              rules:
                - { name: ups-battery-not-recharging, type: threshold, match: { metric: battery_charge }, below: 90, clear_above: 95, for: 24h, severity: warning }
            """;
        var h = await Harness.StartAsync(daily);
        var since = h.Time.GetUtcNow();
        for (var run = 0; run < 3; run++)
        {
            var s = h.Series("ups-ietf", "battery_charge", unit: "%");
            for (var t = TimeSpan.Zero; t < TimeSpan.FromHours(10) && h.Active("ups-battery-not-recharging")?.State != AlertState.Firing; t += TimeSpan.FromMinutes(5))
            {
                h.Feed(s, 80);
                h.Advance(TimeSpan.FromMinutes(5));
            }

            if (run < 2)
            {
                Assert.Equal(AlertState.Pending, h.StateOf("ups-battery-not-recharging"));
                Assert.Equal(since, h.Manager.PendingSince().Values.Single());
                h = await h.RestartAsync(TimeSpan.FromMinutes(5));
            }
        }

        await using (h)
        {
            var fired = h.Active("ups-battery-not-recharging")!;
            Assert.Equal(AlertState.Firing, fired.State);

            // 24 h of the condition held, the two 5 min outages not counted.
            Assert.Equal(since + TimeSpan.FromHours(24) + TimeSpan.FromMinutes(10), h.Manager.Active().Single().FiredAt!.Value, TimeSpan.FromMinutes(5));
        }
    }

    [Fact]
    public async Task A_hold_is_not_resumed_after_an_outage_longer_than_the_tolerance()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(Rules, loggerFactory: new OneLoggerFactory(log));
        Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(61)); // the default tolerance is 1h
        await using (h2)
        {
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 35);
            Assert.Equal(h2.Time.GetUtcNow(), h2.Manager.PendingSince().Values.Single());
            var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
            Assert.InRange(after!.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
        }

        Assert.Contains("1 pending for: holds saved before the stop start from zero: the agent was down longer than alerts.for_outage_tolerance (1h)", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hold_whose_condition_is_over_at_the_first_sample_after_the_start_is_dropped()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(Rules, loggerFactory: new OneLoggerFactory(log));
        Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9));

        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2));
        await using (h2)
        {
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 25); // cooled down meanwhile
            Assert.Null(h2.Active("inlet-warm"));
            h2.Advance(TimeSpan.FromMinutes(2));
            await Task.Delay(100, Ct);
            Assert.Empty(h2.Sink.All);

            // Hot again later: a new episode, from zero (the old hold is gone, not waiting for it).
            var again = h2.Time.GetUtcNow();
            h2.Feed(s2, 35);
            Assert.Equal(again, h2.Manager.PendingSince().Values.Single());
            var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
            Assert.InRange(after!.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
        }

        Assert.Contains("alert inlet-warm rack-r01/inlet: the for: hold saved before the stop is dropped: the first evaluation after the start finds the condition over", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("hold resumed", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_a_kill_the_hold_is_resumed_up_to_the_last_alive_mark()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var killed = Directory.CreateTempSubdirectory("edgetwin-forhold-kill-").FullName;
        await using (var h = await Harness.StartAsync(Rules, time: time))
        {
            Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9.5));
            Assert.Equal(AlertState.Pending, h.StateOf("inlet-warm"));
            await h.Manager.FlushAsync(Ct);

            // SIGKILL at minute 9.5: no stop, only what the journal and LiteDB hold now; the alive mark is from minute 9.
            foreach (var file in Directory.GetFiles(h.Dir))
            {
                await using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                await using var target = File.Create(Path.Combine(killed, Path.GetFileName(file)));
                await source.CopyToAsync(target, Ct);
            }
        }

        time.Advance(TimeSpan.FromMinutes(3));
        await using var h2 = await Harness.StartAsync(Rules, killed, time);
        h2.Feed(h2.Series("rack-r01", "inlet"), 35);
        Assert.Equal(AlertState.Pending, h2.StateOf("inlet-warm"));

        // 9 min credited (up to the mark), not the 30 s after it nor the 3 min down: one minute left.
        var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
        Assert.InRange(after!.Value, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(61));
    }

    [Fact]
    public async Task A_tolerance_of_0s_never_resumes_a_hold_and_saves_none()
    {
        var rules = Rules.Replace("group_interval: 0s", "group_interval: 0s\n  for_outage_tolerance: 0s", StringComparison.Ordinal);
        var h = await Harness.StartAsync(rules);
        Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9));
        await h.StopKeepingStateAsync();
        using (var store = new AlertStore(Path.Combine(h.Dir, "alerts.db")))
        {
            Assert.Empty(store.LoadPending());
            Assert.Null(store.LoadAlive());
        }

        h.Time.Advance(TimeSpan.FromMinutes(2));
        await using var h2 = await Harness.StartAsync(rules, h.Dir, h.Time);
        h2.Feed(h2.Series("rack-r01", "inlet"), 35);
        var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
        Assert.InRange(after!.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
    }

    [Fact]
    public async Task A_hold_no_evaluation_claims_within_the_tolerance_is_dropped()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(Rules, loggerFactory: new OneLoggerFactory(log));
        Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9));

        // 50 min down: the hold waits at most 10 min more for its series (a device not polled yet).
        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(50));
        await using (h2)
        {
            h2.Advance(TimeSpan.FromMinutes(10.5));
            Assert.Contains("1 pending for: holds saved before the stop are dropped: their alerts were not evaluated again within alerts.for_outage_tolerance (1h)", log.Text, StringComparison.Ordinal);
            h2.Feed(h2.Series("rack-r01", "inlet"), 35);
            var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
            Assert.InRange(after!.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
        }
    }

    [Fact]
    public async Task A_start_with_the_wall_clock_behind_the_last_alive_mark_drops_the_hold_and_says_why()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(Rules, loggerFactory: new OneLoggerFactory(log));
        Hot(h, h.Series("rack-r01", "inlet"), TimeSpan.FromMinutes(9));

        // Booted without RTC: the clock reads 3 h earlier than the stop.
        var h2 = await h.RestartAsync(TimeSpan.FromMinutes(2), wallOffset: TimeSpan.FromHours(-3));
        await using (h2)
        {
            h2.Feed(h2.Series("rack-r01", "inlet"), 35);
            var after = await UntilFiringAsync(h2, TimeSpan.FromMinutes(11));
            Assert.InRange(after!.Value, TimeSpan.FromSeconds(599), TimeSpan.FromSeconds(601));
        }

        Assert.Contains((Microsoft.Extensions.Logging.LogLevel.Warning, "alert store: the wall clock reads 178m earlier than the agent's last alive mark (booted with a clock behind, before NTP?): how long it was down is unknown, so 1 pending for: holds saved before the stop start from zero"), log.Entries);
    }

    [Theory]
    [InlineData("-5m", "expected a duration like 500ms, 10s, 5m, 1h or 7d, got '-5m'")]
    [InlineData("an hour", "expected a duration like 500ms, 10s, 5m, 1h or 7d, got 'an hour'")]
    public void A_for_outage_tolerance_that_is_not_a_duration_is_a_config_error_with_file_line_and_key(string value, string message)
    {
        var (_, problems) = Yaml.Alerts(Rules + $"\n  for_outage_tolerance: {value}\n", "site.yaml");
        var p = Assert.Single(problems);
        Assert.Equal("site.yaml", p.File);
        Assert.Equal(5, p.Line);
        Assert.Equal("alerts.for_outage_tolerance", p.Path);
        Assert.Equal(message, p.Message);
    }

    [Fact]
    public void For_outage_tolerance_defaults_to_an_hour_and_0s_turns_it_off()
    {
        Assert.Equal(TimeSpan.FromHours(1), Yaml.Valid(Rules).ForOutageTolerance);
        Assert.Equal(TimeSpan.Zero, Yaml.Valid(Rules + "\n  for_outage_tolerance: 0s\n").ForOutageTolerance);
        Assert.Equal(TimeSpan.FromHours(6), Yaml.Valid(Rules + "\n  for_outage_tolerance: 6h\n").ForOutageTolerance);
    }
}
