using System.Text;
using System.Text.Json;
using Confluent.Kafka;
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
}
