using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Twin.Line.Quality;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin bench secom --data FILE --labels FILE [--label-delay N] [--predictions-out CSV] [--model FILE] [--json]</c>:
/// streams SECOM runs in time order through the line twin's online quality model (predict run t, then learn the
/// label of run t − N) and prints ROC AUC (with a bootstrap 95 % interval), PR AUC and balanced accuracy at 0.5,
/// next to a labels-only baseline. Exit codes: 0 done, 2 bad arguments or files.
/// </summary>
internal sealed class BenchSecomCommand : ICliSubcommand
{
    public string Parent => "bench";

    public Command Create()
    {
        var data = new Option<FileInfo>("--data") { Description = "Runs: space-separated values per line, NaN for missing.", Required = true };
        var labels = new Option<FileInfo>("--labels") { Description = "Labels: -1 (pass) or 1 (fail) per line, optionally followed by a timestamp.", Required = true };
        var delay = new Option<int>("--label-delay") { Description = "Runs between a prediction and the arrival of its label.", DefaultValueFactory = _ => 0 };
        var predictions = new Option<FileInfo?>("--predictions-out") { Description = "Write index,fail_probability per run (CSV, full precision)." };
        var model = new Option<FileInfo?>("--model") { Description = "Base model (default: models/secom/secom-base.json beside the binary, then ./models/secom)." };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON." };
        var cmd = new Command("secom", "Stream SECOM runs through the online quality model: ROC AUC, PR AUC, balanced accuracy.");
        cmd.Options.Add(data);
        cmd.Options.Add(labels);
        cmd.Options.Add(delay);
        cmd.Options.Add(predictions);
        cmd.Options.Add(model);
        cmd.Options.Add(json);
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            int d = parse.GetValue(delay);
            if (d < 0)
            {
                await error.WriteLineAsync("bench secom: --label-delay must be >= 0").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var modelPath = parse.GetValue(model)?.FullName ?? DefaultModel();
            if (modelPath is null || !File.Exists(modelPath))
            {
                await error.WriteLineAsync($"bench secom: base model not found ({modelPath ?? "models/secom/secom-base.json beside the binary or in ./models/secom"}); pass --model").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            List<double[]> runs;
            List<bool> failed;
            OnlineLogisticModel m;
            try
            {
                (runs, failed) = QualityStream.ReadSecom(parse.GetValue(data)!.FullName, parse.GetValue(labels)!.FullName);
                m = OnlineLogisticModel.Load(modelPath);
                if (runs.Any(r => r.Length < m.InputWidth))
                {
                    await error.WriteLineAsync($"bench secom: every run needs {m.InputWidth} values").ConfigureAwait(false);
                    return ExitCodes.InvalidConfig;
                }
            }
            catch (Exception ex) when (ex is IOException or FormatException or InvalidDataException or JsonException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync("bench secom: " + ex.Message).ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            // fail_probability is the balanced score (fail decided at >= 0.5, see models/secom/MODEL_CARD.md); the
            // calibrated probabilities (prior-corrected with the tracked fail rate) give the expected fail count.
            var cal = new double[runs.Count];
            var p = QualityStream.Run(m, runs, failed, d, cal);
            double expectedFails = cal.Sum();
            var s = QualityStream.Score(p, failed);
            double prior = failed.Count > 0 ? 0.07 : 0;
            var baseline = QualityStream.Score(QualityStream.LabelsOnly(failed, d, prior), failed, bootstrap: 200);
            if (parse.GetValue(predictions) is { } csv)
            {
                var sb = new StringBuilder("index,fail_probability\n");
                for (int i = 0; i < p.Length; i++) sb.Append(i.ToString(CultureInfo.InvariantCulture)).Append(',').Append(p[i].ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                await File.WriteAllTextAsync(csv.FullName, sb.ToString(), ct).ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    runs = s.Runs,
                    fails = s.Fails,
                    label_delay = d,
                    roc_auc = s.RocAuc,
                    roc_auc_ci95 = new[] { s.RocAucLow, s.RocAucHigh },
                    pr_auc = s.PrAuc,
                    balanced_accuracy = s.BalancedAccuracy,
                    expected_fails_calibrated = expectedFails,
                    labels_only = new { roc_auc = baseline.RocAuc, pr_auc = baseline.PrAuc, balanced_accuracy = baseline.BalancedAccuracy },
                })).ConfigureAwait(false);
            }
            else
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"runs {s.Runs}, fails {s.Fails}, label delay {d}\nROC AUC            {s.RocAuc:F3} (95 % bootstrap {s.RocAucLow:F3}–{s.RocAucHigh:F3})\nPR AUC             {s.PrAuc:F3}\nbalanced accuracy  {s.BalancedAccuracy:F3} (fail when p >= 0.5)\nexpected fails     {expectedFails:F1} (sum of calibrated probabilities; {s.Fails} observed)\nlabels-only        ROC AUC {baseline.RocAuc:F3}, PR AUC {baseline.PrAuc:F3}")).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string? DefaultModel()
    {
        foreach (var dir in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            var p = Path.Combine(dir, "models", "secom", "secom-base.json");
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
