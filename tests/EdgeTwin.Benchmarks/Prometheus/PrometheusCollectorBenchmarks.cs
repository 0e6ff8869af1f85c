using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using EdgeTwin.Core.Prometheus;

namespace EdgeTwin.Benchmarks.Prometheus;

/// <summary>
/// What the Prometheus collector's listener costs the hot paths it sits on: a counter add and a histogram record with
/// two tags of a known label set (Allocated should read 0 B; the test
/// <c>PrometheusExpositionTests.Measurements_of_known_label_sets_allocate_nothing</c> asserts it), and one scrape of
/// 200 devices' worth of series.
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*PrometheusCollector*'</c>
/// </summary>
[MemoryDiagnoser]
public class PrometheusCollectorBenchmarks : IDisposable
{
    private readonly KeyValuePair<string, object?> _device = new("device", "pdu-a01-a");
    private readonly KeyValuePair<string, object?> _quality = new("quality", "good");
    private Meter _meter = null!;
    private PrometheusCollector _collector = null!;
    private Counter<long> _samples = null!;
    private Histogram<double> _duration = null!;
    private double _knownBefore;
    private bool _ranCounter;

    [GlobalSetup]
    public void Setup()
    {
        _meter = new Meter("EdgeTwin.Bench");
        _collector = new PrometheusCollector(new PrometheusCollectorOptions { MeterFilter = m => ReferenceEquals(m, _meter) });
        _samples = _meter.CreateCounter<long>("edgetwin.bench.samples", "{sample}");
        _duration = _meter.CreateHistogram<double>("edgetwin.bench.duration", "s");
        for (var d = 0; d < 200; d++)
        {
            var device = new KeyValuePair<string, object?>("device", "dev-" + d);
            _samples.Add(1, device, _quality);
            _duration.Record(0.01 * d, device);
        }

        _samples.Add(1, _device, _quality);
        _duration.Record(0.02, _device);

        // Without a listener an Add or Record returns at once: the hot-path figures would be of nothing.
        if (!_samples.Enabled || !_duration.Enabled)
        {
            throw new InvalidOperationException("PrometheusCollector: the collector does not listen to the bench meter's instruments");
        }

        if (!Scrape().Contains("dev-199", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("PrometheusCollector: a scrape does not hold the 200 devices' series");
        }

        _knownBefore = KnownCount();
    }

    [Benchmark(OperationsPerInvoke = 1000)]
    public void CounterAddOfAKnownLabelSet()
    {
        _ranCounter = true;
        for (var i = 0; i < 1000; i++)
        {
            _samples.Add(1, _device, _quality);
        }
    }

    [Benchmark(OperationsPerInvoke = 1000)]
    public void HistogramRecordOfAKnownLabelSet()
    {
        for (var i = 0; i < 1000; i++)
        {
            _duration.Record(0.004, _device);
        }
    }

    [Benchmark]
    public async Task<int> ScrapeOf200Devices() => (await _collector.ScrapeAsync(CancellationToken.None)).Length;

    [GlobalCleanup]
    public void Cleanup()
    {
        // The counter benchmark must have reached the collector (only it moves this series).
        var after = KnownCount();
        if (_ranCounter && after <= _knownBefore)
        {
            throw new InvalidOperationException($"PrometheusCollector: CounterAddOfAKnownLabelSet ran but the scraped counter stayed at {after}");
        }

        Dispose();
    }

    public void Dispose()
    {
        _collector?.Dispose();
        _meter?.Dispose();
        GC.SuppressFinalize(this);
    }

    private string Scrape() => _collector.ScrapeAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <summary>The scraped value of the counter series the counter benchmark adds to.</summary>
    private double KnownCount()
    {
        foreach (var line in Scrape().Split('\n'))
        {
            if (line.StartsWith("edgetwin_bench_samples", StringComparison.Ordinal) && line.Contains("pdu-a01-a", StringComparison.Ordinal))
            {
                return double.Parse(line.AsSpan(line.LastIndexOf(' ') + 1), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("PrometheusCollector: the scrape has no edgetwin_bench_samples series of device pdu-a01-a");
    }
}
