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
    public async Task Regression_models_outbox_and_alerts_refused_a_config_with_a_twin_section_that_check_and_run_accept()
    {
        using var dir = new TempDir();
        var root = Tool.RepoRoot();
        var outbox = Path.Combine(dir.Path, "outbox.db");
        var site = Path.Combine(dir.Path, "site.yaml");
        File.WriteAllText(site, File.ReadAllText(Path.Combine(root, "device-profiles", "examples", "thermal-twin", "dc-room-setpoint-control.yaml"))
            .Replace("/var/lib/edgetwin/outbox.db", outbox, StringComparison.Ordinal)
            + $"twin:\n  anomaly: {{ threshold: 0.5 }}\nmodels: {{ directory: {Models} }}\nprofiles_dir: {Path.Combine(root, "device-profiles")}\n");

        var (exit, output, error) = await Run("check", "--config", site);
        Assert.True(exit == 0, $"check: exit {exit}: {output}{error}");

        (exit, output, error) = await Run("models", "verify", "--config", site);
        Assert.True(exit == 0, $"models verify: exit {exit}: {output}{error}");
        Assert.Matches(@"rul-cmapss\s+\S+\s+Available", output);

        // No agent ran here: each command gets past the config to the file or socket it names.
        // The outbox command writes to the process's stderr: its exit code tells a config problem (2) from no outbox (1).
        (exit, _, _) = await Run("outbox", "stats", "--config", site);
        Assert.Equal(1, exit);

        (exit, _, error) = await Run("alerts", "list", "--config", site);
        Assert.DoesNotContain("unknown key", error, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(dir.Path, "alerts.sock"), error, StringComparison.Ordinal);
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
    public async Task Bench_bearing_runs_cooling_unit_fans_through_the_shipped_model()
    {
        var (exit, output, error) = await Run("bench", "bearing", "--asset", "fan", "--machines", "6", "--healthy", "2", "--days", "20", "--seed", "7", "--models", Models, "--json");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(output)!;
        Assert.Equal("fan", (string?)result["asset"]);
        Assert.True((int)result["failures"]! >= 2, output);
        Assert.Equal((int)result["failures"]!, (int)result["warned_in_time"]!);
        Assert.Equal(0, (int)result["false_predictions"]!);
        Assert.All(result["per_machine"]!.AsArray(), m => Assert.StartsWith("f", (string?)m!["id"], StringComparison.Ordinal));
    }

    /// <summary>
    /// <c>bearing-rul</c> 1.0.0 had learned process machines only: on fans (speed following the day) it warned a median
    /// 62 h before failures against a 48 h horizon (up to 90 h) and moved its estimate with the daily speed, 11 updates
    /// per failure. 1.1.0 learned fan runs too (other seeds than these).
    /// </summary>
    [Fact]
    public async Task Regression_fans_were_warned_half_a_day_early_and_their_estimate_moved_with_the_daily_speed()
    {
        var (exit, output, error) = await Run("bench", "bearing", "--asset", "fan", "--machines", "20", "--healthy", "4", "--days", "30", "--seed", "7", "--models", Models, "--json");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(output)!;
        var failures = (int)result["failures"]!;
        Assert.True(failures >= 10, output);
        Assert.Equal(failures, (int)result["warned_in_time"]!);
        Assert.Equal(0, (int)result["false_predictions"]!);
        var fans = result["per_machine"]!.AsArray();
        var leads = fans.Select(m => (double?)m!["lead_hours"]).OfType<double>().Order().ToList();
        Assert.InRange(leads[leads.Count / 2], 40, 56);
        Assert.InRange(leads[^1], 40, 60);
        var updates = fans.Select(m => (int)m!["updates"]!).ToList();
        Assert.True(updates.Sum() <= 5 * failures, $"{updates.Sum()} updates for {failures} failures");
        Assert.True(updates.Max() <= 12, $"at most {updates.Max()} updates for one fan");
    }

    /// <summary>
    /// A fan held at 40 % of its rated speed all day (a constant-speed EC fan setting, no daily cycle; neither is in the
    /// training runs): <c>bearing-rul</c> 1.0.0 warned none of 16 failures 24 h ahead (seed 7, 50 fans; 10 not at all),
    /// its symptoms being those of a machine far from failure. The same fans' draws, only their duty set.
    /// </summary>
    [Fact]
    public async Task Regression_fans_at_a_constant_low_speed_were_warned_too_late_or_not_at_all()
    {
        var (exit, output, error) = await Run("bench", "bearing", "--asset", "fan", "--fan-speed", "0.4", "--fan-swing", "0", "--machines", "16", "--healthy", "2", "--days", "30", "--seed", "7", "--models", Models, "--json");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(output)!;
        Assert.Equal(0.4, (double)result["fan_speed"]!);
        Assert.True((int)result["failures"]! >= 4, output);
        Assert.Equal((int)result["failures"]!, (int)result["warned_in_time"]!);
        Assert.Equal(0, (int)result["false_predictions"]!);

        (exit, _, error) = await Run("bench", "bearing", "--fan-speed", "0.4", "--machines", "1", "--days", "1", "--models", Models);
        Assert.Equal(2, exit);
        Assert.Contains("--fan-speed and --fan-swing need --asset fan", error, StringComparison.Ordinal);
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

    /// <summary>
    /// Units 1-5 of NASA's train_FD001.txt (public domain), committed so the tests run wherever the repository is cloned,
    /// and a small test set in NASA's layout cut from them at known points.
    /// </summary>
    private static async Task<(string Train, string Test, string Rul, List<int> Truth)> SmallTestSet(string dir)
    {
        var train = Path.Combine(dir, "train_FD001.txt");
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

        var testPath = Path.Combine(dir, "test_FD001.txt");
        var rulPath = Path.Combine(dir, "RUL_FD001.txt");
        File.WriteAllLines(testPath, test);
        File.WriteAllLines(rulPath, truth.Select(t => t.ToString(CultureInfo.InvariantCulture)));
        return (train, testPath, rulPath, truth);
    }

    [Fact]
    public async Task Bench_cmapss_prints_rmse_and_phm08_and_writes_one_row_per_unit()
    {
        using var dir = new TempDir();
        var (train, testPath, rulPath, truth) = await SmallTestSet(dir.Path);
        var csvPath = Path.Combine(dir.Path, "pred.csv");

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
        Assert.False((bool)figures["in_sample"]!); // the committed manifest lists the held-out files, not this one

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

    [Fact]
    public async Task Regression_bench_cmapss_exited_2_for_malformed_data_files_where_bench_nab_exits_1()
    {
        using var dir = new TempDir();
        var (train, testPath, rulPath, _) = await SmallTestSet(dir.Path);

        var shortRow = Path.Combine(dir.Path, "short.txt");
        File.WriteAllLines(shortRow, [.. File.ReadAllLines(testPath).Take(3), "1 4 0.1 0.2"]);
        var (exit, _, error) = await Run("bench", "cmapss", "--train", train, "--test", shortRow, "--rul", rulPath, "--models", Models);
        Assert.Equal(1, exit);
        Assert.Contains($"{shortRow}:4: expected 26 columns, found 4", error, StringComparison.Ordinal);

        var badRul = Path.Combine(dir.Path, "rul.txt");
        File.WriteAllLines(badRul, ["30", "foo"]);
        (exit, _, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", badRul, "--models", Models);
        Assert.Equal(1, exit);
        Assert.Contains($"{badRul}:2: 'foo' is not a RUL", error, StringComparison.Ordinal);

        // A directory where a file belongs is a bad argument (exit 2), named as such.
        (exit, _, error) = await Run("bench", "cmapss", "--train", train, "--test", dir.Path, "--rul", rulPath, "--models", Models);
        Assert.Equal(2, exit);
        Assert.Contains($"--test {dir.Path} is a directory, expected a file", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_bench_cmapss_printed_in_sample_figures_of_a_model_trained_on_the_test_file_without_a_note()
    {
        using var dir = new TempDir();
        var (train, testPath, rulPath, _) = await SmallTestSet(dir.Path);
        var models = Directory.CreateDirectory(Path.Combine(dir.Path, "models")).FullName;
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Models, "manifest.json")))!.AsObject();
        foreach (var m in manifest["models"]!.AsArray())
        {
            File.Copy(Path.Combine(Models, (string)m!["file"]!), Path.Combine(models, (string)m["file"]!));
        }

        // List this test file by content hash, as the shipped manifest lists models/rul/heldout/test_FD00x.txt.
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(testPath)));
        var rul = manifest["models"]!.AsArray().Single(m => (string?)m!["name"] == "rul-cmapss")!;
        rul["inSample"] = JsonNode.Parse($$"""{"note": "refit on these units; see 1.5.1's figures", "files": [{"name": "heldout/test_FD001.txt", "sha256": "{{sha}}"}]}""");
        File.WriteAllText(Path.Combine(models, "manifest.json"), manifest.ToJsonString());

        var (exit, output, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", rulPath, "--models", models);
        Assert.True(exit == 0, $"exit {exit}: {output}{error}");
        Assert.Contains("RMSE (uncapped truth)", output, StringComparison.Ordinal);
        Assert.Contains("note: IN-SAMPLE: rul-cmapss", output, StringComparison.Ordinal);
        Assert.Contains("(heldout/test_FD001.txt)", output, StringComparison.Ordinal);
        Assert.Contains("see 1.5.1's figures", output, StringComparison.Ordinal);

        (exit, output, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", rulPath, "--models", models, "--json");
        Assert.True(exit == 0, $"exit {exit}: {output}{error}");
        var json = JsonNode.Parse(output)!;
        Assert.True((bool)json["in_sample"]!);
        Assert.Equal("heldout/test_FD001.txt", (string?)json["in_sample_file"]);

        // The same name with other content (NASA's own test_FD001.txt, say) is not in-sample.
        File.AppendAllText(testPath, File.ReadAllLines(testPath)[^1] + "\n");
        (exit, output, error) = await Run("bench", "cmapss", "--train", train, "--test", testPath, "--rul", rulPath, "--models", models);
        Assert.True(exit == 0, $"exit {exit}: {output}{error}");
        Assert.DoesNotContain("IN-SAMPLE", output, StringComparison.Ordinal);
    }
}
