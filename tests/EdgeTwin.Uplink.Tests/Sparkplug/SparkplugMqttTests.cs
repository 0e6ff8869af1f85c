using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

public sealed class SparkplugMqttTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Sparkplug_session_births_data_and_death_through_mosquitto_decode_with_protoc()
    {
        var state = Directory.CreateTempSubdirectory("edgetwin-spb-state-").FullName;
        try
        {
            await using var broker = await Mosquitto.StartAsync();
            await using var proxy = new TcpProxy(broker.Port);
            await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
            await using var outbox = new TestOutbox();
            await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Record($"dev{i % 2}", i))], TestContext.Current.CancellationToken);
            var options = Options(proxy.Port) with
            {
                Encoding = MqttPayloadEncoding.SparkplugB,
                StateDirectory = state,
                Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromSeconds(30), ReconnectMaxDelay = TimeSpan.FromSeconds(30) },
            };
            var uplink = new MqttUplink(options, outbox);
            using var cts = new CancellationTokenSource();
            var run = uplink.RunAsync(cts.Token);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 10, Long);
            await sub.WaitUntilAsync(m => m.Count(x => x.Topic.Contains("/DDATA/", StringComparison.Ordinal)) >= 10, Long, "10 DDATA");

            var messages = sub.Messages;
            Assert.Equal("spBv1.0/site1/NBIRTH/gw1", messages[0].Topic);
            var nbirth = Payload.Parser.ParseFrom(messages[0].Payload);
            var bdSeq = nbirth.Metrics.Single(m => m.Name == "bdSeq").LongValue;
            Assert.Equal(0ul, nbirth.Seq);
            Assert.Contains(messages, m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/dev0");
            Assert.Contains(messages, m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/dev1");

            // Every node message after NBIRTH increments seq by one (mod 256), in arrival order.
            var seqs = messages.Where(m => !m.Topic.Contains("NDEATH", StringComparison.Ordinal)).Select(m => Payload.Parser.ParseFrom(m.Payload).Seq).ToList();
            Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (ulong)(i % 256)), seqs);

            var ddata = messages.First(m => m.Topic == "spBv1.0/site1/DDATA/gw1/dev0");
            var text = await Protoc.DecodeSparkplugAsync(ddata.Payload);
            Assert.Contains("name: \"edgetwin/seq\"", text, StringComparison.Ordinal);
            Assert.Contains("is_historical: true", text, StringComparison.Ordinal); // the entries predate the connection

            // A pulled cable: the broker publishes our will, NDEATH with the bdSeq of the NBIRTH.
            proxy.Cut();
            await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NDEATH/gw1"), Long, "NDEATH");
            var ndeath = Payload.Parser.ParseFrom(sub.Messages.First(x => x.Topic == "spBv1.0/site1/NDEATH/gw1").Payload);
            Assert.Equal(bdSeq, ndeath.Metrics.Single(m => m.Name == "bdSeq").LongValue);
            await cts.CancelAsync();
            await run;

            // A restart of the gateway continues the bdSeq from the state file.
            var again = new MqttUplink(options with { Port = broker.Port }, outbox);
            using var cts2 = new CancellationTokenSource();
            var run2 = again.RunAsync(cts2.Token);
            await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 2, Long, "the second NBIRTH");
            var second = Payload.Parser.ParseFrom(sub.Messages.Last(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1").Payload);
            Assert.Equal(bdSeq + 1, second.Metrics.Single(m => m.Name == "bdSeq").LongValue);
            await cts2.CancelAsync();
            await run2;
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }
}
