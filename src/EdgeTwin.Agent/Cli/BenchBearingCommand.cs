using System.CommandLine;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin bench bearing [--asset machine|fan [--fan-speed F] [--fan-swing F]] [--machines N] [--healthy N] [--days D] [--seed S] [--models DIR] [--model NAME] [--json]</c>:
/// simulated machines with bearing defects (random onset, growth to failure) and healthy ones, in accelerated time
/// through the maintenance stage's code; prints how many failures were predicted at least 24 h ahead and the false
/// predictions per 100 machine-days on healthy bearings. <c>--export-training CSV</c> writes the machine-health model's
/// training data instead. Exit codes: 0 done, 1 model unavailable, 2 bad arguments.
/// </summary>
internal sealed class BenchBearingCommand : ICliSubcommand
{
    public string Parent => "bench";

    public Command Create()
    {
        var machines = new Option<int>("--machines") { Description = "Machines whose bearing develops a defect.", DefaultValueFactory = _ => 50 };
        var healthy = new Option<int?>("--healthy") { Description = "Machines whose bearing stays healthy (default: as many as --machines)." };
        var days = new Option<double>("--days") { Description = "Simulated days per machine.", DefaultValueFactory = _ => 30 };
        var seed = new Option<int>("--seed") { Description = "Seed of the machine draws.", DefaultValueFactory = _ => 7 };
        var threshold = new Option<double>("--threshold") { Description = "Failure probability that raises a prediction.", DefaultValueFactory = _ => 0.7 };
        var horizon = new Option<double>("--horizon-hours") { Description = "Probability of failing within this many hours.", DefaultValueFactory = _ => 48 };
        var models = new Option<DirectoryInfo?>("--models") { Description = "Models directory (default: models/ beside the binary, then ./models)." };
        var model = new Option<string>("--model") { Description = "Model name in the manifest.", DefaultValueFactory = _ => MaintenanceDefaults.Model };
        var export = new Option<FileInfo?>("--export-training") { Description = "Write the machine-health model's training data (CSV) instead of benchmarking." };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON (with per-machine outcomes)." };
        var asset = new Option<BenchAsset>("--asset") { Description = "What to simulate: machine (process motors at rated speed) or fan (cooling-unit blowers whose speed follows the day).", DefaultValueFactory = _ => BenchAsset.Machine };
        var fanSpeed = new Option<double?>("--fan-speed") { Description = "With --asset fan: every fan's mean speed as a fraction of rated, 0.3-1 (default: drawn per fan, 0.55-0.8)." }.Between(EdgeTwin.Simulator.Physics.FanDuty.MinSpeed, 1);
        var fanSwing = new Option<double?>("--fan-swing") { Description = "With --asset fan: every fan's daily speed swing, ± fraction of rated, 0-0.5 (default: drawn per fan, 0.1-0.2; 0: one speed all day)." }.Between(0, 0.5);
        var command = new Command("bearing", "Simulated bearing wear through the maintenance predictor: warning lead before failure, false predictions per 100 machine-days.");
        foreach (var o in new Option[] { machines, healthy, days, seed, threshold, horizon, models, model, export, json, asset, fanSpeed, fanSwing })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var n = parse.GetValue(machines);
            var h = parse.GetValue(healthy) ?? n;
            var d = parse.GetValue(days);
            var th = parse.GetValue(threshold);
            var hz = parse.GetValue(horizon);
            if (n < 0 || h < 0 || n + h == 0 || !(d > 0 && d <= 3650) || !(th is > 0 and < 1) || !(hz > 0))
            {
                await error.WriteLineAsync("bench bearing: --machines/--healthy ≥ 0 (not both 0), --days in (0, 3650], --threshold in (0, 1), --horizon-hours > 0").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var fanDuty = new FanDutyOverride(parse.GetValue(fanSpeed), parse.GetValue(fanSwing));
            if (!fanDuty.IsDrawn && parse.GetValue(asset) != BenchAsset.Fan)
            {
                await error.WriteLineAsync("bench bearing: --fan-speed and --fan-swing need --asset fan").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            if (parse.GetValue(export) is { } csv)
            {
                await using var writer = new StreamWriter(csv.FullName);
                await Task.Run(() => BearingBench.ExportTraining(writer, n, h, d, parse.GetValue(seed), MachineHealthMonitor.DefaultInterval, TimeSpan.FromSeconds(10), parse.GetValue(asset), fanDuty), ct).ConfigureAwait(false);
                await output.WriteLineAsync($"wrote {csv.FullName}").ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            using var catalog = new ModelCatalog(parse.GetValue(models)?.FullName ?? ModelsConfig.DefaultDirectory());
            catalog.Reload();
            var options = new BearingBenchOptions(n, h, d, parse.GetValue(seed)) { Threshold = th, Horizon = TimeSpan.FromHours(hz), Asset = parse.GetValue(asset), FanDuty = fanDuty };
            BearingBenchResult result;
            try
            {
                result = await Task.Run(() => BearingBench.Run(catalog, parse.GetValue(model)!, options, ct), ct).ConfigureAwait(false);
            }
            catch (InvalidOperationException e)
            {
                await error.WriteLineAsync($"bench bearing: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            await output.WriteLineAsync(parse.GetValue(json) ? result.ToJson() : result.ToText()).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }
}
