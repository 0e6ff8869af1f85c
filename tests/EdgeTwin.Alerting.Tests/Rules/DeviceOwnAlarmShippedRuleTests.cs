using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>
/// The shipped data-centre rules on what the devices say about themselves — a cooling unit's general alarm, a UPS's
/// alarm table and battery verdict, a PDU's load state, a switch uplink's link — which the shipped profiles read and,
/// before these rules, no shipped rule looked at.
/// </summary>
public sealed class DeviceOwnAlarmShippedRuleTests
{
    public static TheoryData<string, string, string, string, Dictionary<long, string>?, double, double, TimeSpan> Cases => new()
    {
        // rule, device, metric, role, state names, normal, alarm, hold before firing
        { "cooling-unit-alarm", "crac-1", "general_alarm", "crac.alarm", new() { [1] = "on", [2] = "off" }, 2, 1, TimeSpan.Zero },
        { "ups-battery-needs-replacing", "ups-apc", "battery_replace", "ups.battery_replace", new() { [1] = "noBatteryNeedsReplacing", [2] = "batteryNeedsReplacing" }, 1, 2, TimeSpan.Zero },
        { "ups-alarm-present", "ups-ietf", "alarms_present", "ups.alarms", null, 0, 1, TimeSpan.FromMinutes(1) },
        { "ups-battery-hot", "ups-ietf", "battery_temperature", "ups.battery_temperature", null, 27, 43, TimeSpan.FromMinutes(10) },
        { "pdu-load-state-overload", "pdu-r01", "load_state", "pdu.load_state", new() { [1] = "lowLoad", [2] = "normal", [3] = "nearOverload", [4] = "overload" }, 2, 3, TimeSpan.FromSeconds(30) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Regression_a_devices_own_alarm_raised_nothing_with_the_shipped_rules(
        string rule, string device, string metric, string role, Dictionary<long, string>? states, double normal, double alarm, TimeSpan hold)
    {
        if (states is not null)
        {
            Harness.Site.AddStateNames(device, metric, states);
        }

        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", rule)));
        var series = h.Registry.GetOrAdd(new SeriesDescriptor(device, metric, "1", states is null ? MetricKind.Gauge : MetricKind.State, role));

        h.Feed(series, normal);
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(series, normal);
        Assert.Null(h.Active(rule));

        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(series, alarm);
        if (hold > TimeSpan.Zero)
        {
            Assert.Equal(AlertState.Pending, h.StateOf(rule, device));
            h.Advance(hold);
            h.Feed(series, alarm);
        }

        var active = h.Active(rule);
        Assert.NotNull(active);
        Assert.Equal((AlertState.Firing, EventSeverity.Warning, device), (active.State, active.Severity, active.Key));
        Assert.Contains(device, active.Action, StringComparison.Ordinal);

        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(series, normal);
        Assert.Null(h.Active(rule));
    }

    [Fact]
    public async Task A_switch_uplink_port_that_goes_down_warns_and_an_access_port_does_not()
    {
        Harness.Site.AddStateNames("core-sw", "oper_status", new Dictionary<long, string> { [1] = "up", [2] = "down", [7] = "lowerLayerDown" });
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", ShippedFiles.Rule("datacenter", "uplink-port-down")));
        SeriesId Port(string name) => h.Registry.GetOrAdd(new SeriesDescriptor("core-sw", "oper_status", "1", MetricKind.State, "net.oper_status", [new("if_name", name)]));
        var uplink = Port("Te1/1/1");
        var access = Port("Gi1/0/12");

        h.Feed(uplink, 1);
        h.Feed(access, 2);   // an unused access port: down by design
        h.Advance(TimeSpan.FromMinutes(1));
        h.Feed(uplink, 1);
        h.Feed(access, 2);
        Assert.Null(h.Active("uplink-port-down"));

        h.Feed(uplink, 7);
        h.Advance(TimeSpan.FromSeconds(31));
        h.Feed(uplink, 7);
        var alert = Assert.Single(h.Manager.Active());
        Assert.Equal(("uplink-port-down", AlertState.Firing, EventSeverity.Warning), (alert.Rule, alert.State, alert.Severity));
        Assert.Contains("Te1/1/1", alert.Summary, StringComparison.Ordinal);
    }
}
