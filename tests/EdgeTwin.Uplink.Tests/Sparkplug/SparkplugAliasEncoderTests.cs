using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Sparkplug;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Support;
using Google.Protobuf;
using static EdgeTwin.Uplink.Tests.Sparkplug.SparkplugEncoderTests;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

/// <summary>Sparkplug metric aliases (<c>sparkplug_aliases</c>) in the encoder: births declare name and alias, data the alias only.</summary>
public sealed class SparkplugAliasEncoderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-spb-alias-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly SparkplugSeries[] Known =
    [
        new("pdu-a01-a", "pdu-a01-a/inlet_temperature", "Cel", Raw: false),
        new("pdu-a01-a", "pdu-a01-a/outlet_current{outlet=1}", "A", Raw: true),
        new("ups1", "ups1/load", "%", Raw: false),
    ];

    private SparkplugEncoder Encoder(bool aliases, List<ModelFact> models, List<SparkplugSeries> known, string name = "bdseq") =>
        new("site1", "gw1", new BdSeqStore(Path.Combine(_dir, name)), () => new GatewayFacts("0.1.0", "x64", "0123abcd", models.ToList()) { Instance = "3f9c0d2a71b84e56" },
            () => [.. known], aliases: aliases);

    private static OutboxEntry Entry(long seq, string device, string body, OutboxKind kind, long time = 1_795_000_000_000) =>
        new(seq, new OutboxRecord(kind, device, time, Encoding.UTF8.GetBytes(body)));

    /// <summary>
    /// One session of everything the encoder does: NBIRTH with facts, a device born with its known series, raw points, an
    /// alert, a series the list does not have (a DBIRTH of its own), a second device, a rebirth with a new model and the
    /// data after it, a device_down (DDEATH) and its next data, and a new connection.
    /// </summary>
    private static List<MqttOutgoing> Session(SparkplugEncoder enc, List<ModelFact> models, List<SparkplugSeries> known)
    {
        var output = new List<MqttOutgoing> { enc.BeginSession() };
        output.AddRange(enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_500)));
        enc.Encode(Entry(1, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 22.5), OutboxKind.Summary), historical: true, output);
        enc.Encode(Entry(2, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=1}", "outlet_current", "A", (1_795_000_000_100, 1.5, 0), (1_795_000_000_200, null, 1), (1_795_000_000_300, 1.7, 3)), OutboxKind.Raw), historical: false, output);
        enc.Encode(Entry(3, "rack-inlet-warm", AlertBody, OutboxKind.Event, 1_795_000_003_000), historical: false, output);
        known.Add(new("pdu-a01-a", "pdu-a01-a/outlet_power{outlet=5}", "kW", Raw: false));
        enc.Encode(Entry(4, "pdu-a01-a", Summary("pdu-a01-a", "outlet_power{outlet=5}", "outlet_power", "kW", 0.4), OutboxKind.Summary), historical: false, output);
        enc.Encode(Entry(5, "pdu-a01-a", Summary("pdu-a01-a", "late{id=9}", "late", "V", 230), OutboxKind.Summary), historical: false, output); // on no list
        enc.Encode(Entry(6, "ups1", Summary("ups1", "load", "load", "%", 40), OutboxKind.Summary), historical: false, output);
        models.Add(new("rul-fan", "2") { State = "available" });
        output.AddRange(enc.Rebirth(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_010_000)));
        enc.Encode(Entry(7, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 23, end: 1_795_000_060_000), OutboxKind.Summary), historical: false, output);
        const string Down = """{"v":1,"type":"event","gateway":"gw1","site":"site1","device":"ups1","series":null,"metric":null,"unit":null,"time_ms":1795000070000,"start_ms":1795000070000,"end_ms":1795000070000,"event":"device_down","severity":"warning","source":"ups1","message":"down","attributes":{}}""";
        enc.Encode(Entry(8, "ups1", Down, OutboxKind.Event, 1_795_000_070_000), historical: false, output);
        enc.Encode(Entry(9, "ups1", Summary("ups1", "load", "load", "%", 41, end: 1_795_000_120_000), OutboxKind.Summary), historical: false, output);
        output.Add(enc.BeginSession());
        output.AddRange(enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_200_000)));
        enc.Encode(Entry(10, "pdu-a01-a", Summary("pdu-a01-a", "late{id=9}", "late", "V", 231, end: 1_795_000_180_000), OutboxKind.Summary), historical: true, output);
        output.Add(enc.Death(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_300_000)));
        return output;
    }

    private (List<MqttOutgoing> Output, List<ModelFact> Models) Run(bool? aliases, string name)
    {
        var models = new List<ModelFact> { new("mv-machine", "1.1.0") { State = "available" } };
        var known = Known.ToList();
        var enc = aliases is { } a ? Encoder(a, models, known, name)
            : new SparkplugEncoder("site1", "gw1", new BdSeqStore(Path.Combine(_dir, name)), () => new GatewayFacts("0.1.0", "x64", "0123abcd", models.ToList()) { Instance = "3f9c0d2a71b84e56" }, () => [.. known]);
        return (Session(enc, models, known), models);
    }

    /// <summary>
    /// Off (the default) changes no byte: the session's every topic and payload hash to what the encoder produced before
    /// aliases existed (captured from commit c8ca0af with this same session), with the option left out and with it false.
    /// </summary>
    [Fact]
    public void Without_aliases_every_birth_data_and_death_is_the_bytes_it_was_before_aliases()
    {
        const string Before = "A77EDFFDB9EB561A8347436C56D3DD3B8BCBFF31F300EFAB180D69FA9FF76A70";
        foreach (var aliases in new bool?[] { null, false })
        {
            var (output, _) = Run(aliases, $"off-{aliases}");
            var text = string.Join("\n", output.Select(m => $"{m.Topic} {m.Retain} {Convert.ToHexString(m.Payload)}"));
            Assert.Equal(Before, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))));
            Assert.All(output.SelectMany(m => Payload.Parser.ParseFrom(m.Payload).Metrics), m => Assert.False(m.HasAlias));
        }
    }

    [Fact]
    public void With_aliases_births_declare_name_and_alias_and_data_carries_the_alias_only_through_rebirths_and_reconnects()
    {
        var (output, _) = Run(aliases: true, "on");
        var named = Run(aliases: false, "off").Output;
        var host = new SparkplugAliasHost();
        foreach (var m in output)
        {
            host.Take(new Received(m.Topic, m.Payload, m.Retain)); // fails on a data name, an undeclared alias, an alias reused
        }

        // The same messages as without aliases, and every data metric resolves to the one sent by name.
        Assert.Equal(named.Select(m => m.Topic), output.Select(m => m.Topic));
        var namedData = named.Where(m => m.Topic.Contains("DATA/", StringComparison.Ordinal)).Select(m => Payload.Parser.ParseFrom(m.Payload)).ToList();
        Assert.Equal(namedData, host.Data.Select(d => d.Resolved));
        Assert.Equal(3, host.NodeBirths);

        // Unique across the node and both devices, and for the whole process: the new model's facts took a new alias at
        // the rebirth, every other metric kept its own.
        Assert.Equal(host.Ever.Count, host.Ever.Values.Distinct().Count());
        var nbirths = output.Where(m => m.Topic.EndsWith("/NBIRTH/gw1", StringComparison.Ordinal)).Select(m => Payload.Parser.ParseFrom(m.Payload).Metrics).ToList();
        Assert.DoesNotContain(nbirths[0], m => m.Name.StartsWith("edgetwin/facts/models/rul-fan/", StringComparison.Ordinal));
        Assert.Contains(nbirths[1], m => m.Name == "edgetwin/facts/models/rul-fan/version" && m.Alias > nbirths[0].Max(x => x.Alias));
        Assert.Equal(nbirths[1].Select(m => (m.Name, m.Alias)), nbirths[2].Select(m => (m.Name, m.Alias)));
        Assert.Equal(SparkplugEncoder.RebirthAlias, nbirths[0].Single(m => m.Name == SparkplugEncoder.RebirthMetric).Alias);

        // The will and the clean stop's NDEATH keep bdSeq by name: a host matches them without a birth.
        Assert.All(output.Where(m => m.Topic.EndsWith("/NDEATH/gw1", StringComparison.Ordinal)), m =>
            Assert.Equal("bdSeq", Assert.Single(Payload.Parser.ParseFrom(m.Payload).Metrics).Name));
    }

    [Fact]
    public void An_ncmd_by_alias_asks_for_a_rebirth_or_the_next_server_only_with_aliases_on()
    {
        Payload Command(ulong alias)
        {
            var p = new Payload { Timestamp = 1 };
            p.Metrics.Add(new Payload.Types.Metric { Alias = alias, Timestamp = 1, Datatype = 11, BooleanValue = true });
            return p;
        }

        Assert.Equal(NodeCommands.Rebirth, SparkplugEncoder.ReadCommand(Command(SparkplugEncoder.RebirthAlias).ToByteArray(), aliases: true));
        Assert.Equal(NodeCommands.NextServer, SparkplugEncoder.ReadCommand(Command(SparkplugEncoder.NextServerAlias).ToByteArray(), aliases: true));
        Assert.Equal(NodeCommands.None, SparkplugEncoder.ReadCommand(Command(5).ToByteArray(), aliases: true)); // edgetwin/seq: not writable
        Assert.Equal(NodeCommands.None, SparkplugEncoder.ReadCommand(Command(SparkplugEncoder.RebirthAlias).ToByteArray(), aliases: false));
    }
}
