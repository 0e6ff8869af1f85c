using System.Diagnostics;
using System.Text;
using BenchmarkDotNet.Attributes;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeTwin.Benchmarks.Uplink;

/// <summary>
/// Replay rate from the outbox to a local mosquitto: 20,000 entries already in the outbox (a backlog), the MQTT
/// uplink started with the default delivery settings (window 256, half of it for the backlog; MQTT 5 further capped by
/// mosquitto's receive maximum of 20) but an unlimited backlog rate, timed until the outbox position reaches the last
/// entry (every message PUBACKed). The reported time is per message; messages/s = 1 / mean.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*MqttReplay*'</c>
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
#pragma warning disable CA1001 // BenchmarkDotNet disposes through [GlobalCleanup], not IDisposable
public class MqttReplayBenchmarks
{
    private const int Messages = 20_000;
    private BenchBroker? _broker;
    private BenchBacklog? _backlog;

    [Params("memory", "litedb")]
    public string Outbox { get; set; } = "memory";

    [Params(MqttProtocol.V311, MqttProtocol.V500)]
    public MqttProtocol Protocol { get; set; }

    [GlobalSetup]
    public void Setup() => _broker = new BenchBroker();

    [GlobalCleanup]
    public void Cleanup() => _broker?.Dispose();

    [IterationSetup]
    public void Fill() => _backlog = BenchBacklog.Fill(Outbox, Messages);

    [IterationCleanup]
    public void Drop() => _backlog!.Dispose();

    [Benchmark(OperationsPerInvoke = Messages)]
    public async Task ReplayBacklog()
    {
        var options = UplinkBenchData.Options(_broker!.Port, Protocol) with
        {
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0 },
        };
        var uplink = new MqttUplink(options, _backlog!.Outbox);
        await _backlog.ReplayAsync(uplink.RunAsync, () => uplink.Position);
        _backlog.Verify($"MqttReplay({Outbox}, {Protocol})", uplink.Position, uplink.Rejections.Count, uplink.FailedSessions, uplink.Traffic.BacklogBytes.Values.Sum());
    }
}

/// <summary>
/// End-to-end latency outbox → broker → subscriber at a paced 10,000 messages/s (batches of 10 every ms) for 5 s,
/// live lane. Each message carries its append time (Stopwatch ticks) in the body; the subscriber, in the same
/// process, records arrival minus append. p50/p99/max are printed at cleanup (line starting "UPLINK-LATENCY");
/// BenchmarkDotNet's own time is just the 5 s run.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*MqttLatency*'</c>
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 0, iterationCount: 2, invocationCount: 1)]
public class MqttLatencyBenchmarks
{
    private const int RatePerSecond = 10_000;
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(5);
    private readonly List<double> _latenciesMs = [];
    private BenchBroker? _broker;

    [Params("memory", "litedb")]
    public string Outbox { get; set; } = "memory";

    [GlobalSetup]
    public void Setup() => _broker = new BenchBroker();

    [GlobalCleanup]
    public void Cleanup()
    {
        _broker?.Dispose();
        lock (_latenciesMs)
        {
            _latenciesMs.Sort();
            if (_latenciesMs.Count > 0)
            {
                double P(double q) => _latenciesMs[Math.Min(_latenciesMs.Count - 1, (int)(q * _latenciesMs.Count))];
                Console.WriteLine($"UPLINK-LATENCY outbox={Outbox} rate={RatePerSecond}/s samples={_latenciesMs.Count} p50={P(0.50):F2}ms p99={P(0.99):F2}ms p99.9={P(0.999):F2}ms max={_latenciesMs[^1]:F2}ms");
            }
        }
    }

    [Benchmark]
    public async Task TenThousandPerSecond()
    {
        int receivedBefore;
        lock (_latenciesMs)
        {
            receivedBefore = _latenciesMs.Count;
        }

        var dir = Directory.CreateTempSubdirectory("edgetwin-bench-outbox-").FullName;
        await using IOutbox outbox = Outbox == "memory"
            ? new InMemoryOutbox()
            : await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(dir, "outbox.db") });
        var sub = new MqttClientFactory().CreateMqttClient();
        sub.ApplicationMessageReceivedAsync += e =>
        {
            var now = Stopwatch.GetTimestamp();
            var body = Encoding.UTF8.GetString(e.ApplicationMessage.Payload);
            var i = body.IndexOf("\"t\":", StringComparison.Ordinal);
            if (i >= 0)
            {
                var end = body.IndexOfAny([',', '}'], i + 4);
                var sent = long.Parse(body.AsSpan(i + 4, end - i - 4), System.Globalization.CultureInfo.InvariantCulture);
                lock (_latenciesMs)
                {
                    _latenciesMs.Add(Stopwatch.GetElapsedTime(sent, now).TotalMilliseconds);
                }
            }

            return Task.CompletedTask;
        };
        await sub.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", _broker!.Port).WithClientId("bench-sub").Build());
        await sub.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("edgetwin/#", MqttQualityOfServiceLevel.AtLeastOnce).Build());

        var uplink = new MqttUplink(UplinkBenchData.Options(_broker.Port, MqttProtocol.V500), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        // Prime: one entry acknowledged means the session is up and past its (empty) backlog.
        // Sequences, not counts: a new LiteDB outbox numbers from the clock.
        var primed = await outbox.AppendAsync([UplinkBenchData.Record(-1)], CancellationToken.None);
        while (uplink.Position < primed)
        {
            await Task.Delay(1);
        }

        var start = Stopwatch.GetTimestamp();
        long sent = 0, last = primed;
        var batch = new List<OutboxRecord>(10);
        while (Stopwatch.GetElapsedTime(start) < Duration)
        {
            var due = (long)(Stopwatch.GetElapsedTime(start).TotalSeconds * RatePerSecond);
            while (sent < due)
            {
                batch.Clear();
                for (var k = 0; k < 10 && sent < due; k++, sent++)
                {
                    batch.Add(UplinkBenchData.TimedRecord((int)sent));
                }

                last = await outbox.AppendAsync(batch, CancellationToken.None);
            }

            await Task.Delay(1);
        }

        var deadline = Stopwatch.GetTimestamp();
        while (uplink.Position < last && Stopwatch.GetElapsedTime(deadline) < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(5);
        }

        await cts.CancelAsync();
        await run;
        await sub.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build());
        sub.Dispose();
        Directory.Delete(dir, recursive: true);

        // The percentiles are only worth printing over what was claimed: the pace kept (the appends are awaited one batch
        // at a time, so a slow append lowers the rate instead of failing: a loaded machine's LiteDB run once sent 27,017
        // of 50,000), every message acknowledged, none refused, each one seen by the subscriber.
        int received;
        lock (_latenciesMs)
        {
            received = _latenciesMs.Count - receivedBefore;
        }

        var paced = (long)(RatePerSecond * Duration.TotalSeconds);
        if (sent < paced * 95 / 100 || uplink.Position < last || uplink.Rejections.Count > 0 || received < sent)
        {
            throw new InvalidOperationException($"MqttLatency({Outbox}): measured less than claimed: {sent} of the paced {paced} messages sent ({sent / Duration.TotalSeconds:F0}/s, claimed {RatePerSecond}/s), position {uplink.Position} of last sequence {last}, {uplink.Rejections.Count} refused, {received} received by the subscriber");
        }
    }
}

#pragma warning restore CA1001

internal static class UplinkBenchData
{
    public static MqttUplinkOptions Options(int port, MqttProtocol protocol) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        Protocol = protocol,
        Site = "bench",
        Gateway = "gw",
        ClientId = $"edgetwin-bench-{Guid.NewGuid():N}",
        PersistentSession = false,
    };

    /// <summary>A summary body of typical size (about 330 bytes, as the outbox writes them).</summary>
    public static OutboxRecord Record(int i) => new(OutboxKind.Summary, $"pdu-{i % 16}", 1_795_000_000_000 + i, Encoding.UTF8.GetBytes(
        $"{{\"v\":1,\"type\":\"summary\",\"gateway\":\"gw\",\"site\":\"bench\",\"device\":\"pdu-{i % 16}\",\"series\":\"pdu-{i % 16}/outlet_current{{outlet=7}}\",\"metric\":\"outlet_current\",\"unit\":\"A\",\"time_ms\":{1_795_000_000_000 + i},\"start_ms\":{1_794_999_940_000 + i},\"end_ms\":{1_795_000_000_000 + i},\"count\":60,\"bad\":0,\"min\":4,\"max\":6,\"mean\":5,\"last\":5,\"stddev\":0.81}}"));

    public static OutboxRecord TimedRecord(int i) => new(OutboxKind.Summary, $"pdu-{i % 16}", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes(
        $"{{\"v\":1,\"t\":{Stopwatch.GetTimestamp()},\"device\":\"pdu-{i % 16}\",\"count\":60,\"min\":4,\"max\":6,\"mean\":5,\"last\":5,\"stddev\":0.81}}"));
}

/// <summary>An outbox (in memory or LiteDB in a temp directory) holding a backlog of summary records.</summary>
internal sealed class BenchBacklog : IDisposable
{
    private readonly string _dir;
    private bool _disposed;

    private BenchBacklog(IOutbox outbox, string dir, int messages, long firstSequence, long lastSequence, long bodyBytes)
    {
        Outbox = outbox;
        _dir = dir;
        Messages = messages;
        FirstSequence = firstSequence;
        LastSequence = lastSequence;
        BodyBytes = bodyBytes;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit; // a throwing replay gets no [IterationCleanup]
    }

    public IOutbox Outbox { get; }

    /// <summary>
    /// The backlog's last sequence, which the replay waits for: a new LiteDB outbox numbers from the clock (its origin is
    /// new), so waiting for position 20,000 ended the LiteDB runs at once (39 ns "per message").
    /// </summary>
    public long LastSequence { get; }

    /// <summary>The backlog's first sequence (the backlog is FirstSequence..LastSequence, one sequence per message).</summary>
    public long FirstSequence { get; }

    public int Messages { get; }

    /// <summary>Bytes of the bodies in the backlog (every one of them goes out at least once).</summary>
    public long BodyBytes { get; }

    public static BenchBacklog Fill(string kind, int messages)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-bench-outbox-").FullName;
        IOutbox outbox = kind == "memory"
            ? new InMemoryOutbox()
            : LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(dir, "outbox.db") }).GetAwaiter().GetResult();
        var batch = new List<OutboxRecord>(1000);
        long first = -1, last = 0, bodyBytes = 0;
        for (var i = 0; i < messages; i++)
        {
            var record = UplinkBenchData.Record(i);
            bodyBytes += record.Payload.Length;
            batch.Add(record);
            if (batch.Count == 1000 || i == messages - 1)
            {
                last = outbox.AppendAsync(batch, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                first = first < 0 ? last - batch.Count + 1 : first;
                batch.Clear();
            }
        }

        if (last - first + 1 != messages)
        {
            throw new InvalidOperationException($"BenchBacklog({kind}): {messages} entries appended as sequences {first}..{last}: not one sequence each, so waiting for the last one does not mean {messages} messages");
        }

        return new BenchBacklog(outbox, dir, messages, first, last, bodyBytes);
    }

    /// <summary>Runs an uplink until its outbox position reaches <see cref="LastSequence"/>, then stops it.</summary>
    public async Task ReplayAsync(Func<CancellationToken, Task> runUplink, Func<long> position)
    {
        using var cts = new CancellationTokenSource();
        var run = runUplink(cts.Token);
        while (position() < LastSequence)
        {
            if (run.IsCompleted)
            {
                await run; // surfaces the failure
                throw new InvalidOperationException($"BenchBacklog: the uplink stopped at position {position()} before the backlog's last sequence {LastSequence}");
            }

            await Task.Delay(1);
        }

        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// Throws unless the replay delivered the whole backlog: position at the last sequence, nothing refused by the peer
    /// (a refused entry is passed over, so the position alone would not tell), no session lost on the way, and at least
    /// the bodies' bytes sent on the backlog lane.
    /// </summary>
    public void Verify(string benchmark, long position, long refused, int failedSessions, long backlogBytes)
    {
        if (position < LastSequence || refused > 0 || failedSessions > 0 || backlogBytes < BodyBytes)
        {
            throw new InvalidOperationException($"{benchmark}: {Messages} messages claimed but position {position} of {FirstSequence}..{LastSequence}, {refused} refused by the peer, {failedSessions} sessions failed, {backlogBytes} bytes sent on the backlog lane for {BodyBytes} bytes of bodies");
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        Outbox.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();
}
