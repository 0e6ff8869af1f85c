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
        var e = new EdgeEvent(
            EdgeEventKind.AlertRaised,
            "rack-a01/inlet_temperature",
            DateTimeOffset.FromUnixTimeMilliseconds(1_764_500_003_000),
            EventSeverity.Warning,
            "Inlet 31.2 °C above 27 °C",
            new Dictionary<string, string> { ["threshold"] = "27", ["rule"] = "inlet-high" });

        var record = UplinkBodies.Event(Gw, e, Inlet);

        Assert.Equal(OutboxKind.Event, record.Kind);
        Assert.Equal("rack-a01", record.DeviceId);
        Assert.Equal(
            """{"v":1,"type":"event","gateway":"gw1","site":"dc1","device":"rack-a01","series":"rack-a01/inlet_temperature","metric":"inlet_temperature","unit":"Cel","time_ms":1764500003000,"start_ms":1764500003000,"end_ms":1764500003000,"event":"alert_raised","severity":"warning","source":"rack-a01/inlet_temperature","message":"Inlet 31.2 \u00B0C above 27 \u00B0C","attributes":{"rule":"inlet-high","threshold":"27"}}""",
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
    public void Prediction_body_v1()
    {
        var p = new Prediction("thermal", "rack-a01", "rack.inlet_temperature", "Cel", 1_764_500_000_000, TimeSpan.FromMinutes(10), 31.25, 30.5, 32, 0.9,
            "rack-a01/inlet_temperature", new Dictionary<string, string> { ["time_to_limit_s"] = "420" });

        var record = UplinkBodies.Forecast(Gw, p);

        Assert.Equal(OutboxKind.Prediction, record.Kind);
        Assert.Equal(1_764_500_000_000, record.TimestampUnixMs);
        Assert.Equal(
            """{"v":1,"type":"prediction","gateway":"gw1","site":"dc1","device":"rack-a01","series":"rack-a01/inlet_temperature","unit":"Cel","time_ms":1764500000000,"start_ms":1764500000000,"end_ms":1764500600000,"model":"thermal","quantity":"rack.inlet_temperature","horizon_s":600,"value":31.25,"lower":30.5,"upper":32,"confidence":0.9,"attributes":{"time_to_limit_s":"420"}}""",
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
            UplinkBodies.Forecast(Gw, new Prediction("m", "d", "q", "1", 0, TimeSpan.Zero, 1, null, null, 0.5)),
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
