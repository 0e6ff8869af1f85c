using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Sparkplug;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Support;
using Google.Protobuf;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

/// <summary>
/// Sparkplug metric aliases (<c>sparkplug_aliases: true</c>) through a real mosquitto, read by a host that resolves data
/// by alias the way Sparkplug 3.0 has it: from the NBIRTH and the device's DBIRTH of the current birth only.
/// </summary>
public sealed class SparkplugAliasMqttTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private const string Device = "pdu-a01-a";

    private static OutboxRecord Body(OutboxKind kind, string device, string body, long time = 1_795_000_000_000) => new(kind, device, time, Encoding.UTF8.GetBytes(body));

    /// <summary>A window of the PDU: two summarised series and raw points of a third, long tagged names as a real PDU has.</summary>
    private static OutboxRecord[] Window(double v, long end = 1_795_000_000_000) =>
    [
        Body(OutboxKind.Summary, Device, SparkplugEncoderTests.Summary(Device, "voltage_l1", "voltage_l1", "V", 230 + v, end: end), end),
        Body(OutboxKind.Summary, Device, SparkplugEncoderTests.Summary(Device, "outlet_power{outlet=5,phase=L1}", "outlet_power", "kW", 1 + v, end: end), end),
        Body(OutboxKind.Raw, Device, SparkplugEncoderTests.Raw(Device, "outlet_current{outlet=7}", "outlet_current", "A", [.. Enumerable.Range(0, 1 + (int)v).Select(i => (end + i, (double?)(4 + i), i % 2))]), end),
    ];

    private static OutboxRecord Ups(double v, long end = 1_795_000_000_000) =>
        Body(OutboxKind.Summary, "ups1", SparkplugEncoderTests.Summary("ups1", "load{phase=L1}", "load", "%", 40 + v, end: end), end);

    /// <summary>The series the agent would pass as its registry: the late one is not on it yet.</summary>
    private static readonly SparkplugSeries[] Registry =
    [
        new(Device, $"{Device}/voltage_l1", "V", Raw: false),
        new(Device, $"{Device}/outlet_power{{outlet=5,phase=L1}}", "kW", Raw: false),
        new(Device, $"{Device}/outlet_current{{outlet=7}}", "A", Raw: true),
        new("ups1", "ups1/load{phase=L1}", "%", Raw: false),
    ];

    /// <summary>
    /// Everything before the connect (the backlog lane, so the order is fixed): windows, an alert and a data_gap as NDATA, a
    /// second device, and a series the registry does not have (a config reload) arriving after the device's DBIRTH.
    /// </summary>
    private static OutboxRecord[] Backlog() =>
    [
        .. Window(0),
        Body(OutboxKind.Event, "rack-inlet-warm", SparkplugEncoderTests.AlertBody, 1_795_000_003_000),
        Ups(0),
        .. Window(1, 1_795_000_060_000),
        Body(OutboxKind.Event, "outbox", """{"v":1,"type":"event","gateway":"gw1","site":"site1","device":"outbox","series":null,"unit":null,"time_ms":1795000064000,"start_ms":1795000000000,"end_ms":1795000064000,"event":"data_gap","severity":"warning","source":"outbox","message":"gap","attributes":{"reason":"unclean_stop"}}""", 1_795_000_064_000),
        Body(OutboxKind.Summary, Device, SparkplugEncoderTests.Summary(Device, "outlet_energy{outlet=9}", "outlet_energy", "kWh", 12.5, end: 1_795_000_060_000), 1_795_000_060_000),
        Ups(1, 1_795_000_060_000),
        .. Window(2, 1_795_000_120_000),
    ];

    private static MqttUplinkOptions SparkplugOptions(int port, string state, bool aliases) => Options(port) with
    {
        Encoding = MqttPayloadEncoding.SparkplugB,
        StateDirectory = state,
        SparkplugAliases = aliases,
        SparkplugSeries = () => Registry,
        Delivery = new DeliveryOptions { BacklogRatePerSecond = 0, ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
    };

    /// <summary>Runs the backlog through one uplink until every entry is acknowledged and the subscriber has all data.</summary>
    private static async Task<IReadOnlyList<Received>> SessionAsync(bool aliases)
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-alias-");
        await using var broker = await Mosquitto.StartAsync();
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        var records = Backlog();
        await outbox.AppendAsync(records, TestContext.Current.CancellationToken);
        var uplink = new MqttUplink(SparkplugOptions(broker.Port, stateDirectory.Path, aliases), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), records.Length, Long);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic.Contains("DATA/", StringComparison.Ordinal)) >= records.Length, Long, $"{records.Length} DDATA/NDATA");
        await cts.CancelAsync();
        await run;
        return [.. sub.Messages.Where(m => !m.Topic.Contains("/NDEATH/", StringComparison.Ordinal))];
    }

    [Fact]
    public async Task A_host_resolves_every_ddata_and_ndata_metric_by_alias_to_what_the_names_carry()
    {
        var named = await SessionAsync(aliases: false);
        var aliased = await SessionAsync(aliases: true);

        var host = new SparkplugAliasHost();
        foreach (var m in aliased)
        {
            host.Take(m);
        }

        // The same messages on the same topics with the same seq; every data metric, named from its alias, equals the
        // metric the names-only session sent (value, datatype, timestamp, properties, is_historical, is_null).
        Assert.Equal(named.Select(m => m.Topic), aliased.Select(m => m.Topic));
        var namedData = named.Where(m => IsData(m.Topic)).Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal(namedData.Count, host.Data.Count);
        for (var i = 0; i < namedData.Count; i++)
        {
            Assert.Equal(namedData[i], host.Data[i].Resolved);
        }

        Assert.Contains(host.Data, d => d.Topic == "spBv1.0/site1/NDATA/gw1" && d.Resolved.Metrics.Any(x => x.Name == "edgetwin/event/event" && x.StringValue == "data_gap"));
        Assert.Contains(host.Data, d => d.Resolved.Metrics.Any(x => x.Name == "outlet_current{outlet=7}" && x.Properties.Values[0].IntValue == 500));

        // Births declare the same names as without aliases, each with an alias; and the data bytes shrink.
        var namedBirths = named.Where(m => m.Topic.Contains("BIRTH", StringComparison.Ordinal)).Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        var aliasedBirths = aliased.Where(m => m.Topic.Contains("BIRTH", StringComparison.Ordinal)).Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal(namedBirths.Select(b => b.Metrics.Select(x => x.Name).ToList()), aliasedBirths.Select(b => b.Metrics.Select(x => x.Name).ToList()));
        Assert.All(aliasedBirths.SelectMany(b => b.Metrics), x => Assert.True(x.HasAlias && x.Alias > 0, x.Name));
        long Bytes(IEnumerable<Received> ms) => ms.Where(m => IsData(m.Topic)).Sum(m => (long)m.Payload.Length);
        Assert.True(Bytes(aliased) * 10 < Bytes(named) * 6, $"DDATA/NDATA payloads: {Bytes(aliased)} bytes with aliases, {Bytes(named)} with names");
    }

    [Fact]
    public async Task Aliases_are_unique_across_the_node_and_its_devices_and_a_late_series_is_born_before_its_data()
    {
        var aliased = await SessionAsync(aliases: true);
        var host = new SparkplugAliasHost();
        foreach (var m in aliased)
        {
            host.Take(m); // fails on an alias declared twice in one birth, or data with an alias not declared
        }

        // NBIRTH and both devices: one alias per (node or device, name), no alias shared.
        Assert.Equal(host.Ever.Count, host.Ever.Values.Distinct().Count());
        Assert.Contains(host.Ever.Keys, k => k.Device == "" && k.Name == "edgetwin/seq");
        Assert.Contains(host.Ever.Keys, k => k.Device == Device && k.Name == "edgetwin/seq");
        Assert.Contains(host.Ever.Keys, k => k.Device == "ups1" && k.Name == "edgetwin/seq");
        Assert.Equal(3, host.Ever.Keys.Count(k => k.Name == "edgetwin/seq"));

        // outlet_energy is on no registry: its first window brings a DBIRTH of the PDU declaring it with a new alias (and every
        // alias the PDU had, unchanged), and only then the DDATA that carries that alias.
        var topics = aliased.Select(m => m.Topic).ToList();
        var lateData = host.Data.FindIndex(d => d.Resolved.Metrics.Any(x => x.Name == "outlet_energy{outlet=9}/mean"));
        var at = aliased.Select((m, i) => (m, i)).Where(x => IsData(x.m.Topic)).Select(x => x.i).ElementAt(lateData);
        Assert.Equal($"spBv1.0/site1/DBIRTH/gw1/{Device}", topics[at - 1]);
        var declared = Payload.Parser.ParseFrom(aliased[at - 1].Payload).Metrics;
        Assert.Contains(declared, x => x.Name == "outlet_energy{outlet=9}/mean");
        Assert.Equal(2, topics.Count(t => t == $"spBv1.0/site1/DBIRTH/gw1/{Device}"));
        Assert.Equal(1 + 12 + 12 + 1 + 12, declared.Count); // edgetwin/seq, two summaries, the raw series, the late summary
    }

    [Fact]
    public async Task A_rebirth_asked_by_alias_and_a_reconnect_declare_the_same_aliases_again()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-alias-");
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Window(0), Ups(0)], TestContext.Current.CancellationToken);
        var uplink = new MqttUplink(SparkplugOptions(proxy.Port, stateDirectory.Path, aliases: true), outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
        await sub.WaitUntilAsync(m => m.Count(x => IsData(x.Topic)) >= 4, Long, "4 DDATA");
        var nbirth = Payload.Parser.ParseFrom(sub.Messages[0].Payload);
        var rebirthAlias = nbirth.Metrics.Single(m => m.Name == SparkplugEncoder.RebirthMetric).Alias;

        // With aliases a host sends its NCMD by alias only, no name ([tck-id-payloads-alias-data-cmd-requirement]).
        var request = new Payload { Timestamp = 1_795_000_000_000 };
        request.Metrics.Add(new Payload.Types.Metric { Alias = rebirthAlias, Timestamp = 1_795_000_000_000, Datatype = 11, BooleanValue = true });
        await sub.PublishAsync("spBv1.0/site1/NCMD/gw1", request.ToByteArray());
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 2, Long, "the NBIRTH the host asked for by alias");
        await outbox.AppendAsync([.. Window(1, 1_795_000_060_000), Ups(1, 1_795_000_060_000)], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 8, Long);

        // A broken connection: a new session (next bdSeq), births again, the backlog and new data.
        proxy.Cut();
        await sub.WaitUntilAsync(m => m.Any(x => x.Topic == "spBv1.0/site1/NDEATH/gw1"), Long, "NDEATH");
        await outbox.AppendAsync([.. Window(2, 1_795_000_120_000), Ups(2, 1_795_000_120_000)], TestContext.Current.CancellationToken);
        await sub.WaitUntilAsync(m => m.Count(x => x.Topic == "spBv1.0/site1/NBIRTH/gw1") >= 3, Long, "the NBIRTH of the new connection");
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 12, Long);
        await sub.WaitUntilAsync(m => m.Count(x => IsData(x.Topic)) >= 12, Long, "12 DDATA");
        await cts.CancelAsync();
        await run;

        var host = new SparkplugAliasHost();
        foreach (var m in sub.Messages.Where(m => !m.Topic.Contains("/NCMD/", StringComparison.Ordinal)))
        {
            host.Take(m); // fails when a birth gives a (device, name) another alias than before, or an alias another meaning
        }

        Assert.Equal(3, host.NodeBirths);
        Assert.Equal(3, sub.Messages.Count(m => m.Topic == $"spBv1.0/site1/DBIRTH/gw1/{Device}"));
        Assert.Equal(3, sub.Messages.Count(m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/ups1"));
        Assert.True(host.Data.Count >= 12);
        Assert.Contains(host.Data, d => d.Resolved.Metrics.Any(x => x.Name == "voltage_l1/mean" && x.DoubleValue == 232));
        var births = sub.Messages.Where(m => m.Topic == "spBv1.0/site1/NBIRTH/gw1").Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal(births[0].Metrics.Select(m => (m.Name, m.Alias)), births[2].Metrics.Select(m => (m.Name, m.Alias)));
    }

    [Fact]
    public async Task A_failover_to_the_next_broker_of_hosts_declares_the_same_aliases_there()
    {
        using var stateDirectory = new TempDirectory("edgetwin-spb-alias-");
        await using var a = await Mosquitto.StartAsync();
        await using var b = await Mosquitto.StartAsync();
        await using var subA = await TestSubscriber.StartAsync(a.Port, "spBv1.0/#");
        await using var subB = await TestSubscriber.StartAsync(b.Port, "spBv1.0/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Window(0), Ups(0)], TestContext.Current.CancellationToken);
        var options = SparkplugOptions(0, stateDirectory.Path, aliases: true) with { Host = "", Port = 0, Hosts = [$"127.0.0.1:{a.Port}", $"127.0.0.1:{b.Port}"] };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 4, Long);
        await subA.WaitUntilAsync(m => m.Count(x => IsData(x.Topic)) >= 4, Long, "4 DDATA on A");

        // Broker A dies: the uplink walks to B, a new session there (next bdSeq) with its births, then the new data.
        await a.KillAsync();
        await outbox.AppendAsync([.. Window(1, 1_795_000_060_000), Ups(1, 1_795_000_060_000)], TestContext.Current.CancellationToken);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 8, Long);
        await subB.WaitUntilAsync(m => m.Count(x => IsData(x.Topic)) >= 4, Long, "4 DDATA on B");
        Assert.Equal($"127.0.0.1:{b.Port}", uplink.Server);
        await cts.CancelAsync();
        await run;

        // One host that saw A's session and then B's: the same alias for every metric, on either broker.
        var host = new SparkplugAliasHost();
        foreach (var m in subA.Messages.Concat(subB.Messages))
        {
            host.Take(m);
        }

        Assert.Equal(2, host.NodeBirths);
        var onB = subB.Messages.Where(m => m.Topic.Contains("BIRTH", StringComparison.Ordinal)).SelectMany(m => Payload.Parser.ParseFrom(m.Payload).Metrics).ToList();
        Assert.Equal(host.Ever.Count, onB.Count);
        Assert.Contains(host.Data, d => d.Resolved.Metrics.Any(x => x.Name == "load{phase=L1}/mean" && x.DoubleValue == 41));
    }

    private static bool IsData(string topic) => topic.Contains("/DDATA/", StringComparison.Ordinal) || topic.Contains("/NDATA/", StringComparison.Ordinal);
}
