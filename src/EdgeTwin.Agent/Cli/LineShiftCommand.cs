using System.CommandLine;
using EdgeTwin.Core.Config;
using EdgeTwin.Agent.Line;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// The frame of the <c>line</c> analyses of one shift (oee, bottleneck): <c>--config</c>, <c>--states CSV</c> and the
/// <see cref="LineCli"/> options; the action loads the line and the shift's planned stops, books the state log (or a
/// simulated shift) with <see cref="LineCli.Record"/>, and hands the record to the command to print.
/// Exit codes: 0 ok, 2 invalid config or log.
/// </summary>
internal abstract class LineShiftCommand(string name, string description) : ICliSubcommand
{
    public string Parent => "line";

    public Command Create()
    {
        var cli = new LineCli();
        var states = new Option<FileInfo?>("--states") { Description = "State log CSV: time_s,station,state[,good_count,reject_count]." };
        var cmd = new Command(name, description);
        cli.AddTo(cmd, replications: false);
        cmd.Options.Add(states);
        cmd.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, error);
            if (c is null) return ExitCodes.InvalidConfig;
            if (cli.ShiftOf(parse, c, error) is not { } plan) return ExitCodes.InvalidConfig;
            (c, var stops) = (plan.Line, plan.Stops);
            LineCli.ShiftRecord rec;
            try
            {
                rec = LineCli.Record(c, parse.GetValue(states), parse.GetValue(cli.Seed), stops);
            }
            catch (FormatException ex)
            {
                await error.WriteLineAsync($"line {name}: {ex.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                var file = parse.GetValue(states)!.FullName;
                await error.WriteLineAsync($"line {name}: cannot read --states {file}: {SiteConfigLoader.ReadFailure(file, ex)}").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            await WriteAsync(c, rec, parse.GetValue(cli.Json), parse.InvocationConfiguration.Output, error).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Prints the analysis of the booked shift as JSON or text; warnings go to <paramref name="error"/>.</summary>
    protected abstract Task WriteAsync(LineTwinConfig c, LineCli.ShiftRecord rec, bool json, TextWriter output, TextWriter error);
}
