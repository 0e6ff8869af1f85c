using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate cycle-time-change --config FILE --station S3 --cycle-s SECONDS [--elapsed MIN] [--buffer B1=12 …] [--json]</c>:
/// the rest of the shift's output with the station at another ideal cycle time against the line as configured, from
/// paired replications, and what the difference is worth at the margin per unit. Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateCycleTimeChangeCommand : ICliSubcommand
{
    // The MQTT request's bound: a cycle of more than a day is a typo, not a what-if.
    private const double MaxCycleSeconds = 86_400;

    public string Parent => "simulate";

    public Command Create()
    {
        var cli = new LineCli();
        var station = new Option<string>("--station") { Description = "Station id, e.g. S3.", Required = true };
        var cycle = new Option<double>("--cycle-s") { Description = "The station's new ideal cycle time in seconds (> 0).", Required = true };
        var elapsed = new Option<double>("--elapsed") { Description = "Minutes of the shift already gone.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("cycle-time-change", "Output gained or lost if a line station had another cycle time.");
        cli.AddTo(cmd);
        cmd.Options.Add(cli.Buffers);
        cmd.Options.Add(station);
        cmd.Options.Add(cycle);
        cmd.Options.Add(elapsed);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, error);
            if (c is null) return ExitCodes.InvalidConfig;
            var id = parse.GetValue(station)!;
            int index = c.Spec.Stations.ToList().FindIndex(s => s.Id == id);
            if (index < 0)
            {
                await error.WriteLineAsync($"simulate cycle-time-change: station '{id}' is not in line {c.Id} ({string.Join(", ", c.Spec.Stations.Select(s => s.Id))})").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            double seconds = parse.GetValue(cycle), gone = parse.GetValue(elapsed);
            if (!(seconds > 0) || seconds > MaxCycleSeconds || gone < 0 || gone * 60 >= c.ShiftLength.TotalSeconds)
            {
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"simulate cycle-time-change: --cycle-s must be > 0 and at most {MaxCycleSeconds} (got {seconds}), --elapsed >= 0 and inside the {c.ShiftLength.TotalMinutes:0.#} min shift")).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            var stops = cli.PlannedStops(parse, c, error);
            if (stops is null) return ExitCodes.InvalidConfig;
            var scenarios = LineCli.Scenarios(c, stops, parse.GetValue(cli.Replications), parse.GetValue(cli.Seed));
            if (cli.Start(parse, c, gone * 60, error) is not { } at) return ExitCodes.InvalidConfig;
            var r = scenarios.CycleTimeChange(at.Now, id, seconds);
            if (parse.GetValue(cli.Json))
            {
                await output.WriteLineAsync(LineScenarioJson.CycleTimeChange(c.Id, gone, id, seconds, r, c.MarginPerUnit, at.Buffers)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var head = string.Create(CultureInfo.InvariantCulture, $"{id} cycle {c.Spec.Stations[index].CycleTimeSeconds:0.###} s -> {seconds:0.###} s in line {c.Id}");
            foreach (var line in LineCli.DescribeChange(head, r, c.MarginPerUnit)) await output.WriteLineAsync(line).ConfigureAwait(false);
            await output.WriteLineAsync(LineCli.DescribeBuffers(at.Buffers)).ConfigureAwait(false);
            foreach (var line in LineCli.Describe(c, stops)) await output.WriteLineAsync(line).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
