using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;
using Xunit;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>The C# preprocessing and ONNX run reproduce what models/rul/train_rul.py computed.</summary>
public sealed class RulPreprocessingFixtureTests
{
    [Fact]
    public void Fixture_matches_the_committed_model()
    {
        var manifest = ModelManifest.Load(Path.Combine(ModelFiles.RepoModels, "manifest.json"));
        Assert.Equal(manifest.Find("rul-cmapss")!.Sha256, RulFixture.Load().Sha256);
    }

    [Fact]
    public void Windows_equal_the_scripts_including_padded_short_units()
    {
        var manifestPath = Path.Combine(ModelFiles.RepoModels, "manifest.json");
        var pre = CmapssPreprocessor.FromEntry(ModelManifest.Load(manifestPath).Find("rul-cmapss")!, manifestPath);
        var fixture = RulFixture.Load();
        Assert.Contains(fixture.Units, u => u.Rows.Count < pre.Window);
        Assert.Contains(fixture.Units, u => u.Dataset == "FD002");
        var window = new float[pre.Window * pre.Features];
        foreach (var unit in fixture.Units)
        {
            pre.FillWindow(unit.Rows, window);
            for (var i = 0; i < pre.Window; i++)
            {
                for (var j = 0; j < pre.Features; j++)
                {
                    var expected = unit.Window[i][j];
                    var actual = window[(i * pre.Features) + j];
                    Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"{unit.Dataset} unit {unit.Unit} row {i} feature {j}: script {expected}, C# {actual}");
                }
            }
        }
    }

    [Fact]
    public void Onnx_outputs_equal_the_scripts()
    {
        using var catalog = new ModelCatalog(ModelFiles.RepoModels);
        catalog.Reload();
        Assert.Equal(ModelState.Available, catalog.Status.Single(s => s.Name == "rul-cmapss").State);
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        foreach (var unit in RulFixture.Load().Units)
        {
            Assert.True(runner.TryPredict(unit.Rows, out var rul));
            Assert.True(Math.Abs(rul - unit.PredictedRul) < 1e-2, $"{unit.Dataset} unit {unit.Unit}: script {unit.PredictedRul}, C# {rul}");
        }
    }

    [Fact]
    public void Onnx_outputs_equal_the_scripts_on_every_prefix()
    {
        // Every window the fixture's units give (padded short histories included): ~2,000 windows through ONNX
        // Runtime against the script's reference (1.4.0: torch members + sklearn trees + the output map).
        using var catalog = new ModelCatalog(ModelFiles.RepoModels);
        catalog.Reload();
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        var units = RulFixture.Load().Units;
        Assert.All(units, u => Assert.Equal(u.Rows.Count, u.PrefixRul.Count));
        var maxDiff = 0.0;
        foreach (var unit in units)
        {
            for (var n = 1; n <= unit.Rows.Count; n++)
            {
                Assert.True(runner.TryPredict(unit.Rows.Take(n).ToList(), out var rul));
                maxDiff = Math.Max(maxDiff, Math.Abs(rul - unit.PrefixRul[n - 1]));
            }
        }

        Assert.True(maxDiff < 1e-2, $"max |script - C#| over every prefix: {maxDiff}");
    }

    [Fact]
    public void Failure_probability_grows_as_rul_falls_below_the_horizon()
    {
        var u = new RulUncertainty(0, [50, double.PositiveInfinity], [10, 20]);
        Assert.Equal(0.5, u.FailureProbability(48, 48), 6);
        Assert.True(u.FailureProbability(20, 48) > 0.99);
        Assert.True(u.FailureProbability(120, 48) < 0.001);
        Assert.Equal(0.8413, u.FailureProbability(38, 48), 3); // one sigma below the horizon
    }
}
