namespace EdgeTwin.Twin.Line.Scenarios;

/// <summary>
/// The live line twin as of its last published state, for what-ifs asked from outside the sample pipeline (the MQTT
/// request server): the line with its learned figures, where the shift stands (elapsed time, good parts so far, which
/// stations are down) and the shift's economics. Immutable, so any thread may run scenarios on it.
/// </summary>
/// <param name="LineId">The line's id from the site config.</param>
/// <param name="Line">The line with the figures learned so far (cycle times, MTBF, MTTR; the configured ones as prior).</param>
/// <param name="ShiftSeconds">Length of the shift.</param>
/// <param name="MarginPerUnit">Margin lost per part not made.</param>
/// <param name="Now">Position in the shift and the line's state at <paramref name="AsOfUnixMs"/>.</param>
/// <param name="AsOfUnixMs">Sample time of the state this basis was taken from.</param>
public sealed record LineScenarioBasis(string LineId, LineSpec Line, double ShiftSeconds, double MarginPerUnit, LineNow Now, long AsOfUnixMs)
{
    /// <summary>Seconds left in the shift.</summary>
    public double RemainingSeconds => Math.Max(0, ShiftSeconds - Now.ElapsedSeconds);

    /// <summary>The planned stops of the shift in progress (seconds from its start).</summary>
    public IReadOnlyList<PlannedWindow> PlannedStops { get; init; } = [];

    /// <summary>The scenarios on this basis (the line is validated by <see cref="LineScenarios"/>).</summary>
    public LineScenarios Scenarios(int replications, ulong seed = 1) =>
        new(Line, ShiftSeconds, MarginPerUnit) { Replications = replications, Seed = seed, PlannedStops = PlannedStops };
}
