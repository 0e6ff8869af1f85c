using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

public sealed class OversizedMessageTests
{
    /// <summary>
    /// mosquitto with <c>message_size_limit</c> answers an MQTT 5 publish above it with PUBACK reason 0x95 (packet too
    /// large). The uplink took that for a broken session: it reconnected and sent the same message again, for ever, and
    /// the consumers received nothing of the gateway after it. Now it is refused for good (logged, counted) like Kafka's
    /// MSG_SIZE_TOO_LARGE, and what follows is delivered.
    /// </summary>
    [Fact]
    public async Task Regression_a_message_over_the_brokers_size_limit_stalled_the_mqtt_uplink_for_ever()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { MessageSizeLimit = 4096 });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var big = new OutboxRecord(OutboxKind.Event, "twin_request", 1_795_000_000_001, Encoding.UTF8.GetBytes($"{{\"result\":\"{new string('x', 8000)}\"}}"));
        await outbox.AppendAsync([Record("dev0", 0), big, Record("dev0", 2)], TestContext.Current.CancellationToken);

        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 3, TimeSpan.FromSeconds(20));
            await sub.WaitUntilAsync(m => Data(m).Any(e => e.Seq == 3), TimeSpan.FromSeconds(20), "the entry behind the oversized one");
            Assert.Equal([1L, 3L], Data(sub.Messages).Select(e => e.Seq).Distinct().Order());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }
}
