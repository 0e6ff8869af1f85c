namespace EdgeTwin.Agent.Twin.Setpoints;

/// <summary>A cooling unit's set points: supply air °C and fan speed %; NaN where the unit has no writable set point of that kind.</summary>
public readonly record struct UnitSetpoints(double SupplyC, double FanPercent)
{
    /// <summary>True when both are equal (NaN equals NaN) within <paramref name="tolerance"/>.</summary>
    public bool Near(UnitSetpoints other, double tolerance = 1e-6) =>
        Same(SupplyC, other.SupplyC, tolerance) && Same(FanPercent, other.FanPercent, tolerance);

    private static bool Same(double a, double b, double tolerance) =>
        (double.IsNaN(a) && double.IsNaN(b)) || Math.Abs(a - b) <= tolerance;
}

/// <summary>
/// Bounds and rate limits of the closed loop, pure so they are tested alone: a target is first clamped into the unit's
/// bounds, then the present value moves toward it by at most one step per write. A present value outside the bounds (set
/// by hand before the loop was enabled) is also brought in one step at a time.
/// </summary>
public static class SetpointLimiter
{
    /// <summary>The clamped target of a unit.</summary>
    public static UnitSetpoints Clamp(UnitSetpoints target, SetpointBounds bounds)
    {
        ArgumentNullException.ThrowIfNull(bounds);
        return new UnitSetpoints(
            double.IsNaN(target.SupplyC) ? double.NaN : Math.Clamp(target.SupplyC, bounds.MinSupplyC, bounds.MaxSupplyC),
            double.IsNaN(target.FanPercent) ? double.NaN : Math.Clamp(target.FanPercent, bounds.MinFanPercent, bounds.MaxFanPercent));
    }

    /// <summary>The next value to write: from <paramref name="present"/> toward the clamped <paramref name="target"/>, at most one step.</summary>
    public static UnitSetpoints Step(UnitSetpoints present, UnitSetpoints target, SetpointBounds bounds, double maxSupplyStepK, double maxFanStepPercent)
    {
        var goal = Clamp(target, bounds);
        return new UnitSetpoints(
            Toward(present.SupplyC, goal.SupplyC, maxSupplyStepK),
            Toward(present.FanPercent, goal.FanPercent, maxFanStepPercent));
    }

    private static double Toward(double present, double goal, double step)
    {
        // Nothing to aim at, or no known present value to step from (never jump blind): leave it.
        if (double.IsNaN(goal) || double.IsNaN(present))
        {
            return present;
        }

        // Rounded to 0.01 so repeated steps land exactly on the goal and the devices' 0.1 resolution is not chased.
        var next = present + Math.Clamp(goal - present, -step, step);
        return Math.Round(next, 2);
    }
}
