using System.CommandLine;
using System.Globalization;
using System.Text;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate maintenance-window --config FILE --station S3 --minutes 90 [--step 15] [--elapsed MIN] [--json]</c>:
/// when in the rest of the shift to take the station down for the least lost output (every start tried on a grid,
/// common random numbers). Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateMaintenanceWindowCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var cli = new LineCli();
        var station = new Option<string>("--station") { Description = "Station id, e.g. S3.", Required = true };
        var minutes = new Option<double>("--minutes") { Description = "Length of the maintenance window.", Required = true };
        var step = new Option<double>("--step") { Description = "Minutes between candidate starts.", DefaultValueFactory = _ => 15 };
        var elapsed = new Option<double>("--elapsed") { Description = "Minutes of the shift already gone.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("maintenance-window", "Best time in the shift to take a line station down.");
        cli.AddTo(cmd);
        cmd.Options.Add(cli.Buffers);
        cmd.Options.Add(station);
        cmd.Options.Add(minutes);
        cmd.Options.Add(step);
        cmd.Options.Add(elapsed);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, error);
            if (c is null) return ExitCodes.InvalidConfig;
            var id = parse.GetValue(station)!;
            double min = parse.GetValue(minutes), st = parse.GetValue(step), gone = parse.GetValue(elapsed);
            if (!c.Spec.Stations.Any(s => s.Id == id) || !(min > 0) || !(st > 0) || gone < 0 || (gone + min) * 60 > c.ShiftLength.TotalSeconds)
            {
                await error.WriteLineAsync($"simulate maintenance-window: need a station of line {c.Id} ({string.Join(", ", c.Spec.Stations.Select(s => s.Id))}), --minutes > 0 that fit in the rest of the shift, --step > 0").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            // Each candidate costs a full set of replications; fewer by default keep the answer within seconds.
            int reps = parse.GetResult(cli.Replications) is null ? 40 : Math.Max(2, parse.GetValue(cli.Replications));
            var stops = cli.PlannedStops(parse, c, error);
            if (stops is null) return ExitCodes.InvalidConfig;
            var scenarios = LineCli.Scenarios(c, stops, reps, parse.GetValue(cli.Seed));
            if (cli.Start(parse, c, gone * 60, error) is not { } at) return ExitCodes.InvalidConfig;
            var r = scenarios.MaintenanceWindow(at.Now, id, min * 60, st * 60);
            if (parse.GetValue(cli.Json))
            {
                await output.WriteLineAsync(LineScenarioJson.MaintenanceWindow(c.Id, gone, min, r, c.MarginPerUnit, at.Buffers)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var inv = CultureInfo.InvariantCulture;
            var sb = new StringBuilder();
            sb.AppendLine(inv, $"{id} maintenance {min:0.#} min in line {c.Id}: best start {r.Best.StartSeconds / 60:0} min into the shift, lost {r.Best.LostOutput.Mean:0.#} parts ({LineCli.Level(r.Best.LostOutput)} CI {r.Best.LostOutput.Low:0.#}–{r.Best.LostOutput.High:0.#}), cost {r.Best.LostOutput.Mean * c.MarginPerUnit:0.##}");
            sb.AppendLine(LineCli.DescribeBuffers(at.Buffers));
            foreach (var line in LineCli.Describe(c, stops)) sb.AppendLine(line);
            sb.AppendLine(inv, $"start min  lost parts ({LineCli.Level(r.Best.LostOutput)} CI)");
            foreach (var x in r.Candidates) sb.AppendLine(inv, $"{x.StartSeconds / 60,9:0}  {x.LostOutput.Mean,6:0.#} ({x.LostOutput.Low:0.#}–{x.LostOutput.High:0.#})");
            await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
