using System.Diagnostics.Metrics;

namespace EdgeTwin.Outbox;

/// <summary>
/// Counters and gauges of one outbox (meter <c>EdgeTwin.Outbox</c>), tagged with the outbox name (file name).
/// </summary>
internal sealed class OutboxMetrics : IDisposable
{
    public const string MeterName = "EdgeTwin.Outbox";

    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly Counter<long> _appended;
    private readonly Counter<long> _condensed;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _writeErrors;
    private readonly Counter<long> _blobBytes;
    private readonly Histogram<double> _commitMs;
    private readonly Counter<long> _writtenBack;

    public OutboxMetrics(IMeterFactory? meterFactory, string name, Func<OutboxStats> stats, Func<TimeSpan?> oldestHeld)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _tag = new("outbox", name);
        _appended = _meter.CreateCounter<long>("edgetwin.outbox.appended", "{record}", "Records appended durably.");
        _condensed = _meter.CreateCounter<long>("edgetwin.outbox.condensed", "{record}", "Raw entries condensed into summaries for the disk budget.");
        _dropped = _meter.CreateCounter<long>("edgetwin.outbox.dropped", "{record}", "Summary/raw entries dropped for the disk budget or the maximum age.");
        _writeErrors = _meter.CreateCounter<long>("edgetwin.outbox.write_errors", "{error}", "Commits that failed (the batch stays with the caller).");
        _blobBytes = _meter.CreateCounter<long>("edgetwin.outbox.checkpoint.bytes", "By", "Bytes of checkpoint blobs (the summaries' open windows) committed with appends: their share of the writes.");
        _commitMs = _meter.CreateHistogram<double>("edgetwin.outbox.commit.duration", "ms", "Time of one durable commit including fsync.");
        _writtenBack = _meter.CreateCounter<long>("edgetwin.outbox.written_back", "{record}", "Entries the memory outbox wrote back to its file once its file system was writable again.");
        _meter.CreateObservableGauge("edgetwin.outbox.depth", () => new Measurement<long>(stats().Depth, _tag), "{record}", "Entries not yet acknowledged by every uplink.");
        _meter.CreateObservableGauge("edgetwin.outbox.bytes", () => new Measurement<long>(stats().Bytes, _tag), "By", "Size of the outbox files.");
        _meter.CreateObservableGauge("edgetwin.outbox.memory_only", () => new Measurement<int>(stats().Storage.MemoryOnlySince is null ? 0 : 1, _tag), "{state}", "1 while the outbox keeps its entries in memory only (its file system turned read-only).");
        _meter.CreateObservableGauge("edgetwin.outbox.storage_failing", () => new Measurement<int>(stats().Storage.FailingSince is null ? 0 : 1, _tag), "{state}", "1 while the outbox's writes fail (the callers keep their records).");
        _meter.CreateObservableGauge(
            "edgetwin.outbox.oldest_age",
            () => new Measurement<double>(oldestHeld()?.TotalSeconds ?? 0, _tag),
            "s",
            "How long the oldest entry held has waited (monotonic for entries of this run, so a wall-clock step does not move it).");
    }

    public void Appended(long n) => _appended.Add(n, _tag);

    public void Condensed(long n) => _condensed.Add(n, _tag);

    public void Dropped(long n) => _dropped.Add(n, _tag);

    public void WriteError() => _writeErrors.Add(1, _tag);

    public void BlobBytes(long n) => _blobBytes.Add(n, _tag);

    public void Commit(TimeSpan elapsed) => _commitMs.Record(elapsed.TotalMilliseconds, _tag);

    public void WrittenBack(long n) => _writtenBack.Add(n, _tag);

    public void Dispose() => _meter.Dispose();
}
