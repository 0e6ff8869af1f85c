using System.Text;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

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
        fired, null, null, false, Flush);

    private static AlertSnapshot Cleared(long id, DateTimeOffset fired, DateTimeOffset resolved) => new(
        id, "inlet-hot", "pdu-a02-a/inlet_temperature", AlertStatus.Resolved, AlertState.Resolved, EventSeverity.Critical, 29.9,
        "rack A02 (room1, site sim): inlet_temperature 29.9 °C, back below 30 °C (clear level)", Place, [],
        fired, resolved, null, false, Flush);

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
            """{"v":1,"site":"sim","gateway":"gw-sim","group":"room=room1,severity=critical","time":"2026-12-02T09:37:48.991Z","severity":"critical","alerts":[{"id":9,"rule":"inlet-hot","key":"pdu-a02-a/inlet_temperature","status":"resolved","severity":"critical","value":29.9,"summary":"rack A02 (room1, site sim): inlet_temperature 29.9 \u00B0C, back below 30 \u00B0C (clear level)","fired_at":"2026-12-02T09:37:19.827Z","resolved_at":"2026-12-02T09:37:24.827Z","acked_at":null,"flapping":false,"labels":{"device":"pdu-a02-a","rack":"A02","room":"room1","rule":"inlet-hot","severity":"critical"}}]}""",
            Encoding.UTF8.GetString(Assert.Single(server.Hits).Body));
    }
}
