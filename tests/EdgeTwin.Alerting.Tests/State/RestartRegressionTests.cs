using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using LiteDB;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>What an alert keeps across a restart besides its state: the flapping guard and its labels (on-call audit, findings 8 and 9).</summary>
public sealed class RestartRegressionTests
{
    private const string Rules = """
        alerts:
          group_by: [room]
          group_interval: 0s
          flap_window: 5m
          flap_max_changes: 4
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    [Fact]
    public async Task Regression_a_muted_flapping_alert_was_notified_firing_again_after_a_restart()
    {
        var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 4; i++)
        {
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(5));
            h.Feed(s, 20);
            h.Advance(TimeSpan.FromSeconds(5));
        }

        h.Feed(s, 35); // raised while flapping: muted
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Flapping), "flapping message");
        await Task.Delay(200, TestContext.Current.CancellationToken);
        var id = h.Active("inlet-hot")!.Id;
        var firingBefore = h.Sink.All.Count(a => a.Status == AlertStatus.Firing);

        var h2 = await h.RestartAsync();
        await using (h2)
        {
            var restored = h2.Active("inlet-hot")!;
            Assert.Equal(id, restored.Id);
            Assert.True(restored.Flapping);

            // Still inside the flap window: neither the restore nor further changes are notified.
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 35);
            h2.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(300, TestContext.Current.CancellationToken);
            Assert.DoesNotContain(h2.Sink.All, a => a.Status == AlertStatus.Firing);

            // Stable for the window: released with one firing message, as without the restart.
            h2.Advance(TimeSpan.FromMinutes(5));
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Id == id && a.Status == AlertStatus.Firing), "firing once it settled");
            Assert.False(h2.Active("inlet-hot")!.Flapping);
        }

        Assert.Equal(firingBefore, h.Sink.All.Count(a => a.Status == AlertStatus.Firing));
    }

    [Fact]
    public async Task Regression_a_flapping_alert_that_had_cleared_was_notified_again_under_a_new_id_after_a_restart()
    {
        var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 4; i++)
        {
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(5));
            h.Feed(s, 20);
            h.Advance(TimeSpan.FromSeconds(5));
        }

        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Flapping), "flapping message");
        await Task.Delay(200, TestContext.Current.CancellationToken);
        var sent = h.Sink.All.Count;
        var id = h.Sink.All[0].Id;

        var h2 = await h.RestartAsync();
        await using (h2)
        {
            // It raises again at once after the restart: still flapping, so muted, under its old id.
            var s2 = h2.Series("rack-r01", "inlet");
            h2.Feed(s2, 35);
            var again = h2.Active("inlet-hot")!;
            Assert.True(again.Flapping);
            Assert.Equal(id, again.Id);
            h2.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(300, TestContext.Current.CancellationToken);
            Assert.Empty(h2.Sink.All);
        }

        Assert.Equal(sent, h.Sink.All.Count);
    }

    [Fact]
    public async Task Regression_a_restored_alert_lost_its_place_labels_and_group()
    {
        const string roomRule = """
            alerts:
              group_by: [room]
              group_interval: 0s
              rules:
                - { name: room-hot, type: threshold, match: { role: rack.inlet_temperature }, above: 30, clear_below: 29, combine: any, per: room }
            """;
        var h = await Harness.StartAsync(roomRule);
        h.Feed(h.Series("rack-r01", "inlet", "rack.inlet_temperature"), 31);
        h.Feed(h.Series("rack-r02", "inlet", "rack.inlet_temperature"), 20);
        var before = h.Active("room-hot")!;
        Assert.Equal("room1", before.Labels["room"]);
        await Wait.UntilAsync(() => h.Sink.Got.Count == 1, "firing message");
        Assert.Equal("room=room1", h.Sink.Got[0].Notification.Group);

        var h2 = await h.RestartAsync();
        await using (h2)
        {
            var restored = h2.Active("room-hot")!;
            Assert.Equal(before.Labels.OrderBy(l => l.Key), restored.Labels.OrderBy(l => l.Key));

            // The clear after the restart goes to the same group and tells the centre the same place.
            h2.Feed(h2.Series("rack-r01", "inlet", "rack.inlet_temperature"), 20);
            h2.Feed(h2.Series("rack-r02", "inlet", "rack.inlet_temperature"), 20);
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "resolved message");
            Assert.Equal("room=room1", h2.Sink.Got.Single(g => g.Alerts.Any(a => a.Status == AlertStatus.Resolved)).Notification.Group);
            await Wait.UntilAsync(() => h2.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertCleared), "cleared event");
            Assert.Equal("room1", h2.Events.Events.First(e => e.Kind == EdgeEventKind.AlertCleared).Attributes!["label.room"]);
        }
    }

    [Fact]
    public async Task Regression_an_alert_that_cleared_during_a_silence_was_never_notified_resolved_after_a_restart()
    {
        var h = await Harness.StartAsync(Rules);
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 31);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
        var id = h.Active("inlet-hot")!.Id;

        // Silenced for an hour; it clears meanwhile: the NOC heard it firing, its clear waits for the silence's end.
        Assert.Equal(ControlResult.Done, h.Manager.Silence("inlet-hot", h.Time.GetUtcNow().AddHours(1)));
        h.Advance(TimeSpan.FromMinutes(5));
        h.Feed(s, 33.5);
        h.Advance(TimeSpan.FromMinutes(5));
        h.Feed(s, 20);
        Assert.Null(h.Active("inlet-hot"));
        await h.Manager.FlushAsync(TestContext.Current.CancellationToken);
        Assert.DoesNotContain(h.Sink.All, a => a.Status == AlertStatus.Resolved);

        // Restarted while the silence still holds.
        var h2 = await h.RestartAsync();
        await using (h2)
        {
            h2.Feed(h2.Series("rack-r01", "inlet"), 20); // the first poll after the start
            h2.Advance(TimeSpan.FromMinutes(30));
            await Task.Delay(200, TestContext.Current.CancellationToken);
            Assert.Empty(h2.Sink.All); // still silenced

            // The silence ends: the resolved catch-up goes out as it would have without the restart (it was lost).
            h2.Advance(TimeSpan.FromMinutes(21));
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Id == id && a.Status == AlertStatus.Resolved), "the resolved message after the silence");
            var resolved = Assert.Single(h2.Sink.All);
            Assert.Equal(AlertStatus.Resolved, resolved.Status);
            Assert.Equal("rack r01 (room1, site dc1): inlet 20 °C, back below 29 °C (clear level); peak 33.5 °C", resolved.Summary);
            Assert.Equal("room=room1", Assert.Single(h2.Sink.Got).Notification.Group);
            Assert.Empty(h2.Manager.Silences());

            // Caught up once: a later restart owes nothing.
            await Task.Delay(200, TestContext.Current.CancellationToken);
            var h3 = await h2.RestartAsync();
            await using (h3)
            {
                h3.Advance(TimeSpan.FromMinutes(1));
                await Task.Delay(300, TestContext.Current.CancellationToken);
                Assert.Empty(h3.Sink.All);
            }
        }
    }

    [Fact]
    public async Task Regression_resolved_alerts_of_every_earlier_run_stayed_in_alerts_db_and_were_loaded_at_each_start()
    {
        // Six months with a restart a day: each run's cleared alerts stayed in the store (never restored, never deleted),
        // and every start read all of them into memory. Now a start keeps only what it restores, plus the newest alert so
        // that ids are never handed out twice (by this build or one rolled back to).
        const int seriesPerRun = 10;
        var h = await Harness.StartAsync(Rules);
        var ids = new List<long>();
        for (var run = 0; run < 5; run++)
        {
            for (var i = 0; i < seriesPerRun; i++)
            {
                var s = h.Series($"rack-r{i + 1:00}", "inlet");
                h.Feed(s, 35);
                ids.Add(h.Active("inlet-hot", $"rack-r{i + 1:00}/inlet")!.Id);
                h.Feed(s, 20);
            }

            h.Advance(TimeSpan.FromSeconds(1));
            var next = await h.RestartAsync();
            h = next;
            await Wait.UntilAsync(() => h.Manager.Store.LoadAlerts().Count <= 1, $"the store pruned after restart {run + 1} (holds {h.Manager.Store.LoadAlerts().Count})");
        }

        await using (h)
        {
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.Equal(ids.Max(), Assert.Single(h.Manager.Store.LoadAlerts()).Id);

            // The next alert follows the kept newest one. ("Above every earlier one" held whatever was kept: the fake
            // clock moved a second per run, and a store with nothing kept numbers from the clock, far above these ids.)
            var again = h.Series("rack-r01", "inlet");
            h.Feed(again, 35);
            Assert.Equal(ids.Max() + 1, h.Active("inlet-hot", "rack-r01/inlet")!.Id);
        }
    }

    [Fact]
    public async Task An_alert_store_written_before_flapping_and_labels_were_saved_still_loads()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-oldstore-").FullName;
        var fired = new DateTimeOffset(2026, 11, 30, 11, 59, 0, TimeSpan.Zero);

        // An alerts.db as the previous release wrote it: no flapping, changes or labels fields.
        using (var db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(dir, "alerts.db"), Connection = ConnectionType.Direct }))
        {
            db.GetCollection("alerts").Insert(new BsonDocument
            {
                ["_id"] = 7L,
                ["rule"] = "inlet-hot",
                ["key"] = "rack-r01/inlet",
                ["state"] = (int)AlertState.Firing,
                ["value"] = 35.0,
                ["fired"] = fired.ToUnixTimeMilliseconds(),
                ["resolved"] = BsonValue.Null,
                ["acked"] = BsonValue.Null,
                ["notified"] = true,
            });
        }

        await using var h = await Harness.StartAsync(Rules, dir);
        var restored = h.Active("inlet-hot")!;
        Assert.Equal(7, restored.Id);
        Assert.Equal(fired, restored.FiredAt);
        Assert.False(restored.Flapping);
        Assert.Equal("room1", restored.Labels["room"]); // rebuilt from the key, as before
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Empty(h.Sink.All); // it had been notified

        // Saved again in the new format, it still reads back.
        h.Manager.Acknowledge(7, "ops");
        await Wait.UntilAsync(() => h.Manager.Store.LoadAlerts().Any(a => a.Id == 7 && a.AckedAt is not null && a.Changes is { Count: 0 }), "the acknowledge read back");
    }

    [Fact]
    public async Task Regression_a_resolved_held_for_a_down_webhook_at_a_stop_was_never_sent_after_the_restart()
    {
        // The NOC heard FIRING; the alert cleared while its webhook was down and the agent was restarted before the
        // webhook came back. The RESOLVED lived only in the sink's queue, so the NOC's incident stayed open for good.
        var h = await Harness.StartAsync(Rules);
        h.Sink.ActAsWebhook(peerDown: false);
        var runner = h.Service.Sinks.Single(r => r.Name == "rec");
        var s = h.Series("rack-r01", "inlet");
        h.Feed(s, 35);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "FIRING delivered");
        var id = h.Active("inlet-hot")!.Id;
        var firedAt = h.Active("inlet-hot")!.FiredAt;

        h.Sink.PeerDown = true;
        h.Advance(TimeSpan.FromMinutes(10));
        h.Feed(s, 20);
        await Wait.UntilAsync(() => runner.Outage is not null, "the peer declared down with the RESOLVED held");

        var h2 = await h.RestartAsync();
        await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Id == id), "the RESOLVED after the restart");
        var got = Assert.Single(h2.Sink.All, a => a.Id == id);
        Assert.Equal(AlertStatus.Resolved, got.Status);
        Assert.Equal(firedAt, got.FiredAt);
        Assert.NotNull(got.ResolvedAt);
        Assert.Null(h2.Active("inlet-hot"));

        // Delivered now: a further restart owes nothing.
        var h3 = await h2.RestartAsync();
        await using (h3)
        {
            h3.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(300, TestContext.Current.CancellationToken);
            Assert.DoesNotContain(h3.Sink.All, a => a.Id == id);
        }
    }

    private const string CoolingRule = """
        alerts:
          group_interval: 0s
          rules:
            - { name: cooling-unit-failed, type: event, event: prediction, attribute: failed_unit_count, above: 0, clear_after: 10m, severity: critical }
        """;

    private const string CoolingText = "cooling_failure in room1 (crac1 stopped at 03:13:07 UTC): A02 reaches 32 °C in 109 s, thermal shutdown in 6.8 min, 2 rack(s) affected";

    private static EdgeEvent Cooling(Harness h, string state, string message) => new(
        EdgeEventKind.Prediction, "room1/cooling_failure", h.Time.GetUtcNow(), EventSeverity.Critical, message,
        new Dictionary<string, string> { ["state"] = state, ["failed_unit_count"] = state == "active" ? "1" : "0", ["failed_units"] = "crac1", ["zone"] = "room1" });

    [Fact]
    public async Task Regression_a_firing_event_alert_said_attribute_equals_value_after_a_restart_instead_of_the_twins_text()
    {
        var h = await Harness.StartAsync(CoolingRule);
        h.Service.Handle(Cooling(h, "active", CoolingText));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "FIRING delivered");
        Assert.Equal(CoolingText, h.Active("cooling-unit-failed")!.Summary);

        // The twin refreshes its text without a lifecycle change (same failed_unit_count); a clean stop keeps the latest.
        const string Refreshed = "cooling_failure in room1 (crac1 stopped at 03:13:07 UTC): A02 reaches 32 °C in 45 s, thermal shutdown in 4.1 min, 3 rack(s) affected";
        h.Service.Handle(Cooling(h, "active", Refreshed));
        Assert.Equal(Refreshed, h.Active("cooling-unit-failed")!.Summary);

        // Was "room1/cooling_failure: failed_unit_count = 1 since 03:13:07 UTC" in `alerts list` until the next event.
        await using var h2 = await h.RestartAsync();
        Assert.Equal(Refreshed, h2.Active("cooling-unit-failed")!.Summary);
    }

    [Fact]
    public async Task Regression_a_held_clear_of_an_event_alert_lost_the_sources_text_across_a_restart()
    {
        var h = await Harness.StartAsync(CoolingRule);
        var runner = h.Service.Sinks.Single(r => r.Name == "rec");
        h.Service.Handle(Cooling(h, "active", CoolingText));
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "FIRING delivered");
        var id = h.Active("cooling-unit-failed")!.Id;

        h.Sink.PeerDown = true;
        h.Service.Handle(Cooling(h, "resolved", "cooling_failure in room1 resolved: crac1 running again"));
        h.Advance(TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => runner.Outage is not null, "the peer declared down with the RESOLVED held");

        // Was "room1/cooling_failure: resolved (last failed_unit_count = 1)" once the store had given the alert back.
        await using var h2 = await h.RestartAsync();
        await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Id == id), "the RESOLVED after the restart");
        var got = Assert.Single(h2.Sink.All, a => a.Id == id);
        Assert.Equal(AlertStatus.Resolved, got.Status);
        Assert.StartsWith("cooling_failure in room1 resolved: crac1 running again", got.Summary, StringComparison.Ordinal);
    }
}
