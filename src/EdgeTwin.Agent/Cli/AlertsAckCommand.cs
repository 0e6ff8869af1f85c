using System.CommandLine;
using System.Globalization;
using EdgeTwin.Agent.Alerting;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin alerts ack ID… | --rule RULE | --all [--severity S]</c>: acknowledges firing alerts (they stay listed;
/// they are not notified again; the buzzer stops once every critical one is acknowledged).
/// </summary>
internal sealed class AlertsAckCommand : ICliSubcommand
{
    public string Parent => "alerts";

    public Command Create()
    {
        var cli = new AlertsCli();
        var ids = new Argument<long[]>("ID") { Description = "Alert ids, as `alerts list` shows them (several allowed).", Arity = ArgumentArity.ZeroOrMore };

        // An id that is not a number said "Unrecognized command or argument 'A12'", as if ack took no ids at all: the
        // parser takes every token, the validator below names the one that is not an id (an error added here made
        // reading the ids throw in the validator).
        ids.CustomParser = r => [.. r.Tokens.Select(t => IsId(t.Value, out var id) ? id : -1).Where(id => id >= 0)];
        var rule = new Option<string?>("--rule") { Description = "Acknowledge every firing alert of this rule." };
        var all = new Option<bool>("--all") { Description = "Acknowledge every firing alert (with --severity: only those of that severity)." };
        var severity = new Option<string?>("--severity") { Description = "With --all or --rule: only alerts of this severity." };
        severity.AcceptOnlyFromAmong("critical", "warning", "info");
        var command = new Command(
            "ack",
            "Acknowledge firing alerts: by id (several allowed), every one of a rule (--rule RULE) or every one (--all, "
            + "optionally --severity critical). An acknowledged alert stays listed until it clears but is not notified again; "
            + "outputs with silence_on_ack (the buzzer) stop once every critical alert is acknowledged (relay and lamp stay). "
            + "Acknowledgements are saved before the answer and survive a restart of the agent. Unknown ids are reported "
            + "without stopping the others; the exit code is 1 if any failed.");
        command.Arguments.Add(ids);
        command.Options.Add(rule);
        command.Options.Add(all);
        command.Options.Add(severity);
        cli.AddTo(command);
        command.Validators.Add(r =>
        {
            if (r.GetResult(ids)?.Tokens.FirstOrDefault(t => !IsId(t.Value, out _)) is { } notAnId)
            {
                r.AddError($"alert id '{notAnId.Value}' is not a number: give the ID column of `edgetwin alerts list` (e.g. 12), --rule RULE or --all");
                return;
            }

            var given = (r.GetValue(ids) is { Length: > 0 } ? 1 : 0) + (r.GetValue(rule) is not null ? 1 : 0) + (r.GetValue(all) ? 1 : 0);
            if (given != 1)
            {
                r.AddError("give alert ids, --rule RULE or --all (exactly one of them)");
            }
            else if (r.GetValue(severity) is not null && r.GetValue(ids) is { Length: > 0 })
            {
                r.AddError("--severity goes with --all or --rule, not with ids");
            }
        });
        command.SetAction((parse, ct) =>
        {
            var fields = new List<(string, object)> { ("op", "ack") };
            if (parse.GetValue(ids) is { Length: > 0 } list)
            {
                fields.Add(("ids", list));
            }
            else
            {
                fields.Add(parse.GetValue(rule) is { } r ? ("rule", r) : ("all", true));
                if (parse.GetValue(severity) is { } s)
                {
                    fields.Add(("severity", s));
                }
            }

            return cli.RunAsync(parse, AlertsCli.Request([.. fields]), Print, ct, printFailed: true);
        });
        return command;
    }

    private static async Task Print(System.Text.Json.JsonElement root, TextWriter o)
    {
        if (!root.TryGetProperty("acknowledged", out var acked))
        {
            return; // a request the agent refused as a whole: its error goes to stderr
        }

        foreach (var a in acked.EnumerateArray())
        {
            await o.WriteLineAsync($"alert {AlertsCli.Str(a, "id")} acknowledged ({AlertsCli.Str(a, "severity")} {AlertsCli.Str(a, "rule")} {AlertsCli.Str(a, "key")})").ConfigureAwait(false);
        }

        if (acked.GetArrayLength() == 0 && root.TryGetProperty("failed", out var failed) && failed.GetArrayLength() == 0)
        {
            await o.WriteLineAsync("no firing unacknowledged alert matches; nothing acknowledged").ConfigureAwait(false);
        }

        if (acked.GetArrayLength() > 0 && root.TryGetProperty("warning", out var warning) && warning.GetString() is { } text)
        {
            // The agent cannot write its state directory: the acknowledge holds until a restart only.
            await o.WriteLineAsync("warning: " + text).ConfigureAwait(false);
        }
    }

    private static bool IsId(string token, out long id) => long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out id);
}
