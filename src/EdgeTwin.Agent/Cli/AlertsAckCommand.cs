using System.CommandLine;
using EdgeTwin.Agent.Alerting;

namespace EdgeTwin.Agent.Cli;

/// <summary><c>edgetwin alerts ack ID</c>: acknowledges a firing alert (it stays listed; it is not notified again, the buzzer stops).</summary>
internal sealed class AlertsAckCommand : ICliSubcommand
{
    public string Parent => "alerts";

    public Command Create()
    {
        var cli = new AlertsCli();
        var id = new Argument<long>("ID") { Description = "The alert's id, as `alerts list` shows it." };
        var command = new Command("ack", "Acknowledge a firing alert.");
        command.Arguments.Add(id);
        cli.AddTo(command);
        command.SetAction((parse, ct) => cli.RunAsync(
            parse,
            AlertsCli.Request(("op", "ack"), ("id", parse.GetValue(id)), ("by", Environment.UserName)),
            (_, o) => o.WriteLineAsync($"alert {parse.GetValue(id)} acknowledged"),
            ct));
        return command;
    }
}
