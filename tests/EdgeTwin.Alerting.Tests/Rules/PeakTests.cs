using System.Text;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>How bad it got: the worst value while an alert was active, in its messages, events, the list and the store.</summary>
public sealed class PeakTests
{
    private const string Rules = """
        alerts:
          group_by: [room]
          group_interval: 0s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, for: 30s, severity: critical }
            - { name: supply-cold, type: threshold, match: { metric: supply }, below: 12, clear_above: 13, severity: warning }
            - { name: unit-down, type: device_down, device: "crac-*", severity: critical }
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_cleared_alert_did_not_say_how_bad_it_got()
    {
        await using var h = await Harness.StartAsync(Rules);
        var inlet = h.Series("pdu-r01", "inlet");

        // Pending counts (the for: delay is part of how bad it got), then firing; values between the clear level and
        // the limit keep it firing (hysteresis) and never lower the peak.
        h.Feed(inlet, 31);
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(inlet, 34.1);
        h.Advance(TimeSpan.FromSeconds(25));
        h.Feed(inlet, 32);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        Assert.Equal(34.1, h.Active("inlet-hot")!.Peak);
        h.Feed(inlet, 29.5);
        Assert.Equal(34.1, h.Active("inlet-hot")!.Peak);
        h.Feed(inlet, 28.2);

        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        var resolved = h.Sink.All.Single(a => a.Status == AlertStatus.Resolved);
        Assert.Equal("rack r01 (room1, site dc1): inlet 28.2 °C, back below 29 °C (clear level); peak 34.1 °C", resolved.Summary);
        Assert.Equal(34.1, resolved.Peak);

        // The JSON of the message sinks and the centre's events carry it as a field.
        var json = Encoding.UTF8.GetString(AlertJson.Encode("dc1", "gw1", h.Sink.Got[^1].Notification, [resolved]));
        Assert.Contains("\"value\":28.2,\"peak\":34.1,\"summary\":", json, StringComparison.Ordinal);
        await Wait.UntilAsync(() => h.Events.Events.Any(e => e.Kind == EdgeEventKind.AlertCleared), "the cleared event");
        Assert.Equal("34.1", h.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertCleared).Attributes!["peak"]);
        Assert.Equal("34.1", h.Events.Events.Single(e => e.Kind == EdgeEventKind.AlertRaised).Attributes!["peak"]); // the pending's worst

        // A new episode starts its own peak.
        h.Feed(inlet, 30.5);
        Assert.Equal(30.5, h.Active("inlet-hot")!.Peak);
    }

    [Fact]
    public async Task A_below_rule_peaks_at_its_lowest_value_and_a_kind_without_a_limit_has_none()
    {
        await using var h = await Harness.StartAsync(Rules);
        var supply = h.Series("crac-1", "supply");
        h.Feed(supply, 11.5);
        h.Feed(supply, 9.8);
        h.Feed(supply, 10.4);
        Assert.Equal(9.8, h.Active("supply-cold")!.Peak);
        h.Feed(supply, 14);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
        Assert.EndsWith("back above 13 °C (clear level); peak 9.8 °C", h.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary, StringComparison.Ordinal);

        h.Service.Handle(new EdgeEvent(EdgeEventKind.DeviceDown, "crac-1", h.Time.GetUtcNow(), EventSeverity.Critical, "down", null));
        var down = h.Active("unit-down")!;
        Assert.Null(down.Peak);
        var json = Encoding.UTF8.GetString(AlertJson.Encode("dc1", "gw1", new AlertNotification("g", [down], h.Time.GetUtcNow()), [down]));
        Assert.Contains("\"value\":1,\"peak\":null,", json, StringComparison.Ordinal);
        await Wait.UntilAsync(() => h.Events.Events.Any(e => e.Source == "unit-down"), "the raised event");
        Assert.False(h.Events.Events.Single(e => e.Source == "unit-down").Attributes!.ContainsKey("peak"));
    }

    [Fact]
    public async Task The_peak_is_kept_across_a_restart_and_listed()
    {
        var h = await Harness.StartAsync(Rules);
        var inlet = h.Series("pdu-r01", "inlet");
        h.Feed(inlet, 31);
        h.Advance(TimeSpan.FromSeconds(31));
        h.Feed(inlet, 35.2);
        h.Feed(inlet, 31.5);
        Assert.Equal(35.2, h.Active("inlet-hot")!.Peak);

        var h2 = await h.RestartAsync();
        await using (h2)
        {
            Assert.Equal(35.2, h2.Active("inlet-hot")!.Peak);

            // edgetwin alerts list (its JSON over the control socket): the number and, for the table, with its unit.
            var socket = Path.Combine(h2.Dir, "alerts.sock");
            await using (var server = new AlertControlServer(h2.Service, socket))
            {
                server.Start();
                using var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct);
                var alert = list.RootElement.GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("rule").GetString() == "inlet-hot");
                Assert.Equal(35.2, alert.GetProperty("peak").GetDouble());
                Assert.Equal("35.2 °C", alert.GetProperty("peak_text").GetString());
            }

            var again = h2.Series("pdu-r01", "inlet");
            h2.Feed(again, 36);
            h2.Feed(again, 20);
            await Wait.UntilAsync(() => h2.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the resolved message");
            Assert.EndsWith("; peak 36 °C", h2.Sink.All.Single(a => a.Status == AlertStatus.Resolved).Summary, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_summary_template_can_show_the_peak()
    {
        await using var h = await Harness.StartAsync("""
            alerts:
              rules:
                - { name: hot, type: threshold, match: { metric: inlet }, above: 30, summary: "{key} at {value} (worst {peak})" }
            """);
        var inlet = h.Series("rack-r01", "inlet");
        h.Feed(inlet, 33);
        h.Feed(inlet, 31.25);
        Assert.Equal("rack-r01/inlet at 31.25 (worst 33)", h.Active("hot")!.Summary);
    }
}
