using System.CommandLine;
using System.Text.RegularExpressions;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin bench cmapss --train FILE --test FILE --rul FILE [--predictions-out CSV] [--models DIR] [--model NAME] [--json]</c>:
/// evaluates the deployed RUL model on a C-MAPSS test set as the agent runs it (manifest preprocessing, ONNX Runtime);
/// prints RMSE against the truth as shipped and capped, and the PHM08 score, and a note when the manifest lists the test
/// file as in-sample for the model (<see cref="ModelEntry.InSample"/>). Exit codes (the rule of every bench,
/// <see cref="BenchPaths"/>): 0 done, 1 a file unreadable or malformed, the files disagreeing or the model unavailable,
/// 2 bad arguments (a path missing or a directory).
/// </summary>
internal sealed partial class BenchCmapssCommand : ICliSubcommand
{
    public string Parent => "bench";

    public Command Create()
    {
        var train = new Option<FileInfo>("--train") { Description = "Training file of the data set (train_FDxxx.txt): checked against the model's normalisation.", Required = true };
        var test = new Option<FileInfo>("--test") { Description = "Test trajectories (test_FDxxx.txt format).", Required = true };
        var rul = new Option<FileInfo>("--rul") { Description = "True RUL per test unit (RUL_FDxxx.txt format).", Required = true };
        var predictionsOut = new Option<FileInfo?>("--predictions-out") { Description = "Write dataset,unit,predicted_rul rows to this CSV." };
        var models = new Option<DirectoryInfo?>("--models") { Description = "Models directory (default: models/ beside the binary, then ./models)." };
        var model = new Option<string>("--model") { Description = "Model name in the manifest.", DefaultValueFactory = _ => "rul-cmapss" };
        var dataset = new Option<string?>("--dataset") { Description = "Data set name in the output (default: FDxxx from the test file name)." };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON." };
        var command = new Command("cmapss", "Evaluate the deployed RUL model on a C-MAPSS test set: RMSE (uncapped and capped truth), PHM08 score; notes a test file the model was trained on. Exit codes: 0 done, 1 unreadable or malformed data or model unavailable, 2 bad arguments.");
        foreach (var o in new Option[] { train, test, rul, predictionsOut, models, model, dataset, json })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            foreach (var (f, option) in new[] { (parse.GetValue(train)!, "--train"), (parse.GetValue(test)!, "--test"), (parse.GetValue(rul)!, "--rul") })
            {
                if (BenchPaths.Problem(f.FullName, BenchPaths.Kind.File, option) is { } problem)
                {
                    await error.WriteLineAsync($"bench cmapss: {problem}").ConfigureAwait(false);
                    return ExitCodes.InvalidConfig;
                }
            }

            var testFile = parse.GetValue(test)!;
            var name = parse.GetValue(dataset) ?? (DatasetName().Match(testFile.Name) is { Success: true } m ? m.Value : Path.GetFileNameWithoutExtension(testFile.Name));
            using var catalog = new ModelCatalog(parse.GetValue(models)?.FullName ?? ModelsConfig.DefaultDirectory());
            catalog.Reload();
            CmapssBenchResult result;
            try
            {
                result = await Task.Run(() => CmapssBenchmark.Run(catalog, parse.GetValue(model)!, name, parse.GetValue(train)!.FullName, testFile.FullName, parse.GetValue(rul)!.FullName), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                // Malformed or unreadable files and an unavailable model are all exit 1; only arguments are exit 2.
                await error.WriteLineAsync($"bench cmapss: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            if (parse.GetValue(predictionsOut) is { } csv)
            {
                try
                {
                    await File.WriteAllTextAsync(csv.FullName, result.PredictionsCsv(), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    await error.WriteLineAsync($"bench cmapss: --predictions-out {csv.FullName}: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.Failure;
                }
            }

            await output.WriteLineAsync(parse.GetValue(json) ? result.ToJson() : result.ToText()).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    [GeneratedRegex("FD00[1-4]", RegexOptions.IgnoreCase)]
    private static partial Regex DatasetName();
}
