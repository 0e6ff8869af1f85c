using System.Diagnostics;
using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// A gateway on a metered cellular link (<c>max_rate</c>): bytes measured on the wire by a proxy between the uplink and a
/// real mosquitto, over a window, against the budget; an alert is not held behind the throttled replay.
/// </summary>
public sealed class MeteredLinkBudgetTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DeliveryOptions Budget(double bytesPerSecond) => new()
    {
        ReconnectInitialDelay = TimeSpan.FromMilliseconds(100),
        ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        AckTimeout = TimeSpan.FromSeconds(10),
        MaxBytesPerSecond = bytesPerSecond,
    };

    // A summary-sized body (the 20-rack site's average summary PUBLISH was ~636 bytes).
    private static OutboxRecord Padded(string device, int i, OutboxKind kind = OutboxKind.Summary) =>
        new(kind, device, 1_795_000_000_000 + i, Encoding.UTF8.GetBytes($"{{\"i\":{i},\"device\":\"{device}\",\"pad\":\"{new string('x', 380)}\"}}"));

    [Theory]
    [InlineData(MqttProtocol.V311)]
    [InlineData(MqttProtocol.V500)]
    public async Task Regression_a_replay_after_an_outage_took_the_whole_metered_link(MqttProtocol protocol)
    {
        // Before: the backlog went at backlog_rate (2000 messages/s, ~10 Mbit/s of summaries), far over a 1-5 Mbit/s
        // LTE uplink and its data plan. Now it takes what max_rate leaves over after live data.
        const double rate = 20_000; // 160 kbit/s
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        var outbox = new InMemoryOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 3000).Select(i => Padded($"dev{i % 8}", i))], Ct);
        var uplink = new MqttUplink(Options(proxy.Port, protocol, Budget(rate)), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        // Live data meanwhile, ~5 kB/s: the replay gets only the rest of the budget.
        using var liveStop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var live = Task.Run(async () =>
        {
            var i = 100_000;
            while (!liveStop.IsCancellationRequested)
            {
                await outbox.AppendAsync([Padded("live", i++)], CancellationToken.None);
                await Task.Delay(100, CancellationToken.None);
            }
        }, CancellationToken.None);

        await Task.Delay(TimeSpan.FromSeconds(2), Ct); // past the connect and the first second's burst
        var bytes0 = proxy.BytesToTarget;
        var counted0 = uplink.Traffic.Total;
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(8), Ct);
        var bytes = proxy.BytesToTarget - bytes0;
        var counted = uplink.Traffic.Total - counted0;
        var seconds = clock.Elapsed.TotalSeconds;
        await liveStop.CancelAsync();
        await live;

        var measured = bytes / seconds;
        Assert.InRange(measured, rate * 0.9, rate * 1.1);
        // The uplink's own count is what went on the wire, less keep-alives and the like.
        Assert.InRange(counted, bytes * 0.97, bytes * 1.03);
        var traffic = uplink.Traffic;
        Assert.True(traffic.LiveBytes["summary"] > 0 && traffic.BacklogBytes["summary"] > 0, "both lanes sent");
        Assert.True(traffic.BacklogThrottled > TimeSpan.FromSeconds(1), $"the replay waited for the budget ({traffic.BacklogThrottled})");
        Assert.True(outbox.GetAcknowledged("mqtt") < 3000, "the backlog is still replaying, at the budget");

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task An_alert_is_not_held_behind_a_throttled_replay()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#", "centre-budget");
        var outbox = new InMemoryOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 2000).Select(i => Padded($"dev{i % 8}", i))], Ct);
        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500, Budget(5_000)), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await sub.WaitUntilAsync(m => Data(m).Any(e => e.Historical), TimeSpan.FromSeconds(20), "the replay started");
        await Task.Delay(TimeSpan.FromSeconds(1.5), Ct); // the budget is spent: the replay is waiting for it
        var alert = new OutboxRecord(OutboxKind.Event, "rule-hot-aisle", 1_795_000_999_000,
            """{"v":1,"type":"event","event":"alert","severity":"critical","message":"hot aisle A over 32 °C"}"""u8.ToArray());
        // A window close of summaries (~100 kB, 20 s of the budget) just before the alert: the alert must not wait behind them.
        await outbox.AppendAsync([.. Enumerable.Range(10_000, 200).Select(i => Padded($"dev{i % 8}", i))], Ct);
        var appended = Stopwatch.StartNew();
        await outbox.AppendAsync([alert], Ct);
        await sub.WaitUntilAsync(m => Data(m).Any(e => e.Kind == "event"), TimeSpan.FromSeconds(10), "the alert");
        var latency = appended.Elapsed;

        var data = Data(sub.Messages);
        var evt = Assert.Single(data, e => e.Kind == "event");
        Assert.False(evt.Historical);
        // Held behind the budget it would take the summaries' 20 s; 5 s leaves a loaded CI machine room (it took 2.7 s there).
        Assert.True(latency < TimeSpan.FromSeconds(5), $"the alert took {latency} behind a throttled replay");
        Assert.True(data.Count(e => e.Historical) < 200, "the replay is throttled (5 kB/s), so most of it is still waiting");
        Assert.True(uplink.Traffic.LiveBytes["event"] > 0);
        AssertOrderedPerDevicePerLane(data);

        await cts.CancelAsync();
        await run;
    }
}
