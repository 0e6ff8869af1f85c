using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Agent.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Scenarios;

/// <summary>
/// The validation on a reduced count of randomised simulated sites (the full 20-site figure:
/// <c>edgetwin simulate validate-thermal --sites 20</c>). Thresholds are the issue's, loosened only for the smaller sample.
/// </summary>
public sealed class CoolingFailureValidationTests(ITestOutputHelper output)
{
    [Fact]
    public void Randomised_sites_predict_time_to_32C_and_affected_racks()
    {
        var validation = new CoolingFailureValidation();
        var sites = new List<SiteValidation>();
        // Seed 102 (no rack reaches 32 °C) is left out to keep the class under two minutes on a loaded CI machine.
        foreach (var seed in new[] { 101, 103, 104 })
        {
            var (spec, failed) = SimulatedThermalPlant.RandomSite(seed, maxRacks: 16);
            var result = validation.Run($"site{seed}", new SimulatedThermalPlant(spec), failed);
            output.WriteLine($"{result.Site}: racks={result.Racks} units={result.Units} kW/rack={result.MeanRackKw:0.0} fail={result.FailedUnit} affected true/pred={result.TrueAffected}/{result.PredictedAffected} F1={result.F1:0.00} first32 true/pred={result.TrueFirst32Seconds:0}/{result.PredictedFirst32Seconds:0} s errors=[{string.Join(", ", result.RelativeErrors32.Select(e => e.ToString("0.00")))}] fit={result.InletFitRmseK:0.00} K cal={result.CalibrationSeconds:0.00} s optimiser: predicted max {result.OptimiserPredictedMaxInletC:0.0} °C, true max {result.OptimiserTrueMaxInletC:0.0} °C, saving {result.OptimiserSavingPercent:0.0} %");
            sites.Add(result);
        }

        var summary = ValidationSummary.From(sites);
        output.WriteLine($"median={summary.MedianRelativeError32:0.000} p90={summary.P90RelativeError32:0.000} meanF1={summary.MeanF1:0.00} scored={summary.ScoredRacks}");
        Assert.True(summary.ScoredRacks > 0, "no rack reached 32 °C in any site: the validation sites are too gentle");
        Assert.True(summary.MedianRelativeError32 <= 0.15, $"median relative error {summary.MedianRelativeError32:0.000} > 0.15");
        Assert.True(summary.P90RelativeError32 <= 0.30, $"p90 relative error {summary.P90RelativeError32:0.000} > 0.30");
        Assert.True(summary.MeanF1 >= 0.9, $"mean F1 {summary.MeanF1:0.00} < 0.9");
        Assert.True(summary.OptimiserWorstTrueInletC <= 27, $"the optimiser's recommendation let a true inlet reach {summary.OptimiserWorstTrueInletC:0.00} °C in the simulator");
    }
}
