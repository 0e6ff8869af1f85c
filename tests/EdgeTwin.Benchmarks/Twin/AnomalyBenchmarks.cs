using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Anomaly;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// Cost of one sample through the streaming anomaly detector, over 64 series (detectors interleaved as on the gateway, so
/// caches see many series). Target: ≤ 1 µs and 0 bytes allocated per sample.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AnomalyBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
public class AnomalyBenchmarks
{
    private const int Series = 64;
    private const int Steps = 1000;
    private readonly StreamingAnomalyDetector[] _detectors = new StreamingAnomalyDetector[Series];
    private readonly double[] _values = new double[Series * Steps];
    private long _time = 1_700_000_000_000;

    [Params(false, true)]
    public bool Counter { get; set; }

    /// <summary>With the contextual novelty component on (off by default; <c>novelty_likelihood: 0.8</c>, 8 levels, 6 orders, 1,024 slots).</summary>
    [Params(false, true)]
    public bool Novelty { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        for (var s = 0; s < Series; s++)
        {
            _detectors[s] = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with { IsCounter = Counter, NoveltyLikelihood = Novelty ? 0.8 : 0.0 });
        }

        var counters = new double[Series];
        for (var i = 0; i < _values.Length; i++)
        {
            var v = 50 + (20 * Math.Sin(i / 500.0)) + (rng.NextDouble() * 5);
            counters[i % Series] += v;
            _values[i] = Counter ? counters[i % Series] : v;
        }

        // Past warm-up, so the measured path is the steady one.
        for (var k = 0; k < 3; k++)
        {
            Sweep();
        }

        DetectorSweep.ThrowIfWarmingUp("AnomalyBenchmarks", _detectors, learned: false);
    }

    [Benchmark(OperationsPerInvoke = Series * Steps)]
    public double Sweep() => DetectorSweep.Run(_detectors, _values, Steps, ref _time);
}

/// <summary>
/// The same sweep with the adaptive-resonance detector (<c>algorithm: resonance</c>, and <c>max</c> = resonance plus the
/// residual detector), learning period 750 samples (blocks of 7), on white noise around a slow wave so that the category
/// network fills to its capacity (the expensive case: every block compares with every category).
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AnomalyResonanceBenchmarks*' --inProcess</c>
/// </summary>
[MemoryDiagnoser]
public class AnomalyResonanceBenchmarks
{
    private const int Series = 64;
    private const int Steps = 1000;
    private readonly StreamingAnomalyDetector[] _detectors = new StreamingAnomalyDetector[Series];
    private readonly double[] _values = new double[Series * Steps];
    private long _time = 1_700_000_000_000;

    [Params(AnomalyAlgorithm.Resonance, AnomalyAlgorithm.Max)]
    public AnomalyAlgorithm Algorithm { get; set; }

    [Params(64, 256)]
    public int Capacity { get; set; }

    /// <summary>Categories in use after the warm-up sweeps, reported so that the figure can be read against the capacity.</summary>
    public double MeanCategories { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        for (var s = 0; s < Series; s++)
        {
            _detectors[s] = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with
            {
                Algorithm = Algorithm,
                ResonanceProbation = 750,
                ResonanceCapacity = Capacity,
            });
        }

        for (var i = 0; i < _values.Length; i++)
        {
            _values[i] = 50 + (20 * Math.Sin(i / 500.0)) + (rng.NextDouble() * 25);
        }

        // Past the learning period (750 samples per series) and with the categories filled.
        for (var k = 0; k < 6; k++)
        {
            Sweep();
        }

        DetectorSweep.ThrowIfWarmingUp("AnomalyResonanceBenchmarks", _detectors, learned: true);
        MeanCategories = _detectors.Average(d => d.Resonance!.Categories);
        Console.WriteLine($"// {Algorithm}, capacity {Capacity}: {MeanCategories:F0} categories in use per series");
    }

    [Benchmark(OperationsPerInvoke = Series * Steps)]
    public double Sweep() => DetectorSweep.Run(_detectors, _values, Steps, ref _time);
}

/// <summary>
/// <c>algorithm: max</c> (resonance defaults: learning 600, blocks of 7, 256 categories) with and without
/// <c>resonance_replay</c> (ring of 4096 blocks, replay after 10 % widening). <c>Steady</c>: noise around a slow wave whose
/// range is known after the warm-up (the replay path costs only the ring write). <c>Growing</c>: the same values plus a
/// drift of 1 per 1,000 samples, so each series' range (about 65 at first) keeps widening and the replaying detector
/// re-runs its whole ring about every 6,500 samples per series — a steady trend, the replay's expensive case.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AnomalyReplayBenchmarks*' --inProcess --job short</c>
/// </summary>
[MemoryDiagnoser]
public class AnomalyReplayBenchmarks
{
    private const int Series = 64;
    private const int Steps = 1000;
    private readonly StreamingAnomalyDetector[] _detectors = new StreamingAnomalyDetector[Series];
    private readonly double[] _values = new double[Series * Steps];
    private long _time = 1_700_000_000_000;
    private double _drift;

    [Params(false, true)]
    public bool Replay { get; set; }

    [Params(false, true)]
    public bool Growing { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        for (var s = 0; s < Series; s++)
        {
            _detectors[s] = new StreamingAnomalyDetector(AnomalyDetectorOptions.Default with
            {
                Algorithm = AnomalyAlgorithm.Max,
                ResonanceReplay = Replay,
                ResonanceReplayBlocks = 4096,
                ResonanceReplayWidening = 0.10,
            });
        }

        for (var i = 0; i < _values.Length; i++)
        {
            _values[i] = 50 + (20 * Math.Sin(i / 500.0)) + (rng.NextDouble() * 25);
        }

        // Past the learning period and with the ring partly filled.
        for (var k = 0; k < 6; k++)
        {
            Sweep();
        }

        DetectorSweep.ThrowIfWarmingUp("AnomalyReplayBenchmarks", _detectors, learned: true);
        var replays = _detectors.Average(d => d.Resonance!.Replays);
        Console.WriteLine($"// replay {Replay}, growing {Growing}: {_detectors.Average(d => d.Resonance!.Categories):F0} categories, {replays:F1} replays per series, {_detectors[0].ApproximateBytes} bytes per series");
    }

    [Benchmark(OperationsPerInvoke = Series * Steps)]
    public double Sweep()
    {
        var sum = 0.0;
        for (var t = 0; t < Steps; t++)
        {
            _time += 10_000;
            var row = t * Series;
            if (Growing)
            {
                _drift += 0.001;
            }

            for (var s = 0; s < Series; s++)
            {
                sum += _detectors[s].Update(_time, _values[row + s] + _drift);
            }
        }

        return sum;
    }
}

internal static class DetectorSweep
{
    /// <summary>
    /// The sweeps claim the steady path: a detector still in its warm-up (or, with resonance, its learning period) takes a
    /// shorter one, so the setup's sweeps must have taken every series past both.
    /// </summary>
    public static void ThrowIfWarmingUp(string benchmark, StreamingAnomalyDetector[] detectors, bool learned)
    {
        foreach (var d in detectors)
        {
            if (d.Count <= AnomalyDetectorOptions.Default.WarmUpSamples || (learned && d.Resonance?.Learned != true))
            {
                throw new InvalidOperationException($"{benchmark}: a detector is still warming up after the setup's sweeps ({d.Count} samples, resonance learned: {d.Resonance?.Learned})");
            }
        }
    }

    /// <summary>One sample per series per 10 s step, series interleaved as the gateway's stage feeds them.</summary>
    public static double Run(StreamingAnomalyDetector[] detectors, double[] values, int steps, ref long time)
    {
        var sum = 0.0;
        var series = detectors.Length;
        for (var t = 0; t < steps; t++)
        {
            time += 10_000;
            var row = t * series;
            for (var s = 0; s < series; s++)
            {
                sum += detectors[s].Update(time, values[row + s]);
            }
        }

        return sum;
    }
}

/// <summary>
/// Cost of saving and restoring one series' learned state (<see cref="DetectorStateCodec"/>, the anomaly stage's
/// checkpoint every hour and at stop, and its restore after a restart), for the default detector and <c>algorithm: max</c>.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*AnomalyStateBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
public class AnomalyStateBenchmarks : IDisposable
{
    private readonly MemoryStream _buffer = new();
    private StreamingAnomalyDetector _detector = null!;
    private AnomalyDetectorOptions _options = null!;
    private BinaryWriter _writer = null!;

    [Params(AnomalyAlgorithm.Residual, AnomalyAlgorithm.Max)]
    public AnomalyAlgorithm Algorithm { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _options = AnomalyDetectorOptions.Default with { Algorithm = Algorithm };
        _detector = new StreamingAnomalyDetector(_options);
        var rng = new Random(42);
        for (var i = 0; i < 5000; i++)
        {
            _detector.Update(1_700_000_000_000 + (i * 10_000L), 50 + (20 * Math.Sin(i / 500.0)) + (rng.NextDouble() * 5));
        }

        _writer = new BinaryWriter(_buffer);

        // The restore must read back the whole learned state that the save wrote (not an empty or default detector).
        if (Save() <= 0 || Restore() != _detector.Count)
        {
            throw new InvalidOperationException($"AnomalyStateBenchmarks({Algorithm}): a saved state of {_detector.Count} samples restores as {Restore()}");
        }
    }

    [Benchmark]
    public long Save()
    {
        _buffer.Position = 0;
        DetectorStateCodec.Write(_writer, _detector);
        return _buffer.Position;
    }

    [Benchmark]
    public long Restore()
    {
        _buffer.Position = 0;
        using var reader = new BinaryReader(_buffer, System.Text.Encoding.UTF8, leaveOpen: true);
        return DetectorStateCodec.Read(reader, _options).Count;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _writer.Dispose();
        _buffer.Dispose();
        GC.SuppressFinalize(this);
    }
}
