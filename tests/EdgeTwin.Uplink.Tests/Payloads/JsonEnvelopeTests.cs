using System.Text;
using System.Text.Json;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Payloads;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Uplink.Tests.Payloads;

public sealed class JsonEnvelopeTests
{
    private static readonly UplinkIdentity Id = new("site1", "gw1");

    [Fact]
    public void Encodes_the_fixed_capture_byte_for_byte()
    {
        var entry = new OutboxEntry(42, new OutboxRecord(OutboxKind.Summary, "rack1-pdu", 1_795_000_000_123,
            Encoding.UTF8.GetBytes("{\"series\":\"rack1-pdu/current\",\"count\":60,\"mean\":4.5}")));
        const string expected =
            "{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"seq\":42,\"kind\":\"summary\",\"device\":\"rack1-pdu\"," +
            "\"time\":\"2026-11-18T11:06:40.123Z\",\"historical\":true,\"body\":{\"series\":\"rack1-pdu/current\",\"count\":60,\"mean\":4.5}}";
        Assert.Equal(expected, Encoding.UTF8.GetString(JsonEnvelope.Encode(Id, entry, historical: true)));
    }

    [Fact]
    public void Decodes_the_fixed_capture_into_its_fields()
    {
        const string capture =
            "{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"seq\":7,\"kind\":\"twin_state\",\"device\":\"crac-2\"," +
            "\"time\":\"2026-11-18T11:06:40.000Z\",\"historical\":false,\"body\":{\"x\":[1,2]}}";
        var encoded = JsonEnvelope.Encode(Id, new OutboxEntry(7, new OutboxRecord(OutboxKind.TwinState, "crac-2", 1_795_000_000_000, "{\"x\":[1,2]}"u8.ToArray())), false);
        Assert.Equal(capture, Encoding.UTF8.GetString(encoded));
        using var doc = JsonDocument.Parse(capture);
        Assert.Equal(JsonEnvelope.SchemaVersion, doc.RootElement.GetProperty("v").GetInt32());
        Assert.Equal("twin_state", doc.RootElement.GetProperty("kind").GetString());
    }

    [Fact]
    public void A_body_that_is_not_json_is_refused_naming_the_entry()
    {
        var entry = new OutboxEntry(9, new OutboxRecord(OutboxKind.Event, "ups-1", 0, "{not json"u8.ToArray()));
        var ex = Assert.Throws<InvalidBodyException>(() => JsonEnvelope.Encode(Id, entry, false));
        Assert.Contains("entry 9", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void After_a_refused_body_the_next_envelope_on_the_same_thread_is_whole()
    {
        // The encoder reuses its writer per thread; a half-written envelope must not leak into the next one.
        var bad = new OutboxEntry(9, new OutboxRecord(OutboxKind.Event, "ups-1", 0, "{\"a\":[1,"u8.ToArray()));
        Assert.Throws<InvalidBodyException>(() => JsonEnvelope.Encode(Id, bad, false));
        var good = new OutboxEntry(10, new OutboxRecord(OutboxKind.Event, "ups-1", 0, "{\"a\":1}"u8.ToArray()));
        Assert.Equal(
            "{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"seq\":10,\"kind\":\"event\",\"device\":\"ups-1\",\"time\":\"1970-01-01T00:00:00.000Z\",\"historical\":false,\"body\":{\"a\":1}}",
            Encoding.UTF8.GetString(JsonEnvelope.Encode(Id, good, false)));
    }

    [Fact]
    public void Status_birth_and_will()
    {
        Assert.Equal("{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"kind\":\"status\",\"state\":\"offline\"}", Encoding.UTF8.GetString(JsonEnvelope.Status(Id, false, null)));
        Assert.Equal("{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"kind\":\"status\",\"state\":\"online\",\"time\":\"1970-01-01T00:00:01.000Z\"}",
            Encoding.UTF8.GetString(JsonEnvelope.Status(Id, true, DateTimeOffset.FromUnixTimeMilliseconds(1000))));
    }

    /// <summary>
    /// A central consumer that takes all of a gateway's topics as one stream (an MQTT-to-Kafka bridge of <c>edgetwin/#</c>)
    /// and files each message by its <c>kind</c> found none in the birth, the will, the clean stop or the progress status.
    /// </summary>
    [Fact]
    public void Regression_a_status_message_did_not_say_what_kind_of_message_it_was()
    {
        var facts = new GatewayFacts("0.1.0", "x64", new string('c', 64), []);
        byte[][] statuses =
        [
            JsonEnvelope.Status(Id, false, null),
            JsonEnvelope.Status(Id, false, DateTimeOffset.FromUnixTimeMilliseconds(1000)),
            JsonEnvelope.Status(Id, true, DateTimeOffset.FromUnixTimeMilliseconds(1000), facts),
            JsonEnvelope.Status(Id, true, DateTimeOffset.FromUnixTimeMilliseconds(1000), facts, new EdgeTwin.Uplink.Delivery.UplinkProgress(5, 9, 4)),
        ];
        foreach (var status in statuses)
        {
            using var doc = JsonDocument.Parse(status);
            Assert.Equal("status", doc.RootElement.GetProperty("kind").GetString());
            Assert.Equal(1, doc.RootElement.GetProperty("v").GetInt32());
        }
    }

    /// <summary>
    /// An old gateway revived next to its replacement (same config, so the same facts) published births the centre could
    /// not tell apart; each agent process now names itself in <c>facts.instance</c>.
    /// </summary>
    [Fact]
    public void Regression_two_gateways_with_one_identity_published_identical_births()
    {
        var facts = new GatewayFacts("0.1.0", "x64", new string('c', 64), []);
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1000);
        var old = Encoding.UTF8.GetString(JsonEnvelope.Status(Id, true, at, facts with { Instance = "00112233aabbccdd" }));
        var replacement = Encoding.UTF8.GetString(JsonEnvelope.Status(Id, true, at, facts with { Instance = "99887766ffeeddcc" }));
        Assert.Equal(
            "{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"kind\":\"status\",\"state\":\"online\",\"time\":\"1970-01-01T00:00:01.000Z\",\"facts\":{\"version\":\"0.1.0\",\"arch\":\"x64\",\"config_sha256\":\"" + new string('c', 64) + "\",\"instance\":\"00112233aabbccdd\",\"models\":[]}}",
            old);
        Assert.NotEqual(old, replacement);
        Assert.DoesNotContain("instance", Encoding.UTF8.GetString(JsonEnvelope.Status(Id, true, at, facts)), StringComparison.Ordinal); // not announced: as before
    }

    [Fact]
    public void Birth_carries_the_fleet_facts_and_the_will_does_not()
    {
        var facts = new GatewayFacts("0.1.0", "arm64", new string('a', 64), [new ModelFact("rul-fan", "2026.11.30-1"), new ModelFact("rack-ae", "3")]);
        Assert.Equal(
            "{\"v\":1,\"site\":\"site1\",\"gateway\":\"gw1\",\"kind\":\"status\",\"state\":\"online\",\"time\":\"1970-01-01T00:00:01.000Z\"," +
            "\"facts\":{\"version\":\"0.1.0\",\"arch\":\"arm64\",\"config_sha256\":\"" + new string('a', 64) + "\"," +
            "\"models\":[{\"name\":\"rul-fan\",\"version\":\"2026.11.30-1\"},{\"name\":\"rack-ae\",\"version\":\"3\"}]}}",
            Encoding.UTF8.GetString(JsonEnvelope.Status(Id, true, DateTimeOffset.FromUnixTimeMilliseconds(1000), facts)));
        Assert.DoesNotContain("facts", Encoding.UTF8.GetString(JsonEnvelope.Status(Id, false, null)), StringComparison.Ordinal);
    }

    /// <summary>
    /// Consumer audit F8: the birth said <c>"version":"0.1.0\u002B7f08cf5…"</c> (the README's example: <c>0.1.0+…</c>)
    /// and a device id with an apostrophe became <c>\u0027</c> in the envelope: printable ASCII is written as it is.
    /// </summary>
    [Fact]
    public void Regression_json_escaped_plus_and_apostrophe()
    {
        var facts = new GatewayFacts("0.1.0+7f08cf5be37a4cafdbbb0eb42cf25034fa53867e", "x64", new string('b', 64), [new ModelFact("rul-fan", "2026.11.30+1")]);
        var birth = Encoding.UTF8.GetString(JsonEnvelope.Status(Id, true, DateTimeOffset.FromUnixTimeMilliseconds(1000), facts));
        Assert.Contains("\"version\":\"0.1.0+7f08cf5be37a4cafdbbb0eb42cf25034fa53867e\"", birth, StringComparison.Ordinal);
        Assert.Contains("\"version\":\"2026.11.30+1\"", birth, StringComparison.Ordinal);

        var entry = new OutboxEntry(9, new OutboxRecord(OutboxKind.Event, "o'brien<1>&co", 1_795_000_000_000, "{\"v\":1}"u8.ToArray()));
        var envelope = Encoding.UTF8.GetString(JsonEnvelope.Encode(Id, entry, historical: false));
        Assert.Contains("\"device\":\"o'brien<1>&co\"", envelope, StringComparison.Ordinal);

        // Non-ASCII is still escaped (README), and what JSON needs.
        var odd = new OutboxEntry(10, new OutboxRecord(OutboxKind.Event, "r\u00e4ck \"1\"", 1_795_000_000_000, "{\"v\":1}"u8.ToArray()));
        var text = Encoding.UTF8.GetString(JsonEnvelope.Encode(Id, odd, historical: false));
        Assert.Contains("\"device\":\"r\\u00E4ck \\\"1\\\"\"", text, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal("r\u00e4ck \"1\"", doc.RootElement.GetProperty("device").GetString());
    }

    [Property(MaxTest = 200)]
    public Property Any_device_sequence_and_body_round_trip(NonNegativeInt seq, string? device, NormalFloat value, bool historical, long time)
    {
        device ??= "";
        var t = Math.Clamp(time, 0, 253_402_300_799_000);
        var body = JsonSerializer.SerializeToUtf8Bytes(new { value = value.Get, device });
        var entry = new OutboxEntry(seq.Get, new OutboxRecord(OutboxKind.Prediction, device, t, body));
        using var doc = JsonDocument.Parse(JsonEnvelope.Encode(Id, entry, historical));
        var r = doc.RootElement;
        return (r.GetProperty("seq").GetInt64() == seq.Get
                && r.GetProperty("device").GetString() == device
                && r.GetProperty("historical").GetBoolean() == historical
                && DateTimeOffset.Parse(r.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds() == t
                && r.GetProperty("body").GetProperty("value").GetDouble() == value.Get
                && r.GetProperty("body").GetProperty("device").GetString() == device).ToProperty();
    }
}
