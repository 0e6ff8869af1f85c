using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Multivariate;

namespace EdgeTwin.Benchmarks.Multivariate;

/// <summary>
/// Cost of scoring machine groups with the committed multivariate model (<c>models/mv-machine.onnx</c>) through
/// <see cref="MultivariateAnomalyRunner"/>: one batch of <see cref="Groups"/> windows per run (normalisation, one ONNX
/// Runtime run, score). Divide by <see cref="Groups"/> for the cost per group. Allocation should be the ORT call's own
/// small managed overhead only (buffers and OrtValues are reused).
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*MultivariateBenchmarks*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class MultivariateBenchmarks : IDisposable
{
    private ModelCatalog _catalog = null!;
    private MultivariateAnomalyRunner _runner = null!;
    private MultivariateWindow[] _windows = [];
    private double[] _scores = [];
    private double[] _errors = [];

    [Params(1, 16, 64)]
    public int Groups { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _catalog = new ModelCatalog(ModelsDirectory());
        _catalog.Reload();
        var model = _catalog.Get("mv-machine") ?? throw new InvalidOperationException($"mv-machine not available: {(_catalog.Status.Count > 0 ? _catalog.Status[0].Error : null) ?? _catalog.ManifestError}");
        var spec = MultivariateModelSpec.FromEntry(model.Entry, _catalog.ManifestPath);
        _runner = new MultivariateAnomalyRunner(_catalog, "mv-machine", maxBatch: 64);
        var rng = new Random(42);
        _windows = new MultivariateWindow[Groups];
        for (var g = 0; g < Groups; g++)
        {
            _windows[g] = new MultivariateWindow(spec.Window, spec.Features.Count);
            var load = 0.5 + (0.4 * rng.NextDouble());
            for (var r = 0; r < spec.Window; r++)
            {
                var l = load + (0.05 * (rng.NextDouble() - 0.5));
                _windows[g].Push([Math.Round(l * 1000) / 10, Math.Round(30 + (25 * load)), Math.Round(35 + (30 * l))]);
            }
        }

        _scores = new double[Groups];
        _errors = new double[Groups];
        Score(); // bind the model and create the OrtValue views outside the measurement
    }

    [Benchmark]
    public double Score()
    {
        if (!_runner.TryScore(_windows, _scores, _errors))
        {
            throw new InvalidOperationException("the model fell back");
        }

        return _scores[0];
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _runner?.Dispose();
        _catalog?.Dispose();
        GC.SuppressFinalize(this);
    }

    private static string ModelsDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return Path.Combine(dir.FullName, "models");
            }
        }

        throw new DirectoryNotFoundException($"EdgeTwin.sln not found above {AppContext.BaseDirectory}");
    }
}
