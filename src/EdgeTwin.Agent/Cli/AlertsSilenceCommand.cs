using System.CommandLine;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Cli;

/// <summary><c>edgetwin alerts silence RULE --for 2h</c>: nobody is notified of the rule's alerts until then (0s lifts it).</summary>
internal sealed class AlertsSilenceCommand : ICliSubcommand
{
    public string Parent => "alerts";

    public Command Create()
    {
        var cli = new AlertsCli();
        var rule = new Argument<string>("RULE") { Description = "The rule's name." };
        var duration = new Option<string>("--for") { Description = "How long (30m, 2h, 1d; 0s lifts a silence).", Required = true };
        var command = new Command("silence", "Silence a rule's notifications for a while (its alerts keep their state).");
        command.Arguments.Add(rule);
        command.Options.Add(duration);
        cli.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (!Durations.TryParse(parse.GetValue(duration), out var span))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"edgetwin alerts silence: --for '{parse.GetValue(duration)}' is not a duration (30m, 2h, 1d)").ConfigureAwait(false);
                return 2;
            }

            return await cli.RunAsync(
                parse,
                AlertsCli.Request(("op", "silence"), ("rule", parse.GetValue(rule)!), ("seconds", span.TotalSeconds)),
                async (root, o) =>
                {
                    // --for 0s lifts the silence: the agent answers with "until" = now, which read as a silence of no time.
                    await o.WriteLineAsync(span == TimeSpan.Zero
                        ? $"rule {parse.GetValue(rule)} silence lifted: its notifications go out again"
                        : $"rule {parse.GetValue(rule)} silenced until {AlertsCli.Short(AlertsCli.Str(root, "until"))}").ConfigureAwait(false);
                    if (root.TryGetProperty("warning", out var warning) && warning.GetString() is { } text)
                    {
                        // The agent cannot write its state directory: the silence holds until a restart only.
                        await o.WriteLineAsync("warning: " + text).ConfigureAwait(false);
                    }
                },
                ct).ConfigureAwait(false);
        });
        return command;
    }
}
