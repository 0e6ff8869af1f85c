using BenchmarkDotNet.Attributes;
using Confluent.Kafka;
using EdgeTwin.Outbox;
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
    private IOutbox? _outbox;
    private string? _dir;

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
    public void Fill()
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-outbox-").FullName;
        _outbox = Outbox == "memory"
            ? new InMemoryOutbox()
            : LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(_dir, "outbox.db") }).GetAwaiter().GetResult();
        var batch = new List<OutboxRecord>(1000);
        for (var i = 0; i < Messages; i++)
        {
            batch.Add(UplinkBenchData.Record(i));
            if (batch.Count == 1000)
            {
                _outbox.AppendAsync(batch, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                batch.Clear();
            }
        }
    }

    [IterationCleanup]
    public void Drop()
    {
        _outbox!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir!, recursive: true);
    }

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
        var uplink = new KafkaUplink(options, _outbox!);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        while (uplink.Position < Messages)
        {
            if (run.IsCompleted)
            {
                await run; // surfaces the failure
            }

            await Task.Delay(1);
        }

        await cts.CancelAsync();
        await run;
    }
}
