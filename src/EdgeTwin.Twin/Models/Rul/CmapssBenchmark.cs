using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace EdgeTwin.Twin.Models.Rul;

/// <summary>The test file is one the model was trained on: the manifest's name for it and its note.</summary>
public sealed record InSampleNote(string File, string Note);

/// <summary>One evaluated test unit.</summary>
public sealed record CmapssPrediction(string Dataset, int Unit, double PredictedRul, double TrueRul);

/// <summary>Figures of one test set: RMSE against the truth as shipped and capped, and the PHM08 score.</summary>
public sealed record CmapssBenchResult(
    string Dataset,
    string Model,
    int Units,
    double Rmse,
    double RmseCapped,
    double RulCap,
    double Phm08Score,
    double MeanInferenceMicroseconds,
    double TrainMeanAbsZ,
    IReadOnlyList<CmapssPrediction> Predictions)
{
    // Notes are read by people too: keep quotes and apostrophes as they are (the output is not embedded in HTML).
    private static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Set when the manifest lists the test file as in-sample for this model (<see cref="ModelEntry.InSample"/>).</summary>
    public InSampleNote? InSample { get; init; }

    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"""
        dataset {Dataset}: {Units} units, model {Model}
          RMSE (uncapped truth)        {Rmse:F2}
          RMSE (truth capped at {RulCap,3:F0})   {RmseCapped:F2}
          PHM08 score                  {Phm08Score:F1}
          inference                    {MeanInferenceMicroseconds:F1} µs per unit (preprocessing + ONNX)
          train file mean |z|          {TrainMeanAbsZ:F3} (normalisation check: about 0.3 or less when the data matches the model, >1 for the wrong data)
        """) + (InSample is { } n ? $"\n  note: IN-SAMPLE: {Model} was trained on this test file ({n.File}), so these figures are not an estimate of its error. {n.Note}".TrimEnd() : "");

    public string ToJson() => string.Create(CultureInfo.InvariantCulture,
        $"{{\"dataset\":\"{Dataset}\",\"model\":\"{Model}\",\"units\":{Units},\"rmse\":{Rmse:F4},\"rmse_capped\":{RmseCapped:F4},\"rul_cap\":{RulCap},\"phm08\":{Phm08Score:F4},\"inference_us\":{MeanInferenceMicroseconds:F2},\"train_mean_abs_z\":{TrainMeanAbsZ:F4},\"in_sample\":{(InSample is null ? "false" : "true")}{(InSample is { } n ? ",\"in_sample_file\":" + JsonSerializer.Serialize(n.File, Readable) + ",\"in_sample_note\":" + JsonSerializer.Serialize(n.Note, Readable) : "")}}}");

    /// <summary>The <c>dataset,unit,predicted_rul</c> rows.</summary>
    public string PredictionsCsv()
    {
        var sb = new StringBuilder("dataset,unit,predicted_rul\n");
        foreach (var p in Predictions)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{p.Dataset},{p.Unit},{p.PredictedRul:F2}\n");
        }

        return sb.ToString();
    }
}

/// <summary>
/// Evaluates a deployed RUL model on a C-MAPSS test set exactly as the agent runs it: the manifest's
/// preprocessing (<see cref="CmapssPreprocessor"/>) and the ONNX session of <see cref="ModelCatalog"/>.
/// </summary>
public static class CmapssBenchmark
{
    /// <summary>
    /// Cap of the second RMSE figure: 125 cycles, the piecewise-linear cap most C-MAPSS papers report against, so the
    /// figure stays comparable whatever cap a model was trained with.
    /// </summary>
    public const double ReportCap = 125.0;

    /// <summary>PHM08 asymmetric score: late predictions (d &gt; 0) cost more than early ones.</summary>
    public static double Phm08(double predicted, double truth)
    {
        var d = predicted - truth;
        return d < 0 ? Math.Exp(-d / 13.0) - 1 : Math.Exp(d / 10.0) - 1;
    }

    /// <exception cref="InvalidOperationException">The model is unavailable or the files do not agree.</exception>
    public static CmapssBenchResult Run(ModelCatalog catalog, string modelName, string dataset, string trainPath, string testPath, string rulPath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var test = CmapssData.ReadUnits(testPath);
        var truth = CmapssData.ReadRul(rulPath);
        if (test.Count != truth.Count)
        {
            throw new InvalidOperationException($"{testPath} has {test.Count} units but {rulPath} has {truth.Count} RUL values");
        }

        using var runner = new RulModelRunner(catalog, modelName);
        var predictions = new List<CmapssPrediction>(test.Count);
        var watch = new Stopwatch();
        for (var i = 0; i < test.Count; i++)
        {
            watch.Start();
            var ok = runner.TryPredict(test[i].Rows, out var rul);
            watch.Stop();
            if (!ok)
            {
                throw new InvalidOperationException($"model '{modelName}' is not available in {catalog.Directory}: {runner.UnavailableReason()}");
            }

            predictions.Add(new CmapssPrediction(dataset, test[i].Unit, rul, truth[i]));
        }

        const double cap = ReportCap;
        double se = 0, seCapped = 0, score = 0;
        foreach (var p in predictions)
        {
            se += Math.Pow(p.PredictedRul - p.TrueRul, 2);
            seCapped += Math.Pow(p.PredictedRul - Math.Min(p.TrueRul, cap), 2);
            score += Phm08(p.PredictedRul, p.TrueRul);
        }

        var n = Math.Max(1, predictions.Count);
        return new CmapssBenchResult(dataset, runner.Entry!.ToString(), predictions.Count, Math.Sqrt(se / n), Math.Sqrt(seCapped / n), cap, score,
            watch.Elapsed.TotalMicroseconds / n, TrainMeanAbsZ(runner.Preprocessor!, trainPath), predictions)
        {
            InSample = InSampleOf(runner.Entry, testPath),
        };
    }

    /// <summary>The manifest's in-sample entry for the test file, matched by content hash (a copy anywhere is still in-sample).</summary>
    public static InSampleNote? InSampleOf(ModelEntry entry, string testPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.InSample is not { } inSample || inSample.Files.Count == 0)
        {
            return null;
        }

        using var stream = File.OpenRead(testPath);
        var sha = Convert.ToHexStringLower(SHA256.HashData(stream));
        return inSample.Find(sha) is { } file ? new InSampleNote(file.Name, inSample.Note) : null;
    }

    /// <summary>
    /// Mean |z| of the training file's per-feature means under the model's normalisation: near 0 when the model's
    /// statistics fit this data (wrong file or wrong model show up as values ≫ 0.1).
    /// </summary>
    private static double TrainMeanAbsZ(CmapssPreprocessor pre, string trainPath)
    {
        var units = CmapssData.ReadUnits(trainPath);
        var sums = new double[pre.Sensors]; // the z-scored sensors only (not cycle or condition flags)
        var buffer = new float[pre.Features];
        long rows = 0;
        foreach (var (_, unitRows) in units)
        {
            foreach (var row in unitRows)
            {
                pre.FeaturesOf(row, buffer);
                for (var j = 0; j < sums.Length; j++)
                {
                    sums[j] += buffer[j];
                }

                rows++;
            }
        }

        return rows == 0 ? double.NaN : sums.Average(s => Math.Abs(s / rows));
    }
}
