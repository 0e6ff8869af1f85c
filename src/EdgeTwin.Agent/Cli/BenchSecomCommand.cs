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
/// next to a labels-only baseline. Exit codes (the rule of every bench, <see cref="BenchPaths"/>): 0 done, 1 a data, labels
/// or model file unreadable or malformed (a run with the wrong number of values, no runs, a single class) or the
/// predictions not written, 2 bad arguments (a path missing or a directory, a negative --label-delay).
/// </summary>
internal sealed class BenchSecomCommand : ICliSubcommand
{
    public string Parent => "bench";

    public Command Create()
    {
        var data = new Option<FileInfo>("--data") { Description = "Runs: space-separated values per line, NaN for missing.", Required = true };
        var labels = new Option<FileInfo>("--labels") { Description = "Labels: -1 (pass) or 1 (fail) per line, optionally followed by a timestamp.", Required = true };
        var delay = new Option<int>("--label-delay") { Description = "Runs between a prediction and the arrival of its label.", DefaultValueFactory = _ => 0 };
        var predictions = new Option<FileInfo?>("--predictions-out") { Description = "Write index,fail_probability,calibrated_probability per run (CSV, full precision): fail_probability is the balanced fail score (fail when >= 0.5), calibrated_probability the probability under the tracked fail rate." };
        var model = new Option<FileInfo?>("--model") { Description = "Base model (default: models/secom/secom-base.json beside the binary, then ./models/secom)." };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON." };
        var cmd = new Command("secom", "Stream SECOM runs through the online quality model: ROC AUC, PR AUC, balanced accuracy. Exit codes: 0 done, 1 unreadable or malformed data or model, 2 bad arguments.");
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

            // Arguments first (exit 2), so a wrong --data is reported whatever the model; then the files' content (exit 1).
            var dataPath = parse.GetValue(data)!.FullName;
            var labelsPath = parse.GetValue(labels)!.FullName;
            var modelPath = parse.GetValue(model)?.FullName ?? DefaultModel();
            var pathProblem = BenchPaths.Problem(dataPath, BenchPaths.Kind.File, "--data") ?? BenchPaths.Problem(labelsPath, BenchPaths.Kind.File, "--labels")
                ?? (modelPath is null
                    ? "base model not found (models/secom/secom-base.json beside the binary or in ./models/secom); pass --model"
                    : BenchPaths.Problem(modelPath, BenchPaths.Kind.File, "--model"));
            if (pathProblem is not null)
            {
                await error.WriteLineAsync($"bench secom: {pathProblem}").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            List<double[]> runs;
            List<bool> failed;
            OnlineLogisticModel m;
            try
            {
                m = OnlineLogisticModel.Load(modelPath!);
                (runs, failed) = QualityStream.ReadSecom(dataPath, labelsPath, m.InputWidth);
            }
            catch (Exception ex) when (ex is IOException or FormatException or InvalidDataException or JsonException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync("bench secom: " + ex.Message).ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            // ROC AUC and PR AUC are undefined without both classes: printing NaN with exit 0 let an empty file pass as a result.
            var fails = failed.Count(f => f);
            if (fails == 0 || fails == failed.Count)
            {
                await error.WriteLineAsync(failed.Count == 0
                    ? $"bench secom: {dataPath} and {labelsPath} hold no runs"
                    : $"bench secom: {labelsPath}: all {failed.Count} runs are labelled {(fails == 0 ? "pass (-1)" : "fail (1)")}; ROC AUC and PR AUC need both").ConfigureAwait(false);
                return ExitCodes.Failure;
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
                // fail_probability first, as the issue's format; the calibrated probability beside it, because the balanced
                // score summed to 447 expected fails against 78 observed and was read as a probability.
                var sb = new StringBuilder("index,fail_probability,calibrated_probability\n");
                for (int i = 0; i < p.Length; i++)
                {
                    sb.Append(i.ToString(CultureInfo.InvariantCulture)).Append(',').Append(p[i].ToString("R", CultureInfo.InvariantCulture))
                        .Append(',').Append(cal[i].ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                }

                try
                {
                    await File.WriteAllTextAsync(csv.FullName, sb.ToString(), ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    await error.WriteLineAsync($"bench secom: --predictions-out {csv.FullName}: {ex.Message}").ConfigureAwait(false);
                    return ExitCodes.Failure;
                }
            }

            // The shipped model is fitted on the development runs: scoring them again is no estimate of later runs.
            string? inSample = m.TrainedOn is { Data: { } trainedData } t
                && string.Equals(Path.GetFileName(dataPath), trainedData, StringComparison.Ordinal) && t.Runs == runs.Count
                ? $"the model was trained on these {t.Runs} runs ({trainedData}, trained_on in the model file): the figures are in-sample, not an estimate for later runs (see models/secom/MODEL_CARD.md for the time-split check)"
                : null;
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
                    in_sample = inSample,
                })).ConfigureAwait(false);
            }
            else
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"runs {s.Runs}, fails {s.Fails}, label delay {d}\nROC AUC            {s.RocAuc:F3} (95 % bootstrap {s.RocAucLow:F3}–{s.RocAucHigh:F3})\nPR AUC             {s.PrAuc:F3}\nbalanced accuracy  {s.BalancedAccuracy:F3} (fail when p >= 0.5)\nexpected fails     {expectedFails:F1} (sum of calibrated probabilities; {s.Fails} observed)\nlabels-only        ROC AUC {baseline.RocAuc:F3}, PR AUC {baseline.PrAuc:F3}\nnote               fail_probability is the balanced fail score (fail when >= 0.5), not a probability; --predictions-out also writes calibrated_probability (under the tracked fail rate)")).ConfigureAwait(false);
                if (inSample is not null)
                {
                    await output.WriteLineAsync("IN-SAMPLE          " + inSample).ConfigureAwait(false);
                }
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
