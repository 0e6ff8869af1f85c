using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>What the centre learns through the event sink (outbox) besides raises and clears (on-call audit, finding 9).</summary>
public sealed class CentreEventsRegressionTests
{
    private const string Rules = """
        alerts:
          group_by: [room]
          group_interval: 10s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
            - { name: pdu-hot, type: threshold, match: { metric: temperature }, above: 40, severity: warning }
        """;

    [Fact]
    public async Task Regression_acknowledgements_and_silences_never_reached_the_centre()
    {
        await using var h = await Harness.StartAsync(Rules);
        h.Feed(h.Series("rack-r01", "inlet"), 31);
        var alert = h.Active("inlet-hot")!;
        h.Advance(TimeSpan.FromSeconds(20));
        var ackedAt = h.Time.GetUtcNow();
        Assert.Equal(ControlResult.Done, h.Manager.Acknowledge(alert.Id, "alice"));
        var until = h.Time.GetUtcNow().AddHours(2);
        Assert.Equal(ControlResult.Done, h.Manager.Silence("pdu-hot", until, "bob"));

        await Wait.UntilAsync(() => h.Events.Events.Count == 3, "three events");
        var events = h.Events.Events;
        Assert.Equal([EdgeEventKind.AlertRaised, EdgeEventKind.AlertAcknowledged, EdgeEventKind.AlertSilenced], events.Select(e => e.Kind));
        Assert.Equal(["alert_raised", "alert_acknowledged", "alert_silenced"], events.Select(e => e.Kind.ToWireName()));

        var ack = events[1];
        Assert.Equal("inlet-hot", ack.Source);
        Assert.Equal(ackedAt, ack.Time);
        Assert.Equal(alert.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), ack.Attributes!["alert_id"]);
        Assert.Equal("acknowledged", ack.Attributes["state"]);
        Assert.Equal("alice", ack.Attributes["by"]);
        Assert.Equal(WireTime.Instant(ackedAt), ack.Attributes["acked_at"]);
        Assert.Equal(WireTime.Instant(alert.FiredAt!.Value), ack.Attributes["fired_at"]);
        Assert.Equal("room1", ack.Attributes["label.room"]);

        var silence = events[2];
        Assert.Equal("pdu-hot", silence.Source);
        Assert.Equal("pdu-hot", silence.Attributes!["rule"]);
        Assert.Equal("silenced", silence.Attributes["state"]);
        Assert.Equal(WireTime.Instant(until), silence.Attributes["until"]);
        Assert.Equal("bob", silence.Attributes["by"]);
        Assert.Equal("false", silence.Attributes["during_outage"]);

        // Lifting it is told too.
        h.Manager.Silence("pdu-hot", h.Time.GetUtcNow(), "bob");
        await Wait.UntilAsync(() => h.Events.Events.Count == 4, "lift event");
        Assert.Equal("lifted", h.Events.Events[3].Attributes!["state"]);
        Assert.Contains("silence lifted by bob", h.Manager.History(10).Select(e => e.Change));
    }

    [Fact]
    public async Task Regression_acknowledgements_and_silences_made_while_the_outbox_was_down_were_not_replayed_after_a_restart()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-replay-").FullName;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 40, 0, TimeSpan.Zero));
        var registry = new SeriesRegistry();

        // The event hub does not take anything (as when the agent is killed before it ran): nothing is marked published.
        var service = new AlertingService(Yaml.Valid(Rules), Harness.Site, registry, new RefusingEvents(), new AlertingOptions
        {
            StorePath = Path.Combine(dir, "alerts.db"),
            TimeProvider = time,
            RunConnectivityProbe = false,
        });
        await service.StartAsync(CancellationToken.None);
        var s = registry.GetOrAdd(new SeriesDescriptor("rack-r01", "inlet", "Cel", MetricKind.Gauge, null));
        service.Process([new Sample(s, time.GetUtcNow().ToUnixTimeMilliseconds(), 31, SampleQuality.Good)]);
        var id = service.Manager.Active()[0].Id;
        service.Manager.Acknowledge(id, "alice");
        var until = time.GetUtcNow().AddHours(1);
        service.Manager.Silence("pdu-hot", until, "bob");
        await service.Manager.FlushAsync(TestContext.Current.CancellationToken);
        await service.DisposeAsync();

        await using var h = await Harness.StartAsync(Rules, dir, time);
        await Wait.UntilAsync(() => h.Events.Events.Count == 3, "replayed events");
        var events = h.Events.Events;
        Assert.Equal([EdgeEventKind.AlertRaised, EdgeEventKind.AlertAcknowledged, EdgeEventKind.AlertSilenced], events.Select(e => e.Kind));
        Assert.Equal("alice", events[1].Attributes!["by"]);
        Assert.Equal("acknowledged", events[1].Attributes!["state"]);
        Assert.Equal("bob", events[2].Attributes!["by"]);
        Assert.Equal(WireTime.Instant(until), events[2].Attributes!["until"]);
        Assert.False(events[2].Attributes!.ContainsKey("alert_id"));
    }

    [Fact]
    public async Task Regression_raise_and_clear_events_replayed_after_a_crash_carried_no_labels()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-crash-").FullName;
        var crashed = Directory.CreateTempSubdirectory("edgetwin-crash-copy-").FullName;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 40, 0, TimeSpan.Zero));
        var registry = new SeriesRegistry();

        // The live events as the manager hands them to the outbox, none of them marked published (as when the agent is
        // killed before the outbox took them): all are replayed at the next start.
        var sent = new List<EdgeEvent>();
        using (var manager = new AlertManager(Yaml.Valid(Rules), Harness.Site, Path.Combine(dir, "alerts.db"), time))
        using (var engine = new RuleEngine(manager, registry, time))
        {
            manager.Attach(o =>
            {
                if (o is OutgoingEvent e)
                {
                    lock (sent)
                    {
                        sent.Add(e.Event);
                    }
                }
            });
            manager.Store.HoldApply = true; // killed before LiteDB had the changes: only the journal holds them
            var s = registry.GetOrAdd(new SeriesDescriptor("pdu-r01", "inlet", "Cel", MetricKind.Gauge, null));
            void Feed(double v) => engine.Process([new Sample(s, time.GetUtcNow().ToUnixTimeMilliseconds(), v, SampleQuality.Good)]);
            Feed(31);
            time.Advance(TimeSpan.FromSeconds(5));
            Feed(34.1);
            Assert.Equal(ControlResult.Done, manager.Acknowledge(manager.Active()[0].Id, "alice"));
            time.Advance(TimeSpan.FromSeconds(5));
            Feed(28);
            await manager.FlushAsync(TestContext.Current.CancellationToken);
            Assert.Equal(3, sent.Count);

            // SIGKILL: what is on disk now is all the next start gets (the journal has every released change).
            foreach (var file in Directory.GetFiles(dir))
            {
                using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var target = File.Create(Path.Combine(crashed, Path.GetFileName(file)));
                await source.CopyToAsync(target, TestContext.Current.CancellationToken);
            }
        }

        Directory.Delete(dir, recursive: true);
        await using var h = await Harness.StartAsync(Rules, crashed, time);
        await Wait.UntilAsync(() => h.Events.Events.Count == 3, "the replayed events");
        var replayed = h.Events.Events;

        Assert.Equal([EdgeEventKind.AlertRaised, EdgeEventKind.AlertAcknowledged, EdgeEventKind.AlertCleared], replayed.Select(e => e.Kind));
        Assert.Equal("pdu-r01", sent[0].Attributes!["label.device"]); // the live events carry the place
        Assert.Equal("r01", sent[0].Attributes!["label.rack"]);
        for (var i = 0; i < 3; i++)
        {
            // Was: no label.* (no site, room, rack or device at the centre) and no fired_at in the replayed events.
            Assert.Equal(sent[i].Attributes!.OrderBy(a => a.Key, StringComparer.Ordinal), replayed[i].Attributes!.OrderBy(a => a.Key, StringComparer.Ordinal));
            Assert.Equal((sent[i].Source, sent[i].Time, sent[i].Severity, sent[i].Message), (replayed[i].Source, replayed[i].Time, replayed[i].Severity, replayed[i].Message));
        }
    }

    [Fact]
    public async Task A_line_written_before_events_were_saved_with_it_is_replayed_with_the_labels_of_its_alert()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-oldline-").FullName;
        var fired = new DateTimeOffset(2026, 12, 2, 9, 40, 0, TimeSpan.Zero);

        // As the previous release left it after a crash: an unpublished raise without attributes; the alert has its labels.
        using (var db = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = Path.Combine(dir, "alerts.db"), Connection = LiteDB.ConnectionType.Direct }))
        {
            db.GetCollection("alerts").Insert(new LiteDB.BsonDocument
            {
                ["_id"] = 7L, ["rule"] = "inlet-hot", ["key"] = "pdu-r01/inlet", ["state"] = (int)AlertState.Firing, ["value"] = 31.0,
                ["fired"] = fired.ToUnixTimeMilliseconds(), ["resolved"] = LiteDB.BsonValue.Null, ["acked"] = LiteDB.BsonValue.Null, ["notified"] = true,
                ["labels"] = new LiteDB.BsonArray(new LiteDB.BsonArray("room", "room1"), new LiteDB.BsonArray("rack", "r01"), new LiteDB.BsonArray("device", "pdu-r01")),
            });
            db.GetCollection("history").Insert(new LiteDB.BsonDocument
            {
                ["_id"] = 1L, ["alert"] = 7L, ["rule"] = "inlet-hot", ["key"] = "pdu-r01/inlet", ["change"] = "raised", ["severity"] = (int)EventSeverity.Critical,
                ["value"] = 31.0, ["time"] = fired.ToUnixTimeMilliseconds(), ["uplink"] = "online", ["raised"] = true, ["publish"] = true, ["event"] = "alert_raised",
            });
        }

        await using var h = await Harness.StartAsync(Rules, dir, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(fired.AddMinutes(1)));
        await Wait.UntilAsync(() => h.Events.Events.Count == 1, "the replayed raise");
        var raised = h.Events.Events[0];
        Assert.Equal(EdgeEventKind.AlertRaised, raised.Kind);
        Assert.Equal(("room1", "r01", "pdu-r01"), (raised.Attributes!["label.room"], raised.Attributes["label.rack"], raised.Attributes["label.device"]));
        Assert.Equal("7", raised.Attributes["alert_id"]);
    }

    /// <summary>An event hub that is not running: every publish fails (the service retries every second).</summary>
    private sealed class RefusingEvents : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the event hub is not running yet");
    }
}
