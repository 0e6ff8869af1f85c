using System.CommandLine;
using EdgeTwin.Agent.Alerting;

namespace EdgeTwin.Agent.Cli;

/// <summary><c>edgetwin alerts history [--limit N] [--json]</c>: raised, cleared, acknowledged and silenced, oldest first.</summary>
internal sealed class AlertsHistoryCommand : ICliSubcommand
{
    public string Parent => "alerts";

    public Command Create()
    {
        var cli = new AlertsCli();
        var limit = new Option<int>("--limit", "-n") { Description = "How many of the newest changes to show (1 to 10000, the agent's cap).", DefaultValueFactory = _ => 50 }.Within(1, 10_000);
        var command = new Command("history", "The alert history kept by the running agent (survives restarts), oldest first.");
        cli.AddTo(command);
        command.Options.Add(limit);
        command.SetAction((parse, ct) => cli.RunAsync(parse, AlertsCli.Request(("op", "history"), ("limit", parse.GetValue(limit))), async (root, o) =>
        {
            var history = root.GetProperty("history");
            var idWidth = AlertsCli.IdWidth(history);
            foreach (var e in history.EnumerateArray())
            {
                await o.WriteLineAsync($"{AlertsCli.Short(AlertsCli.Str(e, "time")),-20}  {AlertsCli.Str(e, "id").PadLeft(idWidth)}  {AlertsCli.Str(e, "severity"),-8}  {AlertsCli.Str(e, "rule"),-28}  {AlertsCli.Str(e, "key"),-28}  {AlertsCli.Str(e, "change")}  (uplink {AlertsCli.Str(e, "uplink")})").ConfigureAwait(false);
            }
        }, ct));
        return command;
    }
}
