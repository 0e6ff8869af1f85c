using System.CommandLine;
using EdgeTwin.Agent.Alerting;

namespace EdgeTwin.Agent.Cli;

/// <summary><c>edgetwin alerts list [--config FILE | --socket PATH] [--json]</c>: pending and firing alerts of the running agent.</summary>
internal sealed class AlertsListCommand : ICliSubcommand
{
    public string Parent => "alerts";

    public Command Create()
    {
        var cli = new AlertsCli();
        var command = new Command("list", "Pending and firing alerts (SINCE: fired, or pending since; PEAK: the worst value while active; under an alert, its rule's first action and runbook), silences, sink counters, what each GPIO output (relay, buzzer, lamp) shows and the uplink's state.");
        cli.AddTo(command);
        command.SetAction((parse, ct) => cli.RunAsync(parse, AlertsCli.Request(("op", "list")), async (root, o) =>
        {
            var uplink = root.GetProperty("uplink");
            await o.WriteLineAsync($"uplink   {AlertsCli.Str(uplink, "state")} since {AlertsCli.Short(AlertsCli.Str(uplink, "since"))}").ConfigureAwait(false);
            var alerts = root.GetProperty("alerts");
            if (alerts.GetArrayLength() == 0)
            {
                await o.WriteLineAsync("no active alerts").ConfigureAwait(false);
            }
            else
            {
                // A store started after alerts.db was lost numbers from the clock (13 digits): the column fits the widest.
                var idWidth = AlertsCli.IdWidth(alerts);
                await o.WriteLineAsync($"{"ID".PadLeft(idWidth)}  {"SEVERITY",-8}  {"STATE",-12}  {"SINCE",-20}  {"PEAK",-12}  {"RULE",-28}  SUMMARY").ConfigureAwait(false);
                foreach (var a in alerts.EnumerateArray())
                {
                    var state = AlertsCli.Str(a, "state") + (a.GetProperty("flapping").GetBoolean() ? "*" : "");

                    // A pending alert has not fired: its SINCE is when it started pending.
                    var since = AlertsCli.Str(a, "state") == "pending" ? AlertsCli.Str(a, "pending_since") : AlertsCli.Str(a, "fired_at");
                    // How bad it got while active (the summary shows the value now); "-" for kinds without a limit.
                    var peak = AlertsCli.Str(a, "peak_text");
                    await o.WriteLineAsync($"{AlertsCli.Str(a, "id").PadLeft(idWidth)}  {AlertsCli.Str(a, "severity"),-8}  {state,-12}  {AlertsCli.Short(since),-20}  {peak,-12}  {AlertsCli.Str(a, "rule"),-28}  {AlertsCli.Str(a, "summary")}").ConfigureAwait(false);

                    // What to do first and where the site's procedure is, under the row (an agent before them sends neither).
                    if (EdgeTwin.Alerting.Control.AlertControlClient.ActionLine(a) is { } next)
                    {
                        await o.WriteLineAsync($"{"".PadLeft(idWidth)}  {next}").ConfigureAwait(false);
                    }
                }
            }

            foreach (var s in root.GetProperty("silences").EnumerateObject())
            {
                await o.WriteLineAsync($"silenced {s.Name} until {AlertsCli.Short(s.Value.GetString() ?? "")}").ConfigureAwait(false);
            }

            foreach (var s in root.GetProperty("sinks").EnumerateArray())
            {
                var down = s.TryGetProperty("down_since", out var since)
                    ? $"DOWN since {AlertsCli.Short(since.GetString() ?? "")} ({AlertsCli.Str(s, "down_attempts")} attempts, last: {AlertsCli.Str(s, "down_reason")}), holding its messages; "
                    : "";
                await o.WriteLineAsync($"sink     {AlertsCli.Str(s, "name")}: {down}delivered {AlertsCli.Str(s, "delivered")}, failed {AlertsCli.Str(s, "failed")}, dropped {AlertsCli.Str(s, "dropped")}, superseded {AlertsCli.Str(s, "superseded")}, queued {AlertsCli.Str(s, "queued")}").ConfigureAwait(false);
            }

            if (root.TryGetProperty("outputs", out var outputs))
            {
                foreach (var g in outputs.EnumerateArray())
                {
                    var note = g.GetProperty("quieted_by_ack").GetBoolean() ? " (acknowledged)" : "";
                    await o.WriteLineAsync($"output   {AlertsCli.Str(g, "sink")}/{AlertsCli.Str(g, "name")}: {AlertsCli.Str(g, "pattern")}{note}").ConfigureAwait(false);
                }
            }
        }, ct));
        return command;
    }
}
