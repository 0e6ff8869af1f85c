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
    }
}
