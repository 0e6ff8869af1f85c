using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Kafka;
using EdgeTwin.Uplink.Tests.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Delivery;

/// <summary>
/// Consumer audit: an entry the peer refused for good (too large, not authorised, not JSON) was logged and counted on
/// the gateway, but the centre saw only a hole in <c>seq</c>, which it could not tell from a lost message. Now a
/// <c>data_gap</c> event (reason <c>rejected_by_peer</c>) names it, through real mosquitto and librdkafka's mock cluster.
/// </summary>
public sealed class RefusalDataGapTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    /// <summary>See <see cref="MosquittoSettings.MaxQueuedMessages"/>: with the helper's 0, mosquitto 2.0.11 also drops the connection after each refusal.</summary>
    private const int NoDisconnect = 1_000_000;

    private static DeliveryOptions Fast => new()
    {
        ReconnectInitialDelay = TimeSpan.FromMilliseconds(100),
        ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        AckTimeout = TimeSpan.FromSeconds(10),
        BacklogRatePerSecond = 0,
        RefusalBatchDelay = TimeSpan.FromMilliseconds(300),
    };

    private static OutboxRecord Big(int bytes, string device = "twin_request") =>
        new(OutboxKind.Event, device, 1_795_000_000_001, Encoding.UTF8.GetBytes($"{{\"result\":\"{new string('x', bytes)}\"}}"));

    private static OutboxRecord BigSummary(int bytes, string device) =>
        new(OutboxKind.Summary, device, 1_795_000_000_002, Encoding.UTF8.GetBytes($"{{\"series\":\"{device}/power\",\"pad\":\"{new string('x', bytes)}\"}}"));

    /// <summary>The attributes of the <c>rejected_by_peer</c> data_gap events among the received envelopes.</summary>
    private static List<Dictionary<string, string>> Gaps(IEnumerable<Envelope> data) =>
        [.. data.Where(e => e.Kind == "event" && e.Body.TryGetProperty("event", out var ev) && ev.GetString() == "data_gap"
                            && e.Body.GetProperty("attributes").GetProperty("reason").GetString() == RefusalReporter.GapReason)
            .DistinctBy(e => e.Seq)
            .Select(e => e.Body.GetProperty("attributes").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!))];

    private static Envelope Json(ConsumeResult<string, byte[]> r)
    {
        using var doc = JsonDocument.Parse(r.Message.Value);
        var root = doc.RootElement;
        return new Envelope(root.GetProperty("seq").GetInt64(), root.GetProperty("device").GetString()!, root.GetProperty("kind").GetString()!,
            root.GetProperty("historical").GetBoolean(), r.Topic, root.GetProperty("body").Clone());
    }

    [Fact]
    public async Task Regression_an_entry_the_mqtt_broker_refused_for_good_was_only_a_hole_in_seq()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { MessageSizeLimit = 4096, MaxQueuedMessages = NoDisconnect });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        await outbox.AppendAsync([Record("dev0", 0), Big(8000), Record("dev0", 2)], TestContext.Current.CancellationToken);

        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500, Fast), outbox, log);
        await WhileRunningAsync(log, async () =>
        {
            // The data_gap is entry 4, and the position passes 2 only once it is in the outbox.
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
            await sub.WaitUntilAsync(m => Gaps(Data(m)).Count > 0 && Data(m).Any(e => e.Seq == 3), Long, "the data_gap naming entry 2 and the entry behind it");
            var data = Data(sub.Messages);
            Assert.Equal([1L, 3L, 4L], data.Select(e => e.Seq).Distinct().Order());
            var gap = Assert.Single(Gaps(data));
            var envelope = data.First(e => e.Seq == 4);
            Assert.Equal("edgetwin/site1/gw1/event", envelope.Topic); // where every data_gap goes
            Assert.Equal("outbox", envelope.Device);
            Assert.Equal("warning", envelope.Body.GetProperty("severity").GetString());
            Assert.Equal("mqtt", gap["uplink"]);
            Assert.Equal("2", gap["seqs"]);
            Assert.Equal("2", gap["first_seq"]);
            Assert.Equal("2", gap["last_seq"]);
            Assert.Equal("1", gap["rejected"]);
            Assert.Equal("event", gap["entry.2.kind"]);
            Assert.Equal("twin_request", gap["entry.2.device"]);
            Assert.Equal("edgetwin/site1/gw1/event", gap["entry.2.topic"]);
            Assert.True(long.Parse(gap["entry.2.size_bytes"], System.Globalization.CultureInfo.InvariantCulture) > 8000);
            Assert.StartsWith("PUBACK 0x95 PacketTooLarge", gap["entry.2.peer_reason"]);
            Assert.StartsWith("mqtt://127.0.0.1:", gap["peer"]);

            var rejections = uplink.Rejections;
            Assert.Equal(1, rejections.Count);
            Assert.Equal(2, rejections.LastSequence);
            Assert.StartsWith("PUBACK 0x95", rejections.LastReason);
            Assert.NotNull(rejections.LastAt);
        }, uplink.RunAsync);
    }

    /// <summary>mosquitto ACL for anonymous clients: read everything, publish only on these kinds' topics.</summary>
    private static string[] PublishOnly(params string[] kinds) =>
        ["topic read edgetwin/#", .. kinds.Select(k => $"topic readwrite edgetwin/site1/gw1/{k}")];

    [Fact]
    public async Task Refusals_close_together_share_one_data_gap_of_at_most_16_entries_naming_series_and_devices()
    {
        // An ACL that forbids the summary topic: mosquitto answers each summary with PUBACK 0x87 (not authorised).
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { AnonymousAcl = PublishOnly("status", "event", "raw"), MaxQueuedMessages = NoDisconnect });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        // 20 summaries (sequences 2..21) between raw entries: two events, 16 + 4.
        var records = new List<OutboxRecord> { Record("dev0", 0, OutboxKind.Raw) };
        records.AddRange(Enumerable.Range(0, 20).Select(i => BigSummary(100, $"pdu{i}")));
        records.Add(Record("dev0", 21, OutboxKind.Raw));
        await outbox.AppendAsync(records, TestContext.Current.CancellationToken);

        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500, Fast), outbox, log);
        await WhileRunningAsync(log, async () =>
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 24, Long);
            await sub.WaitUntilAsync(m => Gaps(Data(m)).Sum(g => int.Parse(g["rejected"], System.Globalization.CultureInfo.InvariantCulture)) >= 20, Long, "data_gap events naming all 20 refusals");
            var gaps = Gaps(Data(sub.Messages));
            Assert.Equal(2, gaps.Count);
            Assert.All(gaps, g => Assert.True(int.Parse(g["rejected"], System.Globalization.CultureInfo.InvariantCulture) <= RefusalReporter.MaxPerEvent));
            var named = gaps.SelectMany(g => g["seqs"].Split(',')).Select(long.Parse).Order().ToList();
            Assert.Equal(Enumerable.Range(2, 20).Select(i => (long)i), named);
            var first = gaps.Single(g => g["seqs"].Split(',').Contains("2"));
            Assert.Equal("summary", first["entry.2.kind"]);
            Assert.Equal("pdu0", first["entry.2.device"]);
            Assert.Equal("pdu0/power", first["entry.2.series"]);
            Assert.Equal("edgetwin/site1/gw1/summary", first["entry.2.topic"]);
            Assert.StartsWith("PUBACK 0x87 NotAuthorized", first["entry.2.peer_reason"]);
            Assert.Contains("pdu0", first["devices"].Split(','));
            Assert.Equal([1L, 22L, 23L, 24L], Data(sub.Messages).Select(e => e.Seq).Distinct().Order());
            Assert.Equal(20, uplink.Rejections.Count);
            Assert.Equal(0, uplink.FailedSessions); // a refusal is an answer, not a broken session
        }, uplink.RunAsync);
    }

    [Fact]
    public async Task A_refused_data_gap_is_counted_and_not_reported_by_another_data_gap()
    {
        // The event topic is forbidden, so the refusal's own data_gap is refused too: without the guard each data_gap
        // would be refused and reported by a new one, for ever.
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { AnonymousAcl = PublishOnly("status", "summary"), MaxQueuedMessages = NoDisconnect });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        await outbox.AppendAsync([Record("dev0", 0), Big(10), Record("dev0", 2)], TestContext.Current.CancellationToken);

        var uplink = new MqttUplink(Options(broker.Port, MqttProtocol.V500, Fast), outbox, log);
        await WhileRunningAsync(log, async () =>
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
            var gap = (await outbox.ReadAsync("mqtt", 3, 1, TestContext.Current.CancellationToken)).Single();
            Assert.True(RefusalReporter.IsDataGap(gap));
            await WaitForAsync(() => uplink.Rejections.Count == 2, Long, "the data_gap's own refusal counted");
            Assert.Equal(4, uplink.Rejections.LastSequence);
            Assert.Contains(log.Lines, l => l.Message.Contains("rejected outbox entry 4, a data_gap event, for good", StringComparison.Ordinal));

            // Well past the batch delay: no data_gap about the data_gap.
            await Task.Delay(Fast.RefusalBatchDelay * 4, TestContext.Current.CancellationToken);
            Assert.Equal(4, outbox.LastSequence);
            Assert.Equal(4, outbox.GetAcknowledged("mqtt"));
            Assert.Equal(2, uplink.Rejections.Count);
            Assert.Equal([1L, 3L], Data(sub.Messages).Select(e => e.Seq).Distinct().Order());
        }, uplink.RunAsync);
    }

    [Fact]
    public async Task Regression_a_record_kafka_refused_for_good_was_only_a_hole_in_seq()
    {
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        // Over librdkafka's message.max.bytes (1,000,000): refused with MSG_SIZE_TOO_LARGE.
        await outbox.AppendAsync([Record("dev0", 0), Big(1_100_000), Record("dev0", 2)], TestContext.Current.CancellationToken);
        var options = new KafkaUplinkOptions { BootstrapServers = cluster.BootstrapServers, Site = "site1", Gateway = "gw1", Delivery = Fast };
        var uplink = new KafkaUplink(options, outbox, log);
        await WhileRunningAsync(log, async () =>
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 4, Long);
            var records = await Task.Run(
                () => KafkaConsumerAuditTests.Consume(cluster.BootstrapServers, ["edgetwin.site1.summary", "edgetwin.site1.event"], r => r.Count >= 3, TimeSpan.FromSeconds(60)),
                TestContext.Current.CancellationToken);
            var data = records.Select(Json).ToList();
            Assert.Equal([1L, 3L, 4L], data.Select(e => e.Seq).Distinct().Order());
            var gap = Assert.Single(Gaps(data));
            var gapRecord = records.Single(r => Json(r).Seq == 4);
            Assert.Equal("edgetwin.site1.event", gapRecord.Topic);
            Assert.Equal("outbox", gapRecord.Message.Key);
            Assert.Equal("kafka", gap["uplink"]);
            Assert.Equal("2", gap["seqs"]);
            Assert.Equal("edgetwin.site1.event", gap["entry.2.topic"]);
            Assert.Contains("MsgSizeTooLarge", gap["entry.2.peer_reason"]);
            Assert.True(long.Parse(gap["entry.2.size_bytes"], System.Globalization.CultureInfo.InvariantCulture) > 1_100_000);
            Assert.Equal(1, uplink.Rejections.Count);
        }, uplink.RunAsync);
    }

    [Fact]
    public async Task A_record_the_cluster_refused_for_topic_authorisation_is_named_by_a_data_gap()
    {
        // The broker's own refusal (TOPIC_AUTHORIZATION_FAILED, an ACL), injected into the mock cluster for the first
        // Produce request after the session's status record: the request that carries entry 1.
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        var options = new KafkaUplinkOptions { BootstrapServers = cluster.BootstrapServers, Site = "site1", Gateway = "gw1", Delivery = Fast };
        var uplink = new KafkaUplink(options, outbox);
        await WhileRunningAsync(null, async () =>
        {
            await KafkaTimestampRefusalTests.WaitForTopicAsync(cluster.BootstrapServers, "edgetwin.site1.status");
            cluster.PushProduceErrors([ErrorCode.TopicAuthorizationFailed]);
            await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 2, Long);
            await outbox.AppendAsync([Record("dev0", 2)], TestContext.Current.CancellationToken);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 3, Long);

            var records = await Task.Run(
                () => KafkaConsumerAuditTests.Consume(cluster.BootstrapServers, ["edgetwin.site1.summary", "edgetwin.site1.event"], r => r.Count >= 2, TimeSpan.FromSeconds(60)),
                TestContext.Current.CancellationToken);
            var data = records.Select(Json).ToList();
            Assert.Equal([2L, 3L], data.Select(e => e.Seq).Distinct().Order());
            var gap = Assert.Single(Gaps(data));
            Assert.Equal("1", gap["seqs"]);
            Assert.Equal("kafka", gap["uplink"]);
            Assert.StartsWith("TopicAuthorizationFailed", gap["entry.1.peer_reason"]);
            Assert.Equal("edgetwin.site1.summary", gap["entry.1.topic"]);
            Assert.Equal(1, uplink.Rejections.Count);
            Assert.Equal(0, uplink.FailedSessions);
        }, uplink.RunAsync);
    }

    [Fact]
    public async Task An_entry_refused_by_mqtt_and_delivered_by_kafka_is_reported_for_mqtt_only()
    {
        // Each uplink has its own position: the refusal is the MQTT stream's hole, not Kafka's. The data_gap goes into
        // the one outbox, so both streams carry it, and it names the uplink whose stream lacks the entry.
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { MessageSizeLimit = 4096, MaxQueuedMessages = NoDisconnect });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        await outbox.AppendAsync([Record("dev0", 0), Big(8000), Record("dev0", 2)], TestContext.Current.CancellationToken);

        var mqtt = new MqttUplink(Options(broker.Port, MqttProtocol.V500, Fast), outbox, log);
        var kafka = new KafkaUplink(new KafkaUplinkOptions { BootstrapServers = cluster.BootstrapServers, Site = "site1", Gateway = "gw1", Delivery = Fast }, outbox);
        await WhileRunningAsync(log, async () =>
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("kafka"), 4, Long);
            await sub.WaitUntilAsync(m => Data(m).Any(e => e.Seq == 4), Long, "the data_gap over MQTT");
            var gap = Assert.Single(Gaps(Data(sub.Messages)));
            Assert.Equal("mqtt", gap["uplink"]);
            Assert.Equal("2", gap["seqs"]);

            var records = await Task.Run(
                () => KafkaConsumerAuditTests.Consume(cluster.BootstrapServers, ["edgetwin.site1.summary", "edgetwin.site1.event"], r => r.Count >= 4, TimeSpan.FromSeconds(60)),
                TestContext.Current.CancellationToken);
            var data = records.Select(Json).ToList();
            Assert.Equal([1L, 2L, 3L, 4L], data.Select(e => e.Seq).Distinct().Order()); // Kafka delivered entry 2
            Assert.Equal("mqtt", Assert.Single(Gaps(data))["uplink"]);
            Assert.Equal(1, mqtt.Rejections.Count);
            Assert.Equal(0, kafka.Rejections.Count);
            Assert.Null(kafka.Rejections.LastSequence);
        }, mqtt.RunAsync, kafka.RunAsync);
    }

    /// <summary>Runs the uplinks while <paramref name="test"/> runs, then stops them; their log goes to the test's output either way.</summary>
    private static async Task WhileRunningAsync(RecordingLogger? log, Func<Task> test, params Func<CancellationToken, Task>[] uplinks)
    {
        using var cts = new CancellationTokenSource();
        var runs = uplinks.Select(run => run(cts.Token)).ToArray();
        try
        {
            await test();
        }
        finally
        {
            foreach (var line in log?.Lines ?? [])
            {
                TestContext.Current.TestOutputHelper?.WriteLine($"{line.Level}: {line.Message} {line.Exception?.Message}");
            }

            await cts.CancelAsync();
            await Task.WhenAll(runs);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{what}: not within {timeout}");
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
