using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// <c>format: alertmanager</c> against a real Alertmanager (Debian's prometheus-alertmanager on a random loopback port,
/// resolve_timeout of a few seconds): the alerts EdgeTwin raises are active there with their labels, stay active past
/// the resolve_timeout because the sink re-sends them, resolve there when they clear, and survive an Alertmanager restart
/// and an agent restart. The agent runs on the real clock (the peer does).
/// </summary>
public sealed class AlertmanagerSinkTests
{
    private static string Rules(Uri url, string extra = "") => $$"""
        alerts:
          group_by: [room]
          group_interval: 0s
          tick: 100ms
          sinks:
            - { name: am, type: webhook, format: alertmanager, url: "{{url}}", resend_interval: 1s, retries: 1, retry_delay: 100ms, timeout: 2s{{extra}} }
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical, labels: { team: facilities, rack.row: a } }
        """;

    /// <summary>An alerting service on the real clock with the sinks of <paramref name="yaml"/>, its state in <paramref name="dir"/>.</summary>
    private sealed class Agent : IAsyncDisposable
    {
        private readonly SeriesRegistry _registry;

        private Agent(AlertingService service, SeriesRegistry registry)
        {
            Service = service;
            _registry = registry;
        }

        public AlertingService Service { get; }

        public SinkRunner Sink => Service.Sinks.Single(r => r.Name == "am");

        public static async Task<Agent> StartAsync(string yaml, string dir)
        {
            var config = Yaml.Valid(yaml);
            var registry = new SeriesRegistry();
            var service = new AlertingService(config, Harness.Site, registry, null, new AlertingOptions
            {
                StorePath = Path.Combine(dir, "alerts.db"),
                RunConnectivityProbe = false,
            });
            await service.StartAsync(TestContext.Current.CancellationToken);
            return new Agent(service, registry);
        }

        public void Feed(string device, double value)
        {
            var id = _registry.GetOrAdd(new SeriesDescriptor(device, "inlet", "Cel", MetricKind.Gauge, null));
            Service.Process([new Sample(id, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), value)]);
        }

        public ValueTask DisposeAsync() => Service.DisposeAsync();
    }

    private static async Task<AmAlert?> FindAsync(Alertmanager am, string rack) =>
        (await am.AlertsAsync()).SingleOrDefault(a => a.Labels.GetValueOrDefault("rack") == rack);

    private static async Task UntilAsync(Func<Task<bool>> condition, string what, Alertmanager am, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {seconds} s waiting for {what}; alertmanager's log:\n{am.ReadLog()}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task A_fired_alert_is_active_in_alertmanager_with_its_labels_stays_active_past_resolve_timeout_and_resolves_there_when_it_clears()
    {
        await using var am = await Alertmanager.StartAsync(TimeSpan.FromSeconds(4));
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-am-").FullName;
        await using var agent = await Agent.StartAsync(Rules(am.Url), dir);

        agent.Feed("rack-r01", 35);
        await UntilAsync(async () => await FindAsync(am, "r01") is not null, "the alert in alertmanager", am);
        var alert = (await FindAsync(am, "r01"))!;
        Assert.Equal("active", alert.State);
        Assert.Equal("inlet-hot", alert.Labels["alertname"]);
        Assert.Equal("dc1", alert.Labels["site"]);
        Assert.Equal("gw1", alert.Labels["gateway"]);
        Assert.Equal("critical", alert.Labels["severity"]);
        Assert.Equal("room1", alert.Labels["room"]);
        Assert.Equal("facilities", alert.Labels["team"]);
        Assert.Equal("a", alert.Labels["rack_row"]); // rack.row: not a valid Alertmanager label name
        var firing = agent.Service.Manager.Active().Single(a => a.Rule == "inlet-hot");
        Assert.Equal(firing.Key, alert.Labels["key"]);
        Assert.Equal(firing.Summary, alert.Annotations["summary"]);
        Assert.Equal("35 °C", alert.Annotations["value"]); // with its unit, as "peak" (it was the bare double)
        Assert.StartsWith("EdgeTwin gateway gw1 (site dc1), rule inlet-hot on " + firing.Key + ": firing, fired ", alert.Annotations["description"], StringComparison.Ordinal);
        Assert.Equal(firing.FiredAt!.Value.ToUnixTimeMilliseconds(), alert.StartsAt.ToUnixTimeMilliseconds());

        // Two and a half resolve_timeouts with nothing changing: without the re-sends Alertmanager would have ended it.
        await Task.Delay(am.ResolveTimeout * 2.5, TestContext.Current.CancellationToken);
        var later = await FindAsync(am, "r01");
        Assert.True(later is { State: "active" }, "still active after 2.5 × resolve_timeout; alertmanager's log:\n" + am.ReadLog());
        Assert.True(later.UpdatedAt > alert.UpdatedAt.AddSeconds(5), $"re-sent: updated {alert.UpdatedAt:O} → {later.UpdatedAt:O}");
        Assert.InRange(agent.Sink.Resent, 5, 20);
        Assert.Equal(1, agent.Sink.Delivered);

        // The clear ends it at once (its endsAt), well before a resolve_timeout would.
        var cleared = DateTime.UtcNow;
        agent.Feed("rack-r01", 20);
        await UntilAsync(async () => await FindAsync(am, "r01") is null, "the alert resolved in alertmanager", am);
        Assert.True(DateTime.UtcNow - cleared < am.ResolveTimeout * 0.75, $"resolved by its endsAt, not by resolve_timeout: {DateTime.UtcNow - cleared}");

        // Resolved alerts are not re-sent.
        var resent = agent.Sink.Resent;
        await Task.Delay(TimeSpan.FromSeconds(2.5), TestContext.Current.CancellationToken);
        Assert.Null(await FindAsync(am, "r01"));
        Assert.Equal(resent, agent.Sink.Resent);
    }

    [Fact]
    public async Task An_alertmanager_restart_loses_no_firing_alert_and_one_raised_during_its_outage_arrives_once_it_is_back()
    {
        await using var am = await Alertmanager.StartAsync(TimeSpan.FromSeconds(4));
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-am-").FullName;
        await using var agent = await Agent.StartAsync(Rules(am.Url), dir);
        agent.Feed("rack-r01", 35);
        agent.Feed("rack-r02", 35);
        await UntilAsync(async () => (await am.AlertsAsync()).Count == 2, "both alerts in alertmanager", am);

        // Down: it keeps alerts in memory only, so the restart forgets both. Meanwhile r02 clears and r03 fires.
        am.Stop();
        agent.Feed("rack-r02", 20);
        agent.Feed("rack-r03", 35);
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        Assert.NotNull(agent.Sink.Outage);
        await am.RestartAsync();

        // r01 comes back by the re-send (no message carries it any more), r03 by its held message; r02 is not revived.
        await UntilAsync(async () => await FindAsync(am, "r01") is not null && await FindAsync(am, "r03") is not null, "r01 and r03 after the restart", am);
        Assert.Null(await FindAsync(am, "r02"));
        await Task.Delay(am.ResolveTimeout * 1.5, TestContext.Current.CancellationToken);
        var alerts = await am.AlertsAsync();
        Assert.Equal(["r01", "r03"], alerts.Select(a => a.Labels["rack"]).Order(StringComparer.Ordinal));
        Assert.All(alerts, a => Assert.Equal("active", a.State));
        Assert.Null(agent.Sink.Outage);
    }

    [Fact]
    public async Task Firing_alerts_are_sent_again_after_an_agent_restart_that_outlasted_the_resolve_timeout()
    {
        await using var am = await Alertmanager.StartAsync(TimeSpan.FromSeconds(2));
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-am-").FullName;
        var first = await Agent.StartAsync(Rules(am.Url), dir);
        first.Feed("rack-r01", 35);
        await UntilAsync(async () => await FindAsync(am, "r01") is not null, "the alert in alertmanager", am);
        await Wait.UntilAsync(() => first.Sink.Delivered == 1, "the firing message delivered (the manager marks it notified)");
        await Task.Delay(300, TestContext.Current.CancellationToken);
        await first.DisposeAsync();

        // The agent is gone longer than resolve_timeout: Alertmanager ends the alert that is still firing on the gateway.
        await UntilAsync(async () => await FindAsync(am, "r01") is null, "alertmanager to time the alert out", am);

        // The restored alert is notified (its firing message went out before the stop), so no message carries it: the
        // runner starts from it and re-sends it at once.
        await using var second = await Agent.StartAsync(Rules(am.Url), dir);
        Assert.Equal(AlertState.Firing, second.Service.Manager.Active().Single(a => a.Rule == "inlet-hot").State);
        await UntilAsync(async () => await FindAsync(am, "r01") is not null, "the alert firing again in alertmanager after the restart", am, seconds: 5);
        Assert.Equal(0, second.Sink.Delivered);
        await Task.Delay(am.ResolveTimeout * 2, TestContext.Current.CancellationToken);
        Assert.True(await FindAsync(am, "r01") is { State: "active" }, "kept active after the restart");
    }

    [Fact]
    public async Task A_url_with_a_prefix_alertmanager_does_not_serve_is_refused_naming_the_redacted_url_and_what_alertmanager_said()
    {
        await using var am = await Alertmanager.StartAsync(TimeSpan.FromSeconds(5));
        var log = new CapturingLogger();
        var config = new WebhookSinkConfig
        {
            Name = "am", Format = WebhookFormat.Alertmanager, Url = new Uri($"http://ops:hunter2@127.0.0.1:{am.Port}/wrong-prefix"), Retries = 0,
        };
        await using var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config, log);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var alert = WebhookFormatTests.Firing(1);
        var message = new AlertNotification("g", [alert], alert.Time);
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => log.Text.Contains("SinkRejectedException", StringComparison.Ordinal), "the refusal logged");

        Assert.Contains($"SinkRejectedException: http://***@127.0.0.1:{am.Port}/wrong-prefix/api/v2/alerts answered 404 Not Found: 404 page not found", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", log.Text, StringComparison.Ordinal);
    }
}
