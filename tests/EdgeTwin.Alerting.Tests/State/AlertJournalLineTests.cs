using EdgeTwin.Alerting.Tests.Inputs;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>What the journal says when an alert is raised and cleared: the journal is what the operator reads when every sink is down.</summary>
public sealed class AlertJournalLineTests
{
    [Fact]
    public async Task Regression_the_journal_gave_a_raised_alert_as_a_bare_value_without_unit_limit_or_place()
    {
        // Before: "alert rack-inlet-rising-fast A03 raised (value 1.6678248783877694, warning)" and "… cleared (value
        // 0.3338563749874804)": sixteen digits, no unit, no limit, no since. Now the alert's own text, as its sinks get it.
        var log = new CapturingLogger();
        await using var h = await Harness.StartAsync(
            """
            alerts:
              rules:
                - name: inlet-hot
                  type: threshold
                  match: { role: rack.inlet_temperature }
                  above: 27
                  clear_below: 26
                  severity: warning
            """,
            loggerFactory: new OneLoggerFactory(log));
        var inlet = h.Registry.GetOrAdd(new SeriesDescriptor("pdu-a03", "inlet_temperature", "Cel", MetricKind.Gauge, "rack.inlet_temperature"));

        h.Feed(inlet, 24.0);
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(inlet, 28.3333333333333);
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(inlet, 25.5);

        var raised = Assert.Single(log.Entries, e => e.Text.StartsWith("alert inlet-hot ", StringComparison.Ordinal) && e.Text.Contains(" raised ", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, raised.Level);
        Assert.Matches(@"^alert inlet-hot \S+ raised \(warning\): .*pdu-a03.*inlet_temperature 28\.333 °C above 27 °C since \d\d:\d\d:\d\d UTC$", raised.Text);
        var cleared = Assert.Single(log.Entries, e => e.Text.StartsWith("alert inlet-hot ", StringComparison.Ordinal) && e.Text.Contains(" cleared", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, cleared.Level);
        Assert.Matches(@"^alert inlet-hot \S+ cleared: .*pdu-a03.*25\.5 °C, back below 26 °C", cleared.Text);
        Assert.DoesNotContain("28.3333", log.Text, StringComparison.Ordinal);
    }
}
