using BenchmarkDotNet.Attributes;
using Confluent.Kafka;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;

namespace EdgeTwin.Benchmarks.Uplink;

/// <summary>
/// Replay rate from the outbox to librdkafka's mock cluster (one broker in this process, <c>test.mock.num.brokers</c>):
/// 20,000 entries already in the outbox (a backlog), the Kafka uplink with its defaults (idempotent producer,
/// acks=all, lz4, linger 5 ms, window 256) but an unlimited backlog rate, timed until the outbox position reaches the
/// last entry (every message acknowledged by a delivery report). The reported time is per message; messages/s = 1 / mean.
/// The mock broker runs in this process, so its CPU is counted: a lower bound for a real cluster on the LAN.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*KafkaReplay*'</c>
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
#pragma warning disable CA1001 // BenchmarkDotNet disposes through [GlobalCleanup], not IDisposable
public class KafkaReplayBenchmarks
{
    private const int Messages = 20_000;
    private IAdminClient? _cluster;
    private string _bootstrap = "";
    private BenchBacklog? _backlog;

    [Params("memory", "litedb")]
    public string Outbox { get; set; } = "memory";

    [GlobalSetup]
    public void Setup()
    {
        var config = new AdminClientConfig();
        config.Set("test.mock.num.brokers", "1");
        _cluster = new AdminClientBuilder(config).Build();
        var metadata = _cluster.GetMetadata(TimeSpan.FromSeconds(30));
        _bootstrap = string.Join(",", metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
    }

    [GlobalCleanup]
    public void Cleanup() => _cluster?.Dispose();

    [IterationSetup]
    public void Fill() => _backlog = BenchBacklog.Fill(Outbox, Messages);

    [IterationCleanup]
    public void Drop() => _backlog!.Dispose();

    [Benchmark(OperationsPerInvoke = Messages)]
    public async Task ReplayBacklog()
    {
        var options = new KafkaUplinkOptions
        {
            BootstrapServers = _bootstrap,
            Site = "bench",
            Gateway = "gw",
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0 },
        };
        var uplink = new KafkaUplink(options, _backlog!.Outbox);
        await _backlog!.ReplayAsync(uplink.RunAsync, () => uplink.Position);
        _backlog.Verify($"KafkaReplay({Outbox})", uplink.Position, uplink.Rejections.Count, uplink.FailedSessions, uplink.Traffic.BacklogBytes.Values.Sum());
    }
}
