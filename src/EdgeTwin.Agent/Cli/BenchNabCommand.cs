using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Twin.Anomaly;
using EdgeTwin.Twin.Nab;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin bench nab --data DIR --labels WINDOWS.json --out RESULTS_DIR [--set key=value]… [--json]</c>: runs the agent's
/// streaming anomaly detector over every NAB-format file (one pass, no look-ahead, one configuration), writes NAB's results
/// layout and prints the normalised scores of the three profiles from our implementation of the NAB rules.
/// Exit codes (<see cref="BenchPaths"/>, the same for every bench reading data files): 0 done, 1 a data file is unreadable
/// or malformed (empty CSVs included) or could not be written, 2 bad arguments (a path missing or of the wrong kind).
/// </summary>
internal sealed class BenchNabCommand : ICliSubcommand
{
    public string Parent => "bench";

    public Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "Directory of NAB-format files: <category>/<name>.csv with timestamp,value.", Required = true };
        var labels = new Option<FileInfo>("--labels") { Description = "Anomaly windows in the format of NAB's combined_windows.json.", Required = true };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Results directory (NAB layout: <detector>/<category>/<detector>_<file>.csv)." };
        var set = new Option<string[]>("--set") { Description = "Override one detector option (key=value, same keys as twin.anomaly in the site config); repeatable.", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON." };
        var perFile = new Option<bool>("--per-file") { Description = "Also print each file's raw standard-profile score at the corpus threshold." };
        var detectorName = new Option<string>("--detector") { Description = $"Detector to run: {NabRunner.DetectorName} (the agent's) or {NabRunner.WindowedGaussianName} (NAB's baseline, to check the scorer).", DefaultValueFactory = _ => NabRunner.DetectorName };
        detectorName.AcceptOnlyFromAmong(NabRunner.DetectorName, NabRunner.WindowedGaussianName);
        var nab = new Command("nab", "Run the streaming anomaly detector over NAB data and score it with the NAB rules (three profiles). Exit codes: 0 done, 1 unreadable or malformed data (empty CSVs included), 2 bad arguments.");
        nab.Options.Add(data);
        nab.Options.Add(labels);
        nab.Options.Add(output);
        nab.Options.Add(set);
        nab.Options.Add(json);
        nab.Options.Add(perFile);
        nab.Options.Add(detectorName);
        nab.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            var options = AnomalyDetectorOptions.Default;
            try
            {
                foreach (var kv in parse.GetValue(set) ?? [])
                {
                    var eq = kv.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new FormatException($"--set '{kv}': expected key=value");
                    }

                    options = options.With(kv[..eq].Trim(), kv[(eq + 1)..].Trim());
                }

                options.Validate();
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                await stderr.WriteLineAsync($"bench nab: {e.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            var dataDir = parse.GetValue(data)!;
            var labelsFile = parse.GetValue(labels)!;
            if ((BenchPaths.Problem(dataDir.FullName, BenchPaths.Kind.Directory, "--data") ?? BenchPaths.Problem(labelsFile.FullName, BenchPaths.Kind.File, "--labels")) is { } pathProblem)
            {
                await stderr.WriteLineAsync($"bench nab: {pathProblem}").ConfigureAwait(false);
                return ExitCodes.InvalidConfig;
            }

            NabRunResult result;
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var unlabelled = new List<string>();
                var files = NabCorpus.Load(dataDir.FullName, labelsFile.FullName, unlabelled);
                if (files.Count == 0)
                {
                    await stderr.WriteLineAsync($"bench nab: no <category>/*.csv files under {dataDir.FullName}").ConfigureAwait(false);
                    return ExitCodes.InvalidConfig;
                }

                if (unlabelled.Count == files.Count)
                {
                    await stderr.WriteLineAsync($"bench nab: none of the {files.Count} files under {dataDir.FullName} has an entry in {labelsFile.FullName} (keys are '<category>/<file>.csv', e.g. '{files[0].RelativePath}'); nothing to score").ConfigureAwait(false);
                    return ExitCodes.InvalidConfig;
                }

                if (unlabelled.Count > 0)
                {
                    // NAB lists every file, anomaly-free ones with []: a missing entry is more likely a layout mistake.
                    await stderr.WriteLineAsync($"bench nab: warning: {unlabelled.Count} file(s) have no entry in {labelsFile.FullName} and are scored as anomaly-free: {string.Join(", ", unlabelled.Take(5))}{(unlabelled.Count > 5 ? ", …" : "")}").ConfigureAwait(false);
                }

                result = NabRunner.RunCorpus(files, options, parse.GetValue(detectorName)!);
                if (parse.GetValue(output) is { } outDir)
                {
                    NabRunner.WriteResults(outDir.FullName, result);
                }
            }
            catch (Exception e) when (e is IOException or FormatException or JsonException or UnauthorizedAccessException)
            {
                await stderr.WriteLineAsync($"bench nab: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            var rows = result.Files.Sum(f => f.File.Values.Length);
            if (parse.GetValue(json))
            {
                var doc = new
                {
                    detector = result.Detector,
                    files = result.Files.Count,
                    rows,
                    windows = result.Profiles[0].TruePositives + result.Profiles[0].FalseNegatives,
                    seconds = elapsed.TotalSeconds,
                    profiles = result.Profiles.Select(p => new
                    {
                        profile = p.Profile.Name,
                        score = Math.Round(p.NormalisedScore, 2),
                        threshold = p.Threshold,
                        raw = p.RawScore,
                        tp = p.TruePositives,
                        fn = p.FalseNegatives,
                        fp = p.FalsePositives,
                    }),
                };
                await stdout.WriteLineAsync(JsonSerializer.Serialize(doc)).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"NAB: {result.Files.Count} files, {rows} rows, {elapsed.TotalSeconds:F1} s")).ConfigureAwait(false);
                foreach (var p in result.Profiles)
                {
                    await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"{p.Profile.Name,-20} {p.NormalisedScore,6:F2}  threshold {p.Threshold:G6}  TP {p.TruePositives} FN {p.FalseNegatives} FP {p.FalsePositives}")).ConfigureAwait(false);
                }
            }

            if (parse.GetValue(perFile))
            {
                var standard = result.Profiles[0];
                foreach (var (file, scores) in result.Files)
                {
                    var raw = NabScorer.RawScore([new NabScoredFile(file.RelativePath, scores, file.Windows)], NabProfile.Standard, standard.Threshold);
                    var detections = scores.Skip(new NabScoredFile(file.RelativePath, scores, file.Windows).ProbationaryRows).Count(s => s >= standard.Threshold);
                    await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {file.RelativePath,-60} windows {file.Windows.Length} detections {detections,4} raw {raw,7:F3}")).ConfigureAwait(false);
                }
            }

            return ExitCodes.Ok;
        });
        return nab;
    }
}
