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

    private static OutboxEntry Entry(long seq, string device, string body, long time = 1_795_000_000_123, OutboxKind kind = OutboxKind.Summary) =>
        new(seq, new OutboxRecord(kind, device, time, Encoding.UTF8.GetBytes(body)));

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
        enc.Encode(Entry(41, "rack1-pdu", "{\"series\":\"current\",\"mean\":4.5,\"ok\":true}"), historical: true, out1);
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/rack1-pdu", "spBv1.0/site1/DDATA/gw1/rack1-pdu"], out1.Select(m => m.Topic));
        var dbirth = await Protoc.DecodeSparkplugAsync(out1[0].Payload);
        Assert.Contains("seq: 1", dbirth, StringComparison.Ordinal);
        var ddata = await Protoc.DecodeSparkplugAsync(out1[1].Payload);
        Assert.Contains("seq: 2", ddata, StringComparison.Ordinal);
        Assert.Contains("name: \"edgetwin/seq\"", ddata, StringComparison.Ordinal);
        Assert.Contains("long_value: 41", ddata, StringComparison.Ordinal);
        Assert.Contains("name: \"summary/mean\"", ddata, StringComparison.Ordinal);
        Assert.Contains("double_value: 4.5", ddata, StringComparison.Ordinal);
        Assert.Contains("name: \"summary/series\"", ddata, StringComparison.Ordinal);
        Assert.Contains("string_value: \"current\"", ddata, StringComparison.Ordinal);
        Assert.Contains("boolean_value: true", ddata, StringComparison.Ordinal);
        Assert.Contains("is_historical: true", ddata, StringComparison.Ordinal);
        Assert.Contains("timestamp: 1795000000123", ddata, StringComparison.Ordinal);

        // Same device, same metrics, live: DDATA only, no historical flag.
        var out2 = new List<MqttOutgoing>();
        enc.Encode(Entry(42, "rack1-pdu", "{\"series\":\"current\",\"mean\":4.6,\"ok\":false}"), historical: false, out2);
        var live = Assert.Single(out2);
        var liveText = await Protoc.DecodeSparkplugAsync(live.Payload);
        Assert.Contains("seq: 3", liveText, StringComparison.Ordinal);
        Assert.DoesNotContain("is_historical", liveText, StringComparison.Ordinal);

        // A metric the DBIRTH did not declare triggers a new DBIRTH first.
        var out3 = new List<MqttOutgoing>();
        enc.Encode(Entry(43, "rack1-pdu", "{\"series\":\"current\",\"mean\":4.6,\"ok\":false,\"max\":7}"), historical: false, out3);
        Assert.Equal(["spBv1.0/site1/DBIRTH/gw1/rack1-pdu", "spBv1.0/site1/DDATA/gw1/rack1-pdu"], out3.Select(m => m.Topic));
        Assert.Contains("name: \"summary/max\"", await Protoc.DecodeSparkplugAsync(out3[0].Payload), StringComparison.Ordinal);
    }

    [Fact]
    public void Fixed_capture_in_both_directions()
    {
        var enc = Encoder();
        enc.BeginSession();
        enc.Birth(DateTimeOffset.FromUnixTimeMilliseconds(0));
        enc.Encode(Entry(1, "d", "{\"v\":1}"), false, []);
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(2, "d", "{\"v\":2.5}", time: 1000), historical: true, output);
        var ddata = Assert.Single(output);
        // Checked with protoc --decode: timestamp 1000, seq 3, metrics edgetwin/seq (UInt64 2) and summary/v
        // (Double 2.5), each with timestamp 1000 and is_historical.
        const string Capture = "08E80712170A0C656467657477696E2F73657118E807200828015802121B0A0973756D6D6172792F7618E807200A28016900000000000004401803";
        Assert.Equal(Capture, Convert.ToHexString(ddata.Payload));
        var expected = new Payload { Timestamp = 1000, Seq = 3 };
        expected.Metrics.Add(new Payload.Types.Metric { Name = "edgetwin/seq", Timestamp = 1000, Datatype = 8, IsHistorical = true, LongValue = 2 });
        expected.Metrics.Add(new Payload.Types.Metric { Name = "summary/v", Timestamp = 1000, Datatype = 10, IsHistorical = true, DoubleValue = 2.5 });
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
        var body = System.Text.Json.JsonSerializer.Serialize(new { n = number.Get, b = flag, s = text.Get });
        var output = new List<MqttOutgoing>();
        enc.Encode(Entry(5, "dev/1", body), historical, output);
        var data = Payload.Parser.ParseFrom(output[^1].Payload);
        var byName = data.Metrics.ToDictionary(m => m.Name);
        return (output[^1].Topic == "spBv1.0/site1/DDATA/gw1/dev_1"
                && byName["summary/n"].DoubleValue == number.Get
                && byName["summary/b"].BooleanValue == flag
                && byName["summary/s"].StringValue == text.Get
                && byName["edgetwin/seq"].LongValue == 5
                && data.Metrics.All(m => m.IsHistorical == historical)).ToProperty();
    }
}
