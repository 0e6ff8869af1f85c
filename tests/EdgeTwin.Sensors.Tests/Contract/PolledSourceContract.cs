using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.Host;
using EdgeTwin.Sensors.I2c;
using EdgeTwin.Sensors.OneWire;
using EdgeTwin.Sensors.Tests.Fakes;
using EdgeTwin.Sensors.Thermal;

namespace EdgeTwin.Sensors.Tests.Contract;

/// <summary>
/// What every polled local sensor promises the scheduler, run against each of them: series registered up front and
/// used as registered, every sample stamped with the acquisition time, a cancelled poll cancels, a broken device
/// throws a <see cref="DeviceException"/> naming it (never anything else), and the source recovers when the device does.
/// </summary>
public abstract class PolledSourceContract : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    /// <summary>A working device and a way to break it and repair it.</summary>
    protected abstract (IPolledSource Source, Action Break, Action Repair) Create(string deviceId);

    protected T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public void Dispose()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        GC.SuppressFinalize(this);
    }

    private static async Task PollAsync(IPolledSource source, ISampleSink sink, long stamp)
    {
        // DHT22 frames can be spoiled by pre-emption on a loaded machine (see Dht22SourceTests): allow re-polls.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await source.PollAsync(sink, stamp, TestContext.Current.CancellationToken);
                return;
            }
            catch (SensorException) when (source is Dht22Source && attempt < 6)
            {
                await Task.Delay(700, TestContext.Current.CancellationToken);
            }
        }
    }

    [Fact]
    public async Task Samples_use_registered_series_and_the_acquisition_time()
    {
        var (source, _, _) = Create("contract-dev");
        await using var _ = source;
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        var sink = new CollectingSampleSink();

        await PollAsync(source, sink, 1_234_567);

        Assert.NotEmpty(sink.All);
        Assert.All(sink.All, s =>
        {
            Assert.Equal(1_234_567, s.TimestampUnixMs);
            Assert.Equal("contract-dev", registry[s.Series].DeviceId);
        });
        Assert.Equal(sink.All.Count, sink.All.Select(s => s.Series).Distinct().Count());
        Assert.Equal("contract-dev", source.DeviceId);
    }

    [Fact]
    public async Task Polling_before_registration_is_a_programming_error()
    {
        var (source, _, _) = Create("contract-dev");
        await using var _ = source;

        await Assert.ThrowsAsync<InvalidOperationException>(() => source.PollAsync(new CollectingSampleSink(), 0, TestContext.Current.CancellationToken).AsTask());
    }

    [Fact]
    public async Task A_cancelled_poll_is_cancelled_and_writes_nothing()
    {
        var (source, _, _) = Create("contract-dev");
        await using var _ = source;
        source.RegisterSeries(new SeriesRegistry());
        var sink = new CollectingSampleSink();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => source.PollAsync(sink, 0, new CancellationToken(canceled: true)).AsTask());
        Assert.Empty(sink.All);
    }

    [Fact]
    public async Task A_broken_device_throws_a_device_exception_naming_it_and_recovers()
    {
        var (source, breakIt, repair) = Create("contract-dev");
        await using var _ = source;
        source.RegisterSeries(new SeriesRegistry());
        var sink = new CollectingSampleSink();
        await PollAsync(source, sink, 1);

        breakIt();
        await Task.Delay(700, TestContext.Current.CancellationToken); // DHT22: the binding re-serves a frame younger than 500 ms
        var ex = await Assert.ThrowsAnyAsync<DeviceException>(() => source.PollAsync(sink, 2, TestContext.Current.CancellationToken).AsTask());
        Assert.Equal("contract-dev", ex.DeviceId);
        Assert.StartsWith("device 'contract-dev': ", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(sink.All, s => s.TimestampUnixMs == 2);

        repair();
        await Task.Delay(700, TestContext.Current.CancellationToken); // DHT22: past the binding's frame cache
        await PollAsync(source, sink, 3);
        Assert.Contains(sink.All, s => s.TimestampUnixMs == 3);
    }
}

public sealed class Ds18b20Contract : PolledSourceContract
{
    protected override (IPolledSource, Action, Action) Create(string deviceId)
    {
        var bus = Own(new FakeW1Bus());
        const string id = "28-00000a0b0c0d";
        bus.SetCelsius(id, 19.75);
        var source = new Ds18b20Source(new Ds18b20Options { DeviceId = deviceId, SensorId = id, SysfsRoot = bus.Root });
        return (source, () => bus.SetRaw(id, 300, corruptCrc: true), () => bus.SetCelsius(id, 20));
    }
}

public sealed class Bme280Contract : PolledSourceContract
{
    protected override (IPolledSource, Action, Action) Create(string deviceId)
    {
        var chip = new SimulatedBme280();
        var source = new Bme280Source(new I2cSensorOptions { DeviceId = deviceId, BusId = 1, Address = 0x76, OpenDevice = _ => chip.Reopen() });
        return (source, () => chip.Absent = true, () => chip.Absent = false);
    }
}

public sealed class Sht3xContract : PolledSourceContract
{
    protected override (IPolledSource, Action, Action) Create(string deviceId)
    {
        var chip = new SimulatedSht3x();
        var source = new Sht3xSource(new I2cSensorOptions { DeviceId = deviceId, BusId = 1, Address = 0x44, OpenDevice = _ => chip.Reopen() });
        return (source, () => chip.CorruptNextFrame = true, () => { });
    }
}

public sealed class Dht22Contract : PolledSourceContract
{
    protected override (IPolledSource, Action, Action) Create(string deviceId)
    {
        var driver = new SimulatedGpioDriver();
        var controller = Own(new System.Device.Gpio.GpioController(driver));
        var dht = driver.AttachDht22(4);
        var source = new Dht22Source(new Dht22Options { DeviceId = deviceId, Controller = () => controller, Pin = 4 });
        return (source, () => dht.Silent = true, () => dht.Silent = false);
    }
}

public sealed class CpuTemperatureContract : PolledSourceContract
{
    protected override (IPolledSource, Action, Action) Create(string deviceId)
    {
        var root = Own(new TempDir());
        var zone = root.Combine("thermal_zone0");
        Directory.CreateDirectory(zone);
        File.WriteAllText(Path.Combine(zone, "type"), "cpu-thermal\n");
        var temp = Path.Combine(zone, "temp");
        File.WriteAllText(temp, "45000\n");
        var source = new CpuTemperatureSource(new CpuTemperatureOptions { DeviceId = deviceId, ThermalRoot = root.Path });
        return (source, () => File.Delete(temp), () => File.WriteAllText(temp, "46000\n"));
    }
}

public sealed class HostVitalsContract : PolledSourceContract
{
    protected override (IPolledSource, Action, Action) Create(string deviceId)
    {
        var root = Own(new TempDir());
        var proc = root.Combine("proc");
        var state = root.Combine("state");
        Directory.CreateDirectory(state);
        var broken = false;
        void Lay()
        {
            Directory.CreateDirectory(proc);
            File.WriteAllText(Path.Combine(proc, "meminfo"), "MemTotal:  948304 kB\nMemAvailable:  412560 kB\n");
            File.WriteAllText(Path.Combine(proc, "loadavg"), "0.50 0.40 0.30 1/99 1234\n");
            File.WriteAllText(Path.Combine(proc, "stat"), "cpu  1 2 3\ncpu0 1 2 3\n");
            File.WriteAllText(Path.Combine(proc, "uptime"), "120.5 100.0\n");
        }

        Lay();
        var source = new HostVitalsSource(new HostVitalsOptions
        {
            DeviceId = deviceId,
            ProcRoot = proc,
            FileSystems = [state],
            ReadClock = () => broken ? throw new IOException("adjtimex(2): EPERM") : new ClockReading(0, 0, 5000),
        });
        return (source,
            () =>
            {
                broken = true;
                Directory.Delete(proc, recursive: true);
                Directory.Delete(state);
            },
            () =>
            {
                broken = false;
                Lay();
                Directory.CreateDirectory(state);
            });
    }
}
