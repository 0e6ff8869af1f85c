using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate machine-down --config FILE --station S3 --minutes 40 [--start-in MIN] [--elapsed MIN] [--json]</c>:
/// lost output and its cost (margin per unit from the line section) if the station stops, from paired replications of
/// the rest of the shift. Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateMachineDownCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var cli = new LineCli();
        var station = new Option<string>("--station") { Description = "Station id, e.g. S3.", Required = true };
        var minutes = new Option<double>("--minutes") { Description = "How long it is down.", Required = true };
        var startIn = new Option<double>("--start-in") { Description = "Minutes from now until it stops.", DefaultValueFactory = _ => 0 };
        var elapsed = new Option<double>("--elapsed") { Description = "Minutes of the shift already gone.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("machine-down", "Lost output and cost if a line station stops for a while.");
        cli.AddTo(cmd);
        cmd.Options.Add(cli.Buffers);
        cmd.Options.Add(station);
        cmd.Options.Add(minutes);
        cmd.Options.Add(startIn);
        cmd.Options.Add(elapsed);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, error);
            if (c is null) return ExitCodes.InvalidConfig;
            var id = parse.GetValue(station)!;
            if (!c.Spec.Stations.Any(s => s.Id == id))
            {
                await error.WriteLineAsync($"simulate machine-down: station '{id}' is not in line {c.Id} ({string.Join(", ", c.Spec.Stations.Select(s => s.Id))})").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            double min = parse.GetValue(minutes), start = parse.GetValue(startIn), gone = parse.GetValue(elapsed);
            if (!(min > 0) || start < 0 || gone < 0 || gone * 60 >= c.ShiftLength.TotalSeconds)
            {
                await error.WriteLineAsync("simulate machine-down: --minutes must be > 0, --start-in and --elapsed >= 0 and --elapsed inside the shift").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            double left = c.ShiftLength.TotalMinutes - gone;
            if (start >= left)
            {
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"simulate machine-down: --start-in {start:0.#} min is past the end of the shift ({left:0.#} min left after --elapsed {gone:0.#}): nothing of the stop falls in this shift")).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            // Only the part of the stop inside the shift is simulated and costed; the text and JSON say so.
            double costed = Math.Min(min, left - start);
            var stops = cli.PlannedStops(parse, c, error);
            if (stops is null) return ExitCodes.InvalidConfig;
            var scenarios = LineCli.Scenarios(c, stops, parse.GetValue(cli.Replications), parse.GetValue(cli.Seed));
            if (cli.Start(parse, c, gone * 60, error) is not { } at) return ExitCodes.InvalidConfig;
            var r = scenarios.MachineDown(at.Now, id, min * 60, start * 60);
            if (parse.GetValue(cli.Json))
            {
                await output.WriteLineAsync(LineScenarioJson.MachineDown(c.Id, gone, id, min, start, r, c.MarginPerUnit, at.Buffers, costed)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{id} down {min:0.#} min in line {c.Id}: rest of shift {r.BaselineOutput:0} -> {r.ScenarioOutput:0} parts\nlost output {r.LostOutput.Mean:0.#} parts ({LineCli.Level(r.LostOutput)} CI {r.LostOutput.Low:0.#}–{r.LostOutput.High:0.#}), cost {r.Cost.Mean:0.##} ({LineCli.Level(r.Cost)} CI {r.Cost.Low:0.##}–{r.Cost.High:0.##}) at {c.MarginPerUnit} per part; {r.Replications} paired replications")).ConfigureAwait(false);
            if (costed < min)
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"only {costed:0.#} of the {min:0.#} min fall in this shift; the rest (into the next shift) is not costed")).ConfigureAwait(false);
            await output.WriteLineAsync(LineCli.DescribeBuffers(at.Buffers)).ConfigureAwait(false);
            foreach (var line in LineCli.Describe(c, stops)) await output.WriteLineAsync(line).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
