namespace EdgeTwin.Twin.Line;

/// <summary>
/// A stage of a line: the stations that share the same input buffers and the same output (parallel machines; a
/// station on its own is a stage of one). Parts flow through a stage at the sum of its machines' rates.
/// </summary>
/// <param name="Stations">Indices of the stage's stations in <see cref="LineSpec.Stations"/>.</param>
/// <param name="IdealCycleSeconds">The stage's ideal cycle: 1 / Σ 1/cycle of its machines.</param>
/// <param name="IsolatedRatePerHour">Parts per hour alone, with each machine's availability MTBF/(MTBF+MTTR): 3600 · Σ eᵢ/cycleᵢ.</param>
public sealed record LineStage(IReadOnlyList<int> Stations, double IdealCycleSeconds, double IsolatedRatePerHour)
{
    /// <summary>Share of the stage's ideal rate that station <paramref name="station"/> (an index of the line) contributes.</summary>
    public double RateShare(LineSpec line, int station)
    {
        ArgumentNullException.ThrowIfNull(line);
        return IdealCycleSeconds / line.Stations[station].CycleTimeSeconds;
    }
}

/// <summary>
/// The line's stages and its constraint, the one definition the live twin's line OEE, the CLI's <c>line oee</c> and
/// <c>line status</c> use: the line's ideal rate is that of its slowest stage, not of its slowest single machine
/// (two 36 s machines in parallel make a part every 18 s).
/// </summary>
public static class LineStages
{
    /// <summary>The stages of <paramref name="line"/> in the order of their first station.</summary>
    public static IReadOnlyList<LineStage> Of(LineSpec line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var groups = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var order = new List<string>();
        for (int i = 0; i < line.Stations.Count; i++)
        {
            var s = line.Stations[i];
            // Stations without an input are fed without limit and those without an output end the line: only a shared
            // buffer makes machines parallel, so such a station is a stage of its own unless it shares the other side.
            var key = s.Inputs.Count == 0 && s.Output is null
                ? "#" + s.Id
                : string.Join('+', s.Inputs.Order(StringComparer.Ordinal)) + "->" + (s.Output ?? "");
            if (!groups.TryGetValue(key, out var list))
            {
                groups[key] = list = [];
                order.Add(key);
            }
            list.Add(i);
        }
        return [.. order.Select(k => Stage(line, groups[k]))];
    }

    /// <summary>The stage with the longest ideal cycle: its cycle is the line's ideal cycle (PRI of the line OEE), its machines the line OEE's time base.</summary>
    public static LineStage Constraint(LineSpec line) => Of(line).MaxBy(s => s.IdealCycleSeconds)!;

    /// <summary>The stage that makes the fewest parts alone, availability included (what <c>line status</c> names slowest).</summary>
    public static LineStage Slowest(LineSpec line) => Of(line).MinBy(s => s.IsolatedRatePerHour)!;

    /// <summary>A station's availability from its failure figures: MTBF/(MTBF+MTTR), 1 when it never fails.</summary>
    public static double Availability(StationSpec s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.MtbfSeconds > 0 && !double.IsPositiveInfinity(s.MtbfSeconds) ? s.MtbfSeconds / (s.MtbfSeconds + s.MttrSeconds) : 1;
    }

    private static LineStage Stage(LineSpec line, List<int> stations)
    {
        double rate = 0, isolated = 0;
        foreach (var i in stations)
        {
            var s = line.Stations[i];
            rate += 1 / s.CycleTimeSeconds;
            isolated += Availability(s) / s.CycleTimeSeconds;
        }
        return new LineStage(stations, 1 / rate, 3600 * isolated);
    }
}
