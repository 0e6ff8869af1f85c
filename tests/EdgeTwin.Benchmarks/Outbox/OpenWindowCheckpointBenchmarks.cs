using System.Globalization;
using BenchmarkDotNet.Attributes;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.Benchmarks.Outbox;

/// <summary>
/// What an open-window checkpoint costs the feeder while it holds its lock (samples wait for it): copying the open
/// windows of 3,600 series and encoding them; and the catalog, written only when new series appear.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*OpenWindowCheckpoint*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class OpenWindowCheckpointBenchmarks
{
    private const int Series = 3_600;
    private readonly List<OpenWindow> _windows = [];
    private SeriesRegistry _registry = null!;
    private SeriesSummarizer _summarizer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _registry = new SeriesRegistry();
        _summarizer = new SeriesSummarizer(_registry, new UplinkIdentity("gw1", "dc1"));
        var samples = new Sample[Series * 5];
        for (var i = 0; i < Series; i++)
        {
            var id = _registry.GetOrAdd(new SeriesDescriptor("rack-" + (i / 10).ToString(CultureInfo.InvariantCulture), "inlet_temperature", "Cel", Role: "rack.inlet_temperature", Tags: [new("sensor", i.ToString(CultureInfo.InvariantCulture))]));
            for (var k = 0; k < 5; k++)
            {
                samples[(k * Series) + i] = new Sample(id, 1_764_500_040_000 + (k * 2_000L), 20 + (0.1 * k));
            }
        }

        _summarizer.Add(samples, []);

        // A window per series, and a catalog of them: fewer would be a cheaper checkpoint than the one described.
        var bytes = Checkpoint();
        if (_windows.Count != Series || bytes <= 0 || Catalog() <= 0)
        {
            throw new InvalidOperationException($"OpenWindowCheckpoint: {_windows.Count} open windows ({bytes} bytes encoded), not {Series}");
        }
    }

    [Benchmark(Description = "checkpoint of 3,600 open windows (copy + encode)")]
    public int Checkpoint()
    {
        _summarizer.CopyOpenWindows(_windows);
        return OpenWindowCheckpoint.EncodeWindows(1_764_500_050_000, clean: false, _windows).Length;
    }

    [Benchmark(Description = "catalog of 3,600 series")]
    public int Catalog() => OpenWindowCheckpoint.EncodeCatalog(_registry, Series).Length;
}
