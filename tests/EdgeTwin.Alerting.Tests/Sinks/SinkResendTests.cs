using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>The runner's re-sends for a sink with a resend interval (Alertmanager), with a recording sink on the real clock.</summary>
public sealed class SinkResendTests
{
    private static readonly DateTimeOffset Fired = new(2026, 12, 2, 9, 37, 19, TimeSpan.Zero);

    private static AlertSnapshot Alert(long id, AlertStatus status, IReadOnlyList<string>? targets = null) => new(
        id, "inlet-hot", $"rack-r0{id}/inlet", status, status == AlertStatus.Resolved ? AlertState.Resolved : AlertState.Firing,
        EventSeverity.Critical, 35, "hot", new Dictionary<string, string>(), targets ?? [], Fired,
        status == AlertStatus.Resolved ? Fired.AddMinutes(1) : null, status == AlertStatus.Acknowledged ? Fired.AddSeconds(30) : null, false, Fired);

    private static void Send(SinkRunner runner, params AlertSnapshot[] alerts)
    {
        var message = new AlertNotification("g", alerts, Fired);
        message.Expect(1);
        runner.Enqueue(message, alerts);
    }

    private static IReadOnlyList<IReadOnlyList<AlertSnapshot>> Resends(RecordingSink sink) =>
        [.. sink.Got.Where(g => g.Notification.Group == "resend").Select(g => g.Alerts)];

    [Fact]
    public async Task The_alerts_not_resolved_are_re_sent_every_interval_and_a_resolved_one_no_more()
    {
        var sink = new RecordingSink("am") { LatestStateOnly = true, ResendInterval = TimeSpan.FromMilliseconds(200) };
        var config = new WebhookSinkConfig { Name = "am", Url = new Uri("http://unused/"), Retries = 0, RetryDelay = TimeSpan.FromMilliseconds(50) };
        await using var runner = new SinkRunner(sink, config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        Send(runner, Alert(1, AlertStatus.Firing), Alert(2, AlertStatus.Firing));
        await Wait.UntilAsync(() => Resends(sink).Count >= 2, "two re-sends");
        Assert.All(Resends(sink), r => Assert.Equal([1L, 2L], r.Select(a => a.Id)));

        Send(runner, Alert(2, AlertStatus.Resolved));
        await Wait.UntilAsync(() => sink.All.Any(a => a.Id == 2 && a.Status == AlertStatus.Resolved), "the resolved message");
        var count = Resends(sink).Count;
        await Wait.UntilAsync(() => Resends(sink).Count >= count + 2, "two more re-sends");
        Assert.Equal([1L], Resends(sink)[^1].Select(a => a.Id));
        Assert.Equal(2, runner.Delivered); // the two messages only: re-sends are counted apart
        Assert.True(runner.Resent >= 4);
    }

    [Fact]
    public async Task A_re_send_held_while_the_peer_is_down_carries_the_latest_states_when_it_goes_through()
    {
        var sink = new RecordingSink("am") { LatestStateOnly = true, ResendInterval = TimeSpan.FromMilliseconds(200) };
        var config = new WebhookSinkConfig { Name = "am", Url = new Uri("http://unused/"), Retries = 0, RetryDelay = TimeSpan.FromMilliseconds(50) };
        await using var runner = new SinkRunner(sink, config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        Send(runner, Alert(1, AlertStatus.Firing), Alert(2, AlertStatus.Firing));
        await Wait.UntilAsync(() => runner.Delivered == 1, "the firing message");

        // Down while the re-send is due: it is the held message; meanwhile 2 resolves and 1 is acknowledged.
        sink.PeerDown = true;
        await Wait.UntilAsync(() => runner.Outage is not null, "the peer down");
        Send(runner, Alert(2, AlertStatus.Resolved));
        Send(runner, Alert(1, AlertStatus.Acknowledged));
        sink.PeerDown = false;
        await Wait.UntilAsync(() => sink.Got.Any(g => g.Notification.Group == "g" && g.Alerts.Any(a => a.Status == AlertStatus.Acknowledged)), "the queued messages");

        // The held re-send went out first, rebuilt: 1 as acknowledged, and 2 not at all (its RESOLVED follows). Sent as it
        // was due, Alertmanager would have had 2 firing again until the RESOLVED behind it.
        var first = Resends(sink)[0];
        var only = Assert.Single(first);
        Assert.Equal((1L, AlertStatus.Acknowledged), (only.Id, only.Status));
    }

    [Fact]
    public async Task Seeded_alerts_are_re_sent_at_once_and_only_those_the_sink_is_a_target_of()
    {
        var sink = new RecordingSink("am") { LatestStateOnly = true, ResendInterval = TimeSpan.FromMinutes(1) };
        var config = new WebhookSinkConfig { Name = "am", Url = new Uri("http://unused/"), Retries = 0 };
        await using var runner = new SinkRunner(sink, config);
        runner.Seed([Alert(1, AlertStatus.Firing), Alert(2, AlertStatus.Acknowledged, ["am"]), Alert(3, AlertStatus.Firing, ["panel"])]);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        await Wait.UntilAsync(() => runner.Resent == 1, "the re-send at start", seconds: 5);
        Assert.Equal([1L, 2L], Assert.Single(Resends(sink)).Select(a => a.Id));
        Assert.Equal(0, runner.Delivered);
    }
}
