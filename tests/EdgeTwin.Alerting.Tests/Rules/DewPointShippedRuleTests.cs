using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>
/// The shipped data-centre dew point rules on what rittal-cmc3 publishes for a CMCIII-HUM (role rack.inlet_dew_point):
/// before them the profile read the dew point and no rule looked at it.
/// </summary>
public sealed class DewPointShippedRuleTests
{
    [Fact]
    public async Task Moist_air_at_a_rack_inlet_warns_after_ten_minutes_and_clears_below_14_degrees()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "rack-inlet-dew-point-high")));
        var front = DewPoint(h, "A01 front");
        var rear = DewPoint(h, "A01 rear");

        // 27 °C at 55 % RH: inside the RH rule (80 %), but a dew point of 17 °C.
        h.Feed(front, 17.0);
        h.Feed(rear, 12.0);
        Assert.Equal(AlertState.Pending, h.StateOf("rack-inlet-dew-point-high", "r01"));
        for (var minute = 1; minute <= 10; minute++)
        {
            h.Advance(TimeSpan.FromMinutes(1));
            h.Feed(front, 17.0);
            h.Feed(rear, 12.0);
        }

        var alert = h.Active("rack-inlet-dew-point-high");
        Assert.NotNull(alert);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning, "r01"), (alert.State, alert.Severity, alert.Key));
        Assert.Contains("Moist air at rack r01's inlet", alert.Action, StringComparison.Ordinal);

        // 14.5 °C is inside the hysteresis: still firing; 13.5 °C clears it.
        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(front, 14.5);
        Assert.Equal(AlertState.Firing, h.StateOf("rack-inlet-dew-point-high", "r01"));
        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(front, 13.5);
        Assert.Null(h.Active("rack-inlet-dew-point-high"));
    }

    [Fact]
    public async Task Very_dry_air_is_an_info_after_half_an_hour()
    {
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "rack-inlet-air-very-dry")));
        var front = DewPoint(h, "A01 front");

        h.Feed(front, -12.0);
        h.Advance(TimeSpan.FromMinutes(20));
        h.Feed(front, -12.0);
        Assert.Equal(AlertState.Pending, h.StateOf("rack-inlet-air-very-dry", "r01"));
        h.Advance(TimeSpan.FromMinutes(11));
        h.Feed(front, -12.0);
        Assert.Equal((AlertState.Firing, EventSeverity.Info), (h.Active("rack-inlet-air-very-dry")!.State, h.Active("rack-inlet-air-very-dry")!.Severity));
    }

    private static SeriesId DewPoint(Harness h, string sensor) =>
        h.Registry.GetOrAdd(new SeriesDescriptor("rack-r01", "dew_point", "Cel", MetricKind.Gauge, "rack.inlet_dew_point", [new("device", sensor)]));
}
