using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Rul;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// One RUL inference as the agent runs it: the window (the manifest's length, 50 cycles in 1.2.0) built from a
/// unit's history by the manifest's preprocessing, then the ONNX session (single thread) on the reused input/output
/// OrtValues. Target ≤ 1 ms.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*RulInference*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class RulInferenceBenchmarks : IDisposable
{
    private ModelCatalog? _catalog;
    private RulModelRunner? _runner;
    private List<double[]> _history = [];

    [GlobalSetup]
    public void Setup()
    {
        var models = FindModels();
        _catalog = new ModelCatalog(models);
        _catalog.Reload();
        if (_catalog.Get("rul-cmapss") is null)
        {
            throw new InvalidOperationException($"rul-cmapss not available in {models}: {(_catalog.Status.Count > 0 ? _catalog.Status[0].Error : _catalog.ManifestError)}");
        }

        _runner = new RulModelRunner(_catalog, "rul-cmapss");
        // A sea-level trajectory of 120 cycles with the model's own mean sensor values plus a drift.
        var rnd = new Random(7);
        for (var c = 1; c <= 120; c++)
        {
            var row = new double[CmapssPreprocessor.RowColumns];
            row[0] = 1;
            row[1] = c;
            row[4] = 100;
            for (var s = 5; s < row.Length; s++)
            {
                row[s] = 500 + (c * 0.01) + rnd.NextDouble();
            }

            _history.Add(row);
        }
    }

    [Benchmark]
    public float PredictFromHistory()
    {
        // False means nothing was run (model unavailable, window not filled): a figure of nothing.
        if (!_runner!.TryPredict(_history, out var rul))
        {
            throw new InvalidOperationException("RulInference: rul-cmapss ran no inference on the history");
        }

        return rul;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _runner?.Dispose();
        _catalog?.Dispose();
        _runner = null;
        _catalog = null;
        GC.SuppressFinalize(this);
    }

    private static string FindModels()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", "manifest.json");
            if (File.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return Path.GetDirectoryName(candidate)!;
            }
        }

        throw new DirectoryNotFoundException($"models/manifest.json not found above {AppContext.BaseDirectory}");
    }
}
