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

    /// <summary>An event hub that is not running: every publish fails (the service retries every second).</summary>
    private sealed class RefusingEvents : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the event hub is not running yet");
    }
}
