using System.CommandLine;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate feed-failure --element PDU-or-UPS (--config FILE --history CSV | --demo-seed N) [--json]</c>:
/// whether the surviving feeds carry the load within their derated ratings. Exit codes: 0 ok, 1 not_ok, 2 bad input.
/// </summary>
internal sealed class SimulateFeedFailureCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var source = new TwinCliSource();
        var element = new Option<string>("--element") { Description = "PDU (rack feed) or UPS that fails.", Required = true };
        var command = new Command("feed-failure", "Whether the surviving feeds and UPSes carry the load when a feed or UPS fails.");
        command.Options.Add(element);
        source.AddTo(command);
        command.SetAction((parse, ct) => CapacityOutput.RunAsync(parse, source, "simulate feed-failure", twin => CapacityScenarios.FeedFailure(twin, parse.GetValue(element)!)));
        return command;
    }
}
