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

        await SendAllAsync(cluster.BootstrapServers, outbox, devices.Length, "edgetwin.{site}.{kind}.{device}");

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

    [Fact]
    public async Task A_replayed_record_is_stamped_with_the_time_it_describes_and_carries_only_the_documented_headers()
    {
        // The record timestamp (CreateTime) is the envelope's `time`, not the send time: a day of backlog replayed now
        // lands in its own event-time windows of a Kafka Streams or Flink consumer (Uplink README, Kafka bullet).
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("pdu-a01-a", 0)], TestContext.Current.CancellationToken);
        await SendAllAsync(cluster.BootstrapServers, outbox, 1);

        var message = (await Task.Run(() => ConsumeRaw(cluster.BootstrapServers, ["edgetwin.site1.summary"], 1), TestContext.Current.CancellationToken)).FirstOrDefault()?.Message;

        Assert.NotNull(message);
        using var doc = JsonDocument.Parse(message.Value);
        Assert.Equal("2026-11-18T11:06:40.000Z", doc.RootElement.GetProperty("time").GetString());
        Assert.True(doc.RootElement.GetProperty("historical").GetBoolean());
        Assert.Equal(TimestampType.CreateTime, message.Timestamp.Type);
        Assert.Equal(1_795_000_000_000, message.Timestamp.UnixTimestampMs);
        Assert.Equal(["edgetwin-seq=1", "edgetwin-historical=1", "edgetwin-site=site1", "edgetwin-gateway=gw1", "edgetwin-kind=summary"], message.Headers.Select(h => $"{h.Key}={System.Text.Encoding.ASCII.GetString(h.GetValueBytes())}"));
    }

    [Theory]
    // Apache Kafka's own vectors (clients UtilsTest.testMurmur2): the reference this test's hash is checked against.
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void The_reference_murmur2_matches_the_java_clients_vectors(string key, int expected) =>
        Assert.Equal(expected, JavaMurmur2(System.Text.Encoding.UTF8.GetBytes(key)));

    [Fact]
    public async Task Regression_records_were_partitioned_by_crc32_not_by_the_java_clients_murmur2_of_their_key()
    {
        // librdkafka's default partitioner put a device's records on another partition than a Java producer of the same
        // key; a Kafka Streams join of our topic with a Java-produced one then missed every match (co-partitioning).
        const int partitions = 6;
        string[] devices = ["pdu-a01-a", "pdu-a01-b", "ups-1", "crac-1", "crac-2", "meter-7", "rack-A01", "group:mv", "fe80::1", "line1/press"];
        using var cluster = new MockCluster();
        cluster.CreateTopic("edgetwin.site1.summary", partitions);

        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. devices.Select((d, i) => Record(d, i))], TestContext.Current.CancellationToken);
        await SendAllAsync(cluster.BootstrapServers, outbox, devices.Length);

        var received = await Task.Run(() => ConsumePartitions(cluster.BootstrapServers, "edgetwin.site1.summary", devices.Length), TestContext.Current.CancellationToken);
        Assert.Equal(devices.Order(StringComparer.Ordinal), received.Select(r => r.Key).Order(StringComparer.Ordinal));
        Assert.All(received, r => Assert.Equal((JavaMurmur2(System.Text.Encoding.UTF8.GetBytes(r.Key)) & 0x7fffffff) % partitions, r.Partition));
        Assert.True(received.Select(r => r.Partition).Distinct().Count() > 1, "every key on one partition proves nothing");
    }

    /// <summary>org.apache.kafka.common.utils.Utils.murmur2, as the Java client's default partitioner uses it.</summary>
    private static int JavaMurmur2(byte[] data)
    {
        const uint m = 0x5bd1e995;
        const int r = 24;
        var length = data.Length;
        var h = 0x9747b28cu ^ (uint)length;
        var i = 0;
        for (; i + 4 <= length; i += 4)
        {
            var k = (uint)(data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
            k *= m;
            k ^= k >> r;
            k *= m;
            h *= m;
            h ^= k;
        }

        switch (length - i)
        {
            case 3:
                h ^= (uint)data[i + 2] << 16;
                h ^= (uint)data[i + 1] << 8;
                h ^= data[i];
                h *= m;
                break;
            case 2:
                h ^= (uint)data[i + 1] << 8;
                h ^= data[i];
                h *= m;
                break;
            case 1:
                h ^= data[i];
                h *= m;
                break;
        }

        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return (int)h;
    }

    /// <summary>Runs a Kafka uplink until the outbox's first <paramref name="count"/> entries are acknowledged.</summary>
    private static async Task SendAllAsync(string bootstrap, TestOutbox outbox, int count, string template = "edgetwin.{site}.{kind}")
    {
        var uplink = new KafkaUplink(new KafkaUplinkOptions
        {
            BootstrapServers = bootstrap,
            Site = "site1",
            Gateway = "gw1",
            TopicTemplate = template,
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        }, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), count, TimeSpan.FromSeconds(60));
        await cts.CancelAsync();
        await run;
    }

    private static List<(string Key, string Topic, string Device)> Consume(string bootstrap, string[] topics, int expected) =>
        [.. ConsumeRaw(bootstrap, topics, expected).Select(cr =>
        {
            using var doc = JsonDocument.Parse(cr.Message.Value);
            return (cr.Message.Key, cr.Topic, doc.RootElement.GetProperty("device").GetString()!);
        })];

    private static List<(string Key, int Partition)> ConsumePartitions(string bootstrap, string topic, int expected) =>
        [.. ConsumeRaw(bootstrap, [topic], expected).Select(cr => (cr.Message.Key, cr.Partition.Value))];

    private static List<ConsumeResult<string, byte[]>> ConsumeRaw(string bootstrap, string[] topics, int expected)
    {
        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"centre-{Guid.NewGuid():N}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe(topics);
        var result = new List<ConsumeResult<string, byte[]>>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (result.Count < expected && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { Message: not null } cr)
            {
                result.Add(cr);
            }
        }

        consumer.Close();
        return result;
    }
}
