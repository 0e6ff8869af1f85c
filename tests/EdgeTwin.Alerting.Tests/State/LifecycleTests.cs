using System.Globalization;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Samples;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>Acknowledge, silence, grouping, flapping and persistence across a restart.</summary>
public sealed class LifecycleTests
{
    private const string Rules = """
        alerts:
          group_by: [room]
          group_interval: 10s
          flap_window: 5m
          flap_max_changes: 4
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
            - { name: pdu-hot, type: threshold, match: { metric: temperature }, above: 40, severity: warning }
        """;

    [Fact]
    public async Task Firing_and_resolved_reach_the_sinks_and_the_event_sink_with_their_original_time()
    {
        await using var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        var firedAt = h.Time.GetUtcNow();
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "firing message");
        h.Advance(TimeSpan.FromSeconds(15));
        h.Feed(s, 20);
        h.Advance(TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "resolved message");
        await Wait.UntilAsync(() => h.Events.Events.Count == 2, "two events");

        var raised = h.Events.Events[0];
        Assert.Equal(EdgeEventKind.AlertRaised, raised.Kind);
        Assert.Equal(firedAt, raised.Time);
        Assert.Equal("inlet-hot", raised.Attributes!["rule"]);
        Assert.Equal("rack-r01/inlet", raised.Attributes["key"]);
        Assert.Equal("false", raised.Attributes["during_outage"]);

        // Regression: "2026-12-01T18:45:47.9857194+00:00" (round-trip "O") where the envelope says "…47.985Z".
        var instant = firedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(instant, raised.Attributes["fired_at"]);
        Assert.Equal(instant, raised.Attributes["time"]);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", h.Events.Events[1].Attributes!["time"]);
        Assert.Equal(EdgeEventKind.AlertCleared, h.Events.Events[1].Kind);

        // The state sink saw both changes at once, ungrouped.
        await Wait.UntilAsync(() => h.StateSink.All.Count >= 2, "state changes");
    }

    [Fact]
    public async Task Acknowledged_alert_stays_firing_but_is_not_notified_again_even_after_a_restart()
    {
        var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        await Wait.UntilAsync(() => h.Sink.All.Count == 1, "firing message");
        var id = h.Active("inlet-hot")!.Id;

        Assert.Equal(ControlResult.Done, h.Manager.Acknowledge(id, "tester"));
        Assert.Equal(ControlResult.AlreadyAcknowledged, h.Manager.Acknowledge(id, "tester"));
        Assert.Equal(ControlResult.NotFound, h.Manager.Acknowledge(999, "tester"));
        Assert.NotNull(h.Active("inlet-hot")!.AckedAt);

        var h2 = await h.RestartAsync();
        await using (h2)
        {
            var restored = h2.Active("inlet-hot");
            Assert.NotNull(restored);
            Assert.Equal(id, restored.Id);
            Assert.NotNull(restored.AckedAt);
            Assert.Equal(AlertStatus.Acknowledged, restored.Status);

            // The series comes back still hot: no new notification for the acknowledged alert.
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 32);
            h2.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(200, TestContext.Current.CancellationToken);
            Assert.Empty(h2.Sink.All);

            // The relay sink is told the restored state at start.
            await Wait.UntilAsync(() => h2.StateSink.All.Any(a => a.Id == id), "restored state for the relay");

            // It clears, and a new episode notifies again.
            h2.Feed(s2, 20);
            h2.Advance(TimeSpan.FromSeconds(11));
            h2.Feed(s2, 35);
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Status == AlertStatus.Firing && a.Id == id), "new episode");
        }
    }

    [Fact]
    public async Task Firing_alert_is_not_lost_across_a_restart_and_a_cleared_condition_resolves_it()
    {
        var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        await Wait.UntilAsync(() => h.Sink.All.Count == 1, "firing message");
        await Wait.UntilAsync(() => h.Events.Events.Count == 1, "raised event");

        var h2 = await h.RestartAsync();
        await using (h2)
        {
            Assert.Equal(AlertState.Firing, h2.StateOf("inlet-hot"));
            await Task.Delay(200, TestContext.Current.CancellationToken);
            Assert.Empty(h2.Sink.All); // delivered before the restart: not repeated
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 29.5); // inside the hysteresis band: still firing
            Assert.Equal(AlertState.Firing, h2.StateOf("inlet-hot"));
            h2.Feed(s2, 25);
            Assert.Null(h2.Active("inlet-hot"));
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "resolved after restart");
            var history = h2.Manager.History(10).Select(e => e.Change).ToList();
            Assert.Equal(["raised", "cleared"], history);
        }
    }

    [Fact]
    public async Task Alert_saved_but_not_delivered_before_a_crash_is_delivered_after_the_restart()
    {
        var h = await Harness.StartAsync(Rules);

        // The sink hangs, as if the process were killed before delivery.
        var gate = new TaskCompletionSource();
        h.Sink.Before = ct => gate.Task.WaitAsync(ct);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        await Wait.UntilAsync(() => h.Sink.Attempts == 1, "delivery attempt");

        // A stop that is cut short (as a SIGKILL would) leaves the message undelivered and the alert not marked notified.
        await h.Service.StopAsync(new CancellationToken(canceled: true));
        var h2 = await h.RestartAsync();
        await using (h2)
        {
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Rule == "inlet-hot" && a.Status == AlertStatus.Firing), "redelivery after restart");
        }
    }

    [Fact]
    public async Task Silenced_rule_notifies_nobody_until_the_silence_ends()
    {
        await using var h = await Harness.StartAsync(Rules);
        Assert.Equal(ControlResult.Done, h.Manager.Silence("inlet-hot", h.Time.GetUtcNow().AddHours(2)));
        Assert.Equal(ControlResult.NotFound, h.Manager.Silence("nope", h.Time.GetUtcNow().AddHours(2)));
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        h.Advance(TimeSpan.FromMinutes(30));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Empty(h.Sink.All);

        // The outputs (state sinks) follow the alert regardless: a silence mutes messages only.
        Assert.Contains(h.StateSink.All, a => a.Rule == "inlet-hot" && a.Status == AlertStatus.Firing);

        h.Advance(TimeSpan.FromMinutes(91));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Rule == "inlet-hot"), "notification after the silence");
    }

    [Fact]
    public async Task Regression_a_forward_clock_step_ended_a_silence_at_once()
    {
        // The silence's end was a wall-clock instant compared with the wall clock: a gateway without RTC whose clock NTP
        // stepped 5 h forward ended "silence for 1h" at once, and the NOC got the muted alert during the maintenance.
        await using var h = await Harness.StartAsync(Rules);
        Assert.Equal(ControlResult.Done, h.Manager.Silence("inlet-hot", h.Clock.GetUtcNow().AddHours(1)));
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));

        h.Clock.Step(TimeSpan.FromHours(5));
        h.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Empty(h.Sink.All);
        // Still silenced for the 59:58 it has left, and the end shown and saved moved with the step.
        var until = Assert.Contains("inlet-hot", h.Manager.Silences());
        Assert.InRange(until - h.Clock.GetUtcNow(), TimeSpan.FromMinutes(59.9), TimeSpan.FromMinutes(60));

        h.Advance(TimeSpan.FromMinutes(59));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Empty(h.Sink.All);
        h.Advance(TimeSpan.FromMinutes(1));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Rule == "inlet-hot" && a.Status == AlertStatus.Firing), "notification after the silence");
    }

    [Fact]
    public async Task Regression_a_forward_clock_step_before_a_restart_ended_the_silence_at_the_restart()
    {
        // The saved end is moved with the step, so a restart after it still has the remaining time.
        var h = await Harness.StartAsync(Rules);
        h.Manager.Silence("pdu-hot", h.Clock.GetUtcNow().AddHours(1));
        h.Clock.Step(TimeSpan.FromHours(5));
        h.Advance(TimeSpan.FromSeconds(2));
        var stepped = h.Clock.GetUtcNow();
        await h.StopKeepingStateAsync();

        // The next run boots with the stepped clock (NTP set it; a real RTC-less box saves it on shutdown).
        await using var h2 = await Harness.StartAsync(Rules, h.Dir, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(stepped));
        var until = Assert.Contains("pdu-hot", h2.Manager.Silences());
        Assert.InRange(until - h2.Clock.GetUtcNow(), TimeSpan.FromMinutes(59.9), TimeSpan.FromMinutes(60));
    }

    [Fact]
    public async Task Silence_survives_a_restart()
    {
        var h = await Harness.StartAsync(Rules);
        h.Manager.Silence("pdu-hot", h.Time.GetUtcNow().AddHours(1));
        var h2 = await h.RestartAsync();
        await using (h2)
        {
            Assert.True(h2.Manager.Silences().ContainsKey("pdu-hot"));
        }
    }

    [Fact]
    public async Task Forty_racks_of_one_room_give_one_message_then_one_batch_not_forty()
    {
        await using var h = await Harness.StartAsync(Rules);
        var racks = Enumerable.Range(0, 40)
            .Select(i => h.Registry.GetOrAdd(new SeriesDescriptor(i < 20 ? "rack-r01" : "rack-r02", "inlet", "Cel", Tags: [new("sensor", i.ToString(CultureInfo.InvariantCulture))])))
            .ToList();
        foreach (var r in racks)
        {
            h.Feed(r, 35);
        }

        await Wait.UntilAsync(() => h.Sink.Got.Count == 1, "first message");
        Assert.Single(h.Sink.Got[0].Alerts);
        h.Advance(TimeSpan.FromSeconds(10));
        await Wait.UntilAsync(() => h.Sink.Got.Count == 2, "batch");
        Assert.Equal(39, h.Sink.Got[1].Alerts.Count);
        Assert.Equal("room=room1", h.Sink.Got[1].Notification.Group);
        h.Advance(TimeSpan.FromSeconds(30));
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Equal(2, h.Sink.Got.Count);
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_held_a_groups_waiting_messages_for_the_size_of_the_step()
    {
        // group_interval compared wall-clock instants: after NTP stepped the clock an hour back, the alerts collected
        // behind a group's first message waited that hour; a step forward sent them at once, batching nothing.
        await using var h = await Harness.StartAsync(Rules);
        h.Feed(h.Series("rack-r01", "inlet"), 35);
        await Wait.UntilAsync(() => h.Sink.Got.Count == 1, "first message");
        h.Clock.Step(TimeSpan.FromHours(-1));
        h.Feed(h.Series("rack-r02", "inlet"), 35);
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.Got.Count == 2, "the collected message one group_interval later");

        h.Clock.Step(TimeSpan.FromHours(5));
        h.Feed(h.Series("rack-r01", "inlet"), 20);
        h.Feed(h.Series("rack-r02", "inlet"), 20);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(2, h.Sink.Got.Count);
        h.Advance(TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => h.Sink.Got.Count == 3, "both clears in one message");
        Assert.Equal(2, h.Sink.Got[2].Alerts.Count);
    }

    [Fact]
    public async Task Flapping_alert_is_notified_once_as_flapping_and_released_when_it_settles()
    {
        await using var h = await Harness.StartAsync(Rules.Replace("group_interval: 10s", "group_interval: 0s", StringComparison.Ordinal));
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 10; i++)
        {
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(5));
            h.Feed(s, 20);
            h.Advance(TimeSpan.FromSeconds(5));
        }

        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Flapping), "flapping message");
        await Task.Delay(200, TestContext.Current.CancellationToken);
        var all = h.Sink.All;

        // Two raise/clear pairs before the guard trips, then one flapping message; nothing for the other 16 changes.
        Assert.Equal(1, all.Count(a => a.Status == AlertStatus.Flapping));
        Assert.True(all.Count <= 6, $"{all.Count} messages");

        // It settles (firing) for the flap window: released with one firing message.
        h.Feed(s, 35);
        h.Advance(TimeSpan.FromMinutes(6));
        await Wait.UntilAsync(() => h.Sink.All.Count > all.Count && h.Sink.All[^1].Status == AlertStatus.Firing, "firing after it settled");
    }

    /// <summary>Makes inlet-hot flap (20 changes 5 s apart), waits for its flapping message, then raises it again (muted).</summary>
    private static async Task<SeriesId> FlapAsync(Harness h)
    {
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 10; i++)
        {
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(5));
            h.Feed(s, 20);
            h.Advance(TimeSpan.FromSeconds(5));
        }

        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Flapping), "flapping message");
        h.Feed(s, 35);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.True(h.Active("inlet-hot")!.Flapping);
        return s;
    }

    private static readonly string Ungrouped = Rules.Replace("group_interval: 10s", "group_interval: 0s", StringComparison.Ordinal);

    [Fact]
    public async Task Regression_a_forward_clock_step_ended_a_flapping_alerts_mute_at_once()
    {
        // The flap window compared wall-clock change times with the wall clock: after NTP stepped it 5 h forward, a
        // flapping alert was released at once (its state notified mid-flap) and its next changes counted afresh, so
        // the NOC got two more raise/clear pairs before the guard tripped again.
        await using var h = await Harness.StartAsync(Ungrouped);
        var s = await FlapAsync(h);
        var heard = h.Sink.All.Count;

        h.Clock.Step(TimeSpan.FromHours(5));
        h.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.True(h.Active("inlet-hot")!.Flapping);

        // It goes on flapping after the step: still muted.
        h.Feed(s, 20);
        h.Advance(TimeSpan.FromSeconds(5));
        h.Feed(s, 35);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(heard, h.Sink.All.Count);

        // Stable (firing) for the flap window: released with one firing message.
        h.Advance(TimeSpan.FromMinutes(4.9));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.True(h.Active("inlet-hot")!.Flapping);
        h.Advance(TimeSpan.FromSeconds(7));
        await Wait.UntilAsync(() => h.Sink.All.Count == heard + 1 && h.Sink.All[^1].Status == AlertStatus.Firing, "firing after it settled");
        Assert.False(h.Active("inlet-hot")!.Flapping);
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_kept_a_flapping_alert_muted_for_the_size_of_the_step()
    {
        // After NTP stepped the clock an hour back, the last change looked an hour in the future: an alert that had
        // settled stayed muted an hour past its flap window (the NOC never heard it was firing).
        await using var h = await Harness.StartAsync(Ungrouped);
        await FlapAsync(h);
        var heard = h.Sink.All.Count;

        h.Clock.Step(TimeSpan.FromHours(-1));
        h.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => h.Sink.All.Count == heard + 1 && h.Sink.All[^1].Status == AlertStatus.Firing, "firing one flap window after it settled");
        Assert.False(h.Active("inlet-hot")!.Flapping);
    }

    [Fact]
    public async Task Regression_a_forward_clock_step_before_a_restart_released_a_flapping_alert_at_the_restart()
    {
        // The change times are saved as wall-clock times: saved again in the stepped clock's terms after a step, so the
        // restart still has the flap window they have left (before, the tick after the step had released it already).
        var h = await Harness.StartAsync(Ungrouped);
        await FlapAsync(h);
        h.Clock.Step(TimeSpan.FromHours(5));
        h.Advance(TimeSpan.FromSeconds(2));
        await Wait.UntilAsync(() => h.Manager.PendingWrites == 0, "the re-saved change times committed");
        var stepped = h.Clock.GetUtcNow();
        await h.StopKeepingStateAsync();

        // The next run boots with the stepped clock (NTP set it; a real RTC-less box saves it on shutdown).
        await using var h2 = await Harness.StartAsync(Ungrouped, h.Dir, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(stepped));
        h2.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.True(h2.Active("inlet-hot")!.Flapping);
        Assert.Empty(h2.Sink.All);

        h2.Advance(TimeSpan.FromMinutes(5));
        await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Rule == "inlet-hot" && a.Status == AlertStatus.Firing), "firing once its flap window has passed");
        Assert.False(h2.Active("inlet-hot")!.Flapping);
    }

    [Fact]
    public async Task A_flapping_alert_restored_under_a_boot_clock_behind_its_changes_stays_muted_one_flap_window_at_most()
    {
        // An RTC-less box can boot with a clock far behind the saved change times (before NTP): they count as "at
        // start", so the guard holds one flap window, not the year until the clock would catch up.
        var h = await Harness.StartAsync(Ungrouped);
        await FlapAsync(h);
        await Wait.UntilAsync(() => h.Manager.PendingWrites == 0, "the change times committed");
        var behind = h.Clock.GetUtcNow().AddDays(-365);
        await h.StopKeepingStateAsync();

        await using var h2 = await Harness.StartAsync(Ungrouped, h.Dir, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(behind));
        h2.Advance(TimeSpan.FromMinutes(4.9));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.True(h2.Active("inlet-hot")!.Flapping);
        Assert.Empty(h2.Sink.All);

        h2.Advance(TimeSpan.FromSeconds(7));
        await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Rule == "inlet-hot" && a.Status == AlertStatus.Firing), "firing one flap window after the start");
        Assert.False(h2.Active("inlet-hot")!.Flapping);
    }

    [Fact]
    public async Task History_keeps_every_change_in_order()
    {
        await using var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        var id = h.Active("inlet-hot")!.Id;
        h.Manager.Acknowledge(id, "ops");
        h.Feed(s, 20);
        var changes = h.Manager.History(10).Select(e => e.Change).ToList();
        Assert.Equal(["raised", "acknowledged by ops", "cleared"], changes);
        Assert.All(h.Manager.History(10), e => Assert.Equal(EventSeverity.Critical, e.Severity));
    }
}
