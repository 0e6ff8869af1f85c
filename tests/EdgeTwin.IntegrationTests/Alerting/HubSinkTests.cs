using System.Collections.Concurrent;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>Alert events handed to the agent's event hub (and from there to the outbox) before and after the hub runs.</summary>
public sealed class HubSinkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_an_alert_restored_at_start_that_cleared_before_the_hub_ran_logged_a_warning_with_a_stack_trace()
    {
        // Measured on every upgrade's start: the uplink alert restored firing cleared at the first probe, before the agent's
        // event hub ran; HubSink threw "the event hub is not running yet" and the alerting service logged it as a warning
        // with the stack, then retried a second later. Now the event waits for the start and goes out then.
        var parsed = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n", "site.yaml");
        Assert.True(parsed.IsValid, string.Join(Environment.NewLine, parsed.Problems));
        var runtime = new AgentRuntime(parsed.Config!, new SeriesRegistry(), TimeProvider.System);
        var sink = new AlertingHostedService.HubSink(runtime);
        var cleared = new EdgeEvent(EdgeEventKind.AlertCleared, "uplink-down", DateTimeOffset.UtcNow, EventSeverity.Warning, "uplink online", new Dictionary<string, string>());

        var handed = sink.PublishAsync(cleared, Ct).AsTask();
        await Task.Delay(200, Ct);
        Assert.False(handed.IsCompleted); // waits for the start instead of failing

        var received = new ConcurrentQueue<EdgeEvent>();
        await using var hub = new EventHub().AddStage(new DelegateEventStage("outbox", (e, _) =>
        {
            received.Enqueue(e);
            return ValueTask.CompletedTask;
        }));
        hub.Start();
        runtime.Events = hub;
        runtime.MarkStarted();

        await handed.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        for (var i = 0; i < 100 && received.IsEmpty; i++)
        {
            await Task.Delay(50, Ct);
        }

        Assert.Same(cleared, Assert.Single(received));
    }

    [Fact]
    public async Task An_alert_event_before_a_start_that_failed_is_reported_with_the_start_s_error()
    {
        var parsed = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n", "site.yaml");
        var runtime = new AgentRuntime(parsed.Config!, new SeriesRegistry(), TimeProvider.System);
        var sink = new AlertingHostedService.HubSink(runtime);
        runtime.MarkFailed(new InvalidOperationException("device pdu1: address refused"));
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await sink.PublishAsync(new EdgeEvent(EdgeEventKind.AlertRaised, "r", DateTimeOffset.UtcNow, EventSeverity.Warning, "x", new Dictionary<string, string>()), Ct));
        Assert.Equal("device pdu1: address refused", ex.Message);
    }
}
