using EdgeTwin.Twin.Line.Scenarios;
using EdgeTwin.Twin.Models.Maintenance;

namespace EdgeTwin.Twin.Line;

/// <summary>
/// The line twin's answer to the maintenance predictor: what an unplanned failure of a machine on the line would
/// cost. Downtime = the station's learned MTTR (configured MTTR as the prior); cost = the output lost to a
/// <c>machine_down</c> of that length (paired replications with and without the stop, from half-full buffers, over
/// the stop plus an hour of recovery) × the line's margin per unit. A failure outside every shift of the calendar
/// loses production only for the part of the repair that runs into the next shift. Null (the predictor falls back
/// to its fixed figures) for a machine that is not on the line or a station with no repair time known.
/// Thread-safe: it reads the twin's immutable learned line.
/// </summary>
public sealed class LineFailureCostModel : IUnplannedFailureCostModel
{
    private static readonly TimeSpan Recovery = TimeSpan.FromHours(1);
    private readonly LineTwinConfig _config;
    private readonly Func<LineSpec> _line;

    /// <param name="config">The line section (stations and their machines, shift calendar, margin per unit).</param>
    /// <param name="line">The line with its learned figures now (e.g. <see cref="LineTwinStage.LearnedLine"/>).</param>
    public LineFailureCostModel(LineTwinConfig config, Func<LineSpec> line)
    {
        _config = config ?? throw new ArgumentNullException(nameof(config));
        _line = line ?? throw new ArgumentNullException(nameof(line));
    }

    /// <summary>Replications per estimate (the paired loss has a narrow interval; 40 keep it around 100 ms).</summary>
    public int Replications { get; init; } = 40;

    public UnplannedFailureCost? Estimate(string machine, DateTimeOffset failureTime)
    {
        ArgumentNullException.ThrowIfNull(machine);
        var station = _config.Stations.FirstOrDefault(s => string.Equals(s.Machine, machine, StringComparison.Ordinal))
            ?? _config.Stations.FirstOrDefault(s => string.Equals(s.Spec.Id, machine, StringComparison.Ordinal));
        if (station is null)
        {
            return null;
        }

        var line = _line();
        var spec = line.Stations[line.StationIndex(station.Spec.Id)];
        if (!(spec.MttrSeconds > 0))
        {
            return null;
        }

        var repair = spec.MttrSeconds;
        var lost = ProductionTimeLost(failureTime, repair);
        var source = "line-twin:" + _config.Id;
        if (lost <= 0)
        {
            return new UnplannedFailureCost(repair / 3600, 0, source);
        }

        var scenarios = new LineScenarios(line, lost + Recovery.TotalSeconds, _config.MarginPerUnit) { Replications = Replications };
        var levels = line.Buffers.Select(b => b.Capacity / 2).ToArray();
        var result = scenarios.MachineDown(new LineNow(0, 0, new LineSnapshot(levels, new bool[line.Stations.Count])), station.Spec.Id, lost);
        return new UnplannedFailureCost(repair / 3600, Math.Max(0, result.Cost.Mean), source);
    }

    /// <summary>Seconds of the repair that fall into production time (the shift calendar's shifts).</summary>
    internal double ProductionTimeLost(DateTimeOffset failureTime, double repairSeconds)
    {
        var local = failureTime.ToLocalTime().DateTime;
        var start = _config.ShiftStart(local);
        if (start != DateTime.MinValue && local - start < _config.ShiftLength)
        {
            return repairSeconds; // in a shift: the whole repair costs output (it may run into the next shift)
        }

        // Off shift: only what is left of the repair when the next shift starts.
        var next = _config.ShiftStarts.Select(s => local.Date + s).Concat(_config.ShiftStarts.Select(s => local.Date.AddDays(1) + s)).Where(t => t > local).Min();
        return Math.Max(0, repairSeconds - (next - local).TotalSeconds);
    }
}
