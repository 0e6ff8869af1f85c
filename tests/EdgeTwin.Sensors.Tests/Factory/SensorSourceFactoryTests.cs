using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.Factory;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.Host;
using EdgeTwin.Sensors.I2c;
using EdgeTwin.Sensors.OneWire;
using EdgeTwin.Sensors.Tests.Fakes;
using EdgeTwin.Sensors.Thermal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Sensors.Tests.Factory;

/// <summary>The factory driven by the profiles shipped in device-profiles/, as the agent loads them.</summary>
public sealed class SensorSourceFactoryTests : IDisposable
{
    private readonly FakeW1Bus _w1 = new();
    private readonly TempDir _dir = new();
    private readonly SimulatedGpioDriver _gpioDriver = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private readonly SimulatedBme280 _bme = new();
    private readonly SimulatedSht3x _sht = new();
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _samples = new();
    private readonly CollectingEventSink _events = new();
    private int _gpioOpens;

    public SensorSourceFactoryTests()
    {
        Factory = new SensorSourceFactory(new SensorEnvironment
        {
            W1Root = _w1.Root,
            ThermalRoot = _dir.Combine("thermal"),
            OpenI2c = s => s.DeviceAddress == 0x76 ? _bme.Reopen() : _sht.Reopen(),
            OpenGpio = () =>
            {
                _gpioOpens++;
                return new GpioController(_gpioDriver);
            },
            StateDirectory = _dir.Combine("state"),
        });
        Directory.CreateDirectory(_dir.Combine("state"));
    }

    private SensorSourceFactory Factory { get; }

    public void Dispose()
    {
        Factory.Dispose();
        _w1.Dispose();
        _dir.Dispose();
    }

    private static string ProfilesDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "device-profiles");
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")) && Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("device-profiles/ not found above " + AppContext.BaseDirectory);
    }

    private static DeviceProfile Profile(string id) => DeviceProfileLoader.LoadFileOrThrow(Path.Combine(ProfilesDir(), id + ".yaml"));

    private DeviceSources Create(string deviceId, string profile, string address, TimeSpan? interval = null) =>
        Factory.Create(new SourceContext(
            new DeviceConfig(deviceId, profile, DeviceAddress.Parse(address)) { Interval = interval ?? TimeSpan.FromSeconds(10) },
            Profile(profile),
            null,
            NullLoggerFactory.Instance,
            _time));

    [Theory]
    [InlineData("maxim-ds18b20", "w1:28-0316a2791aff", typeof(Ds18b20Source))]
    [InlineData("bosch-bme280", "i2c:1:0x76", typeof(Bme280Source))]
    [InlineData("sensirion-sht3x", "i2c:1:0x44", typeof(Sht3xSource))]
    [InlineData("aosong-dht22", "gpio:4", typeof(Dht22Source))]
    [InlineData("generic-leak-detector", "gpio:17", typeof(DigitalInputSource))]
    [InlineData("generic-door-contact", "gpio:27", typeof(DigitalInputSource))]
    [InlineData("generic-stack-light", "gpio:5", typeof(DigitalInputSource))]
    [InlineData("generic-s0-energy-meter", "gpio:22", typeof(PulseCounterSource))]
    [InlineData("linux-cpu-temperature", "cpu", typeof(CpuTemperatureSource))]
    [InlineData("linux-host", "host", typeof(HostVitalsSource))]
    public void Every_shipped_local_sensor_profile_builds_its_source_without_touching_a_bus(string profile, string address, Type expected)
    {
        var sources = Create("dev1", profile, address);

        var source = (object?)sources.Polled ?? sources.Push;
        Assert.IsType(expected, source);
        Assert.True(sources.Polled is null ^ sources.Push is null);
        Assert.Equal(0, _gpioOpens);
        Assert.Equal(0, _bme.Transfers + _sht.Transfers);
    }

    [Fact]
    public void Serves_the_local_protocols_only() =>
        Assert.Equal([DeviceProtocol.OneWire, DeviceProtocol.I2c, DeviceProtocol.Gpio, DeviceProtocol.System], Factory.Protocols);

    [Fact]
    public void Wrong_address_scheme_names_the_device_profile_and_expected_form()
    {
        var ex = Assert.Throws<SourceCreationException>(() => Create("inlet-a01", "maxim-ds18b20", "i2c:1:0x76"));

        Assert.Equal("device 'inlet-a01': profile 'maxim-ds18b20' (driver ds18b20) needs an address like w1:28-…, not 'i2c:1:0x76'", ex.Message);
        Assert.Equal("inlet-a01", ex.DeviceId);
    }

    [Fact]
    public void Bad_oversampling_parameter_is_a_creation_error()
    {
        var profile = Profile("bosch-bme280");
        profile = profile with { Sensor = profile.Sensor! with { Parameters = new Dictionary<string, string> { ["oversampling"] = "3" } } };

        var ex = Assert.Throws<SourceCreationException>(() => Factory.Create(new SourceContext(
            new DeviceConfig("climate", "bosch-bme280", DeviceAddress.Parse("i2c:1:0x76")), profile, null, NullLoggerFactory.Instance, _time)));

        Assert.Equal("device 'climate': profile 'bosch-bme280': oversampling '3' is not one of 1, 2, 4, 8, 16", ex.Message);
    }

    [Fact]
    public void Stack_light_lamps_are_lamps_that_report_flashing_after_four_changes_in_ten_seconds()
    {
        var lamp = (DigitalInputSource)Create("light-s2-red", "generic-stack-light", "gpio:5").Push!;
        var leak = (DigitalInputSource)Create("leak1", "generic-leak-detector", "gpio:17").Push!;

        Assert.Equal((DigitalInputKind.Lamp, 4, TimeSpan.FromSeconds(10), "flashing"), (lamp.Options.Kind, lamp.Options.ChatterChanges, lamp.Options.ChatterWindow, lamp.Options.ChatterLabel));
        Assert.Equal((DigitalInputKind.Leak, 6, TimeSpan.FromSeconds(60)), (leak.Options.Kind, leak.Options.ChatterChanges, leak.Options.ChatterWindow));
    }

    [Theory]
    [InlineData("chatter_changes", "1", "device 'light1': profile 'generic-stack-light': chatter_changes '1' is not 0 (off) or a count of 2..1000")]
    [InlineData("chatter_changes", "many", "device 'light1': profile 'generic-stack-light': chatter_changes 'many' is not 0 (off) or a count of 2..1000")]
    [InlineData("chatter_window", "soon", "device 'light1': chatter_window 'soon' is not a duration (500ms, 10s, 5m)")]
    public void Bad_chatter_parameters_are_creation_errors(string key, string value, string message)
    {
        var profile = Profile("generic-stack-light");
        profile = profile with { Sensor = profile.Sensor! with { Parameters = new Dictionary<string, string> { [key] = value } } };

        var ex = Assert.Throws<SourceCreationException>(() => Factory.Create(new SourceContext(
            new DeviceConfig("light1", "generic-stack-light", DeviceAddress.Parse("gpio:5")), profile, null, NullLoggerFactory.Instance, _time)));

        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public async Task Ds18b20_profile_reads_the_fake_bus_with_the_profile_metric_and_role()
    {
        _w1.SetCelsius("28-0316a2791aff", 23.5);
        await using var source = Create("inlet-a01", "maxim-ds18b20", "w1:28-0316a2791aff").Polled!;
        source.RegisterSeries(_registry);

        await source.PollAsync(_samples, 1, TestContext.Current.CancellationToken);

        var s = Assert.Single(_samples.All);
        Assert.Equal(23.5, s.Value);
        var d = _registry[s.Series];
        Assert.Equal(("inlet-a01/temperature", "Cel", "rack.inlet_temperature"), (d.Key, d.Unit, d.Role));
    }

    [Fact]
    public async Task Bme280_profile_reads_all_three_channels_with_profile_units()
    {
        _bme.Celsius = 24;
        _bme.RelativeHumidity = 40;
        _bme.Pascals = 100_000;
        await using var source = Create("room1-climate", "bosch-bme280", "i2c:1:0x76").Polled!;
        source.RegisterSeries(_registry);

        await source.PollAsync(_samples, 1, TestContext.Current.CancellationToken);

        var byMetric = _samples.All.ToDictionary(s => _registry[s.Series].Metric, s => s.Value);
        Assert.Equal(24, byMetric["temperature"], 0.01);
        Assert.Equal(40, byMetric["humidity"], 0.1);
        Assert.Equal(1000, byMetric["pressure"], 0.02);
        Assert.Equal("room.pressure", _registry.Snapshot().Single(x => x.Descriptor.Metric == "pressure").Descriptor.Role);
    }

    [Fact]
    public async Task Profile_scale_converts_units_e_g_pressure_in_pascal()
    {
        var profile = Profile("bosch-bme280");
        profile = profile with
        {
            Metrics = [new ProfileMetric("pressure_pa", "Pa", MetricKind.Gauge, "room.pressure") { Channel = "pressure", Scale = 100 }],
        };
        _bme.Pascals = 95_000;
        await using var source = Factory.Create(new SourceContext(
            new DeviceConfig("climate", "bosch-bme280", DeviceAddress.Parse("i2c:1:0x76")), profile, null, NullLoggerFactory.Instance, _time)).Polled!;
        source.RegisterSeries(_registry);

        await source.PollAsync(_samples, 1, TestContext.Current.CancellationToken);

        Assert.Equal(95_000, Assert.Single(_samples.All).Value, 0.5); // within the 20-bit ADC step
    }

    [Fact]
    public async Task Sht3x_profile_reads_temperature_and_humidity()
    {
        _sht.Celsius = 19;
        _sht.RelativeHumidity = 61;
        await using var source = Create("cold-aisle", "sensirion-sht3x", "i2c:1:0x44").Polled!;
        source.RegisterSeries(_registry);

        await source.PollAsync(_samples, 1, TestContext.Current.CancellationToken);

        Assert.Equal([19.0, 61.0], _samples.All.Select(s => Math.Round(s.Value, 1)));
    }

    [Fact]
    public async Task Cpu_profile_reads_the_zone_its_address_names()
    {
        foreach (var (n, type, milli) in new[] { (0, "cpu-thermal", "51200"), (1, "gpu-thermal", "49000") })
        {
            var zone = _dir.Combine("thermal", $"thermal_zone{n}");
            Directory.CreateDirectory(zone);
            File.WriteAllText(Path.Combine(zone, "type"), type);
            File.WriteAllText(Path.Combine(zone, "temp"), milli);
        }

        await using var source = Create("gw1", "linux-cpu-temperature", "cpu").Polled!;
        source.RegisterSeries(_registry);
        await source.PollAsync(_samples, 1, TestContext.Current.CancellationToken);

        var s = Assert.Single(_samples.All);
        Assert.Equal(51.2, s.Value);
        Assert.Equal("gw1/cpu_temperature{zone=cpu-thermal}", _registry[s.Series].Key);
    }

    [Fact]
    public async Task The_shipped_host_profile_watches_the_state_directory_and_the_profiles_paths()
    {
        var extra = _dir.Combine("logs");
        Directory.CreateDirectory(extra);
        var profile = Profile("linux-host") with
        {
            Sensor = Profile("linux-host").Sensor! with { Parameters = new Dictionary<string, string> { ["paths"] = extra + "/, " + _dir.Combine("state") } },
        };
        var factory = new SensorSourceFactory(new SensorEnvironment { StateDirectory = _dir.Combine("state"), ReadClock = () => new ClockReading(0, 0, 2000) });
        await using var source = factory.Create(new SourceContext(new DeviceConfig("gw1", "linux-host", DeviceAddress.Parse("host")), profile, null, NullLoggerFactory.Instance, _time)).Polled!;
        source.RegisterSeries(_registry);
        await source.PollAsync(_samples, 1, TestContext.Current.CancellationToken);

        var keys = _samples.All.Select(s => _registry[s.Series].Key).ToList();
        Assert.Contains($"gw1/disk_free_percent{{path={_dir.Combine("state")}}}", keys);
        Assert.Contains($"gw1/inodes_free{{path={extra}}}", keys);
        Assert.Equal(2 * 4 + 8, keys.Count); // the state directory named twice is watched once
        Assert.Contains("gw1/clock_synchronized", keys);
        Assert.All(_samples.All, s => Assert.Equal(SampleQuality.Good, s.Quality));
    }

    [Fact]
    public async Task Regression_a_contact_profile_without_active_low_and_pull_read_a_floating_line_inverted()
    {
        // A local profile for a leak contact to ground, trusting the documented default (active low, internal pull-up):
        // it got active high and no pull, so the closed contact read "dry" and the open one floated.
        var diagnostics = new ConfigDiagnostics();
        var profile = DeviceProfileLoader.Parse("""
            profile: my-leak-spot
            vendor: Generic
            model: leak spot sensor, dry contact to ground
            protocol: gpio
            source: "dry contact"
            sensor: { driver: digital, parameters: { kind: leak } }
            metrics:
              - { name: leak, channel: state, unit: "1", kind: state, role: room.leak }
            """, "my-leak-spot.yaml", diagnostics);
        Assert.Empty(diagnostics.Items);
        var sources = Factory.Create(new SourceContext(
            new DeviceConfig("leak-ups", "my-leak-spot", DeviceAddress.Parse("gpio:26")) { Interval = TimeSpan.FromSeconds(10) },
            profile!,
            null,
            NullLoggerFactory.Instance,
            _time));
        await using var source = sources.Push!;
        source.RegisterSeries(_registry);
        _gpioDriver.Drive(26, PinValue.Low); // water: the contact closes to ground
        using var stop = new CancellationTokenSource();
        var run = source.RunAsync(_samples, _events, stop.Token);
        await _samples.NextAsync();
        await _time.AdvanceUntilAsync(() => _events.All.Count == 1, TimeSpan.FromMilliseconds(20));
        Assert.Equal(PinMode.InputPullUp, _gpioDriver.ModeOf(26));

        _gpioDriver.Release(26); // dry again: the contact opens and the pull-up holds the line high
        await _time.AdvanceUntilAsync(() => _events.All.Count == 2, TimeSpan.FromMilliseconds(20));
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(["leak detected", "dry"], _events.All.Select(e => e.Attributes!["label"]));
        Assert.Equal(EventSeverity.Critical, _events.All[0].Severity);
    }

    [Fact]
    public async Task Leak_profile_gives_a_critical_event_and_counts_changes()
    {
        await using var source = Create("leak-crac1", "generic-leak-detector", "gpio:17").Push!;
        source.RegisterSeries(_registry);
        using var stop = new CancellationTokenSource();
        var run = source.RunAsync(_samples, _events, stop.Token);
        await _samples.NextAsync();

        _gpioDriver.Bounce(17, PinValue.Low, 5); // active low: water closes the contact
        await _time.AdvanceUntilAsync(() => _events.All.Count == 1, TimeSpan.FromMilliseconds(20));
        await _time.AdvanceUntilAsync(() => _samples.All.Count >= 4, TimeSpan.FromMilliseconds(20));
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        var e = _events.All.Single();
        Assert.Equal((EdgeEventKind.InputChanged, EventSeverity.Critical, "leak detected"), (e.Kind, e.Severity, e.Attributes!["label"]));
        var latest = _samples.All.GroupBy(s => _registry[s.Series].Metric).ToDictionary(g => g.Key, g => g.Last().Value);
        Assert.Equal(1, latest["leak"]);
        Assert.Equal(1, latest["leak_changes"]);
        Assert.Equal(1, _gpioOpens);
    }

    [Fact]
    public async Task S0_profile_publishes_pulses_energy_and_power_in_kW_and_persists_the_count()
    {
        await using var source = Create("meter1", "generic-s0-energy-meter", "gpio:22").Push!;
        source.RegisterSeries(_registry);
        using var stop = new CancellationTokenSource();
        var run = source.RunAsync(_samples, _events, stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (_gpioDriver.CallbackCount(22) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        for (var i = 0; i < 40; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(60));
            _gpioDriver.Drive(22, PinValue.Low);
            _time.Advance(TimeSpan.FromMilliseconds(40));
            _gpioDriver.Drive(22, PinValue.High);
        }

        await _time.AdvanceUntilAsync(() => _samples.All.Count >= 3, TimeSpan.FromMilliseconds(500));
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        var latest = _samples.All.GroupBy(s => _registry[s.Series].Metric).ToDictionary(g => g.Key, g => g.Last().Value);
        Assert.Equal(40, latest["pulses"]);
        Assert.Equal(0.04, latest["energy"], 1e-12);
        Assert.Equal(0.04 / 10 * 3600, latest["power"], 1e-9); // 0.04 kWh in the 10 s interval: 14.4 kW
        Assert.Contains("\"pulses\":40", File.ReadAllText(_dir.Combine("state", "pulse-meter1.json")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_s0_meters_power_was_kWh_per_second_labelled_kW_h()
    {
        // The shipped profile published the rate of the kWh total as it came (kWh per second, 14.4 kW read 0.004) under
        // the unit of the total, kW.h: a rule or dashboard took it for energy. The driver's own default was already kW.
        await using var source = Create("meter1", "generic-s0-energy-meter", "gpio:22").Push!;
        source.RegisterSeries(_registry);
        var units = _registry.Snapshot().ToDictionary(x => x.Descriptor.Metric, x => x.Descriptor.Unit);

        Assert.Equal("kW", units["power"]);
        Assert.Equal("kW.h", units["energy"]);
    }

    [Fact]
    public async Task Regression_the_s0_meters_power_rate_was_registered_as_a_counter()
    {
        // rate: true publishes the channel's change per second, a level; it kept the profile's counter kind, so the
        // anomaly twin differentiated the power again and took every drop in load for a counter reset.
        await using var source = Create("meter1", "generic-s0-energy-meter", "gpio:22").Push!;
        source.RegisterSeries(_registry);
        var kinds = _registry.Snapshot().ToDictionary(x => x.Descriptor.Metric, x => x.Descriptor.Kind);

        Assert.Equal(MetricKind.Gauge, kinds["power"]);
        Assert.Equal(MetricKind.Counter, kinds["energy"]);
        Assert.Equal(MetricKind.Counter, kinds["pulses"]);
    }

    [Fact]
    public async Task No_gpio_chip_is_a_device_error_at_start_not_a_creation_error()
    {
        using var factory = new SensorSourceFactory(new SensorEnvironment { OpenGpio = () => throw new PlatformNotSupportedException("no gpiochip0") });
        var sources = factory.Create(new SourceContext(
            new DeviceConfig("door1", "generic-door-contact", DeviceAddress.Parse("gpio:5")), Profile("generic-door-contact"), null, NullLoggerFactory.Instance, _time));
        await using var source = sources.Push!;
        source.RegisterSeries(_registry);

        var ex = await Assert.ThrowsAsync<SensorException>(() => source.RunAsync(_samples, _events, TestContext.Current.CancellationToken));

        Assert.Equal("device 'door1': gpio 5: cannot open the line for edge events: no usable GPIO controller on this machine: no gpiochip0", ex.Message);
    }

    [Fact]
    public void Registration_adds_the_factory_to_the_container()
    {
        var services = new ServiceCollection().AddSensorSources();

        Assert.Contains(services, d => d.ServiceType == typeof(ISourceFactory) && d.ImplementationType == typeof(SensorSourceFactory));
    }
}
