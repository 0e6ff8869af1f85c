using System.Text;
using System.Text.Json;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.Outbox.Tests.Summaries;

/// <summary>Fixed captures of every v1 body: the uplink README documents these exact bytes.</summary>
public sealed class UplinkBodiesTests
{
    internal static readonly UplinkIdentity Gw = new("gw1", "dc1");
    internal static readonly SeriesDescriptor Outlet = new("pdu-a01-a", "outlet_current", "A", MetricKind.Gauge, "pdu.outlet_current", [new("outlet", "7")]);
    internal static readonly SeriesDescriptor Inlet = new("rack-a01", "inlet_temperature", "Cel");

    internal static string Text(OutboxRecord r) => Encoding.UTF8.GetString(r.Payload.Span);

    /// <summary>A one-sample summary of PDU <c>n % 16</c>'s total power, for tests that need many distinct entries.</summary>
    internal static OutboxRecord PduSummary(long timeMs, int n)
    {
        var acc = default(WindowAccumulator);
        acc.Reset(timeMs - 10_000, timeMs);
        acc.Add(n, timeMs - 1, good: true);
        return UplinkBodies.Summary(Gw, new SeriesDescriptor($"pdu-a{n % 16:00}", "total_power", "W"), acc);
    }

    [Fact]
    public void Summary_body_v1()
    {
        var acc = default(WindowAccumulator);
        acc.Reset(1_764_500_040_000, 1_764_500_100_000);
        acc.Add(4.0, 1_764_500_041_000, good: true);
        acc.Add(6.0, 1_764_500_051_000, good: true);
        acc.Add(99, 1_764_500_055_000, good: false);
        acc.Add(5.0, 1_764_500_061_000, good: true);

        var record = UplinkBodies.Summary(Gw, Outlet, acc);

        Assert.Equal(OutboxKind.Summary, record.Kind);
        Assert.Equal("pdu-a01-a", record.DeviceId);
        Assert.Equal(1_764_500_100_000, record.TimestampUnixMs);
        Assert.Equal(
            """{"v":1,"type":"summary","gateway":"gw1","site":"dc1","device":"pdu-a01-a","series":"pdu-a01-a/outlet_current{outlet=7}","metric":"outlet_current","unit":"A","role":"pdu.outlet_current","tags":{"outlet":"7"},"time_ms":1764500100000,"start_ms":1764500040000,"end_ms":1764500100000,"count":3,"bad":1,"min":4,"max":6,"mean":5,"last":5,"stddev":0.816496580927726}""",
            Text(record));
    }

    [Fact]
    public void Partial_summary_body_says_which_stretch_of_its_window_it_saw()
    {
        var acc = default(WindowAccumulator);
        acc.Reset(1_764_500_040_000, 1_764_500_100_000);
        acc.Add(4.0, 1_764_500_071_000, good: true);
        acc.Add(99, 1_764_500_081_000, good: false);
        acc.Add(6.0, 1_764_500_091_000, good: true);

        Assert.EndsWith(
            """
            "count":2,"bad":1,"min":4,"max":6,"mean":5,"last":6,"stddev":1,"partial":true,"first_ms":1764500071000,"last_ms":1764500091000}
            """,
            Text(UplinkBodies.Summary(Gw, Outlet, acc, partial: true)),
            StringComparison.Ordinal);
    }

    [Fact]
    public void A_data_gap_over_a_span_has_its_start_and_end()
    {
        var gap = new EdgeTwin.Core.Events.EdgeEvent(EdgeTwin.Core.Events.EdgeEventKind.DataGap, "outbox", DateTimeOffset.FromUnixTimeMilliseconds(1_764_500_095_000), EdgeTwin.Core.Events.EventSeverity.Warning, "gap");
        var json = Text(UplinkBodies.Event(Gw, gap, spanStartMs: 1_764_500_020_000));
        Assert.Contains("\"time_ms\":1764500095000,\"start_ms\":1764500020000,\"end_ms\":1764500095000,", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Summary_body_of_a_window_without_good_values_has_null_statistics()
    {
        var acc = default(WindowAccumulator);
        acc.Reset(0, 60_000);
        acc.Add(1, 10, good: false);
        var json = Text(UplinkBodies.Summary(Gw, Inlet, acc, condensed: true));
        Assert.EndsWith("""
            "count":0,"bad":1,"min":null,"max":null,"mean":null,"last":null,"stddev":null,"condensed":true}
            """, json, StringComparison.Ordinal);
    }

    [Fact]
    public void Raw_body_v1()
    {
        var record = UplinkBodies.Raw(Gw, Inlet, [new RawPoint(1_764_500_001_000, 23.5, 0), new RawPoint(1_764_500_002_000, double.NaN, 4)]);

        Assert.Equal(OutboxKind.Raw, record.Kind);
        Assert.Equal(1_764_500_002_000, record.TimestampUnixMs);
        Assert.Equal(
            """{"v":1,"type":"raw","gateway":"gw1","site":"dc1","device":"rack-a01","series":"rack-a01/inlet_temperature","metric":"inlet_temperature","unit":"Cel","time_ms":1764500002000,"start_ms":1764500001000,"end_ms":1764500002000,"points":[[1764500001000,23.5,0],[1764500002000,null,4]]}""",
            Text(record));
    }

    [Fact]
    public void Event_body_v1()
    {
        // An event whose source is a known series (anomaly): series, metric and unit filled, device = the series' device.
        var e = new EdgeEvent(
            EdgeEventKind.Anomaly,
            "rack-a01/inlet_temperature",
            DateTimeOffset.FromUnixTimeMilliseconds(1_764_500_003_000),
            EventSeverity.Warning,
            "anomaly on rack-a01/inlet_temperature: score 0.973 (value 31.2 Cel)",
            // The attributes AnomalyStage writes (the Outbox README's example was "model":"hst" without model_version,
            // which the uplink message schema requires of a model's event).
            new Dictionary<string, string>
            {
                ["score"] = "0.973", ["series"] = "rack-a01/inlet_temperature", ["device"] = "rack-a01", ["metric"] = "inlet_temperature",
                ["value"] = "31.2", ["unit"] = "Cel", ["threshold"] = "0.9", ["model"] = "streaming-anomaly", ["model_version"] = "1.0", ["version"] = "1.0",
            });

        var record = UplinkBodies.Event(Gw, e, Inlet);

        Assert.Equal(OutboxKind.Event, record.Kind);
        Assert.Equal("rack-a01", record.DeviceId);
        Assert.Equal(
            """{"v":1,"type":"event","gateway":"gw1","site":"dc1","device":"rack-a01","series":"rack-a01/inlet_temperature","metric":"inlet_temperature","unit":"Cel","time_ms":1764500003000,"start_ms":1764500003000,"end_ms":1764500003000,"event":"anomaly","severity":"warning","source":"rack-a01/inlet_temperature","message":"anomaly on rack-a01/inlet_temperature: score 0.973 (value 31.2 Cel)","attributes":{"device":"rack-a01","metric":"inlet_temperature","model":"streaming-anomaly","model_version":"1.0","score":"0.973","series":"rack-a01/inlet_temperature","threshold":"0.9","unit":"Cel","value":"31.2","version":"1.0"}}""",
            Text(record));
    }

    /// <summary>
    /// An alert as the alert manager sends it: the source is the rule, the event names the device and series it is about
    /// (<see cref="EdgeEvent.Device"/>, <see cref="EdgeEvent.Series"/>) and carries the rule's limit, clear level,
    /// direction and units as attributes. This is the Outbox README's example.
    /// </summary>
    [Fact]
    public void Alert_event_body_v1()
    {
        var record = UplinkBodies.Event(Gw, AlertRaised, Inlet);

        Assert.Equal("rack-a01", record.DeviceId);
        Assert.Equal(
            """{"v":1,"type":"event","gateway":"gw1","site":"dc1","device":"rack-a01","series":"rack-a01/inlet_temperature","metric":"inlet_temperature","unit":"Cel","time_ms":1764500003000,"start_ms":1764500003000,"end_ms":1764500003000,"event":"alert_raised","severity":"warning","source":"rack-inlet-warm","message":"rack A01 (room1, site dc1): inlet_temperature 27.2 \u00B0C above 27 \u00B0C since 10:55:03 UTC","attributes":{"alert_id":"3","clear_level":"26","device":"rack-a01","direction":"above","during_outage":"false","fired_at":"2025-11-30T10:55:03.000Z","for_s":"60","key":"rack-a01/inlet_temperature","label.device":"rack-a01","label.rack":"A01","label.room":"room1","label.rule":"rack-inlet-warm","label.severity":"warning","metric":"inlet_temperature","peak":"27.2","rule":"rack-inlet-warm","rule_type":"threshold","series":"rack-a01/inlet_temperature","severity":"warning","state":"firing","threshold":"27","time":"2025-11-30T10:55:03.000Z","unit":"Cel","uplink":"online","value":"27.2","value_unit":"Cel"}}""",
            Text(record));
    }

    internal static readonly EdgeEvent AlertRaised = new(
        EdgeEventKind.AlertRaised,
        "rack-inlet-warm",
        DateTimeOffset.FromUnixTimeMilliseconds(1_764_500_003_000),
        EventSeverity.Warning,
        "rack A01 (room1, site dc1): inlet_temperature 27.2 °C above 27 °C since 10:55:03 UTC",
        new Dictionary<string, string>
        {
            ["alert_id"] = "3", ["rule"] = "rack-inlet-warm", ["key"] = "rack-a01/inlet_temperature", ["state"] = "firing",
            ["value"] = "27.2", ["peak"] = "27.2", ["time"] = "2025-11-30T10:55:03.000Z", ["fired_at"] = "2025-11-30T10:55:03.000Z", ["uplink"] = "online",
            ["during_outage"] = "false", ["label.device"] = "rack-a01", ["label.rack"] = "A01", ["label.room"] = "room1",
            ["label.rule"] = "rack-inlet-warm", ["label.severity"] = "warning",
            ["rule_type"] = "threshold", ["severity"] = "warning", ["device"] = "rack-a01", ["series"] = "rack-a01/inlet_temperature",
            ["metric"] = "inlet_temperature", ["unit"] = "Cel", ["value_unit"] = "Cel", ["for_s"] = "60", ["direction"] = "above",
            ["threshold"] = "27", ["clear_level"] = "26",
        })
    { Device = "rack-a01", Series = "rack-a01/inlet_temperature" };

    /// <summary>
    /// Regression (consumer audit F2): the body's device (the envelope's, the Kafka key) was the rule name and
    /// <c>series</c>/<c>unit</c> were null, because the feeder looked the series up by the event's source (the rule).
    /// Without a registered descriptor the event's own device and series key still go out.
    /// </summary>
    [Fact]
    public void Regression_alert_event_device_was_the_rule_name()
    {
        var unregistered = UplinkBodies.Event(Gw, AlertRaised);
        Assert.Equal("rack-a01", unregistered.DeviceId);
        using var doc = JsonDocument.Parse(unregistered.Payload);
        Assert.Equal("rack-a01", doc.RootElement.GetProperty("device").GetString());
        Assert.Equal("rack-a01/inlet_temperature", doc.RootElement.GetProperty("series").GetString());
        Assert.Equal("rack-inlet-warm", doc.RootElement.GetProperty("source").GetString());
    }

    /// <summary>
    /// Regression (consumer audit F8): the default System.Text.Json encoder escaped HTML-sensitive ASCII (<c>+</c> as
    /// <c>\u002B</c>, <c>'</c> as <c>\u0027</c>, also <c>&lt; &gt; &amp; `</c>); the README promises only non-ASCII is
    /// escaped. What JSON requires (quote, backslash, control characters) is still escaped, and non-ASCII still is.
    /// </summary>
    [Fact]
    public void Regression_json_escaped_plus_and_apostrophe()
    {
        var e = new EdgeEvent(
            EdgeEventKind.Prediction,
            "line/line1",
            DateTimeOffset.FromUnixTimeMilliseconds(7),
            EventSeverity.Info,
            "S3's cycle <4.2 s> & `fast`: \"ok\" \\ 25 °C\n\t\u0001\u007F 😀",
            new Dictionary<string, string> { ["shift.end"] = "2026-12-02T22:00:00+00:00", ["a+b"] = "x'y" })
        { Device = "line1" };

        var text = Text(UplinkBodies.Event(Gw, e));

        Assert.Equal(
            """{"v":1,"type":"event","gateway":"gw1","site":"dc1","device":"line1","series":null,"unit":null,"time_ms":7,"start_ms":7,"end_ms":7,"event":"prediction","severity":"info","source":"line/line1","message":"S3's cycle <4.2 s> & `fast`: \"ok\" \\ 25 \u00B0C\n\t\u0001\u007F \uD83D\uDE00","attributes":{"a+b":"x'y","shift.end":"2026-12-02T22:00:00+00:00"}}""",
            text);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(e.Message, doc.RootElement.GetProperty("message").GetString());
        Assert.All(Encoding.UTF8.GetBytes(text), b => Assert.InRange(b, (byte)0x20, (byte)0x7E));
    }

    /// <summary>The escaping check runs on every string of every body: with the encoder set once it allocates nothing.</summary>
    [Fact]
    public void Wire_encoder_allocates_nothing_per_string()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(64 * 1024);
        using var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = WireJsonEncoder.Instance });
        void Write()
        {
            buffer.ResetWrittenCount();
            w.Reset(buffer);
            w.WriteStartObject();
            for (var i = 0; i < 100; i++)
            {
                w.WriteString("series", "pdu-a01-a/outlet_current{outlet=7}");
                w.WriteString("version"u8, "0.1.0+7f08cf5be37a4cafdbbb0eb42cf25034fa53867e"u8);
                w.WriteString("message", "S3's cycle: 25 °C \"hot\"");
            }

            w.WriteEndObject();
            w.Flush();
        }

        Write(); // warm-up
        var before = GC.GetAllocatedBytesForCurrentThread();
        Write();
        Write();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// A forecast as it is really sent: kind <c>event</c>, <c>"event":"prediction"</c>, figures in string attributes
    /// (here the line twin's quality drift warning). Regression: the line twin's device was "line" (the source up to
    /// its first '/'), one key for every line of a site; the event's <see cref="EdgeEvent.Device"/> makes it the line id.
    /// </summary>
    [Fact]
    public void Prediction_event_body_v1()
    {
        var e = new EdgeEvent(
            EdgeEventKind.Prediction,
            "line/line1/quality/S2",
            DateTimeOffset.FromUnixTimeMilliseconds(1_764_500_000_000),
            EventSeverity.Warning,
            "line line1 station S2: parts likely to fail inspection: predicted reject rate 8.2 % over the last 50 parts (long-run 2.1 %, observed in the window 6.0 %)",
            new Dictionary<string, string>
            {
                ["line"] = "line1", ["station"] = "S2", ["state"] = "active", ["predicted_reject_rate"] = "0.082", ["observed_reject_rate"] = "0.06",
                ["long_run_reject_rate"] = "0.021", ["window_parts"] = "50", ["model"] = "line", ["model_version"] = "1.0",
            })
        { Device = "line1" };

        var record = UplinkBodies.Event(Gw, e);

        Assert.Equal(OutboxKind.Event, record.Kind);
        Assert.Equal("line1", record.DeviceId);
        Assert.Equal(
            """{"v":1,"type":"event","gateway":"gw1","site":"dc1","device":"line1","series":null,"unit":null,"time_ms":1764500000000,"start_ms":1764500000000,"end_ms":1764500000000,"event":"prediction","severity":"warning","source":"line/line1/quality/S2","message":"line line1 station S2: parts likely to fail inspection: predicted reject rate 8.2 % over the last 50 parts (long-run 2.1 %, observed in the window 6.0 %)","attributes":{"line":"line1","long_run_reject_rate":"0.021","model":"line","model_version":"1.0","observed_reject_rate":"0.06","predicted_reject_rate":"0.082","state":"active","station":"S2","window_parts":"50"}}""",
            Text(record));
    }

    [Fact]
    public void Event_without_a_series_takes_the_device_from_its_source()
    {
        var e = new EdgeEvent(EdgeEventKind.DeviceDown, "pdu-a01-a", DateTimeOffset.FromUnixTimeMilliseconds(5), EventSeverity.Critical, "no answer for 30 s");
        var record = UplinkBodies.Event(Gw, e);
        Assert.Equal("pdu-a01-a", record.DeviceId);
        Assert.Equal(
            """{"v":1,"type":"event","gateway":"gw1","site":"dc1","device":"pdu-a01-a","series":null,"unit":null,"time_ms":5,"start_ms":5,"end_ms":5,"event":"device_down","severity":"critical","source":"pdu-a01-a","message":"no answer for 30 s","attributes":{}}""",
            Text(record));
    }

    [Fact]
    public void Every_body_starts_with_the_version_so_an_uplink_can_splice_its_envelope()
    {
        var acc = default(WindowAccumulator);
        acc.Reset(0, 1);
        foreach (var r in new[]
        {
            UplinkBodies.Summary(Gw, Inlet, acc),
            UplinkBodies.Raw(Gw, Inlet, [new RawPoint(1, 1, 0)]),
            UplinkBodies.Event(Gw, new EdgeEvent(EdgeEventKind.DataGap, "outbox", DateTimeOffset.UnixEpoch, EventSeverity.Warning, "gap")),
            UplinkBodies.Event(Gw, new EdgeEvent(EdgeEventKind.Prediction, "line/l1", DateTimeOffset.UnixEpoch, EventSeverity.Info, "state") { Device = "l1" }),
        })
        {
            Assert.StartsWith("{\"v\":1,", Text(r), StringComparison.Ordinal);
            using var doc = JsonDocument.Parse(r.Payload);
            foreach (var field in new[] { "gateway", "site", "device", "series", "unit", "time_ms", "start_ms", "end_ms" })
            {
                Assert.True(doc.RootElement.TryGetProperty(field, out _), $"{field} missing in {Text(r)}");
            }
        }
    }

    [Fact]
    public void Raw_bodies_read_back_with_header_and_points()
    {
        var record = UplinkBodies.Raw(Gw, Outlet, [new RawPoint(10, 1.5, 0), new RawPoint(20, double.NaN, 2), new RawPoint(30, -3e-7, 0)]);
        var points = new List<RawPoint>();
        Assert.True(RawBodyReader.TryRead(record.Payload.Span, out var header, points));
        Assert.Equal(Gw, header!.Identity);
        Assert.Equal(Outlet.Key, header.Series.Key);
        Assert.Equal("A", header.Series.Unit);
        Assert.Equal("pdu.outlet_current", header.Series.Role);
        Assert.Equal(3, points.Count);
        Assert.Equal(new RawPoint(10, 1.5, 0), points[0]);
        Assert.True(double.IsNaN(points[1].Value));
        Assert.Equal(2, points[1].Quality);
        Assert.Equal(-3e-7, points[2].Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("{\"v\":1,\"type\":\"summary\",\"gateway\":\"g\",\"site\":\"s\",\"device\":\"d\",\"metric\":\"m\",\"points\":[]}")]
    [InlineData("{\"v\":2,\"type\":\"raw\",\"gateway\":\"g\",\"site\":\"s\",\"device\":\"d\",\"metric\":\"m\",\"points\":[]}")]
    [InlineData("{\"v\":1,\"type\":\"raw\",\"gateway\":\"g\",\"site\":\"s\",\"device\":\"d\",\"metric\":\"m\",\"points\":[[1,2]]}")]
    [InlineData("{\"v\":1,\"type\":\"raw\",\"gateway\":\"g\",\"site\":\"s\",\"device\":\"d\",\"metric\":\"m\",\"points\":[[1,2,0]")]
    [InlineData("{\"v\":1,\"type\":\"raw\",\"gateway\":\"g\",\"site\":\"s\",\"metric\":\"m\",\"points\":[[1,2,0]]}")]
    public void Anything_but_a_v1_raw_body_is_refused_without_an_exception(string json)
    {
        var points = new List<RawPoint> { new(1, 1, 0) };
        Assert.False(RawBodyReader.TryRead(Encoding.UTF8.GetBytes(json), out var header, points));
        Assert.Null(header);
        Assert.Single(points);
    }
}
