using EdgeTwin.Twin.Line.Scenarios;
using EdgeTwin.Twin.Models.Maintenance;

namespace EdgeTwin.Twin.Line;

/// <summary>
/// The line twin's answer to the maintenance predictor: what an unplanned failure of a machine on the line would
/// cost. Downtime = the station's learned MTTR (configured MTTR as the prior); cost = the output lost to a
/// <c>machine_down</c> of that length (paired replications with and without the stop, from half-full buffers, over
/// the stop plus an hour of recovery) × the line's margin per unit. Only the part of the repair that falls in planned
/// production time counts: inside a shift of the calendar and outside its planned stops (a failure at night loses only
/// what runs into the next shift; one just before the break loses the break's minutes less). Null (the predictor falls back
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
        var lost = ProductionTimeLost(failureTime, repair, _config.Spec.StationIndex(station.Spec.Id));
        var source = "line-twin:" + _config.Id;
        if (lost <= 0)
        {
            return new UnplannedFailureCost(repair / 3600, 0, source);
        }

        var scenarios = new LineScenarios(line, lost + Recovery.TotalSeconds, _config.MarginPerUnit) { Replications = Replications };
        var result = scenarios.MachineDown(new LineNow(0, 0, LineSnapshot.Assumed(line)), station.Spec.Id, lost);
        return new UnplannedFailureCost(repair / 3600, Math.Max(0, result.Cost.Mean), source);
    }

    /// <summary>
    /// Seconds of the repair that fall into production time: inside a shift of the calendar and outside its planned
    /// stops (line-wide ones, and the station's own when <paramref name="station"/> is given). A repair that runs past the
    /// shift's end, or through the break, costs output only for the time production was planned.
    /// </summary>
    internal double ProductionTimeLost(DateTimeOffset failureTime, double repairSeconds, int station = -1)
    {
        // The calendar is wall-clock time in the site's zone, the repair real time: both are taken to UTC instants. By the
        // wall clock a 22:00–06:00 shift is 8 h every night; it is 7 h the night the clocks go forward and 9 h the night
        // they go back, and a repair from 01:30 that lasts 2 h ends at 04:30 then, not 03:30.
        var zone = _config.TimeZone;
        var from = failureTime.UtcDateTime;
        var to = from.AddSeconds(Math.Max(0, repairSeconds));
        var shifts = new List<(DateTime Start, DateTime End)>();
        var stops = new List<(DateTime Start, DateTime End)>();
        var firstDay = TimeZoneInfo.ConvertTime(failureTime, zone).Date.AddDays(-1);
        var lastDay = TimeZoneInfo.ConvertTime(new DateTimeOffset(to), zone).Date;
        for (var day = firstDay; day <= lastDay; day = day.AddDays(1))
        {
            foreach (var s in _config.ShiftStarts)
            {
                // The live twin's rule (LineTwinConfig): the shift ends at its wall-clock end, a stop lasts its duration.
                var start = day + s;
                var startUtc = LineTwinConfig.Instant(start, zone).UtcDateTime;
                shifts.Add((startUtc, startUtc.AddSeconds(_config.ShiftSeconds(start, zone))));
                foreach (var w in _config.PlannedWindows(start, zone).Where(w => w.Station < 0 || w.Station == station))
                    stops.Add((startUtc.AddSeconds(w.StartSeconds), startUtc.AddSeconds(w.EndSeconds)));
            }
        }

        var planned = Clip(shifts, from, to);
        return Length(planned) - Length(Intersect(planned, Clip(stops, from, to)));
    }

    // Intervals cut to [from, to), sorted and merged.
    private static List<(DateTime Start, DateTime End)> Clip(List<(DateTime Start, DateTime End)> intervals, DateTime from, DateTime to)
    {
        var merged = new List<(DateTime Start, DateTime End)>();
        foreach (var (s, e) in intervals.Select(x => (S: x.Start < from ? from : x.Start, E: x.End > to ? to : x.End)).Where(x => x.S < x.E).OrderBy(x => x.S))
        {
            if (merged.Count > 0 && s <= merged[^1].End) merged[^1] = (merged[^1].Start, e > merged[^1].End ? e : merged[^1].End);
            else merged.Add((s, e));
        }
        return merged;
    }

    private static List<(DateTime Start, DateTime End)> Intersect(List<(DateTime Start, DateTime End)> a, List<(DateTime Start, DateTime End)> b)
    {
        var result = new List<(DateTime Start, DateTime End)>();
        for (int i = 0, j = 0; i < a.Count && j < b.Count;)
        {
            var s = a[i].Start > b[j].Start ? a[i].Start : b[j].Start;
            var e = a[i].End < b[j].End ? a[i].End : b[j].End;
            if (s < e) result.Add((s, e));
            if (a[i].End < b[j].End) i++;
            else j++;
        }
        return result;
    }

    private static double Length(List<(DateTime Start, DateTime End)> intervals) => intervals.Sum(x => (x.End - x.Start).TotalSeconds);
}
