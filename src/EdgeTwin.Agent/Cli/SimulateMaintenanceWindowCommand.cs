using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate maintenance-window --config FILE --station S3 --minutes 90 [--step 15] [--elapsed MIN] [--json]</c>:
/// when in the rest of the shift to take the station down for the least lost output (every start tried on a grid,
/// common random numbers). Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateMaintenanceWindowCommand() : LineWhatIfCommand("maintenance-window", "Best time in the shift to take a line station down.")
{
    private readonly Option<string> _station = StationOption();
    private readonly Option<double> _minutes = new("--minutes") { Description = "Length of the maintenance window.", Required = true };
    private readonly Option<double> _step = new("--step") { Description = "Minutes between candidate starts.", DefaultValueFactory = _ => 15 };

    protected override IEnumerable<Option> OwnOptions => [_station, _minutes, _step];

    protected override async Task<WhatIf?> CheckAsync(ParseResult parse, LineTwinConfig c, double gone, TextWriter error)
    {
        var id = parse.GetValue(_station)!;
        double min = parse.GetValue(_minutes), st = parse.GetValue(_step);
        if (await StationIndexAsync(c, id, error).ConfigureAwait(false) < 0 || !await CheckElapsedAsync(c, gone, error).ConfigureAwait(false)) return null;
        double left = c.ShiftLength.TotalMinutes - gone;
        var (option, value, why) =
            !(min > 0) ? ("--minutes", min, "must be > 0")
            : min > left ? ("--minutes", min, string.Create(CultureInfo.InvariantCulture, $"does not fit in the {left:0.#} min left of the shift (after --elapsed {gone:0.#})"))
            : !(st > 0) ? ("--step", st, "must be > 0")
            : ((string?)null, 0.0, "");
        if (option is not null)
        {
            await WrongAsync(error, option, value, why).ConfigureAwait(false);
            return null;
        }
        var inv = CultureInfo.InvariantCulture;
        return new WhatIf((scenarios, at) =>
        {
            var r = scenarios.MaintenanceWindow(at.Now, id, min * 60, st * 60);
            string head = string.Create(inv, $"{id} maintenance {min:0.#} min in line {c.Id}: best start {r.Best.StartSeconds / 60:0} min into the shift, lost {r.Best.LostOutput.Mean:0.#} parts ({LineCli.Level(r.Best.LostOutput)} CI {r.Best.LostOutput.Low:0.#}–{r.Best.LostOutput.High:0.#}), cost {r.Best.LostOutput.Mean * c.MarginPerUnit:0.##}");
            string[] table =
            [
                string.Create(inv, $"start min  lost parts ({LineCli.Level(r.Best.LostOutput)} CI)"),
                .. r.Candidates.Select(x => string.Create(inv, $"{x.StartSeconds / 60,9:0}  {x.LostOutput.Mean,6:0.#} ({x.LostOutput.Low:0.#}–{x.LostOutput.High:0.#})")),
            ];
            return new WhatIfReport(() => LineScenarioJson.MaintenanceWindow(c.Id, gone, min, r, c.MarginPerUnit, at.Buffers), [head], table);
        })
        {
            // Each candidate costs a full set of replications; fewer by default keep the answer within seconds.
            Replications = parse.GetResult(Cli.Replications) is null ? 40 : Math.Max(2, parse.GetValue(Cli.Replications)),
        };
    }
}
