using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// The maintenance stage's hot path: one sample into a machine's interval means (no allocation), and one
/// machine-health inference (24 h window of 30-minute means through the bearing-rul ONNX session).
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*MachineHealth*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class MachineHealthBenchmarks : IDisposable
{
    private ModelCatalog? _catalog;
    private MachineHealthRunner? _runner;
    private MachineHealthMonitor? _monitor;
    private BearingFeatureWindow? _window;
    private const long IntervalMs = 30 * 60 * 1000;
    private const long IntervalMask = (1 << 20) - 1; // 17.5 minutes of milliseconds
    private long _t;
    private long _n;

    [GlobalSetup]
    public void Setup()
    {
        var models = Path.GetDirectoryName(FindManifest())!;
        _catalog = new ModelCatalog(models);
        _catalog.Reload();
        _runner = new MachineHealthRunner(_catalog, "bearing-rul");
        if (!_runner.Refresh())
        {
            throw new InvalidOperationException($"bearing-rul not available in {models}");
        }

        var predictor = new MaintenancePredictor(new MaintenanceSettings(0.7, TimeSpan.FromHours(48), TimeSpan.FromHours(1)), new Dictionary<string, MachineRepairFigures>());
        _monitor = new MachineHealthMonitor(["m1"], new MachineHealthRunner(_catalog, "bearing-rul"), predictor);
        _window = new BearingFeatureWindow(TimeSpan.FromMinutes(30), 256);
        var t = 0L;
        for (var i = 0; i < 48 * 180; i++)
        {
            t += 10_000;
            _window.Add(BearingFeature.VibrationRms, 1.2 + (i % 7 * 0.01), t);
            _window.Add(BearingFeature.Kurtosis, 3.1, t);
            _window.Add(BearingFeature.BearingTemperature, 48, t);
        }

        _t = 1_800_000_000_000; // the start of a 30-minute interval (a multiple of 1,800,000 ms)
        _monitor.Observe(0, BearingFeature.VibrationRms, 1.2, _t); // the machine runs: later samples are accumulated
    }

    /// <summary>One sample that does not close an interval (the common case: 539 of 540 at 10 s sampling).</summary>
    [Benchmark]
    public MaintenancePrediction? ObserveSample()
    {
        // Within the one 30-minute interval that starts at _t: a millisecond more per call left it after 1.8 million calls
        // (a run makes hundreds of millions), so every 1.8 millionth sample closed an interval (an incomplete one: no
        // inference, so the figure hardly moved, but not the case described).
        return _monitor!.Observe(0, BearingFeature.Kurtosis, 3.2, _t + (_n++ & IntervalMask));
    }

    [Benchmark]
    public float Inference()
    {
        // False means nothing was run (model unavailable, window empty): a figure of nothing.
        if (!_runner!.TryPredict(_window!, out var rul))
        {
            throw new InvalidOperationException("MachineHealth: bearing-rul ran no inference on the window");
        }

        return rul;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        // ObserveSample claims a sample added to the open interval's means: all of them in the interval the setup opened
        // (none closed it), and every one counted (none dropped as late or taken for a stopped machine).
        if (_n > 0)
        {
            var window = _monitor!.Export(0).Window;
            var kurtosis = window.Counts[(int)BearingFeature.Kurtosis];
            if (window.CurrentInterval != _t / IntervalMs || _monitor.IntervalsClosed != 0 || kurtosis != _n)
            {
                throw new InvalidOperationException($"MachineHealth: ObserveSample's {_n} samples left interval {window.CurrentInterval} (opened {_t / IntervalMs}), closed {_monitor.IntervalsClosed} and counted {kurtosis}");
            }
        }

        Dispose();
    }

    public void Dispose()
    {
        _monitor?.Dispose();
        _runner?.Dispose();
        _catalog?.Dispose();
        _monitor = null;
        _runner = null;
        _catalog = null;
        GC.SuppressFinalize(this);
    }

    private static string FindManifest()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", "manifest.json");
            if (File.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"models/manifest.json not found above {AppContext.BaseDirectory}");
    }
}
