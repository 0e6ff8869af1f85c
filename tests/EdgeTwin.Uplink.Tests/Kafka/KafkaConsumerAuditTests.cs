using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary>What the central twin team, consuming many gateways from the mock cluster, found missing.</summary>
public sealed class KafkaConsumerAuditTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static KafkaUplinkOptions Options(string bootstrap, string gateway = "gw1") => new()
    {
        BootstrapServers = bootstrap,
        Site = "site1",
        Gateway = gateway,
        Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
    };

    internal static IConsumer<string, byte[]> CentreConsumer(string bootstrap) => new ConsumerBuilder<string, byte[]>(new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = $"centre-{Guid.NewGuid():N}",
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = false,
    }).Build();

    /// <summary>Records of <paramref name="topics"/> from their start until <paramref name="until"/> holds for what was read (or <paramref name="timeout"/>).</summary>
    internal static List<ConsumeResult<string, byte[]>> Consume(string bootstrap, IEnumerable<string> topics, Func<List<ConsumeResult<string, byte[]>>, bool> until, TimeSpan timeout)
    {
        using var consumer = CentreConsumer(bootstrap);
        consumer.Subscribe(topics);
        var result = new List<ConsumeResult<string, byte[]>>();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !until(result))
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { Message: not null } cr)
            {
                result.Add(cr);
            }
        }

        consumer.Close();
        return result;
    }

    private static string? ModelVersion(ConsumeResult<string, byte[]> r) =>
        JsonDocument.Parse(r.Message.Value).RootElement.TryGetProperty("facts", out var f) && f.GetProperty("models").GetArrayLength() > 0
            ? f.GetProperty("models")[0].GetProperty("version").GetString()
            : null;

    private static long Acked(ConsumeResult<string, byte[]> r) =>
        JsonDocument.Parse(r.Message.Value).RootElement.TryGetProperty("acked_through_seq", out var a) ? a.GetInt64() : -1;

    [Fact]
    public async Task Regression_a_model_update_reached_kafka_consumers_only_with_the_next_progress_status()
    {
        // MQTT publishes the birth again before the next message when a hot reload changes the models; Kafka had no such
        // path, so the status topic kept announcing the old model for a whole ProgressInterval (never, with 0) while the
        // new model's predictions were already arriving.
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        var models = new[] { new ModelFact("bearing-rul", "1.0") };
        long revision = 1;
        var options = Options(cluster.BootstrapServers) with
        {
            Facts = () => new GatewayFacts("9.8.7", "arm64", "feedbeef", Volatile.Read(ref models)),
            FactsRevision = () => Interlocked.Read(ref revision),
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ProgressInterval = TimeSpan.FromHours(1), ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        // A backlog before the start: the replay's closing status (backlog 0, acked 2) is then the last progress status.
        await outbox.AppendAsync([Record("dev0", 0), Record("dev0", 1)], TestContext.Current.CancellationToken);
        var uplink = new KafkaUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 2, Long);
            var closed = await Task.Run(() => Consume(cluster.BootstrapServers, ["edgetwin.site1.status"], r => r.Any(s => Acked(s) >= 2), Long), TestContext.Current.CancellationToken);
            Assert.Contains(closed, s => Acked(s) >= 2);

            Volatile.Write(ref models, [new ModelFact("bearing-rul", "2.0")]);
            Interlocked.Increment(ref revision);
            await outbox.AppendAsync([Record("dev0", 2)], TestContext.Current.CancellationToken);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 3, Long);

            var statuses = await Task.Run(() => Consume(cluster.BootstrapServers, ["edgetwin.site1.status"], r => r.Any(s => ModelVersion(s) == "2.0"), TimeSpan.FromSeconds(15)), TestContext.Current.CancellationToken);
            var updated = Assert.Single(statuses, s => ModelVersion(s) == "2.0");
            Assert.Equal("gw1", updated.Message.Key);
            var root = JsonDocument.Parse(updated.Message.Value).RootElement;
            Assert.Equal("online", root.GetProperty("state").GetString());
            // The latest record of the gateway in a compacted topic keeps the progress members.
            Assert.True(Acked(updated) >= 2, root.ToString());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }

    [Fact]
    public async Task Regression_kafka_headers_could_not_tell_two_gateways_sequences_apart_on_a_shared_topic()
    {
        // Two gateways of one site write the same default topics (edgetwin.site1.{kind}); each numbers its own entries
        // from 1. The records carried only edgetwin-seq and edgetwin-historical, so a consumer deduplicating or checking
        // contiguity from headers (without parsing every value) took gw2's seq 1 for a duplicate of gw1's.
        using var cluster = new MockCluster();
        await using var outbox1 = new TestOutbox();
        await using var outbox2 = new TestOutbox();
        const int n = 20;
        await outbox1.AppendAsync([.. Enumerable.Range(0, n).Select(i => Record($"pdu{i % 2}", i, i % 5 == 0 ? OutboxKind.Event : OutboxKind.Summary))], TestContext.Current.CancellationToken);
        await outbox2.AppendAsync([.. Enumerable.Range(0, n).Select(i => Record($"pdu{i % 2}", i, i % 5 == 0 ? OutboxKind.Event : OutboxKind.Summary))], TestContext.Current.CancellationToken);
        using var cts = new CancellationTokenSource();
        var run1 = new KafkaUplink(Options(cluster.BootstrapServers, "gw1"), outbox1).RunAsync(cts.Token);
        var run2 = new KafkaUplink(Options(cluster.BootstrapServers, "gw2"), outbox2).RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox1.GetAcknowledged("kafka"), n, Long);
            await WaitForPositionAsync(() => outbox2.GetAcknowledged("kafka"), n, Long);
            var records = await Task.Run(() => Consume(cluster.BootstrapServers, ["edgetwin.site1.summary", "edgetwin.site1.event"], r => r.Count >= 2 * n, Long), TestContext.Current.CancellationToken);
            Assert.Equal(2 * n, records.Count);

            string? Header(ConsumeResult<string, byte[]> r, string name) =>
                r.Message.Headers.TryGetLastBytes(name, out var b) ? Encoding.UTF8.GetString(b) : null;
            var keys = new HashSet<(string?, string?, string?)>();
            foreach (var r in records)
            {
                using var doc = JsonDocument.Parse(r.Message.Value);
                var v = doc.RootElement;
                Assert.Equal(v.GetProperty("gateway").GetString(), Header(r, "edgetwin-gateway"));
                Assert.Equal(v.GetProperty("site").GetString(), Header(r, "edgetwin-site"));
                Assert.Equal(v.GetProperty("kind").GetString(), Header(r, "edgetwin-kind"));
                Assert.Equal(v.GetProperty("seq").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture), Header(r, "edgetwin-seq"));
                keys.Add((Header(r, "edgetwin-site"), Header(r, "edgetwin-gateway"), Header(r, "edgetwin-seq")));
            }

            Assert.Equal(2 * n, keys.Count); // (site, gateway, seq) from headers alone: every record once
        }
        finally
        {
            await cts.CancelAsync();
            await Task.WhenAll(run1, run2);
        }
    }

    [Fact]
    public async Task A_record_over_the_producers_message_max_bytes_is_passed_over_and_what_follows_arrives()
    {
        // librdkafka refuses a value over message.max.bytes (1,000,000 by default) before it reaches the cluster; the
        // uplink must take that as a refusal for good, not as a broken session that resends the same record for ever.
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        var big = new OutboxRecord(OutboxKind.Event, "twin_request", 1_795_000_000_001, Encoding.UTF8.GetBytes($"{{\"result\":\"{new string('x', 1_100_000)}\"}}"));
        await outbox.AppendAsync([Record("dev0", 0), big, Record("dev0", 2)], TestContext.Current.CancellationToken);
        using var cts = new CancellationTokenSource();
        var run = new KafkaUplink(Options(cluster.BootstrapServers), outbox).RunAsync(cts.Token);
        try
        {
            // Entry 4 is the data_gap naming the refused entry 2 (RefusalDataGapTests).
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 4, TimeSpan.FromSeconds(30));
            var records = await Task.Run(() => Consume(cluster.BootstrapServers, ["edgetwin.site1.summary", "edgetwin.site1.event"], r => r.Count >= 3, Long), TestContext.Current.CancellationToken);
            Assert.Equal(["1", "3", "4"], records.Select(r => Encoding.ASCII.GetString(r.Message.Headers.GetLastBytes("edgetwin-seq"))).Order());
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }
}
