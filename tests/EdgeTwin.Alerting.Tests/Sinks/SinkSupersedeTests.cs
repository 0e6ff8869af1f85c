using System.Diagnostics.Metrics;
using System.Text.Json;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// A sink whose peer was down gets each alert's latest state once, not the outage's whole history: queued (and held)
/// messages are superseded by a later one that carries all their alerts. Against a real HTTP listener on loopback.
/// </summary>
public sealed class SinkSupersedeTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 3, 3, 0, 0, TimeSpan.Zero);

    private static AlertSnapshot Alert(long id, AlertStatus status) => new(
        id, "inlet-hot", $"rack-r{id:00}/inlet", status, status == AlertStatus.Resolved ? AlertState.Resolved : AlertState.Firing, EventSeverity.Critical, 31.5,
        $"rack r{id:00}: inlet 31.5 °C above 30 °C", new Dictionary<string, string> { ["room"] = "room1", ["rule"] = "inlet-hot" }, [],
        T0, status == AlertStatus.Resolved ? T0.AddHours(2) : null, null, false, T0)
    { Peak = 34.1, PeakText = "34.1 °C" };

    /// <summary>A message whose completions (the manager's delivered bookkeeping) are counted in <paramref name="done"/>.</summary>
    private static AlertNotification Message(List<string> done, string name, params AlertSnapshot[] alerts)
    {
        var m = new AlertNotification("room=room1", alerts, T0) { Delivered = _ => { lock (done) { done.Add(name); } } };
        m.Expect(1);
        return m;
    }

    private static void Enqueue(SinkRunner runner, AlertNotification m) => runner.Enqueue(m, m.Alerts);

    /// <summary>What each POST carried, in order: "id:status" per alert, joined by commas.</summary>
    private static List<string> Received(TinyHttpServer server, int skip) => [.. server.Hits.Skip(skip).Select(h =>
    {
        using var json = JsonDocument.Parse(h.Body);
        return string.Join(",", json.RootElement.GetProperty("alerts").EnumerateArray().Select(a => $"{a.GetProperty("id").GetInt64()}:{a.GetProperty("status").GetString()}"));
    })];

    private static (TinyHttpServer Server, Func<bool> Up) Peer(out Action bringUp)
    {
        var up = 0;
        var server = new TinyHttpServer { Respond = _ => Volatile.Read(ref up) == 1 ? 200 : 503 };
        bringUp = () => Volatile.Write(ref up, 1);
        return (server, () => Volatile.Read(ref up) == 1);
    }

    private static WebhookSinkConfig Config(TinyHttpServer server, int queue = 256) =>
        new() { Name = "noc", Url = server.Url, Retries = 0, RetryDelay = TimeSpan.FromMilliseconds(50), Timeout = TimeSpan.FromSeconds(10), QueueCapacity = queue };

    /// <summary>A webhook runner whose peer is down, holding <paramref name="heldName"/> (FIRING of <paramref name="heldId"/>).</summary>
    private static async Task<SinkRunner> StartDownAsync(WebhookSinkConfig config, List<string> done, string heldName, long heldId, ILogger? log = null, AlertingMetrics? metrics = null)
    {
        var runner = new SinkRunner(new WebhookSink(config, "dc1", "gw1"), config, log, metrics);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        Enqueue(runner, Message(done, heldName, Alert(heldId, AlertStatus.Firing)));
        await Wait.UntilAsync(() => runner.Outage is not null, "the peer declared down");
        return runner;
    }

    [Fact]
    public async Task Regression_a_webhook_back_after_an_outage_got_firing_for_alerts_resolved_long_ago()
    {
        var (server, _) = Peer(out var bringUp);
        await using var _server = server;
        var log = new ListLogger();
        var superseded = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == AlertingMetrics.MeterName && i.Name == "edgetwin.alerts.sink.superseded")
            {
                l.EnableMeasurementEvents(i);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            if (tags.ToArray().Any(t => t.Key == "sink" && (string?)t.Value == "noc-night"))
            {
                Interlocked.Add(ref superseded, v);
            }
        });
        listener.Start();
        var config = Config(server) with { Name = "noc-night" }; // a name of its own: the meter is shared with other tests
        var done = new List<string>();

        // The NOC's webhook is down; during the night alerts 1 and 2 fire and resolve, alert 3 fires and stays.
        await using var runner = await StartDownAsync(config, done, "F1", 1, log, new AlertingMetrics());
        Enqueue(runner, Message(done, "F2", Alert(2, AlertStatus.Firing)));
        Enqueue(runner, Message(done, "R1", Alert(1, AlertStatus.Resolved)));
        Enqueue(runner, Message(done, "R2", Alert(2, AlertStatus.Resolved)));
        Enqueue(runner, Message(done, "F3", Alert(3, AlertStatus.Firing)));

        // F2 went when R2 came; the held F1 goes at its next attempt, R1 being queued.
        await Wait.UntilAsync(() => runner.Superseded == 2, "the held FIRING of alert 1 superseded by its RESOLVED");

        // Done at once: their alerts resolved, so no delivered mark can follow from them. Nothing else is done yet.
        await Wait.UntilAsync(() => { lock (done) { return done.Count == 2; } }, "the superseded messages done");
        lock (done)
        {
            Assert.Equal(["F1", "F2"], done.Order());
        }

        var failedHits = server.Hits.Count;
        bringUp();
        await Wait.UntilAsync(() => runner.Delivered == 3, "the latest states once the webhook answers", 60);

        // Each alert's latest state once, in the order of the changes: no FIRING for 1 and 2, which resolved hours ago.
        Assert.Equal(["1:resolved", "2:resolved", "3:firing"], Received(server, failedHits));
        using (var json = JsonDocument.Parse(server.Hits[failedHits].Body))
        {
            var a = json.RootElement.GetProperty("alerts")[0];
            Assert.Equal("2026-12-03T03:00:00.000Z", a.GetProperty("fired_at").GetString());
            Assert.Equal("2026-12-03T05:00:00.000Z", a.GetProperty("resolved_at").GetString());
            Assert.Equal(34.1, a.GetProperty("peak").GetDouble());
        }

        // Every message counts as done once its alerts' later state went out.
        await Wait.UntilAsync(() => { lock (done) { return done.Count == 5; } }, "every message done");
        Assert.Equal(2, runner.Superseded);
        listener.RecordObservableInstruments();
        Assert.Equal(2, Interlocked.Read(ref superseded));
        var back = Assert.Single(log.At(LogLevel.Warning), l => l.Contains("peer back", StringComparison.Ordinal));
        Assert.Matches(@"^alert sink noc-night: peer back after \S+ down \(\d+ failed attempts\): 5 messages were held, 3 sent with each alert's latest state, 2 superseded, 0 dropped \(queue full\)$", back);
    }

    [Fact]
    public async Task A_grouped_message_is_superseded_only_when_one_later_message_carries_all_its_alerts_and_the_rest_keep_their_order()
    {
        var (server, _) = Peer(out var bringUp);
        await using var _server = server;
        var config = Config(server);
        var done = new List<string>();
        await using var runner = await StartDownAsync(config, done, "F9", 9); // held: nothing later carries 9
        Enqueue(runner, Message(done, "G", Alert(1, AlertStatus.Firing), Alert(2, AlertStatus.Firing)));
        Enqueue(runner, Message(done, "F5", Alert(5, AlertStatus.Firing)));
        Enqueue(runner, Message(done, "R1", Alert(1, AlertStatus.Resolved)));
        Enqueue(runner, Message(done, "F6", Alert(6, AlertStatus.Firing)));

        // R1 carries only one of G's two alerts: G stays (the NOC would not hear that 2 fired).
        Assert.Equal(0, runner.Superseded);
        Assert.Equal(4, runner.QueueDepth);

        // One message with the later state of both: G and R1 go; F5 goes when R5 comes.
        Enqueue(runner, Message(done, "R12", Alert(1, AlertStatus.Resolved), Alert(2, AlertStatus.Resolved)));
        Assert.Equal(2, runner.Superseded);
        Enqueue(runner, Message(done, "R5", Alert(5, AlertStatus.Resolved)));
        Assert.Equal(3, runner.Superseded);
        Assert.Equal(3, runner.QueueDepth);

        var failedHits = server.Hits.Count;
        bringUp();
        await Wait.UntilAsync(() => runner.Delivered == 4, "the held message and the three left", 60);
        Assert.Equal(["9:firing", "6:firing", "1:resolved,2:resolved", "5:resolved"], Received(server, failedHits));
        await Wait.UntilAsync(() => { lock (done) { return done.Count == 7; } }, "every message done");
    }

    [Fact]
    public async Task A_full_queue_supersedes_before_it_drops_and_drops_only_when_it_holds_that_many_alerts()
    {
        var (server, _) = Peer(out var bringUp);
        await using var _server = server;
        var log = new ListLogger();
        var config = Config(server, queue: 4);
        var done = new List<string>();
        await using var runner = await StartDownAsync(config, done, "F100", 100, log);

        // Two flapping-ish alerts change 20 times in a queue of 4: it holds their latest state, drops nothing.
        for (var i = 0; i < 10; i++)
        {
            Enqueue(runner, Message(done, $"F1.{i}", Alert(1, AlertStatus.Firing)));
            Enqueue(runner, Message(done, $"R1.{i}", Alert(1, AlertStatus.Resolved)));
            Enqueue(runner, i % 2 == 0 ? Message(done, $"F2.{i}", Alert(2, AlertStatus.Firing)) : Message(done, $"R2.{i}", Alert(2, AlertStatus.Resolved)));
        }

        Assert.Equal(0, runner.Dropped);
        Assert.Equal(2, runner.QueueDepth);
        Assert.Equal(28, runner.Superseded);

        // Four more distinct alerts: now it holds six alerts' messages in four places and drops the two oldest.
        for (var id = 11; id <= 14; id++)
        {
            Enqueue(runner, Message(done, $"F{id}", Alert(id, AlertStatus.Firing)));
        }

        Assert.Equal(2, runner.Dropped);
        Assert.Equal(4, runner.QueueDepth);

        var failedHits = server.Hits.Count;
        bringUp();
        await Wait.UntilAsync(() => runner.Delivered == 5, "the held message and the four queued", 60);
        Assert.Equal(["100:firing", "11:firing", "12:firing", "13:firing", "14:firing"], Received(server, failedHits));

        // Dropped messages count as done (as before), and so do the ones they had superseded.
        await Wait.UntilAsync(() => { lock (done) { return done.Count == 35; } }, "every message done");
        Assert.Contains(log.At(LogLevel.Warning), l => l.EndsWith("35 messages were held, 5 sent with each alert's latest state, 28 superseded, 2 dropped (queue full)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stop_while_down_leaves_a_superseded_firing_owed_with_the_same_episodes_later_state()
    {
        var (server, _) = Peer(out _);
        await using var _server = server;
        var config = Config(server) with { RetryDelay = TimeSpan.FromMilliseconds(20) };
        var done = new List<string>();
        await using var runner = await StartDownAsync(config, done, "F1", 1);
        Enqueue(runner, Message(done, "F2", Alert(2, AlertStatus.Firing)));
        Enqueue(runner, Message(done, "A2", Alert(2, AlertStatus.Acknowledged)));
        Assert.Equal(1, runner.Superseded);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await runner.StopAsync(cts.Token);

        // The acknowledged state of the same episode superseded F2, so F2 is done only with A2. Not delivered, so not
        // done: the manager must not mark alert 2 notified firing (the peer heard neither message).
        lock (done)
        {
            Assert.Empty(done);
        }

        Assert.DoesNotContain(Received(server, 0), r => r.StartsWith("2:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_restart_after_superseding_does_not_send_the_superseded_firing_again()
    {
        const string rules = """
            alerts:
              group_by: [room]
              group_interval: 0s
              rules:
                - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
            """;
        var h = await Harness.StartAsync(rules);
        h.Sink.ActAsWebhook(peerDown: true);
        var runner = h.Service.Sinks.Single(r => r.Name == "rec");
        var s = h.Series("rack-r01", "inlet");

        // Fires while the peer is down (held), resolves an hour later (queued): the held FIRING is superseded.
        h.Feed(s, 35);
        await Wait.UntilAsync(() => runner.Outage is not null, "the peer declared down");
        var id = h.Active("inlet-hot")!.Id;
        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(s, 20);
        await Wait.UntilAsync(() => runner.QueueDepth == 1, "the RESOLVED queued");
        for (var i = 0; i < 200 && runner.Superseded == 0; i++)
        {
            h.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.Equal(1, runner.Superseded);

        // The peer is back: only RESOLVED (with when it fired).
        h.Sink.PeerDown = false;
        for (var i = 0; i < 200 && h.Sink.Got.Count == 0; i++)
        {
            h.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        var got = Assert.Single(h.Sink.All, a => a.Id == id);
        Assert.Equal(AlertStatus.Resolved, got.Status);
        Assert.NotNull(got.FiredAt);

        // After a restart nothing is owed for it: the superseded FIRING is not sent as undelivered.
        var h2 = await h.RestartAsync();
        await using (h2)
        {
            h2.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(300, TestContext.Current.CancellationToken);
            Assert.DoesNotContain(h2.Sink.All, a => a.Id == id);
            Assert.Null(h2.Active("inlet-hot"));
        }
    }

    [Fact]
    public async Task A_superseded_firing_is_done_when_the_same_episodes_later_state_is_delivered_not_before()
    {
        var (server, _) = Peer(out var bringUp);
        await using var _server = server;
        var config = Config(server);
        var done = new List<string>();
        await using var runner = await StartDownAsync(config, done, "F9", 9);
        Enqueue(runner, Message(done, "F1", Alert(1, AlertStatus.Firing)));
        Enqueue(runner, Message(done, "A1", Alert(1, AlertStatus.Acknowledged)));
        Assert.Equal(1, runner.Superseded);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        lock (done)
        {
            Assert.Empty(done);
        }

        bringUp();
        await Wait.UntilAsync(() => { lock (done) { return done.Count == 3; } }, "every message done", 60);
        lock (done)
        {
            Assert.Equal(["F9", "A1", "F1"], done); // F1 with A1, right after it
        }

        Assert.Equal(["9:firing", "1:acknowledged"], Received(server, server.Hits.Count - 2));
    }

    [Fact]
    public async Task The_syslog_journal_keeps_every_change_of_an_outage_with_its_own_time()
    {
        // The journal is a record of changes, not a pager: a flap's raise, clear and raise are each journaled.
        var dir = Directory.CreateTempSubdirectory("edgetwin-syslog-").FullName;
        var path = Path.Combine(dir, "log.sock");
        try
        {
            var config = new SyslogSinkConfig { Name = "journal", Socket = path, Facility = 16, AppName = "edgetwin", Retries = 0, RetryDelay = TimeSpan.FromMilliseconds(50) };
            await using var runner = new SinkRunner(new SyslogSink(config, "dc1"), config);
            await runner.StartAsync(TestContext.Current.CancellationToken);
            var done = new List<string>();
            Enqueue(runner, Message(done, "F1", Alert(1, AlertStatus.Firing)));
            await Wait.UntilAsync(() => runner.Outage is not null, "no socket: the journal down");
            Enqueue(runner, Message(done, "R1", Alert(1, AlertStatus.Resolved)));
            Enqueue(runner, Message(done, "F1b", Alert(1, AlertStatus.Firing)));
            Assert.Equal(2, runner.QueueDepth);

            using var receiver = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
            receiver.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            var lines = new List<string>();
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            for (var i = 0; i < 3; i++)
            {
                lines.Add(System.Text.Encoding.UTF8.GetString(buffer, 0, await receiver.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, cts.Token)));
            }

            Assert.Equal(["ALERT_FIRING", "ALERT_RESOLVED", "ALERT_FIRING"], lines.Select(l => l.Split(' ')[5]));
            Assert.Equal(0, runner.Superseded);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_local_broker_back_after_an_outage_gets_each_alerts_latest_state_once()
    {
        await using var broker = await Mosquitto.StartAsync();
        broker.Stop();
        var config = new MqttSinkConfig { Name = "local", Host = "127.0.0.1", Port = broker.Port, Timeout = TimeSpan.FromSeconds(2), Retries = 0, RetryDelay = TimeSpan.FromSeconds(2) };

        // After the held FIRING is superseded (2 s) the next try is 4 s away: time for the broker and the subscriber.
        await using var runner = new SinkRunner(new MqttSink(config, "dc1", "gw1"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var done = new List<string>();
        Enqueue(runner, Message(done, "F1", Alert(1, AlertStatus.Firing)));
        await Wait.UntilAsync(() => runner.Outage is not null, "the broker down", 30);
        Enqueue(runner, Message(done, "F2", Alert(2, AlertStatus.Firing)));
        Enqueue(runner, Message(done, "R1", Alert(1, AlertStatus.Resolved)));
        await Wait.UntilAsync(() => runner.Superseded == 1, "the held FIRING superseded", 30);

        await broker.RestartAsync();
        var received = new System.Collections.Concurrent.ConcurrentQueue<(string Topic, byte[] Payload)>();
        using var subscriber = await broker.SubscribeAsync("edgetwin/#", received);
        await Wait.UntilAsync(() => received.Count == 2, "F2 and R1 at the subscriber", 60);
        var got = received.Select(r =>
        {
            using var json = JsonDocument.Parse(r.Payload);
            var a = json.RootElement.GetProperty("alerts")[0];
            return $"{a.GetProperty("id").GetInt64()}:{a.GetProperty("status").GetString()}";
        });
        Assert.Equal(["2:firing", "1:resolved"], got);
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.Equal(2, received.Count);
    }
}
