using System.Diagnostics;
using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Tests.Support;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary><c>max_rate</c> on the Kafka uplink (librdkafka's mock cluster): the replay keeps to the byte budget.</summary>
public sealed class KafkaMeteredLinkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_kafka_replay_keeps_to_max_rate_counted_as_key_value_and_headers()
    {
        const double rate = 20_000;
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 3000).Select(i => new OutboxRecord(OutboxKind.Summary, $"dev{i % 5}", 1_795_000_000_000 + i,
            Encoding.UTF8.GetBytes($"{{\"i\":{i},\"pad\":\"{new string('x', 380)}\"}}")))], Ct);
        var uplink = new KafkaUplink(new KafkaUplinkOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            Site = "site1",
            Gateway = "gw1",
            Delivery = new DeliveryOptions { MaxBytesPerSecond = rate, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        }, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (uplink.Traffic.Total == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct);
        }

        await Task.Delay(TimeSpan.FromSeconds(1.5), Ct); // past the first second's burst
        var bytes0 = uplink.Traffic.Total;
        var acked0 = outbox.GetAcknowledged("kafka");
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(6), Ct);
        var bytes = uplink.Traffic.Total - bytes0;
        var acked = outbox.GetAcknowledged("kafka") - acked0;
        var seconds = clock.Elapsed.TotalSeconds;
        await cts.CancelAsync();
        await run;

        Assert.InRange(bytes / seconds, rate * 0.9, rate * 1.1);
        // Each record: ~400 B of body in a ~600 B envelope, its key and five headers; the acknowledged entries agree.
        var perRecord = (double)uplink.Traffic.BacklogBytes["summary"] / Math.Max(1, outbox.GetAcknowledged("kafka"));
        Assert.InRange(perRecord, 550, 800);
        Assert.InRange(acked, (long)(rate * seconds / 800), (long)(rate * seconds / 550) + 40);
        Assert.True(outbox.GetAcknowledged("kafka") < 3000, "still replaying at the budget");
    }
}
