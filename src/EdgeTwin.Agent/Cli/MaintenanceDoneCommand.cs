using System.CommandLine;
using EdgeTwin.Agent.Alerting;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin maintenance done MACHINE</c>: reports a machine repaired to the running agent (over the alert control
/// socket, as <c>alerts ack</c>): its open maintenance prediction is withdrawn with the next samples and its history
/// restarts. Exit codes: 0 taken, 1 refused (a machine that is not watched) or the agent unreachable, 2 bad config.
/// </summary>
internal sealed class MaintenanceDoneCommand : ICliSubcommand
{
    public string Parent => "maintenance";

    public Command Create()
    {
        var cli = new AlertsCli();
        var machine = new Argument<string>("MACHINE") { Description = "The repaired machine, as in models.maintenance.machines (e.g. m1)." };
        var command = new Command(
            "done",
            "Report a machine repaired (e.g. its bearing replaced): its open maintenance prediction is withdrawn at once "
            + "(state resolved, same prediction id, with repair_reported_by = your user), so the work order closes, and the "
            + "model forgets the worn part's history. Without it the agent sees the repair only after the failure probability "
            + "stayed low for 24 h. A machine not in models.maintenance.machines is refused (exit 1).");
        command.Arguments.Add(machine);
        cli.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (answer, exit) = await cli.SendAsync(parse, "maintenance", AlertsCli.Request(("op", "maintenance_done"), ("machine", parse.GetValue(machine)!)), unreachableExit: 1, ct).ConfigureAwait(false);
            if (answer is null)
            {
                return exit;
            }

            using (answer)
            {
                var root = answer.RootElement;
                if (!root.GetProperty("ok").GetBoolean())
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync("edgetwin maintenance: " + root.GetProperty("error").GetString()).ConfigureAwait(false);
                    return 1;
                }

                await parse.InvocationConfiguration.Output.WriteLineAsync(parse.GetValue(cli.Json) ? root.GetRawText() : root.GetProperty("message").GetString()).ConfigureAwait(false);
                return 0;
            }
        });
        return command;
    }
}
