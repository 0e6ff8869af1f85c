using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>
/// The webhook's <c>format: alertmanager</c> and <c>format: slack</c> bodies byte for byte, through the real sink to a
/// local HTTP listener (the path, the headers and the body as received), and what a refusal's error says.
/// </summary>
public sealed class WebhookFormatTests
{
    private static readonly DateTimeOffset Flush = new(2026, 12, 2, 9, 37, 48, 991, TimeSpan.Zero);

    private static readonly DateTimeOffset Fired = new DateTimeOffset(2026, 12, 2, 9, 37, 19, 827, TimeSpan.Zero).AddTicks(6991);

    private static readonly Dictionary<string, string> Place = new(StringComparer.Ordinal)
    {
        ["device"] = "pdu-a02-a", ["rack"] = "A02", ["room"] = "room1", ["rule"] = "inlet-hot", ["severity"] = "critical",
    };

    internal static AlertSnapshot Firing(long id) => new(
        id, "inlet-hot", "pdu-a02-a/inlet_temperature", AlertStatus.Firing, AlertState.Firing, EventSeverity.Critical, 32.3,
        "rack A02 (room1, site sim): inlet_temperature 32.3 °C above 32 °C since 09:37:19 UTC", Place, [],
        Fired, null, null, false, Flush) { Peak = 32.3, PeakText = "32.3 °C" };

    private static AlertSnapshot Acknowledged(long id) => new(
        id, "ups-on-battery", "ups-1", AlertStatus.Acknowledged, AlertState.Firing, EventSeverity.Warning, 3,
        "device ups-1 (room1, site sim) reports onBattery (state code 3) since 09:30:00 UTC",
        new Dictionary<string, string>(StringComparer.Ordinal) { ["device"] = "ups-1", ["room"] = "room1", ["power.feed"] = "A", ["9th"] = "x", ["empty"] = "" }, [],
        new DateTimeOffset(2026, 12, 2, 9, 30, 0, TimeSpan.Zero), null, new DateTimeOffset(2026, 12, 2, 9, 35, 12, 400, TimeSpan.Zero), false, Flush);

    private static AlertSnapshot Resolved(long id) => new(
        id, "inlet-hot", "pdu-a02-b/inlet_temperature", AlertStatus.Resolved, AlertState.Resolved, EventSeverity.Critical, 29.9,
        "rack A02 (room1, site sim): inlet_temperature 29.9 °C, back below 30 °C (clear level); peak 34.1 °C", Place, [],
        Fired.AddMinutes(-10), Fired.AddSeconds(5), null, false, Flush) { Peak = 34.1, PeakText = "34.1 °C" };

    private static async Task<HttpHit> PostAsync(TinyHttpServer server, WebhookSinkConfig config, params AlertSnapshot[] alerts)
    {
        await using var runner = new SinkRunner(new WebhookSink(config, "sim", "gw-sim"), config);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = new AlertNotification("room=room1", alerts, Flush);
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => runner.Delivered + runner.Failed == 1, "the POST");
        return Assert.Single(server.Hits);
    }

    [Fact]
    public async Task The_alertmanager_format_posts_an_array_of_alerts_to_the_api_v2_path_after_the_urls_prefix()
    {
        await using var server = new TinyHttpServer();
        var config = new WebhookSinkConfig
        {
            Name = "am", Url = server.Url, Format = WebhookFormat.Alertmanager, Secret = "ignored", Retries = 0, Timeout = TimeSpan.FromSeconds(10),
        };
        var hit = await PostAsync(server, config, Firing(1), Acknowledged(2), Resolved(3));

        Assert.Equal("/hook/api/v2/alerts", hit.Path);
        Assert.Equal("application/json", hit.Headers["Content-Type"]);
        Assert.DoesNotContain(hit.Headers.Keys, k => k.StartsWith("X-EdgeTwin-", StringComparison.OrdinalIgnoreCase));

        // Labels: the identity, the same all along an episode (the acknowledgement and the value are annotations); names
        // made valid ("power.feed" → power_feed, "9th" → _9th), an empty value left out. A firing alert has no endsAt
        // (Alertmanager applies resolve_timeout on its own clock), a resolved one its resolved_at.
        Assert.Equal(
            """[{"labels":{"alertname":"inlet-hot","device":"pdu-a02-a","gateway":"gw-sim","key":"pdu-a02-a/inlet_temperature","rack":"A02","room":"room1","rule":"inlet-hot","severity":"critical","site":"sim"},"annotations":{"summary":"rack A02 (room1, site sim): inlet_temperature 32.3 \u00B0C above 32 \u00B0C since 09:37:19 UTC","value":"32.3","peak":"32.3 \u00B0C","description":"EdgeTwin gateway gw-sim (site sim), rule inlet-hot on pdu-a02-a/inlet_temperature: firing, fired 2026-12-02T09:37:19.827Z; peak 32.3 \u00B0C","status":"firing","edgetwin_id":"1"},"startsAt":"2026-12-02T09:37:19.827Z"},"""
            + """{"labels":{"_9th":"x","alertname":"ups-on-battery","device":"ups-1","gateway":"gw-sim","key":"ups-1","power_feed":"A","room":"room1","severity":"warning","site":"sim"},"annotations":{"summary":"device ups-1 (room1, site sim) reports onBattery (state code 3) since 09:30:00 UTC","value":"3","description":"EdgeTwin gateway gw-sim (site sim), rule ups-on-battery on ups-1: acknowledged, fired 2026-12-02T09:30:00.000Z; acknowledged 2026-12-02T09:35:12.400Z on the gateway, still firing (silence it in Alertmanager to stop paging)","status":"acknowledged","acknowledged_at":"2026-12-02T09:35:12.400Z","edgetwin_id":"2"},"startsAt":"2026-12-02T09:30:00.000Z"},"""
            + """{"labels":{"alertname":"inlet-hot","device":"pdu-a02-a","gateway":"gw-sim","key":"pdu-a02-b/inlet_temperature","rack":"A02","room":"room1","rule":"inlet-hot","severity":"critical","site":"sim"},"annotations":{"summary":"rack A02 (room1, site sim): inlet_temperature 29.9 \u00B0C, back below 30 \u00B0C (clear level); peak 34.1 \u00B0C","value":"29.9","peak":"34.1 \u00B0C","description":"EdgeTwin gateway gw-sim (site sim), rule inlet-hot on pdu-a02-b/inlet_temperature: resolved, fired 2026-12-02T09:27:19.827Z, resolved 2026-12-02T09:37:24.827Z; peak 34.1 \u00B0C","status":"resolved","edgetwin_id":"3"},"startsAt":"2026-12-02T09:27:19.827Z","endsAt":"2026-12-02T09:37:24.827Z"}]""",
            Encoding.UTF8.GetString(hit.Body));
    }

    [Fact]
    public async Task The_slack_format_posts_one_line_per_alert_with_severity_summary_place_and_since_when()
    {
        await using var server = new TinyHttpServer();
        var config = new WebhookSinkConfig
        {
            Name = "chat", Url = server.Url, Format = WebhookFormat.Slack, Username = "edgetwin-gw-sim", Channel = "#noc", Retries = 0, Timeout = TimeSpan.FromSeconds(10),
        };
        var hit = await PostAsync(server, config, Firing(1), Acknowledged(2), Resolved(3) with { Summary = "inlet <30 & falling" });

        Assert.Equal("/hook", hit.Path);
        Assert.DoesNotContain(hit.Headers.Keys, k => k.StartsWith("X-EdgeTwin-", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(
            """{"text":"FIRING critical inlet-hot: rack A02 (room1, site sim): inlet_temperature 32.3 \u00B0C above 32 \u00B0C since 09:37:19 UTC (site sim, gateway gw-sim; since 2026-12-02 09:37:19 UTC)\n"""
            + """ACKNOWLEDGED warning ups-on-battery: device ups-1 (room1, site sim) reports onBattery (state code 3) since 09:30:00 UTC (site sim, gateway gw-sim; since 2026-12-02 09:30:00 UTC, acknowledged 2026-12-02 09:35:12 UTC)\n"""
            + """RESOLVED critical inlet-hot: inlet &lt;30 &amp; falling (site sim, gateway gw-sim; fired 2026-12-02 09:27:19 UTC, resolved 2026-12-02 09:37:24 UTC)","username":"edgetwin-gw-sim","channel":"#noc"}""",
            Encoding.UTF8.GetString(hit.Body));
    }

    [Fact]
    public async Task The_edgetwin_format_is_still_the_default_with_its_signature_headers()
    {
        await using var server = new TinyHttpServer();
        var config = new WebhookSinkConfig { Name = "noc", Url = server.Url, Secret = "s3cret", Retries = 0, Timeout = TimeSpan.FromSeconds(10) };
        var hit = await PostAsync(server, config, Firing(1));

        Assert.Equal(WebhookFormat.EdgeTwin, config.Format);
        Assert.Equal("/hook", hit.Path);
        Assert.Equal(AlertJson.Encode("sim", "gw-sim", new AlertNotification("room=room1", [Firing(1)], Flush), [Firing(1)]), hit.Body);
        Assert.Equal(WebhookSink.Sign(hit.Body, "s3cret"), hit.Headers[WebhookSink.SignatureHeader]);
    }

    [Fact]
    public async Task An_alertmanager_400_is_a_refusal_that_shows_its_error_text_with_the_url_redacted()
    {
        await using var server = new TinyHttpServer { Respond = _ => 400, ResponseBody = _ => "\"start time must be before end time\"\n" };
        var log = new CapturingLogger();
        var url = new Uri($"http://ops:hunter2@127.0.0.1:{server.Port}/am/?token=abc");
        var config = new WebhookSinkConfig { Name = "am", Url = url, Format = WebhookFormat.Alertmanager, Retries = 3, Timeout = TimeSpan.FromSeconds(10) };
        await using var runner = new SinkRunner(new WebhookSink(config, "sim", "gw-sim"), config, log);
        await runner.StartAsync(TestContext.Current.CancellationToken);
        var message = new AlertNotification("g", [Firing(1)], Flush);
        runner.Enqueue(message, message.Alerts);
        await Wait.UntilAsync(() => log.Text.Contains("SinkRejectedException", StringComparison.Ordinal), "the refusal logged");

        Assert.Single(server.Hits); // 400 is not retried
        Assert.Equal("/am/api/v2/alerts?token=abc", server.Hits[0].Path);
        Assert.Contains($"SinkRejectedException: http://***@127.0.0.1:{server.Port}/am/api/v2/alerts?token=*** answered 400 X: \"start time must be before end time\"", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("token=abc", log.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rack.row", "rack_row")]
    [InlineData("9th", "_9th")]
    [InlineData("", "_")]
    [InlineData("ok_Name1", "ok_Name1")]
    [InlineData("raum-größe", "raum_gr__e")]
    public void Label_names_are_made_valid_for_alertmanager(string name, string expected) =>
        Assert.Equal(expected, AlertmanagerJson.LabelName(name));

    [Fact]
    public void A_resolved_alert_whose_clock_stepped_back_never_ends_before_it_starts()
    {
        // Alertmanager refuses endsAt before startsAt with 400 (the whole batch): a clock stepped back between fire and clear.
        var alert = Resolved(3) with { ResolvedAt = Fired.AddMinutes(-20) };
        var json = Encoding.UTF8.GetString(AlertmanagerJson.Encode("sim", "gw-sim", [alert]));
        Assert.Contains("\"startsAt\":\"2026-12-02T09:27:19.827Z\",\"endsAt\":\"2026-12-02T09:27:19.827Z\"", json, StringComparison.Ordinal);
    }
}
