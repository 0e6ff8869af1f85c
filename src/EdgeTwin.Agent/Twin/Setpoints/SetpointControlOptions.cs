namespace EdgeTwin.Agent.Twin.Setpoints;

/// <summary>Bounds the set-point control keeps a cooling unit inside (supply air °C, fan speed %).</summary>
public sealed record SetpointBounds(double MinSupplyC = 16, double MaxSupplyC = 24, double MinFanPercent = 40, double MaxFanPercent = 100)
{
    /// <summary>Problems of the bounds (min above max, outside what a unit can do), or none.</summary>
    public IEnumerable<string> Problems()
    {
        if (MinSupplyC >= MaxSupplyC)
        {
            yield return FormattableString.Invariant($"min_supply_c ({MinSupplyC}) must be below max_supply_c ({MaxSupplyC})");
        }

        if (MinFanPercent >= MaxFanPercent)
        {
            yield return FormattableString.Invariant($"min_fan_percent ({MinFanPercent}) must be below max_fan_percent ({MaxFanPercent})");
        }
    }
}

/// <summary>
/// The <c>thermal_twin.setpoint_control:</c> section: whether the optimiser's recommendation is written to the cooling units
/// (never by default), within which bounds, how fast, and when to roll back. Keys and defaults in Twin/Setpoints/README.md.
/// </summary>
public sealed record SetpointControlOptions
{
    /// <summary>False (default): the optimiser is advisory and nothing is ever written to a unit.</summary>
    public bool Enabled { get; init; }

    /// <summary>Bounds of every unit without its own entry in <see cref="UnitBounds"/>.</summary>
    public SetpointBounds Bounds { get; init; } = new();

    /// <summary>Per-unit bounds by cooling unit id.</summary>
    public IReadOnlyDictionary<string, SetpointBounds> UnitBounds { get; init; } = new Dictionary<string, SetpointBounds>(StringComparer.Ordinal);

    /// <summary>Largest change of a supply set point in one write step (K).</summary>
    public double MaxSupplyStepK { get; init; } = 0.5;

    /// <summary>Largest change of a fan speed set point in one write step (percentage points).</summary>
    public double MaxFanStepPercent { get; init; } = 5;

    /// <summary>Least time between two write steps (the room settles in between).</summary>
    public TimeSpan MinWriteInterval { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Rack inlet (°C) at which every unit is rolled back; null: the optimiser's inlet limit.</summary>
    public double? RollbackInletC { get; init; }

    /// <summary>How long writing pauses after a rollback.</summary>
    public TimeSpan RollbackHold { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Once the target is reached and holds this long without a rollback, the written values become the known-good ones.</summary>
    public TimeSpan SettleTime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Twin inlet fit error (K rms) above which the model is not trusted: no new writes, and a rollback if moved.</summary>
    public double MaxFitRmseK { get; init; } = 1.5;

    /// <summary>Timeout of one write with its read-back.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often inlets, unit states and the fit are checked for a rollback.</summary>
    public TimeSpan CheckEvery { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Credentials (name under <c>credentials:</c>) for SNMP writes; null: each device's own credentials.</summary>
    public string? WriteCredentials { get; init; }

    /// <summary>The bounds of one unit.</summary>
    public SetpointBounds BoundsOf(string unit) => UnitBounds.TryGetValue(unit, out var b) ? b : Bounds;
}
