using System.CommandLine;
using EdgeTwin.Agent.Twin.Requests;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Optimisation;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin optimize cooling [--margin 1] (--config FILE --history CSV | --demo-seed N) [--json]</c>: advisory supply set
/// points and fan speeds that minimise cooling power with every inlet ≤ 27 °C − margin. Writes nothing to any unit.
/// Exit codes: 0 done, 2 bad arguments or input.
/// </summary>
internal sealed class OptimizeCoolingCommand : ICliSubcommand
{
    public string Parent => "optimize";

    public Command Create()
    {
        var source = new TwinCliSource();
        var margin = new Option<double>("--margin") { Description = "Kelvin kept below the 27 °C inlet limit (0–20).", DefaultValueFactory = _ => EdgeTwin.Twin.Optimisation.CoolingOptimiser.DefaultMarginK }
            .Between(TwinScenarios.MinMarginK, TwinScenarios.MaxMarginK);
        var command = new Command("cooling", "Recommend cooling set points that save energy with every inlet inside its limit (advisory).");
        command.Options.Add(margin);
        source.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var twin = source.Load(parse, parse.InvocationConfiguration.Error, "optimize cooling");
            if (twin is null)
            {
                return ExitCodes.InvalidConfig;
            }

            var results = TwinScenarios.OptimizeCooling(twin, parse.GetValue(margin));
            if (parse.GetValue(source.JsonOutput))
            {
                await output.WriteLineAsync(TwinScenarios.PerZoneJson(results)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            foreach (var r in results)
            {
                await output.WriteLineAsync($"cooling recommendation for {r.Zone} (advisory; inlets ≤ {r.InletLimitC - r.MarginK:0.0} °C):").ConfigureAwait(false);
                foreach (var u in r.Units)
                {
                    await output.WriteLineAsync($"  {u.Unit,-10} supply set point {u.SupplySetpointNowC:0.0} → {u.SupplySetpointC:0.0} °C, fan {u.FanSpeedNow * 100:0} → {u.FanSpeed * 100:0} %").ConfigureAwait(false);
                }

                await output.WriteLineAsync($"  predicted hottest inlet {r.PredictedMaxInletC:0.0} °C ({r.HottestRack}); cooling power {r.CoolingPowerNowKw:0.00} → {r.CoolingPowerKw:0.00} kW, saving {r.SavingKw:0.00} kW ({r.SavingPercent:0.0} %)").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
