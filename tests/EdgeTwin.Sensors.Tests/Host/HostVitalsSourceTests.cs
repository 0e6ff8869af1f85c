using System.Diagnostics;
using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.Host;
using EdgeTwin.Sensors.Tests.Fakes;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Sensors.Tests.Host;

/// <summary>
/// The host driver on /proc files captured from a gateway (Host/Captures, copied verbatim from a 2-CPU, 24 GB machine),
/// on this machine's own /proc and kernel clock, and on a small tmpfs the test mounts and fills.
/// </summary>
public sealed class HostVitalsSourceTests : IDisposable
{
    // The figures in Host/Captures: MemTotal 24683784 kB, MemAvailable 23728256 kB, loadavg 1.86 0.77, two cpuN lines, uptime 37278.52.
    private const double CapturedTotalKib = 24683784;
    private const double CapturedAvailableKib = 23728256;

    private readonly TempDir _dir = new();
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _sink = new();
    private readonly ListLogger<HostVitalsSource> _log = new();
    private ClockReading? _clock = new(0, 0x2001, 1_250_000); // TIME_OK, STA_PLL|STA_NANO, maxerror 1.25 s
    private bool _mounted;

    public HostVitalsSourceTests()
    {
        Directory.CreateDirectory(_dir.Combine("proc"));
        foreach (var file in Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "Host", "Captures")))
        {
            File.Copy(file, _dir.Combine("proc", Path.GetFileName(file)));
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (_mounted)
        {
            Run("umount", _dir.Combine("small"));
        }

        _dir.Dispose();
    }

    private HostVitalsSource Create(params string[] fileSystems)
    {
        var source = new HostVitalsSource(
            new HostVitalsOptions
            {
                DeviceId = "gw",
                ProcRoot = _dir.Combine("proc"),
                FileSystems = fileSystems,
                ReadClock = () => _clock ?? throw new IOException("adjtimex(2): EPERM (test)"),
            },
            _log);
        source.RegisterSeries(_registry);
        return source;
    }

    private Sample Value(string key, long? stamp = null) =>
        Assert.Single(_sink.All, s => _registry[s.Series].Key == key && (stamp is null || s.TimestampUnixMs == stamp));

    [Fact]
    public async Task Captured_proc_files_give_memory_load_cpus_and_uptime()
    {
        await using var source = Create();

        await source.PollAsync(_sink, 5, Ct);

        Assert.Equal(CapturedAvailableKib * 1024, Value("gw/memory_available").Value);
        Assert.Equal(100 * CapturedAvailableKib / CapturedTotalKib, Value("gw/memory_available_percent").Value, 9);
        Assert.Equal(1.86, Value("gw/load_1m").Value);
        Assert.Equal(0.77, Value("gw/load_5m").Value);
        Assert.Equal(2, Value("gw/cpus").Value);
        Assert.Equal(37278.52, Value("gw/uptime").Value);
        Assert.Equal(1, Value("gw/clock_synchronized").Value);
        Assert.Equal(1.25, Value("gw/clock_max_error").Value);
        Assert.All(_sink.All, s => Assert.Equal(SampleQuality.Good, s.Quality));
        Assert.Equal("memory_available_percent", _registry[Value("gw/memory_available_percent").Series].Metric);
        Assert.Equal("gateway.memory_available_percent", _registry[Value("gw/memory_available_percent").Series].Role);
        Assert.Equal("%", _registry[Value("gw/memory_available_percent").Series].Unit);
    }

    [Theory]
    [InlineData(0, 0x2001, 1_250_000, 1)]           // synced by timesyncd/ntpd: TIME_OK, small maxerror
    [InlineData(5, 0x0041, 35_000, 1)]              // chrony without rtcsync keeps STA_UNSYNC set on purpose; maxerror is what it updates
    [InlineData(5, 0x0040, 16_000_000, 0)]          // no daemon (this test machine, a board without RTC at boot): capped at 16 s
    [InlineData(0, 0x2001, 15_999_999, 1)]          // just under the cap
    public async Task A_clock_counts_as_synchronised_while_its_max_error_is_below_the_kernels_16_s_cap(int state, int status, long maxErrorUs, double expected)
    {
        _clock = new ClockReading(state, status, maxErrorUs);
        await using var source = Create();

        await source.PollAsync(_sink, 1, Ct);

        Assert.Equal(expected, Value("gw/clock_synchronized").Value);
        Assert.Equal(maxErrorUs / 1e6, Value("gw/clock_max_error").Value);
    }

    [Fact]
    public async Task A_missing_proc_file_spoils_only_its_metrics_and_is_logged_once_per_outage_naming_the_file()
    {
        await using var source = Create();
        var loadavg = _dir.Combine("proc", "loadavg");
        var saved = File.ReadAllBytes(loadavg);
        File.Delete(loadavg);

        await source.PollAsync(_sink, 1, Ct);
        await source.PollAsync(_sink, 2, Ct);

        foreach (var key in new[] { "gw/load_1m", "gw/load_5m" })
        {
            Assert.True(double.IsNaN(Value(key, 1).Value));
            Assert.Equal(SampleQuality.DeviceError, Value(key, 1).Quality);
        }

        Assert.Equal(SampleQuality.Good, Value("gw/memory_available", 1).Quality);
        Assert.Equal(SampleQuality.Good, Value("gw/clock_synchronized", 2).Quality);
        var warning = Assert.Single(_log.At(LogLevel.Warning));
        Assert.Contains(loadavg, warning, StringComparison.Ordinal);

        File.WriteAllBytes(loadavg, saved);
        await source.PollAsync(_sink, 3, Ct);
        Assert.Equal(1.86, Value("gw/load_1m", 3).Value);
        Assert.Single(_log.At(LogLevel.Information), l => l.Contains("gw", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_denied_clock_read_flags_the_clock_metrics_and_says_why()
    {
        _clock = null;
        await using var source = Create();

        await source.PollAsync(_sink, 1, Ct);

        Assert.Equal(SampleQuality.DeviceError, Value("gw/clock_synchronized").Quality);
        Assert.Equal(SampleQuality.DeviceError, Value("gw/clock_max_error").Quality);
        Assert.Equal(SampleQuality.Good, Value("gw/uptime").Quality);
        Assert.Contains("adjtimex(2): EPERM", Assert.Single(_log.At(LogLevel.Warning)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_proc_file_in_another_format_names_the_file_and_what_was_expected()
    {
        File.WriteAllText(_dir.Combine("proc", "meminfo"), "MemTotal:       1000 kB\nMemFree:         500 kB\n"); // Linux < 3.14: no MemAvailable
        await using var source = Create();

        await source.PollAsync(_sink, 1, Ct);

        Assert.Equal(SampleQuality.DeviceError, Value("gw/memory_available_percent").Quality);
        var warning = Assert.Single(_log.At(LogLevel.Warning));
        Assert.Contains(_dir.Combine("proc", "meminfo") + ": no MemTotal/MemAvailable", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_read_failing_is_a_device_exception_listing_each_cause()
    {
        _clock = null;
        await using var source = Create(_dir.Combine("no-such-dir"));
        foreach (var file in Directory.EnumerateFiles(_dir.Combine("proc")))
        {
            File.Delete(file);
        }

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.PollAsync(_sink, 1, Ct).AsTask());

        Assert.Contains("every read failed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("meminfo", ex.Message, StringComparison.Ordinal);
        Assert.Contains("statvfs " + _dir.Combine("no-such-dir"), ex.Message, StringComparison.Ordinal);
        Assert.Empty(_sink.All);
    }

    [Fact]
    public async Task Regression_a_poll_cancelled_while_a_read_hung_left_the_failed_reads_unobserved()
    {
        // The clock read hangs past the cancellation; meminfo is gone and fails at once. The poll ended at the clock's
        // await and never looked at the meminfo read: its exception surfaced as UnobservedTaskException at the next GC.
        File.Delete(_dir.Combine("proc", "meminfo"));
        using var release = new ManualResetEventSlim();
        var source = new HostVitalsSource(new HostVitalsOptions
        {
            DeviceId = "gw",
            ProcRoot = _dir.Combine("proc"),
            ReadClock = () =>
            {
                release.Wait(TimeSpan.FromSeconds(10));
                return new ClockReading(0, 0, 1000);
            },
        });
        source.RegisterSeries(_registry);
        var unobserved = new List<Exception>();
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            if (e.Exception.InnerExceptions.Any(x => x.Message.Contains("meminfo", StringComparison.Ordinal)))
            {
                lock (unobserved)
                {
                    unobserved.Add(e.Exception);
                }
            }
        }

        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            await PollCancelledAsync(source);
            release.Set();
            for (var i = 0; i < 5 && unobserved.Count == 0; i++)
            {
                await Task.Delay(50, Ct);
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }

        Assert.Empty(unobserved);
        Assert.Empty(_sink.All);
    }

    // Not inlined: the poll's tasks must be unreachable once it returns, for the GC to finalise them.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private async Task PollCancelledAsync(HostVitalsSource source)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => source.PollAsync(_sink, 1, cts.Token).AsTask());
    }

    [Fact]
    public async Task Free_space_and_inodes_follow_a_real_tmpfs_as_it_fills()
    {
        var small = _dir.Combine("small");
        Directory.CreateDirectory(small);
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            Assert.Skip("mounting a tmpfs needs root on Linux");
        }

        var (exit, output) = Run("mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=100", "tmpfs", small);
        if (exit != 0)
        {
            Assert.Skip($"mount -t tmpfs failed: {output}");
        }

        _mounted = true;
        await using var source = Create(small, _dir.Path);
        await source.PollAsync(_sink, 1, Ct);
        var key = $"gw/disk_free_percent{{path={small}}}";
        Assert.Equal(100, Value(key, 1).Value, 0);
        Assert.Equal(4 * 1024 * 1024, Value($"gw/disk_free{{path={small}}}", 1).Value);
        var inodesBefore = Value($"gw/inodes_free{{path={small}}}", 1).Value;

        // 3.5 MB of data and 50 files: 12.5 % of the space and about half the inodes left.
        await File.WriteAllBytesAsync(Path.Combine(small, "outbox.db"), new byte[3584 * 1024], Ct);
        for (var i = 0; i < 50; i++)
        {
            await File.WriteAllTextAsync(Path.Combine(small, $"f{i}"), "", Ct);
        }

        await source.PollAsync(_sink, 2, Ct);

        Assert.Equal(12.5, Value(key, 2).Value, 1);
        Assert.Equal(new DriveInfo(small).AvailableFreeSpace, Value($"gw/disk_free{{path={small}}}", 2).Value);
        Assert.Equal(inodesBefore - 51, Value($"gw/inodes_free{{path={small}}}", 2).Value);
        Assert.Equal(100.0 * (inodesBefore - 51) / 100, Value($"gw/inodes_free_percent{{path={small}}}", 2).Value, 6);
        Assert.Equal(SampleQuality.Good, Value($"gw/disk_free{{path={_dir.Path}}}", 2).Quality); // the second path: its own series
    }

    [Fact]
    public async Task Reads_this_machines_proc_and_kernel_clock()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Linux only");
        }

        var source = new HostVitalsSource(new HostVitalsOptions { DeviceId = "self", FileSystems = ["/"] });
        source.RegisterSeries(_registry);
        await source.PollAsync(_sink, 1, Ct);

        Assert.All(_sink.All, s => Assert.Equal(SampleQuality.Good, s.Quality));
        var cpuLines = File.ReadAllLines("/proc/stat").Count(l => l.Length > 3 && l.StartsWith("cpu", StringComparison.Ordinal) && char.IsAsciiDigit(l[3]));
        Assert.Equal(cpuLines, Value("self/cpus").Value);
        Assert.InRange(Value("self/memory_available_percent").Value, 0.1, 100);
        Assert.InRange(Value("self/uptime").Value, 1, 10 * 365 * 86400.0);

        // The real adjtimex: the kernel returns TIME_ERROR whenever STA_UNSYNC is set, and caps maxerror at 16 s; read at
        // the wrong offsets, status and maxerror would be other fields and break these.
        var clock = KernelClock.Read();
        Assert.InRange(clock.MaxErrorMicroseconds, 0, ClockReading.PhaseLimitMicroseconds);
        Assert.InRange(clock.State, 0, 5);
        if ((clock.Status & ClockReading.StaUnsync) != 0)
        {
            Assert.Equal(ClockReading.TimeError, clock.State);
        }

        Assert.Equal(clock.Synchronized ? 1 : 0, Value("self/clock_synchronized").Value);
        Console.WriteLine($"this machine: adjtimex state {clock.State}, status 0x{clock.Status:x}, maxerror {clock.MaxErrorMicroseconds} us, synchronized {clock.Synchronized}");
    }

    private static (int Exit, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit(30_000);
        return (p.ExitCode, output);
    }
}
