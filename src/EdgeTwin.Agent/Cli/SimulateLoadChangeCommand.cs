using System.CommandLine;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate load-change --rack R01 --delta-kw 3 (--config FILE --history CSV | --demo-seed N) [--json]</c>:
/// the add-rack shape for a load change on an existing rack. Exit codes: 0 ok, 1 not_ok, 2 bad arguments or input.
/// </summary>
internal sealed class SimulateLoadChangeCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var source = new TwinCliSource();
        var rack = new Option<string>("--rack") { Description = "Rack whose load changes.", Required = true };
        var delta = new Option<double>("--delta-kw") { Description = "Change of IT power (kW; negative to reduce; -1000–1000).", Required = true }
            .Between(-TwinScenarios.MaxRackKw, TwinScenarios.MaxRackKw);
        var command = new Command("load-change", "What a rack's load change does to inlets, power headroom and cooling.");
        command.Options.Add(rack);
        command.Options.Add(delta);
        source.AddTo(command);
        command.SetAction((parse, ct) => CapacityOutput.RunAsync(parse, source, "simulate load-change", twin => CapacityScenarios.LoadChange(twin, parse.GetValue(rack)!, parse.GetValue(delta))));
        return command;
    }
}
