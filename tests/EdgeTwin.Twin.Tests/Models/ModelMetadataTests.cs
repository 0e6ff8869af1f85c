using System.Text.Json.Nodes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;
using Xunit;

namespace EdgeTwin.Twin.Tests.Models;

/// <summary>
/// Kind-specific metadata (normalisation, calibration, uncertainty, kind) is checked when the catalog loads a version,
/// not only when a runner binds it after the swap (audit of issue 7, finding 2).
/// </summary>
public sealed class ModelMetadataTests
{
    /// <summary>One bad edit per rule the runners apply: (case, model, JSON path the error must name).</summary>
    public static TheoryData<string, string, string> BadMetadata => new()
    {
        { "mean-length", "mv-machine", "models[0].inputs[0].normalisation.mean" },
        { "zero-std", "mv-machine", "models[0].inputs[0].normalisation.std" },
        { "features-vs-shape", "mv-machine", "models[0].inputs[0].features" },
        { "no-calibration", "mv-machine", "models[0].outputs[0].calibration.threshold" },
        { "window-vs-shape", "mv-machine", "models[0].inputs[0].normalisation.window" },
        { "negative-interval", "bearing-rul", "models[0].inputs[0].normalisation" },
        { "sigma-per-band", "rul-cmapss", "models[0].outputs[0].uncertainty" },
        { "sigma-per-band", "bearing-rul", "models[0].outputs[0].uncertainty" },
        { "unknown-kind", "mv-machine", "models[0].kind" },
    };

    private static void Break(string what, JsonObject entry)
    {
        var input = entry["inputs"]![0]!.AsObject();
        var output = entry["outputs"]![0]!.AsObject();
        switch (what)
        {
            case "mean-length":
                input["normalisation"]!["mean"] = new JsonArray(1, 2);
                break;
            case "zero-std":
                input["normalisation"]!["std"] = new JsonArray(0, 0, 0);
                break;
            case "features-vs-shape":
                input["features"] = new JsonArray("motor_torque", "motor_temperature");
                break;
            case "no-calibration":
                output.Remove("calibration");
                break;
            case "window-vs-shape":
                input["normalisation"]!["window"] = 16;
                break;
            case "negative-interval":
                input["normalisation"]!["intervalSeconds"] = -5;
                break;
            case "sigma-per-band":
                output["uncertainty"]!["sigma"] = new JsonArray(1, 2);
                break;
            case "unknown-kind":
                entry["kind"] = "foo";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(what), what, "no such edit");
        }
    }

    [Theory]
    [MemberData(nameof(BadMetadata))]
    public void Bad_kind_specific_metadata_makes_the_model_unavailable_at_load_naming_manifest_and_path(string what, string model, string field)
    {
        using var files = new ModelFiles();
        files.Install(model, e => Break(what, e));
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.Unavailable, status.State);
        Assert.Null(catalog.Get(model));
        Assert.Contains($"{files.ManifestPath}: {field}", status.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bearing-rul")]
    [InlineData("rul-cmapss")]
    [InlineData("mv-machine")]
    public void The_committed_models_pass_the_kind_checks(string model)
    {
        using var files = new ModelFiles();
        files.Install(model);
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.True(status.State == ModelState.Available, status.Error);
    }

    [Fact]
    public void Regression_a_manifest_with_a_wrong_normalisation_length_replaced_the_serving_model()
    {
        using var files = new ModelFiles();
        files.Install("mv-machine");
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        var serving = catalog.Get("mv-machine");
        Assert.NotNull(serving);
        var version = serving.Entry.Version;

        // Same file and hash, a new version whose mean has 2 numbers for 3 features.
        files.Install("mv-machine", e =>
        {
            e["version"] = "1.5.0";
            Break("mean-length", e);
        });
        catalog.Reload();

        var status = Assert.Single(catalog.Status);
        Assert.Equal(ModelState.ServingPrevious, status.State);
        Assert.Equal(version, status.Version);
        Assert.Contains("models[0].inputs[0].normalisation.mean: must be an array of 3 numbers", status.Error, StringComparison.Ordinal);
        Assert.Same(serving, catalog.Get("mv-machine"));
    }

    [Fact]
    public void Regression_a_rul_version_with_one_sigma_too_few_stopped_the_runner_after_the_swap()
    {
        using var files = new ModelFiles();
        files.InstallRul();
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();
        using var runner = new RulModelRunner(catalog, "rul-cmapss");
        var history = RulFixture.Load().Units[0].Rows;
        Assert.True(runner.TryPredict(history, out var before));

        files.InstallRul(e =>
        {
            e["version"] = "9.0.0";
            Break("sigma-per-band", e);
        });
        catalog.Reload();

        Assert.Equal(ModelState.ServingPrevious, catalog.Status[0].State);
        Assert.True(runner.TryPredict(history, out var after));
        Assert.Equal(before, after);
        Assert.NotEqual("9.0.0", runner.Entry!.Version);
    }

    [Fact]
    public void Regression_a_manifest_json_error_printed_two_line_numbers()
    {
        using var files = new ModelFiles();
        File.WriteAllText(files.ManifestPath, "{ \"schemaVersion\": 1,\n  \"models\": [ ,\n] }");
        using var catalog = new ModelCatalog(files.Directory);
        catalog.Reload();

        Assert.NotNull(catalog.ManifestError);
        Assert.Contains("(line 2, byte 15)", catalog.ManifestError, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", catalog.ManifestError, StringComparison.Ordinal);
    }
}
