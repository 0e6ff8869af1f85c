using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The shipped data-centre rules on the leak and door sensors the shipped profiles read as devices.</summary>
public sealed class LeakAndDoorShippedRuleTests
{
    [Fact]
    public async Task Regression_a_leak_sensor_read_as_a_device_raised_nothing_with_the_shipped_rules()
    {
        // small-dc-room.yaml reads its under-floor cable as device room1-leak (generic-leak-detector, room.leak), and a
        // CMC III reads its CMCIII-LEAK the same role; the shipped rules only had the panel's own GPIO input, so water
        // under the floor reached the outbox as a sample and raised no alarm.
        Harness.Site.AddStateNames("rack-r03", "leak", new Dictionary<long, string> { [0] = "dry", [1] = "leak" });
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "water-leak")));
        var leak = h.Registry.GetOrAdd(new SeriesDescriptor("rack-r03", "leak", "1", MetricKind.State, "room.leak"));

        h.Feed(leak, 0);
        Assert.Null(h.Active("water-leak"));
        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(leak, 1);
        var alert = h.Active("water-leak");
        Assert.NotNull(alert);
        Assert.Equal((AlertState.Firing, EventSeverity.Critical, "room2"), (alert.State, alert.Severity, alert.Key));
        Assert.StartsWith("Find the water in room room2 ", alert.Action, StringComparison.Ordinal);

        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(leak, 0);
        Assert.Null(h.Active("water-leak"));
    }

    [Fact]
    public async Task A_rack_door_left_open_for_a_quarter_of_an_hour_warns_and_a_short_visit_does_not()
    {
        Harness.Site.AddStateNames("rack-r01", "door_open", new Dictionary<long, string> { [0] = "closed", [1] = "open" });
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "rack-door-left-open")));
        var door = h.Registry.GetOrAdd(new SeriesDescriptor("rack-r01", "door_open", "1", MetricKind.State, "rack.door_open"));

        // Five minutes of work in the rack, door shut again: nothing fires.
        h.Feed(door, 1);
        h.Advance(TimeSpan.FromMinutes(5));
        h.Feed(door, 1);
        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(door, 0);
        Assert.Null(h.Active("rack-door-left-open"));

        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(door, 1);
        for (var minute = 1; minute <= 15; minute++)
        {
            h.Advance(TimeSpan.FromMinutes(1));
            h.Feed(door, 1);
        }

        var alert = h.Active("rack-door-left-open");
        Assert.NotNull(alert);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning, "r01"), (alert.State, alert.Severity, alert.Key));
    }
}
