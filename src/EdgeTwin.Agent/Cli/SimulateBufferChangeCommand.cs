using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate buffer-change --config FILE --buffer B1 --capacity N [--elapsed MIN] [--buffer B2=LEVEL …] [--json]</c>:
/// the rest of the shift's output with the buffer at another capacity against the line as configured, from paired
/// replications, and what the difference is worth at the margin per unit. Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal sealed class SimulateBufferChangeCommand : ICliSubcommand
{
    // The config loader's bound for a buffer capacity (and the MQTT request's).
    private const int MaxCapacity = 1_000_000;

    public string Parent => "simulate";

    public Command Create()
    {
        var cli = new LineCli();
        // One --buffer option in two forms, so the starting levels are given as in every other what-if:
        // BUFFER names the buffer to change, BUFFER=LEVEL a level at the start.
        cli.Buffers.Description = "The buffer to change, e.g. --buffer B1; BUFFER=LEVEL (repeatable) gives parts in a buffer now, default half full as the live twin assumes.";
        var capacity = new Option<int>("--capacity") { Description = "The buffer's new capacity in parts (>= 1).", Required = true };
        var elapsed = new Option<double>("--elapsed") { Description = "Minutes of the shift already gone.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("buffer-change", "Output gained or lost if a line buffer had another capacity.");
        cli.AddTo(cmd);
        cmd.Options.Add(cli.Buffers);
        cmd.Options.Add(capacity);
        cmd.Options.Add(elapsed);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, error);
            if (c is null) return ExitCodes.InvalidConfig;
            var values = parse.GetValue(cli.Buffers) ?? [];
            var targets = values.Where(v => !v.Contains('=', StringComparison.Ordinal)).Select(v => v.Trim()).ToArray();
            var known = string.Join(", ", c.Spec.Buffers.Select(b => b.Id));
            if (targets.Length != 1)
            {
                await error.WriteLineAsync($"simulate buffer-change: name the buffer to change once, e.g. --buffer B1 (line {c.Id} has {(known.Length == 0 ? "no buffers" : known)}); --buffer B1=N gives a level at the start").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            var id = targets[0];
            int index = c.Spec.Buffers.ToList().FindIndex(b => b.Id == id);
            if (index < 0)
            {
                await error.WriteLineAsync($"simulate buffer-change: buffer '{id}' is not in line {c.Id} ({known})").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            int cap = parse.GetValue(capacity);
            double gone = parse.GetValue(elapsed);
            // The line model needs room for at least one part (LineSpec.Validate).
            if (cap < 1 || cap > MaxCapacity || gone < 0 || gone * 60 >= c.ShiftLength.TotalSeconds)
            {
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"simulate buffer-change: --capacity must be 1..{MaxCapacity} parts (got {cap}), --elapsed >= 0 and inside the {c.ShiftLength.TotalMinutes:0.#} min shift")).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            var stops = cli.PlannedStops(parse, c, error);
            if (stops is null) return ExitCodes.InvalidConfig;
            var scenarios = LineCli.Scenarios(c, stops, parse.GetValue(cli.Replications), parse.GetValue(cli.Seed));
            if (cli.Start(parse, c, gone * 60, error, values.Where(v => v.Contains('=', StringComparison.Ordinal))) is not { } at) return ExitCodes.InvalidConfig;
            var r = scenarios.BufferChange(at.Now, id, cap);
            if (parse.GetValue(cli.Json))
            {
                await output.WriteLineAsync(LineScenarioJson.BufferChange(c.Id, gone, id, cap, r, c.MarginPerUnit, at.Buffers)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var from = c.Spec.Buffers[index].Capacity;
            foreach (var line in LineCli.DescribeChange(string.Create(CultureInfo.InvariantCulture, $"{id} capacity {from} -> {cap} in line {c.Id}"), r, c.MarginPerUnit))
                await output.WriteLineAsync(line).ConfigureAwait(false);
            // The simulator clamps a level above the new capacity: say so rather than let parts vanish unseen.
            if (at.Buffers[index].Level > cap)
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{id} holds {at.Buffers[index].Level} parts at the start, more than {cap}: the scenario starts it full")).ConfigureAwait(false);
            await output.WriteLineAsync(LineCli.DescribeBuffers(at.Buffers)).ConfigureAwait(false);
            foreach (var line in LineCli.Describe(c, stops)) await output.WriteLineAsync(line).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
