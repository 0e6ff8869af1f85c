using EdgeTwin.Agent.Twin.Setpoints;

namespace EdgeTwin.IntegrationTests.Twin.Setpoints;

/// <summary>Bounds and rate limits of the closed loop (pure).</summary>
public sealed class SetpointLimiterTests
{
    private static readonly SetpointBounds Bounds = new(MinSupplyC: 16, MaxSupplyC: 24, MinFanPercent: 40, MaxFanPercent: 90);

    [Fact]
    public void A_target_outside_the_bounds_is_clamped_into_them()
    {
        Assert.Equal(new UnitSetpoints(24, 40), SetpointLimiter.Clamp(new UnitSetpoints(27, 30), Bounds));
        Assert.Equal(new UnitSetpoints(16, 90), SetpointLimiter.Clamp(new UnitSetpoints(12, 100), Bounds));
        Assert.Equal(new UnitSetpoints(20, 55), SetpointLimiter.Clamp(new UnitSetpoints(20, 55), Bounds));
    }

    [Fact]
    public void Each_step_moves_at_most_the_rate_limit_and_lands_exactly_on_the_clamped_target()
    {
        var present = new UnitSetpoints(18, 80);
        var target = new UnitSetpoints(26, 20); // clamps to (24, 40)
        var steps = new List<UnitSetpoints>();
        for (var i = 0; i < 30 && !present.Near(SetpointLimiter.Clamp(target, Bounds)); i++)
        {
            var next = SetpointLimiter.Step(present, target, Bounds, maxSupplyStepK: 0.5, maxFanStepPercent: 5);
            Assert.True(Math.Abs(next.SupplyC - present.SupplyC) <= 0.5 + 1e-9, $"{present} → {next}");
            Assert.True(Math.Abs(next.FanPercent - present.FanPercent) <= 5 + 1e-9, $"{present} → {next}");
            steps.Add(next);
            present = next;
        }

        Assert.Equal(new UnitSetpoints(24, 40), present);
        Assert.Equal(12, steps.Count); // supply 18 → 24 in 0.5 K steps; fan 80 → 40 in 8 steps of 5 %
        Assert.All(steps, s => Assert.InRange(s.SupplyC, 16, 24));
    }

    [Fact]
    public void A_present_value_outside_the_bounds_is_brought_in_stepwise_not_at_once()
    {
        var next = SetpointLimiter.Step(new UnitSetpoints(12, 100), new UnitSetpoints(20, 60), Bounds, 0.5, 5);
        Assert.Equal(new UnitSetpoints(12.5, 95), next);
    }

    [Fact]
    public void A_set_point_the_unit_lacks_or_whose_present_value_is_unknown_is_never_written()
    {
        var next = SetpointLimiter.Step(new UnitSetpoints(20, double.NaN), new UnitSetpoints(22, 60), Bounds, 0.5, 5);
        Assert.Equal(20.5, next.SupplyC);
        Assert.True(double.IsNaN(next.FanPercent));
        var none = SetpointLimiter.Step(new UnitSetpoints(20, 60), new UnitSetpoints(double.NaN, double.NaN), Bounds, 0.5, 5);
        Assert.Equal(new UnitSetpoints(20, 60), none);
    }

    [Fact]
    public void Set_point_roles_map_to_the_supply_or_fan_channel()
    {
        Assert.Equal(SetpointKind.Supply, SetpointController.KindOf("crac.supply_setpoint"));
        Assert.Equal(SetpointKind.Supply, SetpointController.KindOf("crac.temperature_setpoint"));
        Assert.Equal(SetpointKind.Fan, SetpointController.KindOf("crac.fan_speed_setpoint"));
        Assert.Null(SetpointController.KindOf("crac.fan_speed"));
    }
}
