using System.Text.Json;
using Confluent.Kafka;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary>Topic names a <c>{device}</c> template gives for the device ids the agent really writes.</summary>
public sealed class KafkaTopicTests
{
    [Fact]
    public async Task Regression_a_device_id_with_characters_kafka_forbids_gave_an_illegal_topic_name_that_a_cluster_refuses()
    {
        // Device ids the agent writes that hold characters Kafka topic names may not: a multivariate anomaly group
        // (group:<name>, Outbox README), an SNMP trap from an unconfigured IPv6 sender, a device id with a space.
        string[] devices = ["group:mv-machine", "fe80::1", "rack a01", "pdu-a01-a"];
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. devices.Select((d, i) => Record(d, i, OutboxKind.Event))], TestContext.Current.CancellationToken);

        var uplink = new KafkaUplink(new KafkaUplinkOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            Site = "site1",
            Gateway = "gw1",
            TopicTemplate = "edgetwin.{site}.{kind}.{device}",
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        }, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), devices.Length, TimeSpan.FromSeconds(60));
        await cts.CancelAsync();
        await run;

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
        {
            // The mock cluster takes any name; a real one refuses 'fe80::1' (INVALID_TOPIC_EXCEPTION), and the uplink
            // passed such entries over as refused for good. So the names themselves are the check.
            var names = admin.GetMetadata(TimeSpan.FromSeconds(30)).Topics.Select(t => t.Topic).Where(t => t.StartsWith("edgetwin.", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
            Assert.Equal(["edgetwin.site1.event.fe80__1", "edgetwin.site1.event.group_mv-machine", "edgetwin.site1.event.pdu-a01-a", "edgetwin.site1.event.rack_a01", "edgetwin.site1.status.gw1"], names);
        }

        string[] topics = ["edgetwin.site1.event.group_mv-machine", "edgetwin.site1.event.fe80__1", "edgetwin.site1.event.rack_a01", "edgetwin.site1.event.pdu-a01-a"];
        var received = await Task.Run(() => Consume(cluster.BootstrapServers, topics, devices.Length), TestContext.Current.CancellationToken);
        // Every entry arrived (none refused and passed over), on its device's topic, keyed by the device id unchanged.
        Assert.Equal(devices.Zip(topics).OrderBy(p => p.First, StringComparer.Ordinal), received.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Topic)));
        Assert.All(received, r => Assert.Equal(r.Key, r.Device));
    }

    private static List<(string Key, string Topic, string Device)> Consume(string bootstrap, string[] topics, int expected)
    {
        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"centre-{Guid.NewGuid():N}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe(topics);
        var result = new List<(string, string, string)>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (result.Count < expected && DateTime.UtcNow < deadline)
        {
            var cr = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (cr?.Message is null)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(cr.Message.Value);
            result.Add((cr.Message.Key, cr.Topic, doc.RootElement.GetProperty("device").GetString()!));
        }

        consumer.Close();
        return result;
    }
}
