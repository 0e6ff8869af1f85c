using System.Globalization;
using System.IO.Compression;
using System.Text.Json.Nodes;
using EdgeTwin.IntegrationTests.Deployment;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary><c>edgetwin models list|verify</c> and <c>edgetwin bench cmapss</c>, in process, on the committed model.</summary>
public sealed class ModelsCliTests
{
    private static string Models => Path.Combine(Tool.RepoRoot(), "models");

    private static Task<(int Exit, string Output, string Error)> Run(params string[] args) => InProcessCli.RunAsync(args);

    [Fact]
    public async Task Verify_passes_on_the_committed_models_and_lists_them_as_json()
    {
        var (exit, output, error) = await Run("models", "verify", "--dir", Models);
        Assert.True(exit == 0, $"exit {exit}: {output}{error}");
        Assert.Matches(@"rul-cmapss\s+\S+\s+Available", output);

        (exit, output, _) = await Run("models", "list", "--dir", Models, "--json");
        Assert.Equal(0, exit);
        var json = JsonNode.Parse(output)!;
        var rul = json["models"]!.AsArray().Single(m => (string?)m!["name"] == "rul-cmapss")!;
        Assert.Equal("available", (string?)rul["state"]);
    }

    [Fact]
    public async Task Verify_fails_with_exit_1_naming_the_file_when_the_hash_is_wrong()
    {
        using var dir = new TempDir();
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Models, "manifest.json")))!.AsObject();
        foreach (var m in manifest["models"]!.AsArray())
        {
            File.Copy(Path.Combine(Models, (string)m!["file"]!), Path.Combine(dir.Path, (string)m["file"]!));
            m["sha256"] = new string('b', 64);
        }

        File.WriteAllText(Path.Combine(dir.Path, "manifest.json"), manifest.ToJsonString());
        var (exit, output, _) = await Run("models", "verify", "--dir", dir.Path);
        Assert.Equal(1, exit);
        Assert.Contains("Unavailable", output, StringComparison.Ordinal);
        Assert.Contains("rul-cmapss.onnx: sha256: file hash", output, StringComparison.Ordinal);

        (exit, _, _) = await Run("models", "list", "--dir", dir.Path);
        Assert.Equal(0, exit);
    }

    /// <summary>The committed models in a temp directory, the manifest edited by <paramref name="edit"/>.</summary>
    private static TempDir CopyModels(string model, Action<JsonObject> edit)
    {
        var dir = new TempDir();
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Models, "manifest.json")))!.AsObject();
        foreach (var m in manifest["models"]!.AsArray())
        {
            File.Copy(Path.Combine(Models, (string)m!["file"]!), Path.Combine(dir.Path, (string)m["file"]!));
        }

        edit(manifest["models"]!.AsArray().Single(m => (string?)m!["name"] == model)!.AsObject());
        File.WriteAllText(Path.Combine(dir.Path, "manifest.json"), manifest.ToJsonString());
        return dir;
    }

    [Fact]
    public async Task Regression_verify_passed_a_multivariate_model_whose_normalisation_mean_had_the_wrong_length()
    {
        using var dir = CopyModels("mv-machine", e => e["inputs"]![0]!["normalisation"]!["mean"] = new JsonArray(1, 2));
        var (exit, output, _) = await Run("models", "verify", "--dir", dir.Path);
        Assert.Equal(1, exit);
        Assert.Matches(@"mv-machine\s+\S+\s+Unavailable", output);
        Assert.Contains($"{Path.Combine(dir.Path, "manifest.json")}: models[2].inputs[0].normalisation.mean: must be an array of 3 numbers", output, StringComparison.Ordinal);
        Assert.Matches(@"rul-cmapss\s+\S+\s+Available", output);
    }

    [Fact]
    public async Task Regression_bench_bearing_and_cmapss_said_not_in_the_manifest_when_the_metadata_was_bad()
    {
        using var bearing = CopyModels("bearing-rul", e => e["outputs"]![0]!["uncertainty"]!["sigma"] = new JsonArray(1, 2));
        var (exit, _, error) = await Run("bench", "bearing", "--machines", "1", "--days", "1", "--models", bearing.Path);
        Assert.Equal(1, exit);
        Assert.Contains("models[0].outputs[0].uncertainty: malformed: one positive sigma per band is required", error, StringComparison.Ordinal);
        Assert.DoesNotContain("not in the manifest", error, StringComparison.Ordinal);

        // A model the catalog serves but this runner cannot bind: the runner's reason.
        (exit, _, error) = await Run("bench", "bearing", "--machines", "1", "--days", "1", "--models", Models, "--model", "rul-cmapss");
        Assert.Equal(1, exit);
        Assert.Contains("normalisation.type: the machine-health runner needs 'interval-means'", error, StringComparison.Ordinal);

        // Only a model the manifest does not name is "not in the manifest".
        (exit, _, error) = await Run("bench", "bearing", "--machines", "1", "--days", "1", "--models", Models, "--model", "no-such-model");
        Assert.Equal(1, exit);
        Assert.Contains("not in the manifest", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_cmapss_prints_rmse_and_phm08_and_writes_one_row_per_unit()
    {
        // Units 1-5 of NASA's train_FD001.txt (public domain), committed so the test runs wherever the repository is
        // cloned; a small test set in NASA's layout is cut from them at known points.
        using var dir = new TempDir();
        var train = Path.Combine(dir.Path, "train_FD001.txt");
        await using (var packed = File.OpenRead(Path.Combine(Tool.RepoRoot(), "tests", "EdgeTwin.IntegrationTests", "Twin", "Fixtures", "train_FD001_units1-5.txt.gz")))
        await using (var unpacked = new GZipStream(packed, CompressionMode.Decompress))
        await using (var file = File.Create(train))
        {
            await unpacked.CopyToAsync(file, TestContext.Current.CancellationToken);
        }

        var lines = File.ReadAllLines(train);
        var test = new List<string>();
        var truth = new List<int>();
        for (var unit = 1; unit <= 5; unit++)
        {
            var rows = lines.Where(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0] == unit.ToString(CultureInfo.InvariantCulture)).ToList();
            var rul = 10 + (unit * 20);
            test.AddRange(rows.Take(rows.Count - rul));
            truth.Add(rul);
        }

        var testPath = Path.Combine(dir.Path, "test_FD001.txt");
        var rulPath = Path.Combine(dir.Path, "RUL_FD001.txt");
        var csvPath = Path.Combine(dir.Path, "pred.csv");
        File.WriteAllLines(testPath, test);
        File.WriteAllLines(rulPath, truth.Select(t => t.ToString(CultureInfo.InvariantCulture)));

        var (exit, output, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", rulPath, "--predictions-out", csvPath, "--models", Models, "--json");
        Assert.True(exit == 0, $"exit {exit}: {output}{error}");
        var figures = JsonNode.Parse(output)!;
        Assert.Equal("FD001", (string?)figures["dataset"]);
        Assert.Equal(5, (int)figures["units"]!);

        var csv = File.ReadAllLines(csvPath);
        Assert.Equal("dataset,unit,predicted_rul", csv[0]);
        Assert.Equal(6, csv.Length);
        var predicted = csv.Skip(1).Select(l => double.Parse(l.Split(',')[2], CultureInfo.InvariantCulture)).ToArray();
        var rmse = Math.Sqrt(predicted.Zip(truth).Average(p => Math.Pow(p.First - p.Second, 2)));
        Assert.Equal(rmse, (double)figures["rmse"]!, 1);
        Assert.True((double)figures["rmse"]! < 40, output);
        Assert.True((double)figures["train_mean_abs_z"]! < 0.5, output);

        (exit, _, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", Path.Combine(dir.Path, "missing.txt"), "--models", Models);
        Assert.Equal(2, exit);
        Assert.Contains("missing.txt does not exist", error, StringComparison.Ordinal);

        // Regression: a RUL model whose uncertainty has one sigma too few was reported as "not in the manifest".
        using var bad = CopyModels("rul-cmapss", e => e["outputs"]![0]!["uncertainty"]!["sigma"] = new JsonArray(1, 2));
        (exit, _, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", rulPath, "--models", bad.Path);
        Assert.NotEqual(0, exit);
        Assert.Contains("models[1].outputs[0].uncertainty: malformed: one positive sigma per band is required", error, StringComparison.Ordinal);
        Assert.DoesNotContain("not in the manifest", error, StringComparison.Ordinal);
    }
}
