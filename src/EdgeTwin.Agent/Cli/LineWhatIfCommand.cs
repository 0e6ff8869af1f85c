using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// The frame of the line what-ifs under <c>simulate</c> (machine-down, maintenance-window, cycle-time-change,
/// buffer-change): the <see cref="LineCli"/> options and <c>--buffer</c>, the command's own, then <c>--elapsed</c>. The
/// action loads the line, lets the command check its arguments, takes the shift's planned stops, builds the scenarios
/// and the start, runs the what-if, and prints its JSON or its text around the start buffers and the planned stops.
/// Exit codes: 0 ok, 2 invalid config or arguments.
/// </summary>
internal abstract class LineWhatIfCommand(string name, string description) : ICliSubcommand
{
    public string Parent => "simulate";

    protected LineCli Cli { get; } = new();

    protected Option<double> Elapsed { get; } = new("--elapsed") { Description = "Minutes of the shift already gone.", DefaultValueFactory = _ => 0 };

    /// <summary>What every message starts with, e.g. "simulate machine-down".</summary>
    protected string Prefix { get; } = "simulate " + name;

    /// <summary>The command's own options, in the order help lists them (after <c>--buffer</c>, before <c>--elapsed</c>).</summary>
    protected abstract IEnumerable<Option> OwnOptions { get; }

    protected static Option<string> StationOption() => new("--station") { Description = "Station id, e.g. S3.", Required = true };

    public Command Create()
    {
        var cmd = new Command(name, description);
        Cli.AddTo(cmd);
        cmd.Options.Add(Cli.Buffers);
        foreach (var option in OwnOptions) cmd.Options.Add(option);
        cmd.Options.Add(Elapsed);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(Cli.Config)!, error);
            if (c is null || !Cli.CheckReplications(parse, error)) return ExitCodes.InvalidConfig;
            // The shift first: with --date its real length bounds --elapsed and the what-ifs.
            if (Cli.ShiftOf(parse, c, error) is not { } plan) return ExitCodes.InvalidConfig;
            (c, var stops) = (plan.Line, plan.Stops);
            double gone = parse.GetValue(Elapsed);
            if (await CheckAsync(parse, c, gone, error).ConfigureAwait(false) is not { } whatIf) return ExitCodes.InvalidConfig;
            var scenarios = LineCli.Scenarios(c, stops, whatIf.Replications ?? parse.GetValue(Cli.Replications), parse.GetValue(Cli.Seed));
            if (Cli.Start(parse, c, gone * 60, error, whatIf.Levels) is not { } at) return ExitCodes.InvalidConfig;
            var report = whatIf.Run(scenarios, at);
            if (parse.GetValue(Cli.Json))
            {
                await output.WriteLineAsync(report.Json()).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            foreach (var line in report.Before) await output.WriteLineAsync(line).ConfigureAwait(false);
            await output.WriteLineAsync(LineCli.DescribeBuffers(at.Buffers)).ConfigureAwait(false);
            foreach (var line in LineCli.Describe(c, stops)) await output.WriteLineAsync(line).ConfigureAwait(false);
            foreach (var line in report.After) await output.WriteLineAsync(line).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>
    /// Checks the command's arguments against the line, <paramref name="elapsedMinutes"/> being <c>--elapsed</c>; null
    /// after printing why one is wrong.
    /// </summary>
    protected abstract Task<WhatIf?> CheckAsync(ParseResult parse, LineTwinConfig c, double elapsedMinutes, TextWriter error);

    /// <summary>Whether <c>--elapsed</c> is inside the shift; false after printing which value is wrong and why.</summary>
    protected async Task<bool> CheckElapsedAsync(LineTwinConfig c, double elapsedMinutes, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(error);
        if (elapsedMinutes >= 0 && elapsedMinutes < c.ShiftLength.TotalMinutes) return true;
        await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Prefix}: --elapsed {elapsedMinutes}: must be at least 0 and less than the shift's {c.ShiftLength.TotalMinutes:0.#} min")).ConfigureAwait(false);
        return false;
    }

    /// <summary>Prints "PREFIX: OPTION VALUE: WHY": the one value that is wrong, not every rule at once.</summary>
    protected Task WrongAsync(TextWriter error, string option, double value, string why)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Prefix}: {option} {value}: {why}"));
    }

    /// <summary>The station's index in the line; -1 after printing that it is not there and which are.</summary>
    protected async Task<int> StationIndexAsync(LineTwinConfig c, string id, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(error);
        int index = c.Spec.Stations.ToList().FindIndex(s => s.Id == id);
        if (index < 0)
            await error.WriteLineAsync($"{Prefix}: station '{id}' is not in line {c.Id} ({string.Join(", ", c.Spec.Stations.Select(s => s.Id))})").ConfigureAwait(false);
        return index;
    }

    /// <summary>
    /// A checked what-if: the run on the scenarios from its start; <see cref="Replications"/> when the command has its own
    /// default, <see cref="Levels"/> when only some <c>--buffer</c> values are start levels.
    /// </summary>
    protected sealed class WhatIf(Func<LineScenarios, (LineNow Now, IReadOnlyList<LineCli.BufferStart> Buffers), WhatIfReport> run)
    {
        public int? Replications { get; init; }

        public IEnumerable<string>? Levels { get; init; }

        public WhatIfReport Run(LineScenarios scenarios, (LineNow Now, IReadOnlyList<LineCli.BufferStart> Buffers) start) => run(scenarios, start);
    }

    /// <summary>A run's JSON (made only when asked for) and its text lines before and after the start buffers and planned stops.</summary>
    protected sealed record WhatIfReport(Func<string> Json, IReadOnlyList<string> Before, IReadOnlyList<string> After);
}
