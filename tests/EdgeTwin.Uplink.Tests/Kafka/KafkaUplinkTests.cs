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

/// <summary>librdkafka's built-in mock cluster (test.mock.num.brokers), owned by an admin client for the test's life.</summary>
internal sealed class MockCluster : IDisposable
{
    private readonly IAdminClient _admin;

    public MockCluster(int brokers = 1)
    {
        var config = new AdminClientConfig();
        config.Set("test.mock.num.brokers", brokers.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _admin = new AdminClientBuilder(config).Build();
        var metadata = _admin.GetMetadata(TimeSpan.FromSeconds(30));
        BootstrapServers = string.Join(",", metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
    }

    public string BootstrapServers { get; }

    /// <summary>
    /// The next Produce requests the cluster receives end with <paramref name="errors"/> in turn (<see cref="ErrorCode.NoError"/>
    /// lets one through): broker refusals the mock cannot cause by itself, e.g. INVALID_TIMESTAMP for a topic's timestamp
    /// limits. librdkafka's own mock API (rd_kafka_mock_push_request_errors_array), which Confluent.Kafka does not wrap.
    /// </summary>
    public void PushProduceErrors(IReadOnlyList<ErrorCode> errors)
    {
        const short produceApiKey = 0;
        var codes = errors.Select(e => (int)e).ToArray();
        RdKafkaMock.rd_kafka_mock_push_request_errors_array(Handle(), produceApiKey, (nuint)codes.Length, codes);
    }

    /// <summary>Creates <paramref name="topic"/> with <paramref name="partitions"/> partitions (the mock has no controller for CreateTopics; topics it makes on first use have 4).</summary>
    public void CreateTopic(string topic, int partitions)
    {
        var error = (ErrorCode)RdKafkaMock.rd_kafka_mock_topic_create(Handle(), topic, partitions, 1);
        if (error != ErrorCode.NoError)
        {
            throw new InvalidOperationException($"the mock cluster did not create {topic}: {error}");
        }
    }

    private IntPtr Handle()
    {
        var handleProperty = typeof(Handle).GetProperty("LibrdkafkaHandle", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Confluent.Kafka's Handle has no LibrdkafkaHandle (the package changed)");
        var safeHandle = (System.Runtime.InteropServices.SafeHandle)handleProperty.GetValue(_admin.Handle)!;
        var mock = RdKafkaMock.rd_kafka_handle_mock_cluster(safeHandle.DangerousGetHandle());
        return mock == IntPtr.Zero ? throw new InvalidOperationException("the admin client owns no mock cluster") : mock;
    }

    public void Dispose() => _admin.Dispose();
}

internal static partial class RdKafkaMock
{
    // The very library Confluent.Kafka loaded (it picks one of runtimes/<rid>/native/*librdkafka.so itself), found in
    // the process's mappings: a mock cluster handle means nothing to another copy.
    static RdKafkaMock() => System.Runtime.InteropServices.NativeLibrary.SetDllImportResolver(typeof(RdKafkaMock).Assembly, (name, _, _) =>
    {
        if (name != "librdkafka")
        {
            return IntPtr.Zero;
        }

        var loaded = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[5].EndsWith("librdkafka.so", StringComparison.Ordinal)).Select(f => f[5]).FirstOrDefault()
            ?? throw new InvalidOperationException("librdkafka is not loaded yet (create the mock cluster's client first)");
        return System.Runtime.InteropServices.NativeLibrary.Load(loaded);
    });

    [System.Runtime.InteropServices.LibraryImport("librdkafka")]
    internal static partial IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);

    [System.Runtime.InteropServices.LibraryImport("librdkafka")]
    internal static partial int rd_kafka_mock_topic_create(IntPtr mcluster, [System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string topic, int partitionCount, int replicationFactor);

    [System.Runtime.InteropServices.LibraryImport("librdkafka")]
    internal static partial void rd_kafka_mock_push_request_errors_array(IntPtr mcluster, short apiKey, nuint count, int[] errors);
}

public sealed class KafkaUplinkTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static KafkaUplinkOptions Options(string bootstrap) => new()
    {
        BootstrapServers = bootstrap,
        Site = "site1",
        Gateway = "gw1",
        Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
    };

    [Fact]
    public async Task Every_record_reaches_the_mock_cluster_keyed_by_device_in_order_and_advances_the_outbox()
    {
        using var cluster = new MockCluster();
        // The mock cluster creates topics on first use (it has no controller for CreateTopics).
        await using var outbox = new TestOutbox();
        const int total = 600;
        await outbox.AppendAsync([.. Enumerable.Range(0, total).Select(i => Record($"dev{i % 5}", i, i % 7 == 0 ? OutboxKind.Event : OutboxKind.Summary))], TestContext.Current.CancellationToken);

        var uplink = new KafkaUplink(Options(cluster.BootstrapServers), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), total, Long);

        // Live entries after the backlog.
        await outbox.AppendAsync([Record("dev0", 1000), Record("dev1", 1001)], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), total + 2, Long);
        await cts.CancelAsync();
        await run;

        var records = await Task.Run(() => ConsumeAll(cluster.BootstrapServers, total + 2), TestContext.Current.CancellationToken);
        Assert.Equal(Enumerable.Range(1, total + 2).Select(i => (long)i), records.Select(r => r.Seq).Distinct().Order());
        foreach (var r in records)
        {
            Assert.Equal(r.Device, r.Key);
            Assert.Equal(r.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), r.SeqHeader);
            Assert.Equal(r.Kind == "event" ? "edgetwin.site1.event" : "edgetwin.site1.summary", r.Topic);
        }

        // Per device (one key, one partition per topic) the sequences arrive in increasing order.
        foreach (var group in records.GroupBy(r => (r.Topic, r.Key)))
        {
            var seqs = group.Select(r => r.Seq).Distinct().ToList();
            Assert.Equal(seqs.Order(), seqs);
        }

        Assert.All(records.Where(r => r.Seq <= total), r => Assert.True(r.Historical));
        Assert.All(records.Where(r => r.Seq > total), r => Assert.False(r.Historical));
        var acks = outbox.AckLog.Select(a => a.Sequence).ToList();
        Assert.Equal(acks.Order(), acks);
    }

    [Fact]
    public async Task Regression_a_kafka_consumer_could_not_tell_a_stopped_gateway_from_a_quiet_one_nor_close_its_books()
    {
        // Kafka had no status path at all (MQTT has the retained status): the centre could not see where a replay ended,
        // how far the gateway was acknowledged, nor that it had stopped.
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 300).Select(i => Record($"dev{i % 3}", i))], TestContext.Current.CancellationToken); // seq 1..300
        var options = Options(cluster.BootstrapServers) with
        {
            Facts = () => new GatewayFacts("9.8.7", "arm64", "feedbeef", []),
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ProgressInterval = TimeSpan.FromMilliseconds(300), ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        var uplink = new KafkaUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 300, Long);
        await outbox.AppendAsync([.. Enumerable.Range(300, 10).Select(i => Record("dev0", i))], TestContext.Current.CancellationToken); // seq 301..310
        await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 310, Long);
        var statuses = await Task.Run(() => ConsumeStatuses(cluster.BootstrapServers, s => s.Acked >= 310), TestContext.Current.CancellationToken);
        await cts.CancelAsync();
        await run;
        var all = await Task.Run(() => ConsumeStatuses(cluster.BootstrapServers, s => s.State == "offline"), TestContext.Current.CancellationToken);

        Assert.All(all, s => Assert.Equal("gw1", s.Key)); // one key per gateway: a compacted topic keeps its latest status
        var first = statuses[0];
        Assert.Equal("online", first.State);
        Assert.Equal(300, first.ReplayThrough); // where the replay goes, right after connecting
        Assert.True(first.HasFacts);
        Assert.Contains(statuses, s => s.Backlog == 0 && s.ReplayThrough == 300 && s.Acked >= 300); // the books can close
        Assert.Contains(statuses, s => s.Acked >= 310); // the periodic status moves with the tail
        var last = all[^1];
        Assert.Equal("offline", last.State); // a clean stop says so: Kafka has no last will
        Assert.True(last.HasTime);
    }

    [Fact]
    public async Task An_unreachable_cluster_is_a_failed_connect_and_the_outbox_stays_put()
    {
        var port = FreePort.Next();
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("d", 1)], TestContext.Current.CancellationToken);
        var options = Options($"127.0.0.1:{port}") with
        {
            Delivery = new DeliveryOptions { ConnectTimeout = TimeSpan.FromSeconds(1), ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromMilliseconds(200) },
        };
        var uplink = new KafkaUplink(options, outbox);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(4));
        await uplink.RunAsync(cts.Token);
        Assert.Equal(0, outbox.GetAcknowledged("kafka"));
    }

    [Fact]
    public async Task Regression_a_kafka_cluster_that_never_answered_was_logged_as_a_task_was_canceled()
    {
        // A broker behind a firewall that drops, or a port that accepts and never answers: the connect timeout fired and
        // the journal said "cannot connect …: A task was canceled." — nothing an operator can act on.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        var accepted = new List<System.Net.Sockets.Socket>();
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var s = await silent.AcceptSocketAsync(TestContext.Current.CancellationToken);
                    lock (accepted)
                    {
                        accepted.Add(s); // held open, never answered
                    }
                }
            }
            catch (Exception ex) when (ex is ObjectDisposedException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
            }
        }, TestContext.Current.CancellationToken);
        try
        {
            await using var outbox = new TestOutbox();
            await outbox.AppendAsync([Record("d", 1)], TestContext.Current.CancellationToken);
            var options = Options($"127.0.0.1:{port}") with
            {
                Delivery = new DeliveryOptions { ConnectTimeout = TimeSpan.FromSeconds(1), ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromMilliseconds(200) },
            };
            var log = new EdgeTwin.Uplink.Tests.Delivery.RecordingLogger();
            var uplink = new KafkaUplink(options, outbox, log);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await uplink.RunAsync(cts.Token);

            Assert.Equal(0, outbox.GetAcknowledged("kafka"));
            var text = string.Join("\n", log.Lines.Select(l => l.Message));
            Assert.Contains($"no answer from kafka://127.0.0.1:{port} within 1s", text, StringComparison.Ordinal);
            Assert.DoesNotContain("A task was canceled", text, StringComparison.Ordinal);
        }
        finally
        {
            silent.Stop();
            lock (accepted)
            {
                accepted.ForEach(s => s.Dispose());
            }
        }
    }

    [Fact]
    public async Task Regression_an_unreachable_kafka_cluster_wrote_a_warning_every_50_ms()
    {
        // librdkafka reports each failed reconnect (every ~50 ms against a refusing port): 575 warnings in 37 s in the
        // journal of a gateway whose cluster was down, about 1.7 million a day, burying the lines around them.
        var port = FreePort.Next();
        var options = Options($"127.0.0.1:{port}") with
        {
            Delivery = new DeliveryOptions { ConnectTimeout = TimeSpan.FromSeconds(3) },
        };
        var log = new EdgeTwin.Uplink.Tests.Delivery.RecordingLogger();
        var transport = new KafkaTransport(options, log);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAnyAsync<Exception>(() => transport.ConnectAsync(cts.Token));

        var reported = log.Lines.Where(l => l.Message.Contains("Kafka reported", StringComparison.Ordinal)).ToList();
        Assert.Contains(reported, l => l.Message.Contains("Local_Transport", StringComparison.Ordinal) && l.Message.Contains("Connection refused", StringComparison.Ordinal));
        Assert.True(reported.Count <= 4, $"{reported.Count} lines in 3 s:\n{string.Join('\n', reported.Select(l => l.Message))}");
    }

    [Fact]
    public async Task Connects_stopped_while_metadata_is_pending_never_free_the_producer_under_it()
    {
        // Regression: a stop (or the connect timeout) during GetMetadata disposed the producer while the metadata
        // call still used its handle, and librdkafka aborted the whole process (pthread_mutex_lock assertion).
        var port = FreePort.Next();
        var options = Options($"127.0.0.1:{port}") with
        {
            Delivery = new DeliveryOptions { ConnectTimeout = TimeSpan.FromMilliseconds(800) },
        };
        var transport = new KafkaTransport(options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var random = new Random(5);
        for (var i = 0; i < 12; i++)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(random.Next(0, 900)));
            await Assert.ThrowsAnyAsync<Exception>(() => transport.ConnectAsync(cts.Token));
        }

        // Still alive, and a connect to a real cluster still works after all those abandoned ones.
        using var cluster = new MockCluster();
        using var ok = new CancellationTokenSource(Long);
        await using var session = await new KafkaTransport(Options(cluster.BootstrapServers), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).ConnectAsync(ok.Token);
        Assert.NotNull(session);
    }

    [Fact]
    public void Settings_are_validated_naming_each_problem()
    {
        var errors = new KafkaUplinkOptions
        {
            Site = "s",
            Gateway = "g",
            TopicTemplate = "edge twin/{kind}",
            Compression = "brotli",
            Security = KafkaSecurity.SaslSsl,
            Settings = new Dictionary<string, string> { ["acks"] = "1" },
        }.Validate();
        Assert.Contains(errors, e => e.Contains("BootstrapServers", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Compression 'brotli'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("SaslUsername is required with Security SaslSsl", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("SaslPassword is required with Security SaslSsl", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("may not override 'acks'", StringComparison.Ordinal));
        Assert.Empty(new KafkaUplinkOptions { BootstrapServers = "k:9092", Site = "s", Gateway = "g" }.Validate());
        Assert.Contains(new KafkaUplinkOptions { BootstrapServers = "k:9092", Site = "s", Gateway = "g", TopicTemplate = "a/{kind}" }.Validate(),
            e => e.Contains("not a legal Kafka topic", StringComparison.Ordinal));
    }

    private sealed record StatusRecord(string Key, string State, long? Acked, long? ReplayThrough, long? Backlog, bool HasFacts, bool HasTime);

    /// <summary>A consumer of its own group, from the start of every partition, as a central twin would read.</summary>
    private static IConsumer<string, byte[]> CentreConsumer(string bootstrap) => new ConsumerBuilder<string, byte[]>(new ConsumerConfig
    {
        BootstrapServers = bootstrap,
        GroupId = $"centre-{Guid.NewGuid():N}",
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnableAutoCommit = false,
    }).Build();

    /// <summary>The status topic from its start until <paramref name="until"/> holds for a record (or 60 s).</summary>
    private static List<StatusRecord> ConsumeStatuses(string bootstrap, Func<StatusRecord, bool> until)
    {
        using var consumer = CentreConsumer(bootstrap);
        consumer.Subscribe("edgetwin.site1.status");
        var result = new List<StatusRecord>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !result.Any(until))
        {
            var cr = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (cr?.Message is null)
            {
                continue;
            }

            var r = JsonDocument.Parse(cr.Message.Value).RootElement;
            long? Get(string name) => r.TryGetProperty(name, out var v) ? v.GetInt64() : null;
            result.Add(new StatusRecord(cr.Message.Key, r.GetProperty("state").GetString()!, Get("acked_through_seq"), Get("replay_through_seq"), Get("backlog"),
                r.TryGetProperty("facts", out _), r.TryGetProperty("time", out _)));
        }

        consumer.Close();
        Assert.True(result.Any(until), $"no matching status record among {result.Count}");
        return result;
    }

    private sealed record Consumed(string Topic, string Key, long Seq, string Device, string Kind, bool Historical, string SeqHeader);

    private static List<Consumed> ConsumeAll(string bootstrap, int expected)
    {
        using var consumer = CentreConsumer(bootstrap);
        consumer.Subscribe(["edgetwin.site1.summary", "edgetwin.site1.event"]);
        var result = new List<Consumed>();
        var seen = new HashSet<long>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (seen.Count < expected && DateTime.UtcNow < deadline)
        {
            var cr = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (cr?.Message is null)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(cr.Message.Value);
            var root = doc.RootElement;
            var seq = root.GetProperty("seq").GetInt64();
            seen.Add(seq);
            result.Add(new Consumed(cr.Topic, cr.Message.Key, seq, root.GetProperty("device").GetString()!, root.GetProperty("kind").GetString()!,
                root.GetProperty("historical").GetBoolean(), Encoding.ASCII.GetString(cr.Message.Headers.GetLastBytes("edgetwin-seq"))));
        }

        consumer.Close();
        Assert.True(seen.Count == expected, $"consumer read {seen.Count} of {expected} sequences");
        return result;
    }
}
