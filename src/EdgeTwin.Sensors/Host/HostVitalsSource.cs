using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Sensors.Host;

public sealed record HostVitalsOptions : SensorOptions
{
    /// <summary>Where procfs is (<c>/proc</c>). Injectable so tests can read fixed captures.</summary>
    public string ProcRoot { get; init; } = "/proc";

    /// <summary>
    /// Directories whose file systems are watched, one series set each tagged <c>path=&lt;dir&gt;</c>: the agent's
    /// state directory (the outbox's) first, then the profile's <c>paths</c>. Empty: no <c>fs_*</c> series.
    /// </summary>
    public IReadOnlyList<string> FileSystems { get; init; } = [];

    /// <summary>The kernel clock state (adjtimex by default); injectable so tests can break it.</summary>
    public Func<ClockReading> ReadClock { get; init; } = KernelClock.Read;
}

/// <summary>
/// The gateway watched like any device: clock synchronisation (adjtimex), free space and inodes of the state
/// directory's file system and any extra paths (statvfs), MemAvailable (/proc/meminfo), load (/proc/loadavg), online
/// CPUs (/proc/stat) and uptime (/proc/uptime). Each read runs on its own with the device timeout, so a hung network
/// mount spoils only its own <c>fs_*</c> series; a read that fails publishes NaN with
/// <see cref="SampleQuality.DeviceError"/> for its metrics and logs the file once per outage. The poll fails only when
/// every read fails.
/// </summary>
public sealed class HostVitalsSource : IPolledSource
{
    private const string Driver = "host";
    private static readonly string[] FileSystemChannels = ["fs_free", "fs_free_percent", "fs_inodes_free", "fs_inodes_free_percent"];

    private readonly HostVitalsOptions _options;
    private readonly IReadOnlyList<SensorOutput> _hostOutputs;
    private readonly IReadOnlyList<SensorOutput> _fsOutputs;
    private readonly Read<ClockReading> _clock;
    private readonly Read<(double Total, double Available)> _memory;
    private readonly Read<(double Load1, double Load5)> _load;
    private readonly Read<int> _cpus;
    private readonly Read<double> _uptime;
    private readonly Read<FileSystemSpace>[] _fileSystems;
    private readonly Task<FileSystemSpace>?[] _fsReads;
    private readonly Func<string, double> _hostValue;
    private OutputSet? _host;
    private (OutputSet Outputs, Func<string, double> Value)[] _fsSets = [];

    public HostVitalsSource(HostVitalsOptions options, ILogger<HostVitalsSource>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        var log = (ILogger?)logger ?? NullLogger.Instance;
        var channels = DeviceProfileLoader.HostChannels;
        var outputs = options.Resolve(Driver, channels, Defaults, []);
        _hostOutputs = outputs.Where(o => !FileSystemChannels.Contains(o.Channel)).ToArray();
        _fsOutputs = outputs.Where(o => FileSystemChannels.Contains(o.Channel)).ToArray();

        var id = options.DeviceId;
        var meminfo = new ProcFile(Path.Combine(options.ProcRoot, "meminfo"));
        var loadavg = new ProcFile(Path.Combine(options.ProcRoot, "loadavg"));
        var stat = new ProcFile(Path.Combine(options.ProcRoot, "stat"));
        var uptime = new ProcFile(Path.Combine(options.ProcRoot, "uptime"));
        _clock = new Read<ClockReading>(id, "clock", "adjtimex", log, options.ReadClock);
        _memory = new Read<(double, double)>(id, "proc", meminfo.Path, log, () =>
            ProcText.TryMemInfo(meminfo.Read(), out var total, out var available) ? (total, available)
                : throw new InvalidDataException("no MemTotal/MemAvailable lines in kB (MemAvailable needs Linux 3.14)"));
        _load = new Read<(double, double)>(id, "proc", loadavg.Path, log, () =>
            ProcText.TryLoadAvg(loadavg.Read(), out var l1, out var l5) ? (l1, l5) : throw new InvalidDataException("not 'LOAD1 LOAD5 LOAD15 …'"));
        _cpus = new Read<int>(id, "proc", stat.Path, log, () =>
            ProcText.CountCpus(stat.Read()) is > 0 and var n ? n : throw new InvalidDataException("no cpuN lines"));
        _uptime = new Read<double>(id, "proc", uptime.Path, log, () =>
            ProcText.TryUptime(uptime.Read(), out var s) ? s : throw new InvalidDataException("not 'SECONDS IDLE'"));
        _fileSystems = options.FileSystems
            .Select(dir => new Read<FileSystemSpace>(id, "statvfs", dir, log, () => FileSystemSpace.Of(dir)))
            .ToArray();
        _fsReads = new Task<FileSystemSpace>?[_fileSystems.Length];
        _hostValue = HostValue;
    }

    /// <summary>Every channel with the unit and role of the shipped <c>linux-host</c> profile.</summary>
    public static IReadOnlyList<SensorOutput> Defaults { get; } =
    [
        new("clock_synchronized", new SeriesSpec("clock_synchronized", "1", MetricKind.Gauge, "gateway.clock_synchronized", 0, 1)),
        new("clock_max_error", new SeriesSpec("clock_max_error", "s", MetricKind.Gauge, "gateway.clock_max_error", 0, 16)),
        new("fs_free", new SeriesSpec("disk_free", "By", MetricKind.Gauge, "gateway.disk_free", 0)),
        new("fs_free_percent", new SeriesSpec("disk_free_percent", "%", MetricKind.Gauge, "gateway.disk_free_percent", 0, 100)),
        new("fs_inodes_free", new SeriesSpec("inodes_free", "1", MetricKind.Gauge, "gateway.inodes_free", 0)),
        new("fs_inodes_free_percent", new SeriesSpec("inodes_free_percent", "%", MetricKind.Gauge, "gateway.inodes_free_percent", 0, 100)),
        new("memory_available", new SeriesSpec("memory_available", "By", MetricKind.Gauge, "gateway.memory_available", 0)),
        new("memory_available_percent", new SeriesSpec("memory_available_percent", "%", MetricKind.Gauge, "gateway.memory_available_percent", 0, 100)),
        new("load_1m", new SeriesSpec("load_1m", "1", MetricKind.Gauge, "gateway.load_1m", 0)),
        new("load_5m", new SeriesSpec("load_5m", "1", MetricKind.Gauge, "gateway.load_5m", 0)),
        new("cpus", new SeriesSpec("cpus", "1", MetricKind.Gauge, "gateway.cpus", 1)),
        new("uptime", new SeriesSpec("uptime", "s", MetricKind.Gauge, "gateway.uptime", 0)),
    ];

    public string DeviceId => _options.DeviceId;

    /// <summary>The last clock state read (null before the first good read): for <c>poll</c> and status lines.</summary>
    public ClockReading? LastClock => _clock.HasValue ? _clock.Value : null;

    public void RegisterSeries(SeriesRegistry registry)
    {
        _host = new OutputSet(DeviceId, _hostOutputs);
        _host.Register(registry);
        var sets = new (OutputSet, Func<string, double>)[_fileSystems.Length];
        for (var i = 0; i < sets.Length; i++)
        {
            var fs = _fileSystems[i];
            var outputs = new OutputSet(DeviceId, _fsOutputs, [new("path", _options.FileSystems[i])]);
            outputs.Register(registry);
            sets[i] = (outputs, channel => FileSystemValue(fs, channel));
        }

        _fsSets = sets;
    }

    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken)
    {
        var host = _host ?? throw new InvalidOperationException("RegisterSeries must be called before PollAsync.");
        cancellationToken.ThrowIfCancellationRequested();
        var timeout = _options.Timeout;

        // Started together, each with its own timeout: the poll takes as long as the slowest read, not their sum.
        var clock = _clock.StartAsync(timeout, cancellationToken);
        var memory = _memory.StartAsync(timeout, cancellationToken);
        var load = _load.StartAsync(timeout, cancellationToken);
        var cpus = _cpus.StartAsync(timeout, cancellationToken);
        var uptime = _uptime.StartAsync(timeout, cancellationToken);
        for (var i = 0; i < _fileSystems.Length; i++)
        {
            _fsReads[i] = _fileSystems[i].StartAsync(timeout, cancellationToken);
        }

        var failures = 0;
        try
        {
            failures += await _clock.FinishAsync(clock).ConfigureAwait(false);
            failures += await _memory.FinishAsync(memory).ConfigureAwait(false);
            failures += await _load.FinishAsync(load).ConfigureAwait(false);
            failures += await _cpus.FinishAsync(cpus).ConfigureAwait(false);
            failures += await _uptime.FinishAsync(uptime).ConfigureAwait(false);
            for (var i = 0; i < _fileSystems.Length; i++)
            {
                failures += await _fileSystems[i].FinishAsync(_fsReads[i]!).ConfigureAwait(false);
                _fsReads[i] = null;
            }
        }
        catch (OperationCanceledException)
        {
            // The reads not awaited yet may still fail: observe them, or each is an unobserved task exception.
            Observe(clock);
            Observe(memory);
            Observe(load);
            Observe(cpus);
            Observe(uptime);
            for (var i = 0; i < _fsReads.Length; i++)
            {
                if (_fsReads[i] is { } read)
                {
                    Observe(read);
                }

                _fsReads[i] = null;
            }

            throw;
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (failures == 5 + _fileSystems.Length)
        {
            SensorInstruments.Error(DeviceId, Driver);
            throw new SensorException(DeviceId, "host", _options.ProcRoot, "every read failed: " + string.Join("; ", AllReads().Select(r => r.LastError)));
        }

        SensorInstruments.Read(DeviceId, Driver);
        await host.WriteAsync(sink, acquiredAtUnixMs, _hostValue, null, cancellationToken).ConfigureAwait(false);
        foreach (var (outputs, value) in _fsSets)
        {
            await outputs.WriteAsync(sink, acquiredAtUnixMs, value, null, cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private IEnumerable<IRead> AllReads() => [_clock, _memory, _load, _cpus, _uptime, .. _fileSystems];

    // A read that failed this poll has no value: its metrics publish NaN, which the outputs grade DeviceError.
    private double HostValue(string channel) => channel switch
    {
        "clock_synchronized" => _clock.HasValue ? (_clock.Value.Synchronized ? 1 : 0) : double.NaN,
        "clock_max_error" => _clock.HasValue ? _clock.Value.MaxErrorMicroseconds / 1e6 : double.NaN,
        "memory_available" => _memory.HasValue ? _memory.Value.Available : double.NaN,
        "memory_available_percent" => _memory.HasValue && _memory.Value.Total > 0 ? 100 * _memory.Value.Available / _memory.Value.Total : double.NaN,
        "load_1m" => _load.HasValue ? _load.Value.Load1 : double.NaN,
        "load_5m" => _load.HasValue ? _load.Value.Load5 : double.NaN,
        "cpus" => _cpus.HasValue ? _cpus.Value : double.NaN,
        "uptime" => _uptime.HasValue ? _uptime.Value : double.NaN,
        _ => double.NaN,
    };

    private static double FileSystemValue(Read<FileSystemSpace> fs, string channel) => !fs.HasValue ? double.NaN : channel switch
    {
        "fs_free" => fs.Value.FreeBytes,
        "fs_free_percent" => fs.Value.FreePercent,
        "fs_inodes_free" => fs.Value.FreeInodes,
        "fs_inodes_free_percent" => fs.Value.FreeInodesPercent,
        _ => double.NaN,
    };

    private interface IRead
    {
        string? LastError { get; }
    }

    /// <summary>One read with its own gate, timeout and once-per-outage log; keeps the value of its last poll.</summary>
    private sealed class Read<T> : IRead
    {
        private readonly BlockingIo _io;
        private readonly ReadFailureLog _log;
        private readonly Func<T> _read;
        private readonly string _what;

        public Read(string deviceId, string bus, string what, ILogger logger, Func<T> read)
        {
            _io = new BlockingIo(deviceId, bus, what);
            _log = new ReadFailureLog(logger, deviceId, Driver);
            _read = read;
            _what = what;
        }

        public bool HasValue { get; private set; }

        public T Value { get; private set; } = default!;

        public string? LastError { get; private set; }

        public Task<T> StartAsync(TimeSpan timeout, CancellationToken cancellationToken) => _io.RunAsync(_read, timeout, cancellationToken);

        /// <summary>Awaits the read; 0 when it gave a value, 1 when it failed (logged once per outage).</summary>
        public async ValueTask<int> FinishAsync(Task<T> read)
        {
            try
            {
                Value = await read.ConfigureAwait(false);
                HasValue = true;
                LastError = null;
                _log.Succeeded();
                return 0;
            }
            catch (SensorException ex)
            {
                Fail(ex.Message);
            }
            catch (InvalidDataException ex)
            {
                Fail($"{_what}: {ex.Message}");
            }

            return 1;
        }

        private void Fail(string message)
        {
            HasValue = false;
            LastError = message;
            _log.Failed(message);
        }
    }
}
