using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Twin.Nab;

/// <summary>The corpus result of one detector: per-file scores and the three profiles.</summary>
public sealed record NabRunResult(string Detector, IReadOnlyList<(NabDataFile File, double[] Scores)> Files, IReadOnlyList<NabProfileResult> Profiles);

/// <summary>
/// Runs the streaming detector over NAB files exactly as the agent does (one detector per series, one pass, every row
/// scored before the next is read) and scores the corpus.
/// </summary>
public static class NabRunner
{
    public const string DetectorName = "edgetwin";

    public static double[] Run(NabDataFile file, AnomalyDetectorOptions options)
    {
        ArgumentNullException.ThrowIfNull(file);
        var detector = new StreamingAnomalyDetector(options);
        var scores = new double[file.Values.Length];
        for (var i = 0; i < scores.Length; i++)
        {
            scores[i] = detector.Update(file.Timestamps[i], file.Values[i]);
        }

        return scores;
    }

    public const string WindowedGaussianName = "windowedGaussian";

    /// <summary>NAB's windowed-Gaussian baseline, to check the scorer against its published figure.</summary>
    public static double[] RunWindowedGaussian(NabDataFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var detector = new WindowedGaussianDetector();
        var scores = new double[file.Values.Length];
        for (var i = 0; i < scores.Length; i++)
        {
            scores[i] = detector.Update(file.Values[i]);
        }

        return scores;
    }

    public static NabRunResult RunCorpus(IReadOnlyList<NabDataFile> files, AnomalyDetectorOptions options, string detector = DetectorName)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (detector is not (DetectorName or WindowedGaussianName))
        {
            throw new ArgumentException($"unknown detector '{detector}' (known: {DetectorName}, {WindowedGaussianName})", nameof(detector));
        }

        var results = new (NabDataFile, double[])[files.Count];
        Parallel.For(0, files.Count, i => results[i] = (files[i], detector == DetectorName ? Run(files[i], options) : RunWindowedGaussian(files[i])));
        var scored = results.Select(r => new NabScoredFile(r.Item1.RelativePath, r.Item2, r.Item1.Windows)).ToList();
        return new NabRunResult(detector, results, NabProfile.All.Select(p => NabScorer.Score(scored, p)).ToList());
    }

    /// <summary>Writes <c>dir/&lt;detector&gt;/&lt;category&gt;/&lt;detector&gt;_&lt;file&gt;.csv</c> for every file.</summary>
    public static void WriteResults(string dir, NabRunResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        foreach (var (file, scores) in result.Files)
        {
            NabCorpus.WriteResults(Path.Combine(dir, result.Detector, file.Category, $"{result.Detector}_{file.Name}.csv"), file, scores);
        }
    }
}
