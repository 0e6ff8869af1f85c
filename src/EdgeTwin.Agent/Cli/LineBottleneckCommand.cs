using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Line;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin line bottleneck --config FILE [--states CSV] [--json]</c>: the bottleneck by the active-period method
/// (mean active period per station, sole and shifting momentary-bottleneck shares), from a state log or a simulated shift.
/// Exit codes: 0 ok, 2 invalid config or log.
/// </summary>
internal sealed class LineBottleneckCommand : ICliSubcommand
{
    public string Parent => "line";

    public Command Create()
    {
        var cli = new LineCli();
        var states = new Option<FileInfo?>("--states") { Description = "State log CSV: time_s,station,state[,good_count,reject_count]." };
        var cmd = new Command("bottleneck", "Bottleneck by the active-period method (Roser).");
        cli.AddTo(cmd, replications: false);
        cmd.Options.Add(states);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var c = LineCli.Load(parse.GetValue(cli.Config)!, error);
            if (c is null) return ExitCodes.InvalidConfig;
            var stops = cli.PlannedStops(parse, c, error);
            if (stops is null) return ExitCodes.InvalidConfig;
            LineCli.ShiftRecord rec;
            try
            {
                rec = LineCli.Record(c, parse.GetValue(states), parse.GetValue(cli.Seed), stops);
            }
            catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync("line bottleneck: " + ex.Message).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }
            var r = rec.Bottleneck.Analyse(rec.EndSeconds);
            if (parse.GetValue(cli.Json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new { line = c.Id, source = rec.Source, bottleneck = r.Bottleneck, stations = r.Stations }, LineCli.JsonOptions)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var inv = CultureInfo.InvariantCulture;
            var sb = new StringBuilder();
            sb.AppendLine(inv, $"line {c.Id}, {rec.Source}: bottleneck {r.Bottleneck ?? "(no data)"}");
            sb.AppendLine("station  mean active s  active  sole   shifting");
            foreach (var s in r.Stations.OrderByDescending(s => s.MeanActiveSeconds))
                sb.AppendLine(inv, $"{s.Station,-8} {s.MeanActiveSeconds,13:0} {s.ActiveShare,7:P0} {s.SoleShare,6:P0} {s.ShiftingShare,8:P0}");
            await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
