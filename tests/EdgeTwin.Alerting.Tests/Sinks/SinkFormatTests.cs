using System.Net.Sockets;
using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>What the message sinks write, byte for byte, through the real sinks: a webhook to a local HTTP listener, syslog to a Unix datagram socket.</summary>
public sealed class SinkFormatTests
{
    // The group's message goes out 30 s after the first change in it (group_interval): the flush time.
    private static readonly DateTimeOffset Flush = new(2026, 12, 2, 9, 37, 48, 991, TimeSpan.Zero);

    private static readonly Dictionary<string, string> Place = new(StringComparer.Ordinal)
    {
        ["device"] = "pdu-a02-a", ["rack"] = "A02", ["room"] = "room1", ["rule"] = "inlet-hot", ["severity"] = "critical",
    };

    private static AlertSnapshot Fired(long id, DateTimeOffset fired) => new(
        id, "inlet-hot", "pdu-a02-a/inlet_temperature", AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 32.3,
        "rack A02 (room1, site sim): inlet_temperature 32.3 °C above 32 °C since 09:37:19 UTC", Place, [],
        fired, null, null, false, Flush) { Peak = 32.3, PeakText = "32.3 °C" };

    private static AlertSnapshot Cleared(long id, DateTimeOffset fired, DateTimeOffset resolved) => new(
        id, "inlet-hot", "pdu-a02-a/inlet_temperature", AlertStatus.Resolved, AlertState.Resolved, EventSeverity.Critical, 29.9,
        "rack A02 (room1, site sim): inlet_temperature 29.9 °C, back below 30 °C (clear level); peak 34.1 °C", Place, [],
        fired, resolved, null, false, Flush) { Peak = 34.1, PeakText = "34.1 °C" };

    [Fact]
    public async Task Regression_the_webhook_json_wrote_times_with_plus_00_00_and_escaped_u002B()
    {
        await using var server = new TinyHttpServer();
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Retries = 0, Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "sim", "gw-sim"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var fired = new DateTimeOffset(2026, 12, 2, 9, 37, 19, 827, TimeSpan.Zero).AddTicks(6991);
        var message = new AlertNotification("room=room1,severity=critical", [Cleared(9, fired, fired.AddSeconds(5))], Flush.AddTicks(1234));
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Delivered == 1, "the POST");

        // One shape for every time, as in the outbox's alert events: UTC, milliseconds, Z (field names unchanged).
        Assert.Equal(
            """{"v":1,"site":"sim","gateway":"gw-sim","group":"room=room1,severity=critical","time":"2026-12-02T09:37:48.991Z","severity":"critical","alerts":[{"id":9,"rule":"inlet-hot","key":"pdu-a02-a/inlet_temperature","status":"resolved","severity":"critical","value":29.9,"peak":34.1,"summary":"rack A02 (room1, site sim): inlet_temperature 29.9 \u00B0C, back below 30 \u00B0C (clear level); peak 34.1 \u00B0C","fired_at":"2026-12-02T09:37:19.827Z","resolved_at":"2026-12-02T09:37:24.827Z","acked_at":null,"flapping":false,"labels":{"device":"pdu-a02-a","rack":"A02","room":"room1","rule":"inlet-hot","severity":"critical"}}]}""",
            Encoding.UTF8.GetString(Assert.Single(server.Hits).Body));
    }

    [Fact]
    public async Task Regression_the_sinks_showed_values_with_binary_noise_such_as_110_31249999999999()
    {
        // pdu-a01-a at 17.65 A on its 16 A breaker, as the shipped pdu-phase-current-over-breaker saw it on the simulator:
        // the summary said 110.313 % but the journal had value="110.31249999999999", the webhook/MQTT JSON
        // "value":110.31249999999999 and Alertmanager's annotation "value":"110.31249999999999" (its "peak" had the unit).
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: over-breaker, type: threshold, match: { role: pdu.phase_current }, above: 100, clear_below: 95, severity: critical }
            """);
        var current = h.Series("pdu-r01", "phase_current", "pdu.phase_current", "%");
        h.Feed(current, 17.65 * 100 / 16);
        await Wait.UntilAsync(() => h.Sink.All.Count > 0, "the firing message");
        var alert = h.Sink.All[0];

        var line = new SyslogSink(new SyslogSinkConfig { Name = "journal", Socket = "/dev/null", Facility = 16, AppName = "edgetwin" }, "dc1").Format(alert);
        Assert.Contains(" value=\"110.3125\" peak=\"110.3125\" ", line, StringComparison.Ordinal);
        var json = Encoding.UTF8.GetString(AlertJson.Encode("dc1", "gw1", new AlertNotification("g", [alert], Flush), [alert]));
        Assert.Contains("\"value\":110.3125,\"peak\":110.3125,", json, StringComparison.Ordinal);
        using (var doc = System.Text.Json.JsonDocument.Parse(json))
        {
            Assert.Equal(110.3125, doc.RootElement.GetProperty("alerts")[0].GetProperty("value").GetDouble());
        }

        var manager = Encoding.UTF8.GetString(AlertmanagerJson.Encode("dc1", "gw1", [alert]));
        Assert.Contains("\"value\":\"110.313 %\",\"peak\":\"110.313 %\"", manager, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_alert_bodies_escaped_printable_ascii_such_as_gt_plus_and_apostrophe()
    {
        // The webhook and local MQTT bodies used the default encoder: "> 32" came as "\u003E 32", "+5 K" as "\u002B5 K".
        const string summary = "rack A02: inlet > 32 °C & rising, it's 'hot' +5 K <now>";
        var alert = Fired(3, Flush.AddSeconds(-29)) with { Summary = summary };
        var json = Encoding.UTF8.GetString(AlertJson.Encode("site+1", "gw's", new AlertNotification("g", [alert], Flush), [alert]));

        Assert.Contains("\"summary\":\"rack A02: inlet > 32 \\u00B0C & rising, it's 'hot' +5 K <now>\"", json, StringComparison.Ordinal);
        Assert.Contains("\"site\":\"site+1\",\"gateway\":\"gw's\"", json, StringComparison.Ordinal);
        Assert.True(json.All(c => c is >= ' ' and < (char)0x7F), "the body is printable 7-bit ASCII");
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal(summary, doc.RootElement.GetProperty("alerts")[0].GetProperty("summary").GetString());
    }

    [Fact]
    public async Task Regression_the_webhook_signature_covered_only_the_body_so_a_captured_alert_could_be_replayed()
    {
        // The same message as above on a fixed clock: the headers byte for byte. The expected values come from Python's
        // hmac module over the exact body; X-EdgeTwin-Signature stays as it was for existing receivers.
        await using var server = new TinyHttpServer();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 37, 49, 500, TimeSpan.Zero));
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Secret = "s3cret", Retries = 0, Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "sim", "gw-sim", time), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var fired = new DateTimeOffset(2026, 12, 2, 9, 37, 19, 827, TimeSpan.Zero).AddTicks(6991);
        var message = new AlertNotification("room=room1,severity=critical", [Cleared(9, fired, fired.AddSeconds(5))], Flush.AddTicks(1234));
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Delivered == 1, "the POST");

        var hit = Assert.Single(server.Hits);
        Assert.Equal("1796204269", hit.Headers["X-EdgeTwin-Timestamp"]);
        Assert.Equal("sha256=8092e47196d212191f508940b87a455f5563ea93642a61718fc5013863e89e77", hit.Headers["X-EdgeTwin-Signature"]);
        Assert.Equal("t=1796204269,v1=1eac76c4ea83a04b114a1e1085fe40f213c3e244171af026d5a0ccef8c61b5c7", hit.Headers["X-EdgeTwin-Signature-256"]);
        Assert.Equal(hit.Headers["X-EdgeTwin-Signature-256"], WebhookSink.Sign256(1796204269, hit.Body, "s3cret"));
        Assert.False(hit.Headers.ContainsKey("Authorization"));
    }

    [Fact]
    public async Task Regression_journal_lines_carried_the_group_flush_time_instead_of_the_change_time()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-syslog-").FullName;
        var path = Path.Combine(dir, "log.sock");
        try
        {
            using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            receiver.Bind(new UnixDomainSocketEndPoint(path));
            var config = new SyslogSinkConfig { Name = "journal", Socket = path, Facility = 16, AppName = "edgetwin" };
            await using var runner = new SinkRunner(new SyslogSink(config, "sim"), config);
            await runner.StartAsync(TestContext.Current.CancellationToken);

            // A flapping alert: fired at .8, cleared a second later, fired again; all three in one group flush.
            var t0 = new DateTimeOffset(2026, 12, 2, 9, 37, 19, 800, TimeSpan.Zero);
            var acked = Fired(9, t0.AddSeconds(2)) with { Status = AlertStatus.Acknowledged, AckedAt = t0.AddSeconds(3) };
            var message = new AlertNotification("room=room1,severity=critical", [Fired(9, t0), Cleared(9, t0, t0.AddSeconds(1)), Fired(9, t0.AddSeconds(2)), acked], Flush);
            runner.Enqueue(message, message.Alerts);

            var lines = new List<string>();
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            for (var i = 0; i < 4; i++)
            {
                lines.Add(Encoding.UTF8.GetString(buffer, 0, await receiver.ReceiveAsync(buffer, SocketFlags.None, cts.Token)));
            }

            var head = $" {Environment.MachineName} edgetwin {Environment.ProcessId} ";
            Assert.Equal(
                [
                    "<130>1 2026-12-02T09:37:19.800Z" + head + "ALERT_FIRING [edgetwin@32473 id=\"9\" rule=\"inlet-hot\" key=\"pdu-a02-a/inlet_temperature\" status=\"firing\" severity=\"critical\" value=\"32.3\" peak=\"32.3\" site=\"sim\" room=\"room1\" rack=\"A02\" device=\"pdu-a02-a\" fired_at=\"2026-12-02T09:37:19.800Z\"] rack A02 (room1, site sim): inlet_temperature 32.3 °C above 32 °C since 09:37:19 UTC",
                    "<133>1 2026-12-02T09:37:20.800Z" + head + "ALERT_RESOLVED [edgetwin@32473 id=\"9\" rule=\"inlet-hot\" key=\"pdu-a02-a/inlet_temperature\" status=\"resolved\" severity=\"critical\" value=\"29.9\" peak=\"34.1\" site=\"sim\" room=\"room1\" rack=\"A02\" device=\"pdu-a02-a\" fired_at=\"2026-12-02T09:37:19.800Z\" resolved_at=\"2026-12-02T09:37:20.800Z\"] rack A02 (room1, site sim): inlet_temperature 29.9 °C, back below 30 °C (clear level); peak 34.1 °C",
                    "<130>1 2026-12-02T09:37:21.800Z" + head + "ALERT_FIRING [edgetwin@32473 id=\"9\" rule=\"inlet-hot\" key=\"pdu-a02-a/inlet_temperature\" status=\"firing\" severity=\"critical\" value=\"32.3\" peak=\"32.3\" site=\"sim\" room=\"room1\" rack=\"A02\" device=\"pdu-a02-a\" fired_at=\"2026-12-02T09:37:21.800Z\"] rack A02 (room1, site sim): inlet_temperature 32.3 °C above 32 °C since 09:37:19 UTC",
                    "<134>1 2026-12-02T09:37:22.800Z" + head + "ALERT_ACK [edgetwin@32473 id=\"9\" rule=\"inlet-hot\" key=\"pdu-a02-a/inlet_temperature\" status=\"acknowledged\" severity=\"critical\" value=\"32.3\" peak=\"32.3\" site=\"sim\" room=\"room1\" rack=\"A02\" device=\"pdu-a02-a\" fired_at=\"2026-12-02T09:37:21.800Z\" acked_at=\"2026-12-02T09:37:22.800Z\"] rack A02 (room1, site sim): inlet_temperature 32.3 °C above 32 °C since 09:37:19 UTC",
                ],
                lines);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task The_service_journals_each_change_of_a_flapping_alert_at_its_own_time_with_the_default_summary()
    {
        // The audit's pdu-power-noisy: raised, cleared and raised again within one group_interval; the clear and the
        // second raise wait for the group's flush 30 s later and were both stamped with it.
        var dir = Directory.CreateTempSubdirectory("edgetwin-syslog-").FullName;
        var path = Path.Combine(dir, "log.sock");
        try
        {
            using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            receiver.Bind(new UnixDomainSocketEndPoint(path));
            var config = Yaml.Valid("""
                alerts:
                  group_by: [room]
                  group_interval: 30s
                  rules:
                    - { name: pdu-power-noisy, type: threshold, match: { metric: total_power }, above: 2.19, severity: warning }
                """);
            var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 37, 19, 800, TimeSpan.Zero));
            var registry = new SeriesRegistry();
            var journal = new SyslogSinkConfig { Name = "journal", Socket = path, Facility = 16, AppName = "edgetwin" };
            await using var service = new AlertingService(config, Harness.Site, registry, new CollectingEvents(), new AlertingOptions
            {
                StorePath = Path.Combine(dir, "alerts.db"),
                TimeProvider = time,
                RunConnectivityProbe = false,
                ExtraSinks = [(new SyslogSink(journal, Harness.Site.SiteId), journal)],
            });
            await service.StartAsync(TestContext.Current.CancellationToken);
            var power = registry.GetOrAdd(new SeriesDescriptor("pdu-r01", "total_power", "kW", MetricKind.Gauge, "pdu.total_power"));
            void Feed(double v) => service.Process([new Sample(power, time.GetUtcNow().ToUnixTimeMilliseconds(), v, SampleQuality.Good)]);
            void Advance(TimeSpan by)
            {
                for (var left = by; left > TimeSpan.Zero; left -= TimeSpan.FromMilliseconds(250))
                {
                    time.Advance(left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
                }
            }

            Feed(2.2);
            Advance(TimeSpan.FromSeconds(1));
            Feed(2.1);
            Advance(TimeSpan.FromSeconds(1));
            Feed(2.2);
            Advance(TimeSpan.FromSeconds(31));

            var lines = new List<string>();
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            for (var i = 0; i < 3; i++)
            {
                lines.Add(Encoding.UTF8.GetString(buffer, 0, await receiver.ReceiveAsync(buffer, SocketFlags.None, cts.Token)));
            }

            var head = $" {Environment.MachineName} edgetwin {Environment.ProcessId} ";
            // A new store numbers its alerts from the clock at its start (Alerting README, "Alert ids across a lost store").
            var firstId = new DateTimeOffset(2026, 12, 2, 9, 37, 19, 800, TimeSpan.Zero).ToUnixTimeMilliseconds();
            var Sd = $"[edgetwin@32473 id=\"{firstId}\" rule=\"pdu-power-noisy\" key=\"pdu-r01/total_power\" ";
            const string Place = " site=\"dc1\" room=\"room1\" rack=\"r01\" device=\"pdu-r01\" ";
            Assert.Equal(
                [
                    "<132>1 2026-12-02T09:37:19.800Z" + head + "ALERT_FIRING " + Sd + "status=\"firing\" severity=\"warning\" value=\"2.2\" peak=\"2.2\"" + Place + "fired_at=\"2026-12-02T09:37:19.800Z\"] rack r01 (room1, site dc1): total_power 2.2 kW above 2.19 kW since 09:37:19 UTC",
                    "<133>1 2026-12-02T09:37:20.800Z" + head + "ALERT_RESOLVED " + Sd + "status=\"resolved\" severity=\"warning\" value=\"2.1\" peak=\"2.2\"" + Place + "fired_at=\"2026-12-02T09:37:19.800Z\" resolved_at=\"2026-12-02T09:37:20.800Z\"] rack r01 (room1, site dc1): total_power 2.1 kW, back below 2.19 kW (clear level); peak 2.2 kW",
                    "<132>1 2026-12-02T09:37:21.800Z" + head + "ALERT_FIRING " + Sd + "status=\"firing\" severity=\"warning\" value=\"2.2\" peak=\"2.2\"" + Place + "fired_at=\"2026-12-02T09:37:21.800Z\"] rack r01 (room1, site dc1): total_power 2.2 kW above 2.19 kW since 09:37:21 UTC",
                ],
                lines);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
