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
    }

    [Benchmark(OperationsPerInvoke = 1000)]
    public void CounterAddOfAKnownLabelSet()
    {
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
    public void Dispose()
    {
        _collector?.Dispose();
        _meter?.Dispose();
        GC.SuppressFinalize(this);
    }
}
