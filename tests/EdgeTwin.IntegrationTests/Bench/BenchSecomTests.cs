using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeTwin.Twin.Line.Quality;

namespace EdgeTwin.IntegrationTests.Bench;

/// <summary><c>edgetwin bench secom</c> end to end on a small synthetic SECOM-shaped stream with the shipped model.</summary>
public sealed class BenchSecomTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("bench-secom-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static string ShippedModel()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "models", "secom", "secom-base.json");
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException("models/secom/secom-base.json not found above " + AppContext.BaseDirectory);
    }

    private (string Data, string Labels, List<bool> Failed) WriteStream(int runs)
    {
        var rnd = new Random(11);
        var data = new System.Text.StringBuilder();
        var labels = new System.Text.StringBuilder();
        var failed = new List<bool>();
        for (int t = 0; t < runs; t++)
        {
            for (int j = 0; j < 590; j++)
            {
                if (j > 0) data.Append(' ');
                data.Append(rnd.NextDouble() < 0.05 ? "NaN" : (100 * rnd.NextDouble()).ToString("R", CultureInfo.InvariantCulture));
            }
            data.Append("\r\n");
            bool f = rnd.NextDouble() < 0.15 || t == 0 || t == 1;
            failed.Add(f);
            labels.Append(f ? "1" : "-1").Append(" \"19/07/2008 11:55:00\"\r\n");
        }
        var d = Path.Combine(_dir.FullName, "runs.data");
        var l = Path.Combine(_dir.FullName, "runs.labels");
        File.WriteAllText(d, data.ToString());
        File.WriteAllText(l, labels.ToString());
        return (d, l, failed);
    }

    [Fact]
    public async Task Streams_the_runs_and_writes_the_same_scores_as_the_learner()
    {
        var (data, labels, failed) = WriteStream(80);
        var csv = Path.Combine(_dir.FullName, "p.csv");
        var model = ShippedModel();
        var (exit, output, error) = await InProcessCli.RunAsync("bench", "secom", "--data", data, "--labels", labels, "--model", model, "--label-delay", "3", "--predictions-out", csv, "--json");
        Assert.True(exit == 0, error);
        var json = JsonNode.Parse(output)!;
        Assert.Equal(80, json["runs"]!.GetValue<int>());
        Assert.Equal(failed.Count(f => f), json["fails"]!.GetValue<int>());
        Assert.Equal(3, json["label_delay"]!.GetValue<int>());
        Assert.InRange(json["roc_auc"]!.GetValue<double>(), 0, 1);
        Assert.True(json["expected_fails_calibrated"]!.GetValue<double>() > 0);

        // The CSV holds full-precision scores equal to streaming the same runs through a freshly loaded model.
        var (runs, y) = QualityStream.ReadSecom(data, labels);
        var calibrated = new double[runs.Count];
        var expected = QualityStream.Run(OnlineLogisticModel.Load(model), runs, y, 3, calibrated);
        var lines = File.ReadAllLines(csv);
        Assert.Equal("index,fail_probability,calibrated_probability", lines[0]);
        Assert.Equal(81, lines.Length);
        for (int i = 0; i < 80; i++)
        {
            var parts = lines[i + 1].Split(',');
            Assert.Equal(i, int.Parse(parts[0], CultureInfo.InvariantCulture));
            Assert.Equal(expected[i], double.Parse(parts[1], CultureInfo.InvariantCulture));
            Assert.Equal(calibrated[i], double.Parse(parts[2], CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public async Task Regression_scoring_the_models_own_training_runs_was_printed_as_an_estimate()
    {
        // The shipped model's ROC AUC on secom_dev.data (0.744) is in-sample; the output gave it a CI as if it were not.
        var (data, labels, _) = WriteStream(40);
        var node = JsonNode.Parse(File.ReadAllText(ShippedModel()))!;
        node["trained_on"] = new JsonObject { ["runs"] = 40, ["fails"] = 9, ["data"] = Path.GetFileName(data) };
        var model = Path.Combine(_dir.FullName, "trained-here.json");
        File.WriteAllText(model, node.ToJsonString());

        var (exit, output, error) = await InProcessCli.RunAsync("bench", "secom", "--data", data, "--labels", labels, "--model", model);
        Assert.True(exit == 0, error);
        Assert.Contains("IN-SAMPLE", output, StringComparison.Ordinal);
        Assert.Contains("not a probability", output, StringComparison.Ordinal);

        // Other runs (here: a different count) are not flagged.
        (data, labels, _) = WriteStream(30);
        (exit, output, error) = await InProcessCli.RunAsync("bench", "secom", "--data", data, "--labels", labels, "--model", model, "--json");
        Assert.True(exit == 0, error);
        Assert.Null(JsonNode.Parse(output)!["in_sample"]);
    }

    [Fact]
    public async Task A_broken_model_file_is_refused_naming_the_file_and_key()
    {
        var (data, labels, _) = WriteStream(5);
        var node = JsonNode.Parse(File.ReadAllText(ShippedModel()))!;
        node["members"]![0]!["var"] = new JsonArray(1.0, 2.0);
        var bad = Path.Combine(_dir.FullName, "bad-model.json");
        File.WriteAllText(bad, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var (exit, _, error) = await InProcessCli.RunAsync("bench", "secom", "--data", data, "--labels", labels, "--model", bad);
        Assert.Equal(1, exit); // a malformed file is bad data (exit 1), as in bench nab and cmapss
        Assert.Contains(bad, error, StringComparison.Ordinal);
        Assert.Contains("members[0].var", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_an_empty_secom_data_file_printed_NaN_and_exit_0()
    {
        var empty = Path.Combine(_dir.FullName, "empty.data");
        File.WriteAllText(empty, "");
        var (exit, output, error) = await InProcessCli.RunAsync("bench", "secom", "--data", empty, "--labels", empty, "--model", ShippedModel());
        Assert.Equal(1, exit);
        Assert.Contains("hold no runs", error, StringComparison.Ordinal);
        Assert.DoesNotContain("NaN", output, StringComparison.Ordinal);

        // One class only: the AUCs are undefined too.
        var (data, labels, _) = WriteStream(5);
        File.WriteAllText(labels, string.Concat(Enumerable.Repeat("-1\n", 5)));
        (exit, output, error) = await InProcessCli.RunAsync("bench", "secom", "--data", data, "--labels", labels, "--model", ShippedModel(), "--json");
        Assert.Equal(1, exit);
        Assert.Contains($"{labels}: all 5 runs are labelled pass (-1)", error, StringComparison.Ordinal);
        Assert.Equal("", output);
    }

    [Fact]
    public async Task Regression_a_directory_or_missing_data_file_gave_raw_dotnet_text_and_was_checked_after_the_model()
    {
        var (_, labels, _) = WriteStream(5);
        var (exit, _, error) = await InProcessCli.RunAsync("bench", "secom", "--data", _dir.FullName, "--labels", labels, "--model", ShippedModel());
        Assert.Equal(2, exit);
        Assert.Contains($"--data {_dir.FullName} is a directory, expected a file", error, StringComparison.Ordinal);

        var missing = Path.Combine(_dir.FullName, "nope.data");
        (exit, _, error) = await InProcessCli.RunAsync("bench", "secom", "--data", missing, "--labels", labels, "--model", ShippedModel());
        Assert.Equal(2, exit);
        Assert.Equal($"bench secom: --data {missing} does not exist", error.Trim());

        // The data are reported first even when the model is missing too.
        (exit, _, error) = await InProcessCli.RunAsync("bench", "secom", "--data", missing, "--labels", labels, "--model", Path.Combine(_dir.FullName, "no-model.json"));
        Assert.Equal(2, exit);
        Assert.Contains("--data", error, StringComparison.Ordinal);
        Assert.DoesNotContain("no-model.json", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_short_run_said_every_run_needs_590_values_without_file_and_line()
    {
        var (data, labels, _) = WriteStream(5);
        var lines = File.ReadAllLines(data);
        lines[2] = string.Join(' ', lines[2].Split(' ').Take(100));
        File.WriteAllLines(data, lines);
        var (exit, _, error) = await InProcessCli.RunAsync("bench", "secom", "--data", data, "--labels", labels, "--model", ShippedModel());
        Assert.Equal(1, exit);
        Assert.Contains($"{data}:3: 100 values, the model needs 590 per run", error, StringComparison.Ordinal);
    }
}
