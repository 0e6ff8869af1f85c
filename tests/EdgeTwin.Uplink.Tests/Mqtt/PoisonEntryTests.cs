using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// MQTT 3.1.1 has no refusal: a broker that will not take a publish (over its maximum packet size, forbidden by its ACL)
/// closes the connection. Against a real mosquitto with <c>max_packet_size</c>.
/// </summary>
public sealed class PoisonEntryTests
{
    /// <summary>
    /// The uplink sent the oversized entry again after every reconnect, for ever, and nothing behind it arrived; after three
    /// such sessions it even reported a second gateway with its identity (error event 50), sending the operator after a
    /// gateway that does not exist. Now the sessions closed on our sends narrow it down to the entry sent alone, which is
    /// refused for good with a data_gap naming it, and no takeover is reported.
    /// </summary>
    [Fact]
    public async Task Regression_an_mqtt311_publish_over_the_brokers_max_packet_size_stalled_the_uplink_and_was_taken_for_a_second_gateway()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { MaxPacketSize = 4096 });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var big = new OutboxRecord(OutboxKind.Event, "twin_request", 1_795_000_000_001, Encoding.UTF8.GetBytes($"{{\"result\":\"{new string('x', 8000)}\"}}"));
        await outbox.AppendAsync([Record("dev0", 0), big, Record("dev0", 2)], TestContext.Current.CancellationToken);
        var log = new RecordingLogger();
        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V311), outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            // Entry 4 is the data_gap naming the refused entry 2.
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, TimeSpan.FromSeconds(30));
            await sub.WaitUntilAsync(m => Data(m).Any(e => e.Seq == 3) && Data(m).Any(e => e.Seq == 4), TimeSpan.FromSeconds(20), "the entry behind the oversized one and the data_gap");
            Assert.Equal([1L, 3L, 4L], Data(sub.Messages).Select(e => e.Seq).Distinct().Order());
            var gap = Data(sub.Messages).First(e => e.Seq == 4).Body.GetProperty("attributes");
            Assert.Equal("2", gap.GetProperty("seqs").GetString());
            Assert.Contains("closed the connection each time this entry was sent", gap.GetProperty("entry.2.peer_reason").GetString());
            Assert.Equal(0, uplink.Takeovers.Count);
            Assert.DoesNotContain(log.Lines, l => l.Message.Contains("second gateway", StringComparison.Ordinal));
            Assert.Single(log.Lines, l => l.Level == LogLevel.Error && l.Message.Contains("rejected outbox entry 2 ", StringComparison.Ordinal));
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    /// <summary>
    /// Entries sent one at a time only until the refused one is passed: the replay behind it goes with the full window
    /// again, and every entry but the oversized one arrives once it is acknowledged.
    /// </summary>
    [Fact]
    public async Task The_window_opens_again_past_the_refused_entry_and_a_long_replay_behind_it_arrives()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { MaxPacketSize = 4096 });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var big = new OutboxRecord(OutboxKind.Event, "twin_request", 1_795_000_000_001, Encoding.UTF8.GetBytes($"{{\"result\":\"{new string('x', 8000)}\"}}"));
        await outbox.AppendAsync([.. Enumerable.Range(0, 20).Select(i => Record("dev0", i)), big, .. Enumerable.Range(21, 500).Select(i => Record("dev0", i))], TestContext.Current.CancellationToken);
        var log = new RecordingLogger();
        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V311), outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            // 521 entries, the 21st refused, 522 its data_gap.
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 522, TimeSpan.FromSeconds(40));
            await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 521, TimeSpan.FromSeconds(20), "every entry but the refused one, and the data_gap");
            Assert.DoesNotContain(21L, Data(sub.Messages).Select(e => e.Seq));
            Assert.Equal(1, uplink.Rejections.Count);
            Assert.Contains(log.Lines, l => l.Message.Contains("sending to", StringComparison.Ordinal) && l.Message.Contains("with its full window again", StringComparison.Ordinal));
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }
}
