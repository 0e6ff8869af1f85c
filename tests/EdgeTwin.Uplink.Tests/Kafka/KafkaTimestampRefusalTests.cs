using System.Text.Json;
using Confluent.Kafka;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary>A broker that refuses the time a record describes (INVALID_TIMESTAMP), injected into the mock cluster.</summary>
public sealed class KafkaTimestampRefusalTests
{
    [Fact]
    public async Task Regression_a_broker_refusing_the_described_time_stalled_the_outbox_on_that_record_forever()
    {
        // A topic with message.timestamp.before.max.ms (a backlog two weeks old) or Kafka 4's after.max.ms of one hour
        // (a gateway booted with its clock ahead) refuses records stamped with the time they describe, every time: the
        // uplink reconnected and sent the same record again forever, and nothing behind it was delivered.
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        const int total = 40;

        var logger = new RecordingLogger();
        var uplink = new KafkaUplink(new KafkaUplinkOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            Site = "site1",
            Gateway = "gw1",
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        }, outbox, logger);
        var before = DateTimeOffset.UtcNow;
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        // The mock cannot look at the times, so it refuses the first Produce request after the session's status record
        // (which carries the send time already): what the uplink does about that refusal is the test (before: the same
        // records again with the same times, which a real broker refuses again, for ever).
        await WaitForTopicAsync(cluster.BootstrapServers, "edgetwin.site1.status");
        cluster.PushProduceErrors([ErrorCode.InvalidTimestamp]);
        await outbox.AppendAsync([.. Enumerable.Range(0, total).Select(i => Record($"dev{i % 4}", i))], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), total, TimeSpan.FromSeconds(60));
        await cts.CancelAsync();
        await run;

        // Said once, at Error, naming the broker's limits and what the records carry now.
        var refused = logger.Lines.Where(l => l.Message.Contains("refused a record", StringComparison.Ordinal)).ToList();
        Assert.True(refused.Count == 1, string.Join(Environment.NewLine, logger.Lines.Select(l => $"{l.Level}: {l.Message}")));
        Assert.Equal(LogLevel.Error, refused[0].Level);
        Assert.Contains("message.timestamp.before.max.ms", refused[0].Message, StringComparison.Ordinal);
        Assert.Contains("carry the time they are sent", refused[0].Message, StringComparison.Ordinal);

        var records = await Task.Run(() => Consume(cluster.BootstrapServers, total), TestContext.Current.CancellationToken);
        // Nothing lost.
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), records.Select(r => r.Seq).Distinct().Order());
        // The refused records went out again stamped with their send time, their envelopes keeping the time they describe
        // (2026-11-18, two weeks before the send); from then on every record of a partition carries its send time. (The
        // mock refused one request only, so records already in flight on other partitions were taken with their own
        // times; a broker with a timestamp limit refuses those as well, and they go out again the same way.)
        bool Sent(Consumed r) => r.Timestamp >= before.AddSeconds(-5);
        Assert.Contains(records, Sent);
        Assert.All(records, r => Assert.StartsWith("2026-11-18T", r.Time, StringComparison.Ordinal));
        foreach (var partition in records.GroupBy(r => r.Partition))
        {
            var ordered = partition.OrderBy(r => r.Offset).ToList();
            var first = ordered.FindIndex(Sent);
            Assert.True(first < 0 || ordered.Skip(first).All(Sent), $"partition {partition.Key}: a record with its described time after one with its send time");
        }
    }

    internal static async Task WaitForTopicAsync(string bootstrap, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Any(t => t.Topic == topic && t.Error.Code == ErrorCode.NoError))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no topic {topic} after 60 s");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    private sealed record Consumed(string Key, long Seq, DateTimeOffset Timestamp, string Time, int Partition, long Offset);

    private static List<Consumed> Consume(string bootstrap, int expected)
    {
        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"centre-{Guid.NewGuid():N}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();
        consumer.Subscribe("edgetwin.site1.summary");
        var result = new List<Consumed>();
        var seen = new HashSet<long>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (seen.Count < expected && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is not { Message: { } m } cr)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(m.Value);
            var seq = doc.RootElement.GetProperty("seq").GetInt64();
            seen.Add(seq);
            result.Add(new Consumed(m.Key, seq, DateTimeOffset.FromUnixTimeMilliseconds(m.Timestamp.UnixTimestampMs), doc.RootElement.GetProperty("time").GetString()!, cr.Partition.Value, cr.Offset.Value));
        }

        consumer.Close();
        Assert.True(seen.Count == expected, $"consumer read {seen.Count} of {expected} sequences");
        return result;
    }
}
