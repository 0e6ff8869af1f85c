using System.Globalization;
using BenchmarkDotNet.Attributes;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.Benchmarks.Outbox;

/// <summary>
/// Durable appends into the LiteDB outbox (journal fsynced per commit), counted in samples:
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*OutboxAppend*'</c>.
/// Each benchmark's "op" is one sample, so samples/s = 1 / Mean. Bytes written to storage per sample come from
/// <c>/proc/self/io</c> (write_bytes) around every iteration and are printed at the end of each benchmark as
/// <c>OUTBOX-BYTES-PER-SAMPLE</c>.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6, invocationCount: 16)]
public class OutboxAppendBenchmarks : IDisposable
{
    private const int Series = 100;
    private const int RawRecords = 16;
    private const int PointsPerRawRecord = 64;
    private const int SamplesPerFeed = 10_000;

    private string _dir = "";
    private LiteDbOutbox _outbox = null!;
    private OutboxRecord[] _rawBatch = [];
    private OutboxFeeder _rawFeeder = null!;
    private OutboxFeeder _summaryFeeder = null!;
    private OutboxFeeder _staggeredFeeder = null!;
    private Sample[] _rawSamples = [];
    private Sample[] _summarySamples = [];
    private SeriesRegistry _registry = null!;
    private long _time = 1_764_500_040_000;
    private long _writeBytesBefore;
    private long _writeBytes;
    private long _samples;
    private long _invocations;
    private int _recordsPerInvocation;
    private long _appendedAtStart;

    [GlobalSetup]
    public async Task Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "edgetwin-outbox-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(_dir, "outbox.db"), DiskBudgetBytes = 4L << 30 });
        _outbox.RegisterUplink("mqtt"); // nothing is acknowledged: the outbox only grows, as during an outage

        var identity = new UplinkIdentity("gw1", "dc1");
        _registry = new SeriesRegistry();
        var raw = new SeriesId[Series];
        var summarised = new SeriesId[Series];
        for (var i = 0; i < Series; i++)
        {
            raw[i] = _registry.GetOrAdd(new SeriesDescriptor("pdu-" + (i / 10).ToString(CultureInfo.InvariantCulture), "current", "A", Tags: [new("outlet", i.ToString(CultureInfo.InvariantCulture))]));
            summarised[i] = _registry.GetOrAdd(new SeriesDescriptor("rack-" + (i / 10).ToString(CultureInfo.InvariantCulture), "inlet_temperature", "Cel", Tags: [new("sensor", i.ToString(CultureInfo.InvariantCulture))]));
        }

        _rawBatch = new OutboxRecord[RawRecords];
        for (var r = 0; r < RawRecords; r++)
        {
            var points = Enumerable.Range(0, PointsPerRawRecord).Select(p => new RawPoint(_time + (p * 1000L), 10 + (0.01 * ((r * 7) + p)), 0)).ToArray();
            _rawBatch[r] = UplinkBodies.Raw(identity, _registry[raw[r]], points);
        }

        var summarizerRaw = new SeriesSummarizer(_registry, identity, new SummaryOptions { MaxRawPointsPerRecord = 100 }, d => d.Metric == "current" ? new RawPolicy(0) : null);
        _rawFeeder = new OutboxFeeder(_outbox, summarizerRaw, _registry, identity);
        _summaryFeeder = new OutboxFeeder(_outbox, new SeriesSummarizer(_registry, identity), _registry, identity);

        // Series i starts i points into its record, so from here on every poll-sized write completes one raw record:
        // the case where an append (and its fsync) per write would cap the rate.
        _staggeredFeeder = new OutboxFeeder(_outbox, new SeriesSummarizer(_registry, identity, new SummaryOptions { MaxRawPointsPerRecord = 100 }, d => d.Metric == "current" ? new RawPolicy(0) : null), _registry, identity);
        for (var i = 1; i < Series; i++)
        {
            var warm = Enumerable.Range(0, i).Select(k => new Sample(raw[i], _time - ((i - k) * 1000L), 5 + (k % 13))).ToArray();
            await _staggeredFeeder.WriteAsync(warm, CancellationToken.None);
        }

        await _staggeredFeeder.DrainAsync(CancellationToken.None);
        _rawSamples = new Sample[SamplesPerFeed];
        _summarySamples = new Sample[SamplesPerFeed];
        for (var i = 0; i < SamplesPerFeed; i++)
        {
            _rawSamples[i] = new Sample(raw[i % Series], 0, 5 + (i % 13));
            _summarySamples[i] = new Sample(summarised[i % Series], 0, 20 + (i % 17));
        }

        _appendedAtStart = _outbox.GetStats().Appended;
    }

    [IterationSetup]
    public void BeforeIteration() => _writeBytesBefore = WriteBytes();

    [IterationCleanup]
    public void AfterIteration() => _writeBytes += WriteBytes() - _writeBytesBefore;

    /// <summary>16 raw records of 64 points each (1,024 samples) per durable append.</summary>
    [Benchmark(OperationsPerInvoke = RawRecords * PointsPerRawRecord)]
    public Task<long> AppendRawRecords()
    {
        Count(RawRecords * PointsPerRawRecord, RawRecords);
        return _outbox.AppendAsync(_rawBatch, CancellationToken.None).AsTask();
    }

    /// <summary>10,000 samples of 100 raw (report-by-exception, deadband 0) series through the feeder: 100 raw records per append.</summary>
    [Benchmark(OperationsPerInvoke = SamplesPerFeed)]
    public async Task FeedRawSeries()
    {
        Count(SamplesPerFeed, Series);
        Stamp(_rawSamples, 100);
        await _rawFeeder.WriteAsync(_rawSamples, CancellationToken.None);
        await _rawFeeder.DrainAsync(CancellationToken.None);
    }

    /// <summary>
    /// The same 10,000 raw samples as 100 poll-sized writes of 100 samples (one per series) then a wait until durable;
    /// each write completes one raw record. The group commit turns 100 would-be appends into a few.
    /// </summary>
    [Benchmark(OperationsPerInvoke = SamplesPerFeed)]
    public async Task FeedRawSeriesInPollSizedWrites()
    {
        Count(SamplesPerFeed, Series);
        Stamp(_rawSamples, 100);
        for (var offset = 0; offset < SamplesPerFeed; offset += Series)
        {
            await _staggeredFeeder.WriteAsync(_rawSamples.AsMemory(offset, Series), CancellationToken.None);
        }

        await _staggeredFeeder.DrainAsync(CancellationToken.None);
    }

    /// <summary>10,000 samples of 100 summarised series, each invocation a new 60 s window: 100 summaries per append.</summary>
    [Benchmark(OperationsPerInvoke = SamplesPerFeed)]
    public async Task FeedSummarisedSeries()
    {
        Count(SamplesPerFeed, Series);
        Stamp(_summarySamples, 60_000 / (SamplesPerFeed / Series));
        await _summaryFeeder.WriteAsync(_summarySamples, CancellationToken.None);
        await _summaryFeeder.DrainAsync(CancellationToken.None);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        var stats = _outbox.GetStats();

        // Every invocation must have appended its records (the feeders' first may only open windows or records).
        var appended = stats.Appended - _appendedAtStart;
        if (_invocations == 0 || appended < _recordsPerInvocation * (_invocations - 1) || stats.Dropped > 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"OutboxAppend: {_invocations} invocations of {_recordsPerInvocation} records each appended {appended} records ({stats.Dropped} dropped)"));
        }

        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"OUTBOX-BYTES-PER-SAMPLE {(double)_writeBytes / Math.Max(1, _samples):0.00} ({_writeBytes} bytes written for {_samples} samples; store {stats.Depth} entries, {stats.Bytes} bytes)"));
        Dispose();
        await _outbox.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    public void Dispose()
    {
        _rawFeeder?.Dispose();
        _summaryFeeder?.Dispose();
        _staggeredFeeder?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Counts the samples one invocation feeds, and the records it must append. Counted per call, not as 16 per iteration:
    /// only this class's own job runs 16 invocations per iteration (a dry job runs one, so its bytes per sample read 16×
    /// too low).
    /// </summary>
    private void Count(int samples, int records)
    {
        _samples += samples;
        _invocations++;
        _recordsPerInvocation = records;
    }

    /// <summary>Moves the samples' timestamps forward so every call covers new time (1 sample per series per step).</summary>
    private void Stamp(Sample[] samples, long stepMs)
    {
        for (var i = 0; i < samples.Length; i++)
        {
            if (i % Series == 0)
            {
                _time += stepMs;
            }

            samples[i] = samples[i] with { TimestampUnixMs = _time };
        }
    }

    private static long WriteBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/io"))
        {
            if (line.StartsWith("write_bytes:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(12).Trim(), CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
