using BenchmarkDotNet.Attributes;
using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Host;

namespace EdgeTwin.Benchmarks.Host;

/// <summary>
/// One poll of the host driver on this machine's real /proc, adjtimex and statvfs of one directory (the agent's
/// state directory stands in), and its parts: what watching the gateway itself costs per poll.
/// </summary>
[MemoryDiagnoser]
public class HostVitalsBenchmarks : IAsyncDisposable
{
    private readonly NullSink _sink = new();
    private HostVitalsSource? _source;
    private byte[] _meminfo = [];
    private string _dir = "";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("edgetwin-bench-host-").FullName;
        _source = new HostVitalsSource(new HostVitalsOptions { DeviceId = "gw", FileSystems = [_dir] });
        _source.RegisterSeries(new SeriesRegistry());
        _meminfo = File.ReadAllBytes("/proc/meminfo");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await DisposeAsync();
        Directory.Delete(_dir);
    }

    public async ValueTask DisposeAsync()
    {
        if (_source is not null)
        {
            await _source.DisposeAsync();
            _source = null;
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Five /proc reads, adjtimex and one statvfs, each on the thread pool with its timeout; 12 samples written.</summary>
    [Benchmark]
    public ValueTask Poll() => _source!.PollAsync(_sink, 0, CancellationToken.None);

    [Benchmark]
    public bool ParseMeminfo() => ProcText.TryMemInfo(_meminfo, out _, out _);

    [Benchmark]
    public ClockReading Adjtimex() => KernelClock.Read();

    [Benchmark]
    public FileSystemSpace StatVfs() => FileSystemSpace.Of(_dir);

    private sealed class NullSink : ISampleSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}
