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
    [Theory]
    [InlineData("message_size_limit")]
    [InlineData("max_packet_size")]
    public async Task Regression_a_message_over_the_brokers_size_limit_stalled_the_mqtt_uplink_for_ever(string limit)
    {
        await using var broker = await Mosquitto.StartAsync(limit == "max_packet_size" ? new MosquittoSettings { MaxPacketSize = 4096 } : new MosquittoSettings { MessageSizeLimit = 4096 });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var big = new OutboxRecord(OutboxKind.Event, "twin_request", 1_795_000_000_001, Encoding.UTF8.GetBytes($"{{\"result\":\"{new string('x', 8000)}\"}}"));
        await outbox.AppendAsync([Record("dev0", 0), big, Record("dev0", 2)], TestContext.Current.CancellationToken);

        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            // Entry 4 is the data_gap naming the refused entry 2 (RefusalDataGapTests).
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, TimeSpan.FromSeconds(20));
            await sub.WaitUntilAsync(m => Data(m).Any(e => e.Seq == 3) && Data(m).Any(e => e.Seq == 4), TimeSpan.FromSeconds(20), "the entry behind the oversized one and the data_gap");
            Assert.Equal([1L, 3L, 4L], Data(sub.Messages).Select(e => e.Seq).Distinct().Order());
            Assert.Equal("2", Data(sub.Messages).First(e => e.Seq == 4).Body.GetProperty("attributes").GetProperty("seqs").GetString());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    /// <summary>
    /// The size the uplink checks against the broker's CONNACK maximum packet size is the packet's real size: one of
    /// exactly the maximum goes through mosquitto, one byte more is passed over, and the entries around them arrive.
    /// </summary>
    [Fact]
    public async Task A_packet_of_exactly_the_brokers_maximum_goes_and_one_byte_more_is_passed_over()
    {
        const int max = 4096;
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { MaxPacketSize = max });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var identity = new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1");
        OutboxRecord Sized(long seq, int size)
        {
            for (var pad = 0; pad < max; pad++)
            {
                var record = new OutboxRecord(OutboxKind.Event, "dev0", 1_795_000_000_000 + seq, Encoding.UTF8.GetBytes($"{{\"pad\":\"{new string('x', pad)}\"}}"));
                var payload = EdgeTwin.Uplink.Payloads.JsonEnvelope.Encode(identity, new OutboxEntry(seq, record), historical: true);
                if (MqttTransport.PublishPacketSize(new MqttOutgoing("edgetwin/site1/gw1/event", payload, false, true), v5: true) == size)
                {
                    return record;
                }
            }

            throw new InvalidOperationException($"no padding makes a {size}-byte packet");
        }

        await outbox.AppendAsync([Record("dev0", 0), Sized(2, max), Sized(3, max + 1), Record("dev0", 3)], TestContext.Current.CancellationToken);
        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 5, TimeSpan.FromSeconds(20));
            await sub.WaitUntilAsync(m => Data(m).Any(e => e.Seq == 4) && Data(m).Any(e => e.Seq == 5), TimeSpan.FromSeconds(20), "the entry behind the oversized one and the data_gap");
            Assert.Equal([1L, 2L, 4L, 5L], Data(sub.Messages).Select(e => e.Seq).Distinct().Order());
            var gap = Data(sub.Messages).First(e => e.Seq == 5).Body.GetProperty("attributes");
            Assert.Equal("3", gap.GetProperty("seqs").GetString());
            Assert.Equal(((max + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), gap.GetProperty("entry.3.size_bytes").GetString());
            Assert.Contains("maximum packet size of 4096 bytes", gap.GetProperty("entry.3.peer_reason").GetString());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }
}
