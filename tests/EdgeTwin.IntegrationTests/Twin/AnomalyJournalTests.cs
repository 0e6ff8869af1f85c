using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>What the journal says of anomaly episodes: every episode is an event, but not every one a line.</summary>
public sealed class AnomalyJournalTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_site_of_thousands_of_series_wrote_an_anomaly_line_every_few_seconds()
    {
        // The 150-min soak (soak.sh, 3,984 series): "Anomaly on pdu-…/outlet_power{…}: score 0.46 (value 185)" ten times a
        // minute, 282 lines in 30 min, the largest template of the steady state. Now the first 5 of each 5 minutes get a
        // line, the rest one summary line naming the highest; the events (alert rules, outbox, uplink) are all still there.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 2, 0, 0, 0, TimeSpan.Zero));
        var parsed = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n", "site.yaml");
        var runtime = new AgentRuntime(parsed.Config!, new SeriesRegistry(), clock);
        var events = new ConcurrentQueue<EdgeEvent>();
        await using var hub = new EventHub().AddStage(new DelegateEventStage("test", (e, _) =>
        {
            events.Enqueue(e);
            return ValueTask.CompletedTask;
        }));
        hub.Start();
        runtime.Events = hub;
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        using var stage = new AnomalyStage(runtime, AnomalyConfig.Default, new ListLogger<AnomalyStage>(logs));
        var ids = Enumerable.Range(1, 20).Select(n => runtime.Registry.GetOrAdd(new SeriesDescriptor("pdu-a01-a", $"outlet_power_{n}", "W"))).ToArray();
        var batch = new Sample[ids.Length];
        var t0 = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var i = 0;
        async Task FeedAsync(int polls, Func<int, double> value)
        {
            for (var end = i + polls; i < end; i++)
            {
                for (var s = 0; s < ids.Length; s++)
                {
                    batch[s] = new Sample(ids[s], t0 + (i * 10_000L), value(s) + (((((i * 7919) + (s * 104729)) % 1000) / 1000.0) - 0.5) * 4);
                }

                await stage.ProcessAsync(batch, Ct);
                clock.Advance(TimeSpan.FromSeconds(10));
            }
        }

        string[] Lines() => [.. logs.Where(l => l.Level == LogLevel.Information).Select(l => l.Message).Where(m => m.Contains("nomal", StringComparison.Ordinal))];

        await FeedAsync(800, s => 200 + (5 * s));
        Assert.Empty(Lines());

        // Every outlet jumps at once and stays (a breaker's load moved): 20 episodes within the minute.
        await FeedAsync(6, s => 2000);
        var lines = Lines();
        Assert.Equal(5, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("Anomaly on pdu-a01-a/outlet_power_", l, StringComparison.Ordinal));

        // The summary once the window has passed, with the rest counted and the highest named.
        await FeedAsync(20, s => 200 + (5 * s));   // under 5 min since the first episode
        Assert.Equal(5, Lines().Length);
        await FeedAsync(10, s => 200 + (5 * s));   // past it
        lines = Lines();
        Assert.Equal(6, lines.Length);
        Assert.Matches(@"^15 more anomalies in the last 5m 0s not logged one by one \(the highest: pdu-a01-a/outlet_power_\d+ score [01]\.\d{3}, value \d{4}(\.\d+)?\); each is an event for the alert rules and the uplink$", lines[^1]);

        await Task.Delay(200, Ct);
        Assert.Equal(20, events.Count(e => e.Kind == EdgeEventKind.Anomaly));

        // A new window: an anomaly gets its line again.
        await FeedAsync(200, s => 200 + (5 * s));
        var before = Lines().Length;
        await FeedAsync(6, s => s == 3 ? 3000 : 200 + (5 * s));
        Assert.Equal(before + 1, Lines().Length);
        Assert.StartsWith("Anomaly on pdu-a01-a/outlet_power_4: score", Lines()[^1], StringComparison.Ordinal);
    }
}
