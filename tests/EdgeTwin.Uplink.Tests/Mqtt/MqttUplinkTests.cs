using System.Text;
using System.Text.Json;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

public sealed class MqttUplinkTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(MqttProtocol.V311)]
    [InlineData(MqttProtocol.V500)]
    public async Task Publishes_every_entry_in_order_with_the_envelope_and_advances_the_outbox(MqttProtocol protocol)
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var records = Enumerable.Range(0, 300).Select(i => Record($"dev{i % 3}", i, i % 10 == 0 ? OutboxKind.Event : OutboxKind.Summary)).ToList();
        await outbox.AppendAsync(records, CancellationToken.None);

        var uplink = new MqttUplink(Options(broker.Port, protocol), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 300, Long);
        await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 300, Long, "300 data messages");

        var data = Data(sub.Messages);
        Assert.Equal(Enumerable.Range(1, 300).Select(i => (long)i), data.Select(e => e.Seq).Distinct().Order());
        AssertOrderedPerDevicePerLane(data);
        var first = data.First(e => e.Seq == 1);
        Assert.Equal("edgetwin/site1/gw1/event", first.Topic);
        Assert.Equal("event", first.Kind);
        Assert.Equal(0, first.Body.GetProperty("i").GetInt32());
        Assert.Equal("edgetwin/site1/gw1/summary", data.First(e => e.Seq == 2).Topic);

        // Acknowledged positions only ever move forward.
        var acks = outbox.AckLog.Select(a => a.Sequence).ToList();
        Assert.Equal(acks.Order(), acks);

        // Retained birth on the status topic.
        var status = sub.Messages.Where(m => m.Topic == "edgetwin/site1/gw1/status").ToList();
        Assert.Contains(status, m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("state").GetString() == "online");

        await cts.CancelAsync();
        await run;
        // Clean stop: retained "offline" replaces "online" for anyone subscribing later.
        await using var late = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await late.WaitUntilAsync(m => m.Count > 0, Long, "the retained status");
        var retained = late.Messages[0];
        Assert.True(retained.Retain);
        Assert.Equal("offline", JsonDocument.Parse(retained.Payload).RootElement.GetProperty("state").GetString());

        // The clean stop says when (the README example lacked it; only the will, fixed at connect, has no time).
        var stoppedAt = JsonDocument.Parse(retained.Payload).RootElement.GetProperty("time").GetString()!;
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", stoppedAt);
    }

    [Fact]
    public async Task Live_entries_appended_while_running_are_sent_without_the_historical_flag()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var uplink = new MqttUplink(Options(broker.Port), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        // A first entry acknowledged means the session is past its backlog boundary; what follows is live.
        await outbox.AppendAsync([Record("probe", 0)], CancellationToken.None);
        await WaitForPositionAsync(() => uplink.Position, 1, Long);
        for (var i = 1; i <= 50; i++)
        {
            await outbox.AppendAsync([Record("dev", i)], CancellationToken.None);
        }

        await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 51, Long, "50 live messages");
        Assert.All(Data(sub.Messages).Where(e => e.Seq > 1), e => Assert.False(e.Historical));
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Retained_birth_on_the_broker_carries_the_fleet_facts()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var outbox = new TestOutbox();
        var facts = new GatewayFacts("9.8.7", "arm64", "feedbeef", [new ModelFact("rack-ae", "4")]);
        var uplink = new MqttUplink(Options(broker.Port) with { Facts = () => facts }, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await outbox.AppendAsync([Record("probe", 0)], CancellationToken.None);
        await WaitForPositionAsync(() => uplink.Position, 1, Long);

        // A subscriber that comes later still gets the retained birth, facts included.
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await sub.WaitUntilAsync(m => m.Count > 0, Long, "the retained birth");
        var birth = JsonDocument.Parse(sub.Messages[0].Payload).RootElement;
        Assert.Equal("online", birth.GetProperty("state").GetString());
        var f = birth.GetProperty("facts");
        Assert.Equal("9.8.7", f.GetProperty("version").GetString());
        Assert.Equal("arm64", f.GetProperty("arch").GetString());
        Assert.Equal("feedbeef", f.GetProperty("config_sha256").GetString());
        Assert.Equal("4", f.GetProperty("models")[0].GetProperty("version").GetString());
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Last_will_offline_is_published_retained_when_the_connection_drops()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await using var outbox = new TestOutbox();
        var options = Options(proxy.Port) with
        {
            Delivery = new DeliveryOptions { ReconnectInitialDelay = TimeSpan.FromSeconds(30), ReconnectMaxDelay = TimeSpan.FromSeconds(30) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await sub.WaitUntilAsync(m => m.Any(x => State(x) == "online"), Long, "online");

        proxy.Cut();

        await sub.WaitUntilAsync(m => m.Any(x => State(x) == "offline"), Long, "the will");
        await cts.CancelAsync();
        await run;

        static string? State(Received m) => JsonDocument.Parse(m.Payload).RootElement.GetProperty("state").GetString();
    }

    [Fact]
    public async Task Broker_stopped_and_restarted_while_publishing_loses_nothing_and_keeps_order_per_device()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#", "centre");
        await using var outbox = new TestOutbox();
        var uplink = new MqttUplink(Options(broker.Port), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        const int total = 3000;
        var produced = 0;
        var producer = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await outbox.AppendAsync([Record($"dev{i % 5}", i)], CancellationToken.None);
                produced = i + 1;
                if (i % 10 == 0)
                {
                    await Task.Delay(5, TestContext.Current.CancellationToken);
                }
            }
        }, TestContext.Current.CancellationToken);

        // Restart the broker twice while the producer is running.
        for (var round = 0; round < 2; round++)
        {
            var target = (round + 1) * total / 3;
            while (Volatile.Read(ref produced) < target)
            {
                await Task.Delay(20, TestContext.Current.CancellationToken);
            }

            await broker.StopAsync();
            await Task.Delay(500, TestContext.Current.CancellationToken);
            await broker.StartAsync();
        }

        await producer;
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), total, Long);
        await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == total, Long, $"all {total} sequences");

        var data = Data(sub.Messages);
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), data.Select(e => e.Seq).Distinct().Order());
        AssertOrderedPerDevicePerLane(data);
        Assert.True(uplink.FailedSessions >= 1, "the broker restarts were not noticed");
        // QoS 1 duplicates come only from resends after a lost connection: at most a window per reconnect.
        var duplicates = data.Count - total;
        Assert.InRange(duplicates, 0, (uplink.FailedSessions + 1) * new DeliveryOptions().Window);
        var acks = outbox.AckLog.Select(a => a.Sequence).ToList();
        Assert.Equal(acks.Order(), acks);

        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Replays_a_backlog_as_historical_while_live_data_still_flows()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        const int backlog = 1500;
        await outbox.AppendAsync([.. Enumerable.Range(0, backlog).Select(i => Record($"dev{i % 3}", i))], CancellationToken.None);

        // 500/s: the backlog takes about three seconds, live data must not wait for it.
        var delivery = new DeliveryOptions { BacklogRatePerSecond = 500, ReconnectInitialDelay = TimeSpan.FromMilliseconds(100) };
        var uplink = new MqttUplink(Options(broker.Port, delivery: delivery), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await sub.WaitUntilAsync(m => Data(m).Any(), Long, "the first replayed message");

        var live = await outbox.AppendAsync([Record("live-dev", 9999)], CancellationToken.None);
        await sub.WaitUntilAsync(m => Data(m).Any(e => e.Seq == live), Long, "the live message");
        var atLiveArrival = Data(sub.Messages).Where(e => e.Historical).Select(e => e.Seq).Distinct().Count();
        Assert.True(atLiveArrival < backlog, $"the live message waited for the whole backlog ({atLiveArrival} replayed first)");

        await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == backlog + 1, Long, "backlog and live");
        var data = Data(sub.Messages);
        Assert.All(data.Where(e => e.Seq <= backlog), e => Assert.True(e.Historical, $"seq {e.Seq} should be historical"));
        Assert.False(data.Single(e => e.Seq == live).Historical);
        AssertOrderedPerDevicePerLane(data);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), live, Long);
        await cts.CancelAsync();
        await run;
    }
}
