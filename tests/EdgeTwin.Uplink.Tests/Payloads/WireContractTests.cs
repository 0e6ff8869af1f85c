using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Kafka;
using EdgeTwin.Uplink.Tests.Support;
using Json.Schema;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Payloads;

/// <summary>
/// The central twin team's check: what the gateway really sends, read back from mosquitto and from librdkafka's mock
/// cluster, against the documented JSON Schema (src/EdgeTwin.Uplink/schema/uplink-message.v1.schema.json) and the
/// rules a schema cannot say (the envelope and its body agree; Kafka key, timestamp and headers agree with the value).
/// </summary>
public sealed class WireContractTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromFile(Path.Combine(AppContext.BaseDirectory, "uplink-message.v1.schema.json")));
    private static readonly EdgeTwin.Outbox.Summaries.UplinkIdentity Body = new("gw1", "site1");

    /// <summary>One of every body family the agent writes, with the awkward values in them.</summary>
    private static List<OutboxRecord> Records(long t)
    {
        var outlet = new SeriesDescriptor("pdu-a01-a", "outlet_current", "A", MetricKind.Gauge, "pdu.outlet_current", [new("outlet", "7")]);
        var inlet = new SeriesDescriptor("rack-a01", "inlet_temperature", "Cel");
        var full = default(WindowAccumulator);
        full.Reset(t - 60_000, t);
        full.Add(4.5, t - 50_000, good: true);
        full.Add(5.5, t - 20_000, good: true);
        full.Add(99, t - 10_000, good: false);
        var infinite = default(WindowAccumulator); // a register read as +Inf: JSON has no Infinity
        infinite.Reset(t - 60_000, t);
        infinite.Add(double.PositiveInfinity, t - 30_000, good: true);
        var empty = default(WindowAccumulator);
        empty.Reset(t - 60_000, t);
        empty.Add(1, t - 30_000, good: false);

        var alert = new EdgeEvent(EdgeEventKind.AlertRaised, "rack-inlet-warm", DateTimeOffset.FromUnixTimeMilliseconds(t), EventSeverity.Warning, "rack A01: inlet 27.2 \u00B0C above 27 \u00B0C",
            AlertAttributes("firing")) { Series = "rack-a01/inlet_temperature", Device = "rack-a01" };
        var prediction = new EdgeEvent(EdgeEventKind.Prediction, "press-1", DateTimeOffset.FromUnixTimeMilliseconds(t), EventSeverity.Warning, "press-1: failure probability 72 % within 48 h",
            new Dictionary<string, string> { ["model"] = "bearing-rul", ["model_version"] = "2026.11.30-1", ["horizon_hours"] = "48", ["horizon_end"] = "2026-12-06T12:00:00.000Z", ["failure_probability"] = "0.720", ["estimated_failure_time"] = "2026-12-06T10:00:00.000Z" });
        var anomaly = new EdgeEvent(EdgeEventKind.Anomaly, "rack-a01/inlet_temperature", DateTimeOffset.FromUnixTimeMilliseconds(t), EventSeverity.Warning, "anomaly",
            new Dictionary<string, string> { ["model"] = "streaming-anomaly", ["model_version"] = "1.0", ["score"] = "NaN" });
        var gap = new EdgeEvent(EdgeEventKind.DataGap, "outbox", DateTimeOffset.FromUnixTimeMilliseconds(t), EventSeverity.Warning, "dropped",
            new Dictionary<string, string> { ["reason"] = "disk_budget", ["first_seq"] = "1", ["last_seq"] = "2" });
        return
        [
            UplinkBodies.Summary(Body, outlet, full),
            UplinkBodies.Summary(Body, outlet, infinite, partial: true),
            UplinkBodies.Summary(Body, inlet, empty, condensed: true),
            UplinkBodies.Raw(Body, inlet, [new RawPoint(t - 2000, 23.5, 0), new RawPoint(t - 1000, double.NaN, 4), new RawPoint(t, double.NegativeInfinity, 2)]),
            UplinkBodies.Event(Body, alert, inlet),
            UplinkBodies.Event(Body, prediction),
            UplinkBodies.Event(Body, anomaly, inlet),
            UplinkBodies.Event(Body, gap, spanStartMs: t - 5000),
        ];
    }

    /// <summary>An alert's attributes as AlertManager writes them (identity, state, uplink; a threshold rule's facts).</summary>
    private static Dictionary<string, string> AlertAttributes(string state) => new()
    {
        ["alert_id"] = "3", ["rule"] = "rack-inlet-warm", ["key"] = "rack-a01/inlet_temperature", ["state"] = state, ["value"] = "27.2", ["peak"] = "27.2",
        ["time"] = "2026-12-05T06:12:26.156Z", ["fired_at"] = "2026-12-05T06:12:26.156Z", ["uplink"] = "online", ["during_outage"] = "false",
        ["rule_type"] = "threshold", ["severity"] = "warning", ["device"] = "rack-a01", ["series"] = "rack-a01/inlet_temperature", ["metric"] = "inlet_temperature",
        ["unit"] = "Cel", ["value_unit"] = "Cel", ["direction"] = "above", ["threshold"] = "27", ["clear_level"] = "26", ["for_s"] = "60",
    };

    private static void AssertValid(byte[] payload, string where)
    {
        var text = Encoding.UTF8.GetString(payload);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text); // strict JSON: NaN or Infinity would fail here
        }
        catch (JsonException ex)
        {
            Assert.Fail($"{where}: not JSON ({ex.Message}): {text}");
            return;
        }

        var result = Schema.Value.Evaluate(node, new EvaluationOptions { OutputFormat = OutputFormat.List });
        var errors = result.Details.Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).ToList();
        Assert.True(result.IsValid, $"{where}: does not match the schema:\n{string.Join('\n', errors)}\n{text}");
    }

    /// <summary>What the schema cannot say: the body repeats the envelope's identity and time.</summary>
    private static JsonElement AssertEnvelopeAgreesWithBody(byte[] payload)
    {
        var root = JsonDocument.Parse(payload).RootElement;
        var body = root.GetProperty("body");
        Assert.Equal(root.GetProperty("site").GetString(), body.GetProperty("site").GetString());
        Assert.Equal(root.GetProperty("gateway").GetString(), body.GetProperty("gateway").GetString());
        Assert.Equal(root.GetProperty("device").GetString(), body.GetProperty("device").GetString());
        Assert.Equal(root.GetProperty("kind").GetString(), body.GetProperty("type").GetString());
        var time = DateTimeOffset.Parse(root.GetProperty("time").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        Assert.Equal(TimeSpan.Zero, time.Offset);
        Assert.Equal(body.GetProperty("time_ms").GetInt64(), time.ToUnixTimeMilliseconds());
        return root;
    }

    [Fact]
    public async Task Messages_sent_over_mqtt_and_kafka_match_the_documented_json_schema()
    {
        var t = 1_796_000_000_000L;
        var records = Records(t);
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        using var cluster = new MockCluster();
        await using var outbox = new TestOutbox();
        // A backlog (historical) first, live entries after both uplinks are through it.
        await outbox.AppendAsync(records, TestContext.Current.CancellationToken);
        var facts = new GatewayFacts("0.1.0+abc", "arm64", new string('f', 64), [new ModelFact("bearing-rul", "2026.11.30-1")]) { Instance = "0123456789abcdef" };
        var delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ProgressInterval = TimeSpan.FromMilliseconds(500), ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) };
        var mqtt = new MqttUplink(Options(broker.Port, MqttProtocol.V500, delivery) with { Facts = () => facts }, outbox);
        var kafka = new KafkaUplink(new KafkaUplinkOptions { BootstrapServers = cluster.BootstrapServers, Site = "site1", Gateway = "gw1", Delivery = delivery, Facts = () => facts }, outbox);
        using var cts = new CancellationTokenSource();
        var runs = new[] { mqtt.RunAsync(cts.Token), kafka.RunAsync(cts.Token) };
        try
        {
            var n = records.Count;
            await WaitForPositionAsync(() => Math.Min(outbox.GetAcknowledged("mqtt"), outbox.GetAcknowledged("kafka")), n, Long);
            await outbox.AppendAsync(Records(t + 60_000), TestContext.Current.CancellationToken);
            await WaitForPositionAsync(() => Math.Min(outbox.GetAcknowledged("mqtt"), outbox.GetAcknowledged("kafka")), 2 * n, Long);
            await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 2 * n && m.Any(x => x.Topic.EndsWith("/status", StringComparison.Ordinal)), Long, "every entry and a status");

            // MQTT: every message, status included.
            foreach (var m in sub.Messages)
            {
                AssertValid(m.Payload, $"mqtt {m.Topic}");
                if (!m.Topic.EndsWith("/status", StringComparison.Ordinal))
                {
                    var root = AssertEnvelopeAgreesWithBody(m.Payload);
                    Assert.Equal($"edgetwin/site1/gw1/{root.GetProperty("kind").GetString()}", m.Topic);
                }
            }

            Assert.Contains(Data(sub.Messages), e => e.Historical);
            Assert.Contains(Data(sub.Messages), e => !e.Historical);

            // Kafka: data and status records; key, timestamp and headers agree with the value.
            var consumed = await Task.Run(
                () => KafkaConsumerAuditTests.Consume(cluster.BootstrapServers, ["edgetwin.site1.summary", "edgetwin.site1.raw", "edgetwin.site1.event", "edgetwin.site1.status"],
                    r => r.Count(x => x.Topic != "edgetwin.site1.status") >= 2 * n && r.Any(x => x.Topic == "edgetwin.site1.status"), Long),
                TestContext.Current.CancellationToken);
            Assert.Equal(2 * n, consumed.Count(x => x.Topic != "edgetwin.site1.status"));
            foreach (var r in consumed)
            {
                AssertValid(r.Message.Value, $"kafka {r.Topic}");
                string H(string name) => Encoding.UTF8.GetString(r.Message.Headers.GetLastBytes(name));
                if (r.Topic == "edgetwin.site1.status")
                {
                    Assert.Equal("gw1", r.Message.Key);
                    continue;
                }

                var root = AssertEnvelopeAgreesWithBody(r.Message.Value);
                Assert.Equal($"edgetwin.site1.{root.GetProperty("kind").GetString()}", r.Topic);
                Assert.Equal(root.GetProperty("device").GetString(), r.Message.Key);
                Assert.Equal(root.GetProperty("body").GetProperty("time_ms").GetInt64(), r.Message.Timestamp.UnixTimestampMs);
                Assert.Equal(TimestampType.CreateTime, r.Message.Timestamp.Type);
                Assert.Equal(root.GetProperty("seq").GetInt64().ToString(CultureInfo.InvariantCulture), H("edgetwin-seq"));
                Assert.Equal(root.GetProperty("historical").GetBoolean() ? "1" : "0", H("edgetwin-historical"));
                Assert.Equal(root.GetProperty("site").GetString(), H("edgetwin-site"));
                Assert.Equal(root.GetProperty("gateway").GetString(), H("edgetwin-gateway"));
                Assert.Equal(root.GetProperty("kind").GetString(), H("edgetwin-kind"));
            }
        }
        finally
        {
            await cts.CancelAsync();
            await Task.WhenAll(runs);
        }

        // The clean stop's offline status and, for anyone subscribing later, the retained one.
        await using var late = await TestSubscriber.StartAsync(broker.Port, "edgetwin/site1/gw1/status");
        await late.WaitUntilAsync(m => m.Count > 0, Long, "the retained status");
        AssertValid(late.Messages[0].Payload, "mqtt retained status after the stop");
    }

    [Fact]
    public void The_schema_refuses_what_a_consumer_could_not_use()
    {
        // The schema is only worth its checks: a message with NaN, a local time, a missing model version or an unknown
        // kind must fail it.
        var good = """{"v":1,"site":"s","gateway":"g","seq":1,"kind":"event","device":"m","time":"2026-12-04T07:00:00.000Z","historical":false,"body":{"v":1,"type":"event","gateway":"g","site":"s","device":"m","series":null,"unit":null,"time_ms":1,"start_ms":1,"end_ms":1,"event":"prediction","severity":"info","source":"m","message":"x","attributes":{"model":"a","model_version":"1"}}}""";
        AssertValid(Encoding.UTF8.GetBytes(good), "the good example");
        string[] bad =
        [
            good.Replace("\"model_version\":\"1\"", "\"version\":\"1\"", StringComparison.Ordinal),
            good.Replace("07:00:00.000Z", "08:00:00.000+01:00", StringComparison.Ordinal),
            good.Replace("\"kind\":\"event\"", "\"kind\":\"prediction\"", StringComparison.Ordinal),
            good.Replace("\"model_version\":\"1\"", "\"model_version\":\"1\",\"horizon_end\":\"2026-12-04T09:00:00+01:00\"", StringComparison.Ordinal),
            good.Replace("\"kind\":\"event\"", "\"kind\":\"summary\"", StringComparison.Ordinal),
            good.Replace("\"seq\":1,", "", StringComparison.Ordinal),
            """{"v":1,"site":"s","gateway":"g","state":"online"}""",
            // A data_gap must say why, with a reason consumers know; a refusal must name its uplink and sequences.
            good.Replace("\"event\":\"prediction\"", "\"event\":\"data_gap\"", StringComparison.Ordinal),
            good.Replace("\"event\":\"prediction\"", "\"event\":\"data_gap\"", StringComparison.Ordinal).Replace("\"model\":\"a\"", "\"reason\":\"lost_somehow\"", StringComparison.Ordinal),
            good.Replace("\"event\":\"prediction\"", "\"event\":\"data_gap\"", StringComparison.Ordinal).Replace("\"model\":\"a\"", "\"reason\":\"rejected_by_peer\"", StringComparison.Ordinal),
        ];
        foreach (var text in bad)
        {
            Assert.False(Schema.Value.Evaluate(JsonNode.Parse(text)).IsValid, text);
        }
    }

    [Fact]
    public void Regression_the_schema_refused_the_storage_failed_event_the_agent_sends()
    {
        // storage_failed was added to the wire last session but not to the schema's event list: a centre that validates
        // against the published contract dropped the one event saying the gateway's buffer lives in RAM. Every kind the
        // agent can send, as the agent encodes it, must pass.
        var identity = new EdgeTwin.Outbox.Summaries.UplinkIdentity("gw1", "site1");
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_796_451_146_156);
        foreach (var kind in Enum.GetValues<EdgeEventKind>())
        {
            var attributes = kind switch
            {
                EdgeEventKind.Prediction or EdgeEventKind.Recommendation or EdgeEventKind.Anomaly => new Dictionary<string, string> { ["model"] = "m", ["model_version"] = "1" },
                EdgeEventKind.DataGap => new Dictionary<string, string> { ["reason"] = "max_age" },
                EdgeEventKind.ClockStepped => new Dictionary<string, string> { ["step_ms"] = "-3600000", ["wall_before"] = "2026-12-05T07:12:26.156Z", ["wall_after"] = "2026-12-05T06:12:26.156Z" },
                EdgeEventKind.DeviceDown => new Dictionary<string, string> { ["reason"] = "timeout", ["failures"] = "3", ["error"] = "no answer within 1s" },
                EdgeEventKind.AlertRaised => AlertAttributes("firing"),
                EdgeEventKind.AlertCleared => AlertAttributes("resolved"),
                EdgeEventKind.AlertAcknowledged => new Dictionary<string, string>(AlertAttributes("acknowledged")) { ["by"] = "ops", ["acked_at"] = "2026-12-05T06:13:00.000Z" },
                EdgeEventKind.AlertSilenced => new Dictionary<string, string> { ["rule"] = "rack-inlet-warm", ["key"] = "*", ["state"] = "silenced", ["until"] = "2026-12-05T08:12:26.156Z", ["by"] = "ops", ["time"] = "2026-12-05T06:12:26.156Z", ["uplink"] = "online", ["during_outage"] = "false", ["device"] = "gw1" },
                EdgeEventKind.StorageFailed => new Dictionary<string, string> { ["state"] = "memory_only", ["failed"] = "1", ["path"] = "/var/lib/edgetwin/outbox.db", ["cause"] = "Read-only file system", ["since"] = "2026-12-05T06:12:26.156Z", ["first_seq_in_memory"] = "1796451146156001", ["held_from_file"] = "60", ["memory_budget_bytes"] = "67108864" },
                _ => null,
            };
            var record = UplinkBodies.Event(identity, new EdgeEvent(kind, "outbox", at, EventSeverity.Warning, kind.ToWireName(), attributes));
            var envelope = JsonEnvelope.Encode(new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"), new OutboxEntry(1, record), historical: false);
            AssertValid(envelope, kind.ToWireName());
        }
    }

    /// <summary>
    /// Real messages, one of every family the agent sent to mosquitto in the wire audit of 2026-12-05 (<c>edgetwin sim
    /// --rooms 2 --rack-probes apc-uio-probe --line-stations 4</c> with cooling, utility, device and machine faults, the
    /// shipped alert rules, a broker outage and its replay, an acknowledgement, a silence and a SIGKILL): every one
    /// passes the schema.
    /// </summary>
    private static List<JsonObject> Corpus() =>
        [.. File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Payloads", "wire-corpus.v1.jsonl")).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject())];

    [Fact]
    public void Every_message_family_captured_from_the_agent_passes_the_schema()
    {
        var corpus = Corpus();
        foreach (var message in corpus)
        {
            AssertValid(Encoding.UTF8.GetBytes(message.ToJsonString()), $"{message["kind"]} {message["body"]?["event"]} {message["body"]?["source"]}");
        }

        // The families a consumer codes against, each at least once.
        string[] families = ["summary", "raw", "status", "device_down", "device_up", "alert_raised", "alert_cleared", "alert_acknowledged", "alert_silenced", "data_gap", "anomaly", "prediction", "recommendation"];
        var seen = corpus.Select(m => m["body"]?["event"]?.GetValue<string>() ?? m["kind"]!.GetValue<string>()).ToHashSet();
        Assert.All(families, f => Assert.Contains(f, seen));
    }

    [Fact]
    public void Regression_the_schema_let_any_attributes_through_for_most_event_kinds()
    {
        // Before, the attributes of every event but data_gap and clock_stepped were "any string": an alert without its id
        // or time, a device_down without its reason, a cooling_failure with a local time, a maintenance prediction
        // without its failure time all passed. Each mutation of a real message must now fail.
        var corpus = Corpus();
        JsonObject Event(Func<JsonObject, bool> which) =>
            corpus.Where(m => m["kind"]!.GetValue<string>() == "event").Select(m => m["body"]!.AsObject()).First(which);
        var checkedCount = 0;
        void Fails(string what, Func<JsonObject, bool> which, Action<JsonObject> mutate)
        {
            var body = Event(which);
            var envelope = body.Parent!.AsObject().DeepClone().AsObject();
            mutate(envelope["body"]!["attributes"]!.AsObject());
            Assert.False(Schema.Value.Evaluate(envelope).IsValid, $"{what}: {envelope.ToJsonString()}");
            checkedCount++;
        }

        static string A(JsonObject body, string name) => body["attributes"]?[name]?.GetValue<string>() ?? "";
        Func<JsonObject, bool> raised = b => A(b, "state") == "firing" && b["event"]!.GetValue<string>() == "alert_raised";
        Fails("alert without its id", raised, a => a.Remove("alert_id"));
        Fails("alert without its time", raised, a => a.Remove("time"));
        Fails("alert with a local time", raised, a => a["time"] = "2026-12-05T16:00:15+01:00");
        Fails("alert with an unknown uplink state", raised, a => a["uplink"] = "up");
        Fails("raised alert that says resolved", raised, a => a["state"] = "resolved");
        Fails("alert value that is not a number", raised, a => a["value"] = "27,2");
        Func<JsonObject, bool> down = b => b["event"]!.GetValue<string>() == "device_down";
        Fails("device_down without a reason", down, a => a.Remove("reason"));
        Fails("device_down with an unknown reason", down, a => a["reason"] = "dark");
        Func<JsonObject, bool> failure = b => b["source"]!.GetValue<string>().EndsWith("/cooling_failure", StringComparison.Ordinal) && A(b, "state") == "active";
        Fails("cooling_failure without failure_started", failure, a => a.Remove("failure_started"));
        Fails("cooling_failure with a local failure_started", failure, a => a["failure_started"] = "2026-12-05 15:59:04");
        Fails("cooling_failure with an unknown scenario", failure, a => a["scenario"] = "chiller_failure");
        Func<JsonObject, bool> calibration = b => b["source"]!.GetValue<string>().EndsWith("/thermal_twin", StringComparison.Ordinal);
        Fails("calibration fit error that is not a number", calibration, a => a["room_fit_rmse_k"] = "0,51");
        Func<JsonObject, bool> line = b => b["source"]!.GetValue<string>() == "line/line1";
        Fails("line twin state with half its shift", line, a => a.Remove("shift.end"));
        Func<JsonObject, bool> anomaly = b => b["event"]!.GetValue<string>() == "anomaly" && b["attributes"]!["score"] is not null;
        Fails("anomaly score that is not a number", anomaly, a => a["score"] = "high");
        Fails("anomaly without its value", anomaly, a => a.Remove("value"));

        // A maintenance prediction (MaintenancePredictor.ToEvent's members) and the outbox's storage_failed, made from the
        // calibration message: every member it must have, and instants that are instants.
        var maintenance = new JsonObject
        {
            ["machine"] = "m1", ["failure_probability"] = "0.720", ["predicted_rul"] = "31.5", ["estimated_failure_time"] = "2026-12-06T10:00:00.000Z",
            ["recommended_action"] = "replace drive-end bearing", ["expected_downtime_hours"] = "6.0", ["cost"] = "7200", ["estimated_downtime"] = "6.0",
            ["cost_of_unplanned_failure"] = "7200", ["cost_source"] = "config", ["model"] = "bearing-rul", ["model_version"] = "1.0.0", ["state"] = "raised",
            ["prediction_id"] = "m1/20261205T150000Z", ["horizon_hours"] = "48", ["horizon_end"] = "2026-12-07T15:00:00.000Z", ["inputs_until"] = "2026-12-05T15:00:00.000Z",
            ["rul_unit"] = "h", ["history_hours"] = "6.5", ["window_hours"] = "24",
        };
        var machineEvent = Event(calibration).Parent!.AsObject().DeepClone().AsObject();
        machineEvent["body"]!["source"] = "m1";
        machineEvent["body"]!["attributes"] = maintenance.DeepClone();
        AssertValid(Encoding.UTF8.GetBytes(machineEvent.ToJsonString()), "maintenance prediction");
        foreach (var (what, mutate) in new (string, Action<JsonObject>)[]
        {
            ("without its machine", a => a.Remove("machine")),
            ("with a failure time that is not an instant", a => a["estimated_failure_time"] = "2026-12-06 10:00"),
            ("with an unknown state", a => a["state"] = "open"),
            ("without inputs_until", a => a.Remove("inputs_until")),
            ("with its RUL in cycles", a => a["rul_unit"] = "cycles"),
            ("with a history that is not a number", a => a["history_hours"] = "6,5"),
        })
        {
            var copy = machineEvent.DeepClone().AsObject();
            mutate(copy["body"]!["attributes"]!.AsObject());
            Assert.False(Schema.Value.Evaluate(copy).IsValid, "maintenance prediction " + what);
            checkedCount++;
        }

        var storage = machineEvent.DeepClone().AsObject();
        storage["body"]!["event"] = "storage_failed";
        storage["body"]!["source"] = "outbox";
        storage["body"]!["attributes"] = new JsonObject { ["state"] = "memory_only", ["failed"] = "1", ["cause"] = "Read-only file system", ["since"] = "2026-12-05T06:12:26.156Z", ["first_seq_in_memory"] = "1796451146156001", ["held_from_file"] = "60", ["memory_budget_bytes"] = "67108864" };
        Assert.False(Schema.Value.Evaluate(storage).IsValid, "storage_failed without its path");
        var gap = storage.DeepClone().AsObject();
        gap["body"]!["event"] = "data_gap";
        gap["body"]!["attributes"] = new JsonObject { ["reason"] = "unclean_stop", ["from_ms"] = "1796482615.5", ["to_ms"] = "1796482620000" };
        Assert.False(Schema.Value.Evaluate(gap).IsValid, "data_gap with a from_ms that is not whole milliseconds");
        Assert.Equal(21, checkedCount);
    }

    [Fact]
    public void Both_storage_failed_events_of_the_outbox_pass_the_schema_the_one_going_to_memory_and_the_one_written_back()
    {
        // The outbox's own pair: memory_only when its file system turns read-only, resolved once it wrote itself back.
        var identity = new EdgeTwin.Outbox.Summaries.UplinkIdentity("gw1", "site1");
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_796_451_146_156);
        Dictionary<string, string>[] attributeSets =
        [
            new() { ["state"] = "memory_only", ["failed"] = "1", ["path"] = "/var/lib/edgetwin/outbox.db", ["cause"] = "Read-only file system", ["since"] = "2026-12-05T06:12:26.156Z", ["first_seq_in_memory"] = "1796451146156001", ["held_from_file"] = "60", ["memory_budget_bytes"] = "67108864" },
            new() { ["state"] = "resolved", ["failed"] = "0", ["path"] = "/var/lib/edgetwin/outbox.db", ["since"] = "2026-12-05T06:12:26.156Z", ["recovered_at"] = "2026-12-05T07:12:26.156Z", ["first_seq_in_memory"] = "1796451146156001", ["last_seq_in_memory"] = "1796451146158214", ["written_back"] = "2213" },
        ];
        foreach (var attributes in attributeSets)
        {
            var record = UplinkBodies.Event(identity, new EdgeEvent(EdgeEventKind.StorageFailed, "outbox", at, EventSeverity.Info, "x", attributes));
            var envelope = JsonEnvelope.Encode(new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"), new OutboxEntry(1, record), historical: false);
            AssertValid(envelope, "storage_failed " + attributes["state"]);
        }
    }

    [Fact]
    public void A_clock_stepped_event_must_carry_its_step_and_a_whole_range()
    {
        var good = """{"v":1,"site":"s","gateway":"g","seq":1,"kind":"event","device":"g","time":"2026-12-04T07:00:00.000Z","historical":false,"body":{"v":1,"type":"event","gateway":"g","site":"s","device":"g","series":null,"unit":null,"time_ms":1,"start_ms":1,"end_ms":1,"event":"clock_stepped","severity":"warning","source":"clock","message":"x","attributes":{"first_seq":"1796451146156001","last_seq":"1796451146156230","step_ms":"18000000","wall_after":"2026-12-04T07:00:00.000Z","wall_before":"2026-12-04T02:00:00.000Z"}}}""";
        AssertValid(Encoding.UTF8.GetBytes(good), "the good clock_stepped");
        string[] bad =
        [
            good.Replace("\"step_ms\":\"18000000\",", "", StringComparison.Ordinal),
            good.Replace("\"step_ms\":\"18000000\"", "\"step_ms\":\"5h\"", StringComparison.Ordinal),
            good.Replace("\"first_seq\":\"1796451146156001\",", "", StringComparison.Ordinal),
            good.Replace("2026-12-04T02:00:00.000Z", "2026-12-04T03:00:00+01:00", StringComparison.Ordinal),
        ];
        foreach (var text in bad)
        {
            Assert.False(Schema.Value.Evaluate(JsonNode.Parse(text)).IsValid, text);
        }
    }

    [Fact]
    public void A_clock_stepped_event_names_earlier_runs_with_a_known_step_or_with_a_reason_and_no_step()
    {
        const string Head = """{"v":1,"site":"s","gateway":"g","seq":1,"kind":"event","device":"g","time":"2026-12-04T07:00:00.000Z","historical":false,"body":{"v":1,"type":"event","gateway":"g","site":"s","device":"g","series":null,"unit":null,"time_ms":1,"start_ms":1,"end_ms":1,"event":"clock_stepped","severity":"warning","source":"clock","message":"x","attributes":""";
        string Event(string attributes) => Head + attributes + "}}";
        string[] good =
        [
            // a step seen in this run, earlier runs of other boots (offset not known; one whose end is not known)
            """{"earlier_seqs":"1796451140000001-1796451140000090,1796451143000001-","first_seq":"1796451146156001","last_seq":"1796451146156230","step_ms":"18000000","synchronized_after":"true","synchronized_before":"false","wall_after":"2026-12-04T07:00:00.000Z","wall_before":"2026-12-04T02:00:00.000Z"}""",
            // the clock synchronised while the agent was stopped: no step known
            """{"earlier_seqs":"1796451140000001-1796451146156000","reason":"synchronized_while_stopped","synchronized_after":"true","synchronized_before":"false"}""",
            """{"earlier_seqs":"1796451140000001-1796451146156000","reason":"synchronized_without_step","synchronized_after":"true","synchronized_before":"false"}""",
            // a step while the agent was stopped, measured in the same boot
            """{"first_seq":"1796451140000001","last_seq":"1796451146156000","reason":"stepped_while_stopped","step_ms":"18000000","synchronized_after":"true","synchronized_before":"false","wall_after":"2026-12-04T07:00:00.000Z","wall_before":"2026-12-04T02:00:00.000Z"}""",
        ];
        foreach (var attributes in good)
        {
            AssertValid(Encoding.UTF8.GetBytes(Event(attributes)), attributes);
        }

        string[] bad =
        [
            // a step made up for runs whose clock is not known
            """{"earlier_seqs":"1796451140000001-1796451146156000","reason":"synchronized_while_stopped","step_ms":"18000000","wall_after":"2026-12-04T07:00:00.000Z","wall_before":"2026-12-04T02:00:00.000Z"}""",
            // no step and nothing named
            """{"reason":"synchronized_while_stopped","synchronized_after":"true"}""",
            // neither a step nor a reason
            """{"earlier_seqs":"1796451140000001-1796451146156000"}""",
            // a range to move without the step
            """{"earlier_seqs":"1796451140000001-1796451146156000","first_seq":"1796451146156001","last_seq":"1796451146156230","reason":"synchronized_without_step"}""",
            """{"earlier_seqs":"1796451140000001-1796451146156000;1796451146156001-","reason":"synchronized_while_stopped"}""",
            """{"earlier_seqs":"1796451140000001-1796451146156000","reason":"rebooted"}""",
            """{"earlier_seqs":"1796451140000001-1796451146156000","reason":"synchronized_while_stopped","step_ms":"18000000"}""",
        ];
        foreach (var attributes in bad)
        {
            Assert.False(Schema.Value.Evaluate(JsonNode.Parse(Event(attributes))).IsValid, attributes);
        }
    }

    [Fact]
    public void A_rejected_by_peer_data_gap_fits_the_schema()
    {
        var outbox = new EdgeTwin.Outbox.InMemoryOutbox();
        var reporter = new RefusalReporter(outbox, "kafka", "kafka://127.0.0.1:9092", new EdgeTwin.Outbox.Summaries.UplinkIdentity("gw1", "site1"),
            new DeliveryOptions(), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, _ => { });
        var summary = new OutboxRecord(OutboxKind.Summary, "pdu1", 1_795_000_000_000, Encoding.UTF8.GetBytes("""{"v":1,"type":"summary","series":"pdu1/power","count":1}"""));
        var notJson = new OutboxRecord(OutboxKind.Event, "pdu2", 1_795_000_000_001, Encoding.UTF8.GetBytes("not json"));
        var record = reporter.Event(
        [
            new Refusal(new OutboxEntry(7, summary), "MsgSizeTooLarge: Broker: Message size too large", "edgetwin.site1.summary", 1_200_000, DateTimeOffset.UtcNow),
            new Refusal(new OutboxEntry(9, notJson), "not sent: the body cannot be encoded (…)", null, 8, DateTimeOffset.UtcNow),
        ]);
        var envelope = JsonEnvelope.Encode(new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"), new OutboxEntry(10, record), historical: false);
        AssertValid(envelope, "rejected_by_peer data_gap");
        using var doc = System.Text.Json.JsonDocument.Parse(envelope);
        var attributes = doc.RootElement.GetProperty("body").GetProperty("attributes");
        Assert.Equal("7,9", attributes.GetProperty("seqs").GetString());
        Assert.Equal("pdu1/power", attributes.GetProperty("entry.7.series").GetString());
        Assert.False(attributes.TryGetProperty("entry.9.series", out _)); // not JSON: no series to name
        Assert.False(attributes.TryGetProperty("entry.9.topic", out _));
        Assert.Equal("pdu1,pdu2", attributes.GetProperty("devices").GetString());
    }
}
