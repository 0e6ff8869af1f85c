using Google.Protobuf;
using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

public sealed class SparkplugMqttTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Sparkplug_session_births_data_and_death_through_mosquitto_decode_with_protoc()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Record($"dev{i % 2}", i))], TestContext.Current.CancellationToken);
        var options = Options(proxy.Port) with
        {
            Encoding = MqttPayloadEncoding.SparkplugB,
            StateDirectory = state,
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromSeconds(30), ReconnectMaxDelay = TimeSpan.FromSeconds(30) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 10, Long);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic.Contains("/DDATA/", StringComparison.Ordinal)) >= 10, Long, "10 DDATA");

        var messages = sub.Messages;
        Assert.Equal("spBv1.0/site1/NBIRTH/gw1", messages[0].Topic);
        var nbirth = Payload.Parser.ParseFrom(messages[0].Payload);
        var bdSeq = nbirth.Metrics.Single(m => m.Name == "bdSeq").LongValue;
        Assert.Equal(0ul, nbirth.Seq);
        Assert.Contains(messages, m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/dev0");
        Assert.Contains(messages, m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/dev1");

        // Every node message after NBIRTH increments seq by one (mod 256), in arrival order.
        var seqs = messages.Where(m => !m.Topic.Contains("NDEATH", StringComparison.Ordinal)).Select(m => Payload.Parser.ParseFrom(m.Payload).Seq).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (ulong)(i % 256)), seqs);

        var ddata = messages.First(m => m.Topic == "spBv1.0/site1/DDATA/gw1/dev0");
        var text = await Protoc.DecodeSparkplugAsync(ddata.Payload);
        Assert.Contains("name: \"edgetwin/seq\"", text, StringComparison.Ordinal);
        Assert.Contains("is_historical: true", text, StringComparison.Ordinal); // the entries predate the connection

        // A pulled cable: the broker publishes our will, NDEATH with the bdSeq of the NBIRTH.
        proxy.Cut();
        await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NDEATH/gw1"), Long, "NDEATH");
        var ndeath = Payload.Parser.ParseFrom(sub.Messages.First(x => x.Topic == "spBv1.0/site1/NDEATH/gw1").Payload);
        Assert.Equal(bdSeq, ndeath.Metrics.Single(m => m.Name == "bdSeq").LongValue);
        await cts.CancelAsync();
        await run;

        // A restart of the gateway continues the bdSeq from the state file.
        var again = new MqttUplink(options with { Port = broker.Port }, outbox);
        using var cts2 = new CancellationTokenSource();
        var run2 = again.RunAsync(cts2.Token);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 2, Long, "the second NBIRTH");
        var second = Payload.Parser.ParseFrom(sub.Messages.Last(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1").Payload);
        Assert.Equal(bdSeq + 1, second.Metrics.Single(m => m.Name == "bdSeq").LongValue);
        await cts2.CancelAsync();
        await run2;
    }

    /// <summary>
    /// Sparkplug 3.0 requires an edge node's CONNECT to ask for a clean session ([tck-id-principles-persistence-clean-session-311],
    /// [-50]: clean start and session expiry 0); the uplink's default persistent session went with Sparkplug too. mosquitto
    /// logs each CONNECT's flags: <c>(p2, c1, …)</c> is 3.1.1 with clean session, <c>(p5, c1, …)</c> MQTT 5 with clean start.
    /// The JSON encoding keeps its persistent session (c0).
    /// </summary>
    [Theory]
    [InlineData(MqttProtocol.V311, "p2")]
    [InlineData(MqttProtocol.V500, "p5")]
    public async Task Regression_a_sparkplug_edge_node_connected_with_a_persistent_session(MqttProtocol protocol, string version)
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        foreach (var encoding in new[] { MqttPayloadEncoding.SparkplugB, MqttPayloadEncoding.Json })
        {
            await using var outbox = new TestOutbox();
            await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
            var options = Options(broker.Port, protocol) with { Encoding = encoding, StateDirectory = state };
            var uplink = new MqttUplink(options, outbox);
            using var cts = new CancellationTokenSource();
            var run = uplink.RunAsync(cts.Token);
            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
            await cts.CancelAsync();
            await run;

            var connect = File.ReadAllLines(broker.LogFile).Last(l => l.Contains($"as {options.ClientId} (", StringComparison.Ordinal));
            var flags = encoding == MqttPayloadEncoding.SparkplugB ? "c1" : "c0";
            Assert.True(connect.Contains($"({version}, {flags},", StringComparison.Ordinal), connect);
        }
    }

    [Fact]
    public async Task Regression_sparkplug_through_mosquitto_one_tag_per_series_events_on_the_node_one_dbirth_per_reconnect()
    {
        // Was (audit F1, real agent): metric names summary/mean for every series of a device, alert rules and outbox as
        // devices, and a PDU's DBIRTH sent 5 times in 30 s.
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        OutboxRecord Body(OutboxKind kind, string device, string body) => new(kind, device, 1_795_000_000_000, Encoding.UTF8.GetBytes(body));
        OutboxRecord[] Window(double v) =>
        [
            Body(OutboxKind.Summary, "pdu-a01-a", SparkplugEncoderTests.Summary("pdu-a01-a", "voltage_l1", "voltage_l1", "V", 230 + v)),
            Body(OutboxKind.Summary, "pdu-a01-a", SparkplugEncoderTests.Summary("pdu-a01-a", "outlet_power{outlet=5}", "outlet_power", "kW", 1 + v)),
            Body(OutboxKind.Raw, "pdu-a01-a", SparkplugEncoderTests.Raw("pdu-a01-a", "outlet_current{outlet=7}", "outlet_current", "A", [.. Enumerable.Range(0, 1 + (int)v).Select(i => (1_795_000_000_000L + i, (double?)(4 + i), 0))])),
        ];
        await outbox.AppendAsync(
        [
            .. Window(0),
            Body(OutboxKind.Event, "rack-inlet-warm", SparkplugEncoderTests.AlertBody),
            Body(OutboxKind.Event, "outbox", """{"v":1,"type":"event","gateway":"gw1","site":"site1","device":"outbox","series":null,"unit":null,"time_ms":1795000004000,"start_ms":1795000000000,"end_ms":1795000004000,"event":"data_gap","severity":"warning","source":"outbox","message":"gap","attributes":{"reason":"unclean_stop"}}"""),
            .. Window(1), .. Window(2),
        ], TestContext.Current.CancellationToken);
        var options = Options(proxy.Port) with
        {
            Encoding = MqttPayloadEncoding.SparkplugB,
            StateDirectory = state,
            Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 11, Long);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic.Contains("DATA/", StringComparison.Ordinal)) >= 11, Long, "11 DDATA/NDATA");

        var first = sub.Messages;
        Assert.Equal("spBv1.0/site1/NBIRTH/gw1", first[0].Topic);
        // Only real devices and the node: no rule, no outbox device.
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/pdu-a01-a", "spBv1.0/site1/DDATA/gw1/pdu-a01-a", "spBv1.0/site1/NBIRTH/gw1", "spBv1.0/site1/NDATA/gw1"],
            first.Select(m => m.Topic).Distinct().Order(StringComparer.Ordinal));
        // Once per new series (3), never again for the windows after.
        Assert.Equal(3, first.Count(m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/pdu-a01-a"));
        Assert.Equal(2, first.Count(m => m.Topic == "spBv1.0/site1/NDATA/gw1"));
        var seqs = first.Select(m => Payload.Parser.ParseFrom(m.Payload).Seq).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (ulong)(i % 256)), seqs);

        var names = first.Where(m => m.Topic == "spBv1.0/site1/DDATA/gw1/pdu-a01-a")
            .SelectMany(m => Payload.Parser.ParseFrom(m.Payload).Metrics.Select(x => x.Name)).ToHashSet();
        Assert.Contains("voltage_l1/mean", names);
        Assert.Contains("outlet_power{outlet=5}/mean", names);
        Assert.Contains("outlet_current{outlet=7}", names);
        Assert.DoesNotContain(names, n => n.StartsWith("summary/", StringComparison.Ordinal) || n.StartsWith("raw/", StringComparison.Ordinal));
        var lastBirth = await Protoc.DecodeSparkplugAsync(first.Last(m => m.Topic.Contains("DBIRTH", StringComparison.Ordinal)).Payload);
        Assert.Contains("name: \"outlet_power{outlet=5}/mean\"", lastBirth, StringComparison.Ordinal);
        Assert.Contains("string_value: \"kW\"", lastBirth, StringComparison.Ordinal);
        var alert = await Protoc.DecodeSparkplugAsync(first.First(m => m.Topic == "spBv1.0/site1/NDATA/gw1").Payload);
        Assert.Contains("name: \"edgetwin/event/event\"", alert, StringComparison.Ordinal);
        Assert.Contains("string_value: \"alert_raised\"", alert, StringComparison.Ordinal);

        // A broken connection: the new session births the device once, with every series it had.
        proxy.Cut();
        await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NDEATH/gw1"), Long, "NDEATH");
        await outbox.AppendAsync([.. Window(3)], TestContext.Current.CancellationToken); // the next send finds the connection broken
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 2, Long, "the second NBIRTH");
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 14, Long);
        var all = sub.Messages;
        var reborn = all.Count - 1 - all.Reverse().ToList().FindIndex(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1");
        await sub.WaitUntilAsync(m => m.Skip(reborn).Count(x => x.Topic.Contains("/DDATA/", StringComparison.Ordinal)) >= 3, Long, "3 DDATA after the reconnect");
        var second = sub.Messages.Skip(reborn).ToList();
        var births = second.Where(m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/pdu-a01-a").ToList();
        var birth = Payload.Parser.ParseFrom(Assert.Single(births).Payload);
        Assert.Equal(1 + 12 + 12 + 1, birth.Metrics.Count);
        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// Sparkplug requires the edge node to publish a DDEATH for a device it lost ([tck-id-operational-behavior-device-ddeath]);
    /// the uplink sent the agent's <c>device_down</c> only as node data, so a host kept the device online with its last
    /// values. Now: NDATA (the event), then DDEATH (seq, timestamp), and a DBIRTH again before the device's next DDATA.
    /// </summary>
    [Fact]
    public async Task Regression_a_device_that_went_down_got_no_ddeath()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        OutboxRecord Body(OutboxKind kind, string device, string body) => new(kind, device, 1_795_000_000_000, Encoding.UTF8.GetBytes(body));
        OutboxRecord Window(double v) => Body(OutboxKind.Summary, "pdu-a01-a", SparkplugEncoderTests.Summary("pdu-a01-a", "voltage_l1", "voltage_l1", "V", 230 + v));
        OutboxRecord Polling(string @event) => new(OutboxKind.Event, "pdu-a01-a", 1_795_000_004_000, Encoding.UTF8.GetBytes(
            $$$"""{"v":1,"type":"event","gateway":"gw1","site":"site1","device":"pdu-a01-a","series":null,"metric":null,"unit":null,"time_ms":1795000004000,"start_ms":1795000004000,"end_ms":1795000004000,"event":"{{{@event}}}","severity":"warning","source":"pdu-a01-a","message":"{{{@event}}}","attributes":{}}"""));
        var options = Options(broker.Port) with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = state };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1"), Long, "NBIRTH");

        // Live entries (appended after the connect), so not the backlog lane.
        await outbox.AppendAsync([Window(0)], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
        await outbox.AppendAsync([Polling("device_down")], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 2, Long);
        await outbox.AppendAsync([Polling("device_up"), Window(1)], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/DDATA/gw1/pdu-a01-a") >= 2, Long, "2 DDATA");

        var messages = sub.Messages;
        Assert.Equal(
        [
            "spBv1.0/site1/NBIRTH/gw1", "spBv1.0/site1/DBIRTH/gw1/pdu-a01-a", "spBv1.0/site1/DDATA/gw1/pdu-a01-a",
            "spBv1.0/site1/NDATA/gw1", "spBv1.0/site1/DDEATH/gw1/pdu-a01-a",
            "spBv1.0/site1/NDATA/gw1", "spBv1.0/site1/DBIRTH/gw1/pdu-a01-a", "spBv1.0/site1/DDATA/gw1/pdu-a01-a",
        ], messages.Select(m => m.Topic));
        var seqs = messages.Select(m => Payload.Parser.ParseFrom(m.Payload).Seq).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (ulong)i), seqs);
        var ddeath = await Protoc.DecodeSparkplugAsync(messages[4].Payload);
        Assert.Contains("timestamp: 1795000004000", ddeath, StringComparison.Ordinal);
        Assert.Contains("seq: 4", ddeath, StringComparison.Ordinal);
        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// A device dropped from the site config (the new config takes a restart) left data in the outbox; its replay made the
    /// device's DBIRTH and DDATA, and nothing ever said it died: the host showed it online for ever (the agent sends no
    /// device_down for a device it no longer has, [tck-id-operational-behavior-device-ddeath]). Now each of its backlog
    /// DDATA is followed by its DDEATH; a device of the config gets none.
    /// </summary>
    [Fact]
    public async Task Regression_a_device_removed_by_a_config_reload_stayed_alive_at_the_host()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        // Written under the old config, which had dev0 and dev1; the new one has dev0 only.
        await outbox.AppendAsync([Record("dev0", 0), Record("dev1", 1), Record("dev1", 2), Record("dev0", 3)], TestContext.Current.CancellationToken);
        var log = new EdgeTwin.Uplink.Tests.Delivery.RecordingLogger();
        var options = Options(broker.Port) with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = state, SparkplugDevices = () => ["dev0"] };
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
        await outbox.AppendAsync([Record("dev0", 4)], TestContext.Current.CancellationToken); // live
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 5, Long);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic.Contains("/DDATA/", StringComparison.Ordinal)) >= 5, Long, "5 DDATA");

        var messages = sub.Messages;
        Assert.Equal(
        [
            "spBv1.0/site1/DBIRTH/gw1/dev1", "spBv1.0/site1/DDATA/gw1/dev1", "spBv1.0/site1/DDEATH/gw1/dev1",
            "spBv1.0/site1/DBIRTH/gw1/dev1", "spBv1.0/site1/DDATA/gw1/dev1", "spBv1.0/site1/DDEATH/gw1/dev1",
        ], messages.Where(m => m.Topic.EndsWith("/dev1", StringComparison.Ordinal)).Select(m => m.Topic));
        Assert.DoesNotContain(messages, m => m.Topic == "spBv1.0/site1/DDEATH/gw1/dev0");
        Assert.Equal(3, messages.Count(m => m.Topic == "spBv1.0/site1/DDATA/gw1/dev0"));
        var seqs = messages.Select(m => Payload.Parser.ParseFrom(m.Payload).Seq).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (ulong)i), seqs); // DDEATH takes its seq like any message
        Assert.Single(log.Lines, l => l.Message.Contains("DDEATH for Sparkplug device dev1: the site config no longer has it", StringComparison.Ordinal));
        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// An edge node on MQTT 5 that disconnects must set reason 0x04 "Disconnect with Will Message"
    /// ([tck-id-payloads-ndeath-will-message-publisher-disconnect-mqtt50]); the clean stop sent a normal DISCONNECT, so
    /// the broker dropped the NDEATH will. Now mosquitto publishes it after our own NDEATH: two, with the NBIRTH's bdSeq,
    /// the will without a timestamp. 3.1.1 (no reason codes) keeps the one NDEATH published before the DISCONNECT.
    /// </summary>
    [Theory]
    [InlineData(MqttProtocol.V500, 2)]
    [InlineData(MqttProtocol.V311, 1)]
    public async Task Regression_a_clean_stop_on_mqtt5_dropped_the_ndeath_will(MqttProtocol protocol, int deaths)
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
        var options = Options(broker.Port, protocol) with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = state };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
        await cts.CancelAsync();
        await run;
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NDEATH/gw1") >= deaths, Long, $"{deaths} NDEATH");
        await Task.Delay(TimeSpan.FromMilliseconds(500), TestContext.Current.CancellationToken); // a will sent late would show here

        var messages = sub.Messages;
        var bdSeq = Payload.Parser.ParseFrom(messages.First(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1").Payload).Metrics.Single(m => m.Name == "bdSeq").LongValue;
        var ndeaths = messages.Where(m => m.Topic == "spBv1.0/site1/NDEATH/gw1").Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal(deaths, ndeaths.Count);
        Assert.All(ndeaths, d => Assert.Equal(bdSeq, d.Metrics.Single(m => m.Name == "bdSeq").LongValue));
        Assert.All(ndeaths, d => Assert.False(d.HasSeq));
        Assert.True(ndeaths[0].HasTimestamp); // ours, published before the DISCONNECT
        if (deaths == 2)
        {
            Assert.False(ndeaths[1].HasTimestamp); // the will, fixed at connect time
        }
    }

    /// <summary>
    /// A host asks for a rebirth with an NCMD <c>Node Control/Rebirth</c> = true (Ignition does on a <c>seq</c> gap or an
    /// unknown metric); the edge node did not subscribe to NCMD ([tck-id-message-flow-edge-node-ncmd-subscribe]), so the
    /// request went unanswered and the host's tags stayed stale. Now: NBIRTH again with the same bdSeq and seq 0, then the
    /// device's DBIRTH before its next DDATA; a command that is not Sparkplug B is ignored, the connection stays.
    /// </summary>
    [Fact]
    public async Task Regression_an_ncmd_rebirth_request_was_not_answered()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-state-");
        var state = stateDirectory.Path;
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([Record("dev0", 0)], TestContext.Current.CancellationToken);
        var options = Options(broker.Port) with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = state };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 1, Long);
        await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/DDATA/gw1/dev0"), Long, "DDATA");

        await sub.PublishAsync("spBv1.0/site1/NCMD/gw1", [0xFF, 0x01, 0x02]); // not a payload: ignored
        var request = new Payload { Timestamp = 1_795_000_000_000 };
        request.Metrics.Add(new Payload.Types.Metric { Name = "Node Control/Rebirth", Timestamp = 1_795_000_000_000, Datatype = 11, BooleanValue = true });
        await sub.PublishAsync("spBv1.0/site1/NCMD/gw1", request.ToByteArray());
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 2, Long, "the NBIRTH the host asked for");
        await outbox.AppendAsync([Record("dev0", 1)], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 2, Long);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/DDATA/gw1/dev0") >= 2, Long, "the DDATA after the rebirth");

        var ours = sub.Messages.Where(m => !m.Topic.Contains("/NCMD/", StringComparison.Ordinal)).ToList();
        Assert.Equal(
        [
            "spBv1.0/site1/NBIRTH/gw1", "spBv1.0/site1/DBIRTH/gw1/dev0", "spBv1.0/site1/DDATA/gw1/dev0",
            "spBv1.0/site1/NBIRTH/gw1", "spBv1.0/site1/DBIRTH/gw1/dev0", "spBv1.0/site1/DDATA/gw1/dev0",
        ], ours.Select(m => m.Topic));
        var payloads = ours.Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal([0ul, 1, 2, 0, 1, 2], payloads.Select(p => p.Seq));
        Assert.Equal(payloads[0].Metrics.Single(m => m.Name == "bdSeq").LongValue, payloads[3].Metrics.Single(m => m.Name == "bdSeq").LongValue);
        Assert.DoesNotContain(sub.Messages, m => m.Topic == "spBv1.0/site1/NDEATH/gw1"); // one connection throughout
        await cts.CancelAsync();
        await run;
    }
}
