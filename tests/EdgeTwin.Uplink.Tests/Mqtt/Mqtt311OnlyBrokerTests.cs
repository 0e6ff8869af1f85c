using System.Text.Json;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// The uplink against a broker that speaks only MQTT 3.1.1: a real mosquitto behind <see cref="Mqtt311OnlyFront"/>,
/// which answers an MQTT 5 CONNECT with "unacceptable protocol version" as such a broker does.
/// </summary>
public sealed class Mqtt311OnlyBrokerTests
{
    private static MqttTransport Transport(MqttUplinkOptions o) =>
        new(o, new JsonMqttEncoder(o.Identity, new TopicTemplate(o.TopicTemplate, o.Identity)), TimeProvider.System, NullLogger.Instance);

    [Fact]
    public async Task Regression_an_mqtt5_uplink_refused_by_a_311_broker_said_only_refused_the_connection_1()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var front = new Mqtt311OnlyFront(broker.Port);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var ex = await Assert.ThrowsAsync<UplinkConnectException>(async () =>
        {
            await using var session = await Transport(Options(front.Port, MqttProtocol.V500)).ConnectAsync(cts.Token);
        });
        Assert.Equal(1, front.Refused);
        Assert.Equal(
            $"mqtt://127.0.0.1:{front.Port} refused the connection: unacceptable protocol version: the broker does not speak MQTT 5 (it answered as an MQTT 3.1.1 broker); set uplinks.mqtt.protocol: \"3.1.1\"",
            ex.Message);

        // With protocol 3.1.1 the same broker takes the session (and the birth published on it).
        await using (await Transport(Options(front.Port, MqttProtocol.V311)).ConnectAsync(cts.Token))
        {
            Assert.Equal(1, front.Forwarded);
        }
    }

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task On_a_311_only_broker_the_json_uplink_gives_its_birth_data_replay_progress_and_will()
    {
        await using var broker = await Mosquitto.StartAsync();
        var front = new Mqtt311OnlyFront(broker.Port);
        await using var status = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await using var data = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/summary");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 40).Select(i => Record($"dev{i % 2}", i))], Ct);
        var options = Options(front.Port, MqttProtocol.V311) with
        {
            Facts = () => new GatewayFacts("9.8.7", "arm64", "feedbeef", []),
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromSeconds(30), ReconnectMaxDelay = TimeSpan.FromSeconds(30) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 40, Long);
            await data.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 40, Long, "40 summaries");
            AssertOrderedPerDevicePerLane(Data(data.Messages));

            // The birth (online, with the facts), then the replay's closing status: the books can be closed on 3.1.1 too.
            JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;
            await status.WaitUntilAsync(m => m.Any(x => Json(x).TryGetProperty("backlog", out var b) && b.GetInt64() == 0), Long, "the closing status");
            var birth = Json(status.Messages[0]);
            Assert.Equal("online", birth.GetProperty("state").GetString());
            Assert.Equal("9.8.7", birth.GetProperty("facts").GetProperty("version").GetString());
            var closing = Json(status.Messages.First(x => Json(x).TryGetProperty("backlog", out var b) && b.GetInt64() == 0));
            Assert.Equal(40, closing.GetProperty("acked_through_seq").GetInt64());
            Assert.Equal(40, closing.GetProperty("replay_through_seq").GetInt64());

            // The link drops without a DISCONNECT: the broker publishes the 3.1.1 will, offline and retained.
            await front.DisposeAsync();
            await status.WaitUntilAsync(m => m.Any(x => Json(x).GetProperty("state").GetString() == "offline"), Long, "the will");
            await using var late = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
            await late.WaitUntilAsync(m => m.Count > 0, Long, "the retained status");
            Assert.True(late.Messages[0].Retain);
            Assert.Equal("offline", Json(late.Messages[0]).GetProperty("state").GetString());
            Assert.Equal(0, front.Refused);
        }
        finally
        {
            await cts.CancelAsync();
            await run;
            await front.DisposeAsync();
        }
    }

    [Fact]
    public async Task On_a_311_only_broker_sparkplug_gives_its_births_data_and_ndeath()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb311-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        var front = new Mqtt311OnlyFront(broker.Port);
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Record($"dev{i % 2}", i))], Ct);
        var options = Options(front.Port, MqttProtocol.V311) with
        {
            Encoding = MqttPayloadEncoding.SparkplugB,
            StateDirectory = state,
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromSeconds(30), ReconnectMaxDelay = TimeSpan.FromSeconds(30) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 10, Long);
            await sub.WaitUntilAsync(m => m.Count(x => x.Topic.Contains("/DDATA/", StringComparison.Ordinal)) >= 10, Long, "10 DDATA");
            Assert.Equal("spBv1.0/site1/NBIRTH/gw1", sub.Messages[0].Topic);
            var bdSeq = Payload.Parser.ParseFrom(sub.Messages[0].Payload).Metrics.Single(m => m.Name == "bdSeq").LongValue;
            Assert.Contains(sub.Messages, m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/dev0");

            await front.DisposeAsync();
            await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NDEATH/gw1"), Long, "NDEATH");
            var ndeath = Payload.Parser.ParseFrom(sub.Messages.First(x => x.Topic == "spBv1.0/site1/NDEATH/gw1").Payload);
            Assert.Equal(bdSeq, ndeath.Metrics.Single(m => m.Name == "bdSeq").LongValue);
            Assert.Equal(0, front.Refused);
        }
        finally
        {
            await cts.CancelAsync();
            await run;
            await front.DisposeAsync();
        }
    }
}
