using System.Text;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Sparkplug;
using EdgeTwin.Uplink.Sparkplug.Proto;
using EdgeTwin.Uplink.Tests.Support;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Uplink.Tests.Sparkplug;

public sealed class SparkplugEncoderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-spb-").FullName;

    private string StateFile => Path.Combine(_dir, "state", "bdseq");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private SparkplugEncoder Encoder() => new("site1", "gw1", new BdSeqStore(StateFile));

    [Fact]
    public async Task Nbirth_carries_the_fleet_facts_read_at_each_birth()
    {
        var models = new List<ModelFact> { new("rul-fan", "1") };
        var enc = new SparkplugEncoder("site1", "gw1", new BdSeqStore(StateFile), () => new GatewayFacts("0.1.0", "x64", "0123abcd", models.ToList()));
        enc.BeginSession();
        var first = Payload.Parser.ParseFrom(enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(5000)).Single().Payload);
        string Metric(Payload p, string name) => p.Metrics.Single(m => m.Name == name).StringValue;
        Assert.Equal("0.1.0", Metric(first, "edgetwin/facts/version"));
        Assert.Equal("x64", Metric(first, "edgetwin/facts/arch"));
        Assert.Equal("0123abcd", Metric(first, "edgetwin/facts/config_sha256"));
        Assert.Equal("1", Metric(first, "edgetwin/facts/models/rul-fan/version"));
        Assert.All(first.Metrics.Where(m => m.Name.StartsWith("edgetwin/facts/", StringComparison.Ordinal)), m => Assert.Equal(12u, m.Datatype));

        // A model hot-reloaded between connections shows in the next NBIRTH.
        models[0] = new("rul-fan", "2");
        enc.BeginSession();
        var second = Payload.Parser.ParseFrom(enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(6000)).Single().Payload);
        Assert.Equal("2", Metric(second, "edgetwin/facts/models/rul-fan/version"));
        var text = await Protoc.DecodeSparkplugAsync(enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(7000)).Single().Payload);
        Assert.Contains("string_value: \"0123abcd\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Rebirth_mid_connection_resends_nbirth_with_the_same_bdseq_and_seq_0_then_dbirth_before_the_next_ddata()
    {
        var models = new List<ModelFact> { new("mv-machine", "1.1.0") { State = "available" } };
        var enc = new SparkplugEncoder("site1", "gw1", new BdSeqStore(StateFile), () => new GatewayFacts("0.1.0", "x64", "0123abcd", models.ToList()));
        enc.BeginSession();
        enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(5000));
        var data = new List<MqttOutgoing>();
        enc.Encode(Entry(1, "drive1", "{\"v\":1}"), historical: false, data);
        Assert.Equal(2, data.Count); // DBIRTH + DDATA

        // A hot reload: the model now serves the previous version, with the reason.
        models[0] = new("mv-machine", "1.1.0") { State = "servingprevious", Error = "manifest.json: models[2].inputs[0].normalisation.mean: must be an array of 3 numbers" };
        var bdSeq = enc.BdSeq;
        var rebirth = Payload.Parser.ParseFrom(enc.Rebirth(DateTimeOffset.FromUnixTimeMilliseconds(6000)).Single().Payload);
        Assert.Equal(0ul, rebirth.Seq);
        Assert.Equal((ulong)bdSeq, rebirth.Metrics.Single(m => m.Name == "bdSeq").LongValue);
        Assert.Equal("servingprevious", rebirth.Metrics.Single(m => m.Name == "edgetwin/facts/models/mv-machine/state").StringValue);
        Assert.StartsWith("manifest.json: models[2]", rebirth.Metrics.Single(m => m.Name == "edgetwin/facts/models/mv-machine/error").StringValue, StringComparison.Ordinal);

        data.Clear();
        enc.Encode(Entry(2, "drive1", "{\"v\":2}"), historical: false, data);
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/drive1", "spBv1.0/site1/DDATA/gw1/drive1"], data.Select(m => m.Topic));
        Assert.Equal(1ul, Payload.Parser.ParseFrom(data[0].Payload).Seq);
    }

    /// <summary>An outbox entry; its kind from the body's <c>type</c> unless given (summary for a bare body).</summary>
    private static OutboxEntry Entry(long seq, string device, string body, long time = 1_795_000_000_123, OutboxKind? kind = null) =>
        new(seq, new OutboxRecord(
            kind ?? (body.Contains("\"type\":\"raw\"", StringComparison.Ordinal) ? OutboxKind.Raw
                : body.Contains("\"type\":\"event\"", StringComparison.Ordinal) ? OutboxKind.Event : OutboxKind.Summary),
            device, time, Encoding.UTF8.GetBytes(body)));

    /// <summary>A summary body as UplinkBodies writes it (Outbox README, "summary").</summary>
    internal static string Summary(string device, string seriesInDevice, string metric, string unit, double mean, string extra = "", long end = 1_795_000_000_000) =>
        $$"""{"v":1,"type":"summary","gateway":"gw1","site":"site1","device":"{{device}}","series":"{{device}}/{{seriesInDevice}}","metric":"{{metric}}","unit":"{{unit}}","time_ms":{{end}},"start_ms":{{end - 10_000}},"end_ms":{{end}},"count":5,"bad":0,"min":{{mean - 1}},"max":{{mean + 1}},"mean":{{mean}},"last":{{mean}},"stddev":0.5{{extra}}}""";

    /// <summary>A raw body (Outbox README, "raw"): points [time_ms, value, quality].</summary>
    internal static string Raw(string device, string seriesInDevice, string metric, string unit, params (long T, double? V, int Q)[] points) =>
        $$"""{"v":1,"type":"raw","gateway":"gw1","site":"site1","device":"{{device}}","series":"{{device}}/{{seriesInDevice}}","metric":"{{metric}}","unit":"{{unit}}","time_ms":{{points[^1].T}},"start_ms":{{points[0].T}},"end_ms":{{points[^1].T}},"points":[{{string.Join(",", points.Select(p => $"[{p.T},{(p.V is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "null")},{p.Q}]"))}}]}""";

    /// <summary>An alert event as the alerting writes it: device and source are the rule (Outbox README, "event").</summary>
    internal const string AlertBody = """{"v":1,"type":"event","gateway":"gw1","site":"site1","device":"rack-inlet-warm","series":null,"unit":null,"time_ms":1795000003000,"start_ms":1795000003000,"end_ms":1795000003000,"event":"alert_raised","severity":"warning","source":"rack-inlet-warm","message":"rack A01: inlet_temperature 25.2 \u00B0C above 24 \u00B0C","attributes":{"key":"pdu-a01-b/inlet_temperature","label.device":"pdu-a01-b","rule":"rack-inlet-warm","state":"firing","value":"25.2"}}""";

    private static List<string> Names(MqttOutgoing m) => [.. Payload.Parser.ParseFrom(m.Payload).Metrics.Select(x => x.Name)];

    [Fact]
    public async Task Will_birth_and_data_decode_with_protoc_and_carry_the_spec_fields()
    {
        var enc = Encoder();
        var will = enc.BeginSession();
        Assert.Equal("spBv1.0/site1/NDEATH/gw1", will.Topic);
        Assert.False(will.Retain);
        var willText = await Protoc.DecodeSparkplugAsync(will.Payload);
        Assert.Contains("name: \"bdSeq\"", willText, StringComparison.Ordinal);
        Assert.Contains("long_value: 0", willText, StringComparison.Ordinal);
        Assert.DoesNotContain("seq: ", willText.Replace("bdSeq", "", StringComparison.Ordinal), StringComparison.Ordinal);

        var birth = enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_001_000)).Single();
        Assert.Equal("spBv1.0/site1/NBIRTH/gw1", birth.Topic);
        var birthText = await Protoc.DecodeSparkplugAsync(birth.Payload);
        Assert.Contains("timestamp: 1795000001000", birthText, StringComparison.Ordinal);
        Assert.Contains("seq: 0", birthText, StringComparison.Ordinal);
        Assert.Contains("name: \"Node Control/Rebirth\"", birthText, StringComparison.Ordinal);

        var out1 = new List<MqttOutgoing>();
        enc.Encode(Entry(41, "rack1-pdu", Summary("rack1-pdu", "current", "current", "A", 4.5), time: 1_795_000_000_123), historical: true, out1);
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/rack1-pdu", "spBv1.0/site1/DDATA/gw1/rack1-pdu"], out1.Select(m => m.Topic));
        var dbirth = await Protoc.DecodeSparkplugAsync(out1[0].Payload);
        Assert.Contains("seq: 1", dbirth, StringComparison.Ordinal);
        Assert.Contains("keys: \"engUnit\"", dbirth, StringComparison.Ordinal);
        Assert.Contains("string_value: \"A\"", dbirth, StringComparison.Ordinal);
        var ddata = await Protoc.DecodeSparkplugAsync(out1[1].Payload);
        Assert.Contains("seq: 2", ddata, StringComparison.Ordinal);
        Assert.Contains("name: \"edgetwin/seq\"", ddata, StringComparison.Ordinal);
        Assert.Contains("long_value: 41", ddata, StringComparison.Ordinal);
        Assert.Contains("name: \"current/mean\"", ddata, StringComparison.Ordinal);
        Assert.Contains("double_value: 4.5", ddata, StringComparison.Ordinal);
        Assert.Contains("name: \"current/partial\"", ddata, StringComparison.Ordinal);
        Assert.Contains("boolean_value: false", ddata, StringComparison.Ordinal);
        Assert.Contains("is_historical: true", ddata, StringComparison.Ordinal);
        Assert.Contains("timestamp: 1795000000123", ddata, StringComparison.Ordinal);
        Assert.DoesNotContain("engUnit", ddata, StringComparison.Ordinal); // units are declared in the DBIRTH only

        // Same device, same series, live: DDATA only, no historical flag.
        var out2 = new List<MqttOutgoing>();
        enc.Encode(Entry(42, "rack1-pdu", Summary("rack1-pdu", "current", "current", "A", 4.6)), historical: false, out2);
        var live = Assert.Single(out2);
        var liveText = await Protoc.DecodeSparkplugAsync(live.Payload);
        Assert.Contains("seq: 3", liveText, StringComparison.Ordinal);
        Assert.DoesNotContain("is_historical", liveText, StringComparison.Ordinal);

        // A series the DBIRTH did not declare triggers a new DBIRTH first, declaring both series.
        var out3 = new List<MqttOutgoing>();
        enc.Encode(Entry(43, "rack1-pdu", Summary("rack1-pdu", "voltage", "voltage", "V", 230)), historical: false, out3);
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/rack1-pdu", "spBv1.0/site1/DDATA/gw1/rack1-pdu"], out3.Select(m => m.Topic));
        Assert.Contains("current/max", Names(out3[0]));
        Assert.Contains("voltage/max", Names(out3[0]));
    }

    [Fact]
    public async Task Regression_sparkplug_metrics_of_two_series_of_one_device_had_the_same_name()
    {
        // Was: every summary of meter1 sent summary/mean, summary/series…, so a tag host kept only the last series.
        var enc = Encoder();
        enc.BeginSession();
        enc.Birth(DateTimeOffset.UnixEpoch);
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(1, "meter1", Summary("meter1", "voltage_l1", "voltage_l1", "V", 230)), false, output);
        enc.Encode(Entry(2, "meter1", Summary("meter1", "outlet_power{outlet=5}", "outlet_power", "kW", 1.5)), false, output);
        enc.Encode(Entry(3, "meter1", Raw("meter1", "outlet_current{outlet=7}", "outlet_current", "A", (1_795_000_000_000, 4.5, 0), (1_795_000_001_000, 4.7, 0))), false, output);
        var data = output.Where(m => m.Topic == "spBv1.0/site1/DDATA/gw1/meter1").Select(Names).ToList();
        Assert.Equal(3, data.Count);
        var expectedSummary = new[] { "count", "bad", "min", "max", "mean", "last", "stddev", "partial", "condensed", "start_ms", "first_ms", "last_ms" };
        Assert.Equal(["edgetwin/seq", .. expectedSummary.Select(s => "voltage_l1/" + s)], data[0]);
        Assert.Equal(["edgetwin/seq", .. expectedSummary.Select(s => "outlet_power{outlet=5}/" + s)], data[1]);
        Assert.Equal(["edgetwin/seq", "outlet_current{outlet=7}", "outlet_current{outlet=7}"], data[2]);
        Assert.Empty(data[0].Skip(1).Intersect(data[1].Skip(1)));

        // The last DBIRTH declares each series' metrics once, datatype and unit included; protoc agrees.
        var birth = Payload.Parser.ParseFrom(output.Last(m => m.Topic.Contains("/DBIRTH/", StringComparison.Ordinal)).Payload);
        Assert.Equal(birth.Metrics.Count, birth.Metrics.Select(m => m.Name).Distinct().Count());
        var mean = birth.Metrics.Single(m => m.Name == "outlet_power{outlet=5}/mean");
        Assert.Equal(10u, mean.Datatype);
        Assert.Equal("kW", mean.Properties.Values[mean.Properties.Keys.IndexOf("engUnit")].StringValue);
        Assert.Equal(4u, birth.Metrics.Single(m => m.Name == "voltage_l1/count").Datatype);
        Assert.Equal(11u, birth.Metrics.Single(m => m.Name == "voltage_l1/partial").Datatype);
        Assert.Equal(13u, birth.Metrics.Single(m => m.Name == "voltage_l1/start_ms").Datatype);
        Assert.Empty(birth.Metrics.Single(m => m.Name == "voltage_l1/count").Properties?.Keys ?? []);
        var raw = birth.Metrics.Single(m => m.Name == "outlet_current{outlet=7}");
        Assert.Equal(4.7, raw.DoubleValue);
        Assert.Equal("A", raw.Properties.Values[raw.Properties.Keys.IndexOf("engUnit")].StringValue);
        var rawData = Payload.Parser.ParseFrom(output[^1].Payload).Metrics.Skip(1).ToList();
        Assert.Equal([1_795_000_000_000ul, 1_795_000_001_000ul], rawData.Select(m => m.Timestamp));
        Assert.Equal([4.5, 4.7], rawData.Select(m => m.DoubleValue));
        var text = await Protoc.DecodeSparkplugAsync(output[^1].Payload);
        Assert.Contains("keys: \"Quality\"", text, StringComparison.Ordinal);
        Assert.Contains("int_value: 192", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_sparkplug_DBIRTH_of_a_pdu_was_resent_when_its_raw_batches_or_optional_members_varied()
    {
        // Was: 5 DBIRTHs of pdu-a01-a in 30 s (16, 38, 39, 40, 42 metrics): raw points were named raw/points/N/…, so a
        // batch with one more point was a new metric, and so was a summary's optional member (partial, first_ms).
        var enc = Encoder();
        enc.BeginSession();
        enc.Birth(DateTimeOffset.UnixEpoch);
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(1, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 22)), false, output);
        enc.Encode(Entry(2, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=1}", "outlet_current", "A", (1000, 1, 0))), false, output);
        Assert.Equal(2, output.Count(m => m.Topic == "spBv1.0/site1/DBIRTH/gw1/pdu-a01-a")); // once per new series
        output.Clear();
        enc.Encode(Entry(3, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=1}", "outlet_current", "A", (2000, 1.5, 0), (3000, null, 4), (4000, 2, 1))), false, output);
        enc.Encode(Entry(4, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 22, ",\"partial\":true,\"first_ms\":1794999991000,\"last_ms\":1794999999000")), false, output);
        enc.Encode(Entry(5, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 22.5, ",\"condensed\":true")), false, output);
        enc.Encode(Entry(6, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=1}", "outlet_current", "A", (5000, 2, 0), (6000, 2, 0))), false, output);
        Assert.All(output, m => Assert.Contains("/DDATA/", m.Topic, StringComparison.Ordinal));
        Assert.Equal(4, output.Count);

        // A stale point keeps its value; a device error has none: both say so in the Sparkplug quality.
        var points = Payload.Parser.ParseFrom(output[0].Payload).Metrics.Skip(1).ToList();
        Assert.True(points[1].IsNull);
        Assert.Equal([192u, 0u, 500u], points.Select(p => p.Properties.Values[p.Properties.Keys.IndexOf("Quality")].IntValue));
        Assert.Equal([0u, 4u, 1u], points.Select(p => p.Properties.Values[p.Properties.Keys.IndexOf("edgetwin_quality")].IntValue));
        var partial = Payload.Parser.ParseFrom(output[1].Payload).Metrics;
        Assert.True(partial.Single(m => m.Name == "inlet_temperature/partial").BooleanValue);
        Assert.Equal(1_794_999_991_000ul, partial.Single(m => m.Name == "inlet_temperature/first_ms").LongValue);
        Assert.True(Payload.Parser.ParseFrom(output[2].Payload).Metrics.Single(m => m.Name == "inlet_temperature/first_ms").IsNull);

        // A reconnect: one DBIRTH per device, declaring every series it has had, not one per series again.
        enc.BeginSession();
        enc.Birth(DateTimeOffset.UnixEpoch);
        output.Clear();
        enc.Encode(Entry(7, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=1}", "outlet_current", "A", (7000, 2, 0))), false, output);
        enc.Encode(Entry(8, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 23)), false, output);
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/pdu-a01-a", "spBv1.0/site1/DDATA/gw1/pdu-a01-a", "spBv1.0/site1/DDATA/gw1/pdu-a01-a"], output.Select(m => m.Topic));
        var names = Names(output[0]);
        Assert.Contains("inlet_temperature/mean", names);
        Assert.Contains("outlet_current{outlet=1}", names);
        Assert.Equal(1 + 12 + 1, names.Count);
    }

    [Fact]
    public void Regression_sparkplug_DBIRTH_was_resent_for_every_new_series_of_a_pdu()
    {
        // Was (and still is without a series list): a PDU's summaries close together at its first window and each new
        // series brought a DBIRTH — 41 to 49 per PDU in the first 10 s of a 4-rack sim. With the agent's series list,
        // the first DBIRTH declares them all.
        var known = new List<SparkplugSeries>
        {
            new("pdu-a01-a", "pdu-a01-a/inlet_temperature", "Cel", Raw: false),
            new("pdu-a01-a", "pdu-a01-a/outlet_current{outlet=1}", "A", Raw: true),
            new("pdu-a01-a", "pdu-a01-a/outlet_power{outlet=1}", "kW", Raw: false),
            new("ups1", "ups1/load", "%", Raw: false),
        };
        var reads = 0;
        var enc = new SparkplugEncoder("site1", "gw1", new BdSeqStore(StateFile), knownSeries: () =>
        {
            reads++;
            return [.. known];
        });
        enc.BeginSession();
        enc.Birth(DateTimeOffset.UnixEpoch);
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(1, "pdu-a01-a", Summary("pdu-a01-a", "inlet_temperature", "inlet_temperature", "Cel", 22)), false, output);
        enc.Encode(Entry(2, "pdu-a01-a", Summary("pdu-a01-a", "outlet_power{outlet=1}", "outlet_power", "kW", 0.4)), false, output);
        enc.Encode(Entry(3, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=1}", "outlet_current", "A", (1000, 1.5, 0))), false, output);
        enc.Encode(Entry(4, "ups1", Summary("ups1", "load", "load", "%", 40)), false, output);
        Assert.Equal(["DBIRTH/gw1/pdu-a01-a", "DDATA/gw1/pdu-a01-a", "DDATA/gw1/pdu-a01-a", "DDATA/gw1/pdu-a01-a", "DBIRTH/gw1/ups1", "DDATA/gw1/ups1"],
            output.Select(m => m.Topic["spBv1.0/site1/".Length..]));
        Assert.Equal(1, reads);
        var birth = Payload.Parser.ParseFrom(output[0].Payload).Metrics.ToDictionary(m => m.Name);
        Assert.Equal(1 + 12 + 12 + 1, birth.Count);
        Assert.Equal(22, birth["inlet_temperature/mean"].DoubleValue);
        Assert.True(birth["outlet_power{outlet=1}/mean"].IsNull);
        Assert.Equal(10u, birth["outlet_power{outlet=1}/mean"].Datatype);
        Assert.Equal("kW", birth["outlet_power{outlet=1}/mean"].Properties.Values.Single().StringValue);
        Assert.True(birth["outlet_current{outlet=1}"].IsNull);
        Assert.Equal("A", birth["outlet_current{outlet=1}"].Properties.Values.Single().StringValue);
        Assert.Equal(4u, birth["outlet_power{outlet=1}/count"].Datatype);

        // A series added later (a config reload): the list is read again, one DBIRTH, then data only.
        known.Add(new("pdu-a01-a", "pdu-a01-a/outlet_current{outlet=2}", "A", Raw: true));
        output.Clear();
        enc.Encode(Entry(5, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=2}", "outlet_current", "A", (2000, 0.5, 0))), false, output);
        enc.Encode(Entry(6, "pdu-a01-a", Raw("pdu-a01-a", "outlet_current{outlet=2}", "outlet_current", "A", (3000, 0.6, 0))), false, output);
        Assert.Equal(["DBIRTH/gw1/pdu-a01-a", "DDATA/gw1/pdu-a01-a", "DDATA/gw1/pdu-a01-a"], output.Select(m => m.Topic["spBv1.0/site1/".Length..]));
        Assert.Equal(2, reads);
    }

    [Fact]
    public async Task Regression_alert_rules_became_sparkplug_devices()
    {
        // Was: spBv1.0/sim/DBIRTH/gw-sim/rack-inlet-warm (a rule as a device) and DDATA/gw-sim/outbox for data_gap.
        var enc = Encoder();
        enc.BeginSession();
        var nbirth = Payload.Parser.ParseFrom(enc.Birth(DateTimeOffset.UnixEpoch).Single().Payload);
        var declared = nbirth.Metrics.ToDictionary(m => m.Name);
        foreach (var member in new[] { "event", "severity", "source", "device", "series", "metric", "unit", "message", "attributes" })
        {
            Assert.Equal(12u, declared["edgetwin/event/" + member].Datatype);
            Assert.True(declared["edgetwin/event/" + member].IsNull);
        }

        Assert.Equal(13u, declared["edgetwin/event/start_ms"].Datatype);
        Assert.Equal(8u, declared["edgetwin/seq"].Datatype);

        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(10, "rack-inlet-warm", AlertBody, time: 1_795_000_003_000, kind: OutboxKind.Event), historical: true, output);
        const string Gap = """{"v":1,"type":"event","gateway":"gw1","site":"site1","device":"outbox","series":null,"unit":null,"time_ms":1795000004000,"start_ms":1795000000000,"end_ms":1795000004000,"event":"data_gap","severity":"warning","source":"outbox","message":"gap","attributes":{"reason":"unclean_stop"}}""";
        enc.Encode(Entry(11, "outbox", Gap, time: 1_795_000_004_000, kind: OutboxKind.Event), historical: false, output);
        Assert.Equal(["spBv1.0/site1/NDATA/gw1", "spBv1.0/site1/NDATA/gw1"], output.Select(m => m.Topic));
        var alert = Payload.Parser.ParseFrom(output[0].Payload);
        Assert.Equal(1ul, alert.Seq);
        var byName = alert.Metrics.ToDictionary(m => m.Name);
        Assert.Equal(["edgetwin/seq", .. declared.Keys.Where(k => k.StartsWith("edgetwin/event/", StringComparison.Ordinal))], alert.Metrics.Select(m => m.Name));
        Assert.Equal(10ul, byName["edgetwin/seq"].LongValue);
        Assert.Equal("alert_raised", byName["edgetwin/event/event"].StringValue);
        Assert.Equal("rack-inlet-warm", byName["edgetwin/event/device"].StringValue);
        Assert.True(byName["edgetwin/event/series"].IsNull);
        Assert.Equal("rack A01: inlet_temperature 25.2 \u00B0C above 24 \u00B0C", byName["edgetwin/event/message"].StringValue);
        using var attributes = System.Text.Json.JsonDocument.Parse(byName["edgetwin/event/attributes"].StringValue);
        Assert.Equal("pdu-a01-b", attributes.RootElement.GetProperty("label.device").GetString());
        Assert.Equal(1_795_000_003_000ul, byName["edgetwin/event/start_ms"].LongValue);
        Assert.All(alert.Metrics, m => Assert.True(m.IsHistorical));
        Assert.All(alert.Metrics, m => Assert.Equal(1_795_000_003_000ul, m.Timestamp));
        var gapText = await Protoc.DecodeSparkplugAsync(output[1].Payload);
        Assert.Contains("string_value: \"data_gap\"", gapText, StringComparison.Ordinal);
        Assert.Contains("long_value: 1795000000000", gapText, StringComparison.Ordinal);
    }

    [Fact]
    public void Fixed_capture_in_both_directions()
    {
        var enc = Encoder();
        enc.BeginSession();
        enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(0));
        enc.Encode(Entry(1, "d", Raw("d", "t", "t", "Cel", (500, 1, 0))), false, []);
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(2, "d", Raw("d", "t", "t", "Cel", (1000, 2.5, 1)), time: 1000, kind: OutboxKind.Raw), historical: true, output);
        var ddata = Assert.Single(output);
        // The same bytes as protoc --encode of: timestamp 1000, seq 3, metrics edgetwin/seq (UInt64 2) and t (Double 2.5,
        // properties Quality Int32 500 = stale, edgetwin_quality Int32 1), each with timestamp 1000 and is_historical.
        const string Capture = "08E80712170A0C656467657477696E2F73657118E807200828015802123D0A017418E807200A28014A280A075175616C6974790A10656467657477696E5F7175616C6974791205080318F4031204080318016900000000000004401803";
        Assert.Equal(Capture, Convert.ToHexString(ddata.Payload));
        var expected = new Payload { Timestamp = 1000, Seq = 3 };
        expected.Metrics.Add(new Payload.Types.Metric { Name = "edgetwin/seq", Timestamp = 1000, Datatype = 8, IsHistorical = true, LongValue = 2 });
        var point = new Payload.Types.Metric { Name = "t", Timestamp = 1000, Datatype = 10, IsHistorical = true, DoubleValue = 2.5, Properties = new() };
        point.Properties.Keys.Add("Quality");
        point.Properties.Values.Add(new Payload.Types.PropertyValue { Type = 3, IntValue = 500 });
        point.Properties.Keys.Add("edgetwin_quality");
        point.Properties.Values.Add(new Payload.Types.PropertyValue { Type = 3, IntValue = 1 });
        expected.Metrics.Add(point);
        Assert.Equal(expected, Payload.Parser.ParseFrom(Convert.FromHexString(Capture)));
    }

    [Fact]
    public void Seq_runs_0_to_255_and_wraps()
    {
        var enc = Encoder();
        enc.BeginSession();
        var seqs = new List<ulong> { Payload.Parser.ParseFrom(enc.Birth(DateTimeOffset.UnixEpoch)[0].Payload).Seq };
        for (var i = 0; i < 600; i++)
        {
            var output = new List<MqttOutgoing>();
            enc.Encode(Entry(i + 1, "d", "{\"v\":1}"), false, output);
            seqs.AddRange(output.Select(m => Payload.Parser.ParseFrom(m.Payload).Seq));
        }

        for (var i = 0; i < seqs.Count; i++)
        {
            Assert.Equal((ulong)(i % 256), seqs[i]);
        }
    }

    [Fact]
    public void BdSeq_is_kept_across_restarts_and_wraps_after_255()
    {
        Assert.Equal(0ul, Payload.Parser.ParseFrom(Encoder().BeginSession().Payload).Metrics[0].LongValue);
        Assert.Equal(1ul, Payload.Parser.ParseFrom(Encoder().BeginSession().Payload).Metrics[0].LongValue);
        var enc = Encoder();
        enc.BeginSession();
        Assert.Equal(2, enc.BdSeq);
        // The NBIRTH of a connection carries the same bdSeq as its will.
        Assert.Equal(2ul, Payload.Parser.ParseFrom(enc.Birth(DateTimeOffset.UnixEpoch)[0].Payload).Metrics.Single(m => m.Name == "bdSeq").LongValue);

        File.WriteAllText(StateFile, "255\n");
        Assert.Equal(0, new BdSeqStore(StateFile).Next());
    }

    [Fact]
    public void Regression_a_bdseq_file_on_storage_turned_read_only_failed_every_sparkplug_connect()
    {
        // The bdSeq write threw out of BeginSession: on a failed SD card the uplink never connected again although the
        // broker was up and the outbox went on in memory.
        using var mount = ReadOnlyBindMount.Create(_dir, source => File.WriteAllText(Path.Combine(source, "bdseq"), "41\n"));
        var log = new ListLogger();
        var store = new BdSeqStore(Path.Combine(mount.Dir, "bdseq"), log);
        var enc = new SparkplugEncoder("site1", "gw1", store);
        Assert.Equal(42ul, Payload.Parser.ParseFrom(enc.BeginSession().Payload).Metrics[0].LongValue);
        Assert.Equal(43ul, Payload.Parser.ParseFrom(enc.BeginSession().Payload).Metrics[0].LongValue); // goes on in memory
        Assert.Equal(43ul, Payload.Parser.ParseFrom(enc.Birth(DateTimeOffset.UnixEpoch)[0].Payload).Metrics.Single(m => m.Name == "bdSeq").LongValue);
        var error = Assert.Single(log.At(Microsoft.Extensions.Logging.LogLevel.Error)); // once per cause
        Assert.Contains("Sparkplug bdSeq 42 could not be saved to", error, StringComparison.Ordinal);
        Assert.Contains("Read-only file system", error, StringComparison.Ordinal);
        Assert.Equal("41", File.ReadAllText(Path.Combine(mount.Dir, "bdseq")).Trim());
    }

    [Fact]
    public void A_corrupt_state_file_starts_over_at_zero()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(StateFile)!);
        File.WriteAllText(StateFile, "garbage");
        Assert.Equal(0, new BdSeqStore(StateFile).Next());
        Assert.Equal("0", File.ReadAllText(StateFile).Trim());
    }

    [Fact]
    public void A_body_that_is_not_json_is_refused()
    {
        var enc = Encoder();
        enc.BeginSession();
        Assert.Throws<EdgeTwin.Uplink.Payloads.InvalidBodyException>(() => enc.Encode(Entry(1, "d", "nope"), false, []));
    }

    [Property(MaxTest = 100)]
    public Property Numbers_booleans_and_strings_survive_the_round_trip(NormalFloat number, bool flag, NonNull<string> text, bool historical)
    {
        var enc = Encoder();
        enc.BeginSession();
        var summary = System.Text.Json.JsonSerializer.Serialize(new { v = 1, type = "summary", device = "dev/1", series = "dev/1/x", mean = number.Get, partial = flag });
        var evt = System.Text.Json.JsonSerializer.Serialize(new { v = 1, type = "event", device = "dev/1", @event = "trap", message = text.Get });
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(5, "dev/1", summary), historical, output);
        enc.Encode(Entry(6, "dev/1", evt, kind: OutboxKind.Event), historical, output);
        var data = Payload.Parser.ParseFrom(output[^2].Payload);
        var node = Payload.Parser.ParseFrom(output[^1].Payload);
        var byName = data.Metrics.ToDictionary(m => m.Name);
        return (output[^2].Topic == "spBv1.0/site1/DDATA/gw1/dev_1"
                && output[^1].Topic == "spBv1.0/site1/NDATA/gw1"
                && byName["x/mean"].DoubleValue == number.Get
                && byName["x/partial"].BooleanValue == flag
                && node.Metrics.Single(m => m.Name == "edgetwin/event/message").StringValue == text.Get
                && byName["edgetwin/seq"].LongValue == 5
                && data.Metrics.Concat(node.Metrics).All(m => m.IsHistorical == historical)).ToProperty();
    }
}
