using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate machine-down --config FILE --station S3 --minutes 40 [--start-in MIN] [--elapsed MIN] [--json]</c>:
/// lost output and its cost (margin per unit from the line section) if the station stops, from paired replications of
/// the rest of the shift. Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateMachineDownCommand() : LineWhatIfCommand("machine-down", "Lost output and cost if a line station stops for a while.")
{
    private readonly Option<string> _station = StationOption();
    private readonly Option<double> _minutes = new("--minutes") { Description = "How long it is down.", Required = true };
    private readonly Option<double> _startIn = new("--start-in") { Description = "Minutes from now until it stops.", DefaultValueFactory = _ => 0 };

    protected override IEnumerable<Option> OwnOptions => [_station, _minutes, _startIn];

    protected override async Task<WhatIf?> CheckAsync(ParseResult parse, LineTwinConfig c, double gone, TextWriter error)
    {
        var id = parse.GetValue(_station)!;
        if (await StationIndexAsync(c, id, error).ConfigureAwait(false) < 0) return null;
        double min = parse.GetValue(_minutes), start = parse.GetValue(_startIn);
        if (!(min > 0))
        {
            await WrongAsync(error, "--minutes", min, "must be > 0").ConfigureAwait(false);
            return null;
        }
        if (!(start >= 0))
        {
            await WrongAsync(error, "--start-in", start, "must be >= 0").ConfigureAwait(false);
            return null;
        }
        if (!await CheckElapsedAsync(c, gone, error).ConfigureAwait(false)) return null;
        double left = c.ShiftLength.TotalMinutes - gone;
        if (start >= left)
        {
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Prefix}: --start-in {start:0.#} min is past the end of the shift ({left:0.#} min left after --elapsed {gone:0.#}): nothing of the stop falls in this shift")).ConfigureAwait(false);
            return null;
        }
        // Only the part of the stop inside the shift is simulated and costed; the text and JSON say so.
        double costed = Math.Min(min, left - start);
        return new WhatIf((scenarios, at) =>
        {
            var r = scenarios.MachineDown(at.Now, id, min * 60, start * 60);
            var before = new List<string>
            {
                string.Create(CultureInfo.InvariantCulture,
                    $"{id} down {min:0.#} min in line {c.Id}: rest of shift {r.BaselineOutput:0} -> {r.ScenarioOutput:0} parts\nlost output {r.LostOutput.Mean:0.#} parts ({LineCli.Level(r.LostOutput)} CI {r.LostOutput.Low:0.#}–{r.LostOutput.High:0.#}), cost {r.Cost.Mean:0.##} ({LineCli.Level(r.Cost)} CI {r.Cost.Low:0.##}–{r.Cost.High:0.##}) at {c.MarginPerUnit} per part; {r.Replications} paired replications"),
            };
            if (costed < min)
                before.Add(string.Create(CultureInfo.InvariantCulture, $"only {costed:0.#} of the {min:0.#} min fall in this shift; the rest (into the next shift) is not costed"));
            return new WhatIfReport(() => LineScenarioJson.MachineDown(c.Id, gone, id, min, start, r, c.MarginPerUnit, at.Buffers, costed), before, []);
        });
    }
}
