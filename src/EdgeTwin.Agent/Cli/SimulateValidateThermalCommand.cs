using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Scenarios;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin simulate validate-thermal [--sites 20] [--first-seed 1] [--max-racks 30] [--json]</c>: the issue's
/// validation of the thermal twin on randomised simulated sites — 24 simulated hours of normal telemetry, calibration,
/// then a cooling unit fails; prints the error of the predicted time to 32 °C and the affected-rack F1.
/// Exit codes: 0 every target met, 1 a target missed.
/// </summary>
internal sealed class SimulateValidateThermalCommand : ICliSubcommand
{
    public string Parent => "simulate";

    public Command Create()
    {
        var sites = new Option<int>("--sites") { Description = "Randomised sites to validate on.", DefaultValueFactory = _ => 20 };
        var firstSeed = new Option<int>("--first-seed") { Description = "Seed of the first site (site k uses first-seed + k).", DefaultValueFactory = _ => 1 };
        var maxRacks = new Option<int>("--max-racks") { Description = "Largest rack count drawn.", DefaultValueFactory = _ => 30 };
        var json = new Option<bool>("--json") { Description = "Print JSON for scripts." };
        var riskSigmas = new Option<double?>("--risk-sigmas") { Description = "Upper band (in standard deviations of the calibration's uncertainty) that flags a rack as affected; default the scenario's (0.5); 0: expected forecast only." };
        var holdLoad = new Option<bool>("--hold-load") { Description = "Hold the present load through the horizon instead of following the calibrated daily profile (for comparison)." };
        var riseUncertainty = new Option<double?>("--optimiser-rise-uncertainty") { Description = "Share of each predicted inlet rise the optimiser adds before checking the limit (default 0.5; 0 trusts the model)." };
        var command = new Command("validate-thermal", "Validate the thermal twin's cooling-failure predictions against the simulator.");
        command.Options.Add(sites);
        command.Options.Add(firstSeed);
        command.Options.Add(maxRacks);
        command.Options.Add(json);
        command.Options.Add(riskSigmas);
        command.Options.Add(holdLoad);
        command.Options.Add(riseUncertainty);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var defaults = new CoolingFailureValidation();
            var validation = new CoolingFailureValidation
            {
                RiskSigmas = parse.GetValue(riskSigmas) ?? defaults.RiskSigmas,
                FollowLoadProfile = !parse.GetValue(holdLoad),
                OptimiserRiseUncertainty = parse.GetValue(riseUncertainty) ?? defaults.OptimiserRiseUncertainty,
            };
            var results = new List<SiteValidation>();
            for (var k = 0; k < Math.Max(1, parse.GetValue(sites)); k++)
            {
                ct.ThrowIfCancellationRequested();
                var seed = parse.GetValue(firstSeed) + k;
                var (spec, failed) = SimulatedThermalPlant.RandomSite(seed, Math.Max(6, parse.GetValue(maxRacks)));
                var r = validation.Run($"seed{seed}", new SimulatedThermalPlant(spec), failed);
                results.Add(r);
                if (!parse.GetValue(json))
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{r.Site,-8} racks {r.Racks,3} units {r.Units} {r.MeanRackKw,5:0.0} kW/rack fail {r.FailedUnit,-6} affected {r.TrueAffected,2}/{r.PredictedAffected,2} (true/pred) F1 {r.F1:0.00} first 32 °C {TwinCliSource.Minutes(r.TrueFirst32Seconds),9} / {TwinCliSource.Minutes(r.PredictedFirst32Seconds),9} median err {Median(r.RelativeErrors32):0.000} fit {r.InletFitRmseK:0.00} K calib {r.CalibrationSeconds:0.00} s scenario {r.ScenarioMilliseconds:0.0} ms")).ConfigureAwait(false);
                }
            }

            var summary = ValidationSummary.From(results);
            var met = summary.MedianRelativeError32 <= 0.15 && summary.P90RelativeError32 <= 0.30 && summary.MeanF1 >= 0.9;
            if (parse.GetValue(json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new { summary.MedianRelativeError32, summary.P90RelativeError32, summary.MeanF1, summary.MinF1, summary.RackF1, summary.ScoredRacks, TargetsMet = met, Sites = results }, TwinCliSource.Json)).ConfigureAwait(false);
            }
            else
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"time to 32 °C: median relative error {summary.MedianRelativeError32:0.000} (target ≤ 0.15), p90 {summary.P90RelativeError32:0.000} (≤ 0.30) over {summary.ScoredRacks} racks; affected-rack F1 mean {summary.MeanF1:0.00} (≥ 0.9), min {summary.MinF1:0.00}, over racks {summary.RackF1:0.000}: {(met ? "targets met" : "targets MISSED")}")).ConfigureAwait(false);
            }

            return met ? ExitCodes.Ok : ExitCodes.Failure;
        });
        return command;
    }

    private static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : 0.5 * (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]);
    }
}
