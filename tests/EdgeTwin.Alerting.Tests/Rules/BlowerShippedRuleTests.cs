using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The shipped data-centre rules on a cooling unit's maintenance prediction that carries the thermal twin's what-if.</summary>
public sealed class BlowerShippedRuleTests
{
    [Fact]
    public async Task A_failing_blower_without_which_the_room_shuts_down_is_a_warning_and_never_the_live_shutdown_alarm()
    {
        var rules = ShippedFiles.Rule("datacenter", "cooling-unit-blower-failing-no-margin")
            .Concat(ShippedFiles.Rule("datacenter", "thermal-shutdown-soon"))
            .Concat(ShippedFiles.Rule("datacenter", "cooling-unit-failed"));
        await using var h = await Harness.StartAsync("alerts:\n  rules:\n" + string.Join("\n", rules));

        // A room whose other unit carries the load: the blower is next week's work, nothing to alert on.
        h.Service.Handle(Blower(h, "raised", ("if_failed_known", "true"), ("if_failed_affected_racks", "")));
        Assert.Empty(h.Manager.Active());

        // The room's only unit: racks at shutdown 6 min after it stops. One warning for the planner; the critical
        // "shut down load now" rule reads the live failure's countdown, not this what-if, so nobody is woken for it.
        h.Advance(TimeSpan.FromMinutes(30));
        h.Service.Handle(Blower(h, "updated", ("if_failed_known", "true"), ("if_failed_time_to_thermal_shutdown_min", "6.3"), ("if_failed_time_to_32c_min", "2.4")));
        var alert = Assert.Single(h.Manager.Active());
        Assert.Equal(("cooling-unit-blower-failing-no-margin", "crac1", EventSeverity.Warning, AlertState.Firing), (alert.Rule, alert.Key, alert.Severity, alert.State));

        // The other unit back from its own service: the room now holds through the repair; the update clears it at once.
        h.Advance(TimeSpan.FromHours(1));
        h.Service.Handle(Blower(h, "updated", ("if_failed_known", "true"), ("if_failed_affected_racks", "")));
        Assert.Empty(h.Manager.Active());

        // A shutdown late in a long repair (3.5 h into 6 h) is no margin either.
        h.Advance(TimeSpan.FromHours(1));
        h.Service.Handle(Blower(h, "updated", ("if_failed_known", "true"), ("if_failed_time_to_thermal_shutdown_min", "212.5")));
        Assert.Equal(AlertState.Firing, h.StateOf("cooling-unit-blower-failing-no-margin", "crac1"));

        // Repaired: the withdrawal clears it at once.
        h.Advance(TimeSpan.FromHours(2));
        h.Service.Handle(Blower(h, "resolved"));
        Assert.Empty(h.Manager.Active());
    }

    private static EdgeEvent Blower(Harness h, string state, params (string Key, string Value)[] consequence)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["machine"] = "crac1",
            ["failure_probability"] = "0.74",
            ["state"] = state,
            ["prediction_id"] = "crac1/20261130T113000Z",
            ["model"] = "bearing-rul",
            ["model_version"] = "1.1.0",
        };
        foreach (var (key, value) in consequence)
        {
            attributes[key] = value;
        }

        return new EdgeEvent(EdgeEventKind.Prediction, "crac1", h.Time.GetUtcNow(), state == "resolved" ? EventSeverity.Info : EventSeverity.Warning, "crac1: failure probability 74 % within 48 h", attributes);
    }
}
