using System.Device.Gpio;
using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Common;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.Host;
using EdgeTwin.Sensors.I2c;
using EdgeTwin.Sensors.OneWire;
using EdgeTwin.Sensors.Thermal;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Sensors.Factory;

/// <summary>
/// Builds local sensor sources from a device profile's <c>sensor:</c> section and metrics (<c>channel:</c>) and the
/// device's address: <c>w1:ID</c> (ds18b20), <c>i2c:BUS:ADDR</c> (bme280, sht3x), <c>gpio:PIN</c> (dht22, digital,
/// pulse), <c>cpu[:PATH]</c> (cpu_temp), <c>host</c> (host). No I/O here: buses are opened on the first poll, and the one GPIO
/// controller of the gateway when the first GPIO source starts; the factory owns and disposes it.
/// </summary>
public sealed class SensorSourceFactory : ISourceFactory, IDisposable
{
    private const string SysClassThermal = "/sys/class/thermal";
    private readonly SensorEnvironment _environment;
    private readonly Lock _gpioGate = new();
    private GpioController? _gpio;

    public SensorSourceFactory()
        : this(new SensorEnvironment())
    {
    }

    /// <summary>A factory on other buses than the gateway's own: a simulated gateway's GPIO chip, test sysfs trees.</summary>
    public SensorSourceFactory(SensorEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        _environment = environment;
    }

    public IReadOnlyCollection<DeviceProtocol> Protocols { get; } =
        [DeviceProtocol.OneWire, DeviceProtocol.I2c, DeviceProtocol.Gpio, DeviceProtocol.System];

    public DeviceSources Create(SourceContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var device = context.Device;
        var profile = context.Profile;
        var sensor = profile.Sensor ?? throw Problem(device, $"profile '{profile.Id}' has no sensor: section");
        var outputs = Outputs(device, profile);
        var logs = context.LoggerFactory;
        try
        {
            return sensor.Driver switch
            {
                SensorDriver.Ds18b20 => DeviceSources.Of(new Ds18b20Source(
                    new Ds18b20Options
                    {
                        DeviceId = device.Id,
                        SensorId = Require(device, profile, AddressScheme.OneWire, "w1:28-…").Path!,
                        SysfsRoot = _environment.W1Root,
                        Timeout = device.Timeout,
                        Outputs = outputs,
                    },
                    logs.CreateLogger<Ds18b20Source>())),
                SensorDriver.Bme280 => DeviceSources.Of(new Bme280Source(I2c(device, profile, sensor, outputs), logs.CreateLogger<Bme280Source>())),
                SensorDriver.Sht3x => DeviceSources.Of(new Sht3xSource(I2c(device, profile, sensor, outputs), logs.CreateLogger<Sht3xSource>())),
                SensorDriver.Dht22 => DeviceSources.Of(new Dht22Source(
                    new Dht22Options
                    {
                        DeviceId = device.Id,
                        Controller = Gpio,
                        Pin = Require(device, profile, AddressScheme.Gpio, "gpio:PIN").Pin!.Value,
                        Timeout = device.Timeout < TimeSpan.FromSeconds(2) ? TimeSpan.FromSeconds(2) : device.Timeout, // 1 s settle when first opened
                        Time = context.TimeProvider,
                        Outputs = outputs,
                    },
                    logs.CreateLogger<Dht22Source>())),
                SensorDriver.Digital => DeviceSources.Of(new DigitalInputSource(
                    new DigitalInputOptions
                    {
                        DeviceId = device.Id,
                        Controller = Gpio,
                        Pin = Require(device, profile, AddressScheme.Gpio, "gpio:PIN").Pin!.Value,
                        InputMode = InputMode(sensor.Pull),
                        ActiveLow = sensor.ActiveLow,
                        Debounce = sensor.Debounce ?? TimeSpan.FromMilliseconds(50),
                        StateInterval = device.Interval,
                        Kind = InputKind(profile, sensor),
                        ChatterChanges = ChatterChanges(device, profile, sensor),
                        ChatterWindow = Duration(device, sensor, "chatter_window") ?? TimeSpan.FromSeconds(60),
                        Time = context.TimeProvider,
                        Outputs = outputs,
                    },
                    logs.CreateLogger<DigitalInputSource>())),
                SensorDriver.Pulse => DeviceSources.Of(new PulseCounterSource(
                    new PulseCounterOptions
                    {
                        DeviceId = device.Id,
                        Controller = Gpio,
                        Pin = Require(device, profile, AddressScheme.Gpio, "gpio:PIN").Pin!.Value,
                        InputMode = InputMode(sensor.Pull),
                        Edge = sensor.ActiveLow || sensor.Pull == PullMode.Up ? PinEventTypes.Falling : PinEventTypes.Rising,
                        PulsesPerUnit = sensor.PulsesPerUnit ?? throw Problem(device, $"profile '{profile.Id}': pulse driver needs pulses_per_unit"),
                        MinPulseGap = sensor.Debounce ?? TimeSpan.FromMilliseconds(20),
                        ReportInterval = device.Interval,
                        PersistInterval = Duration(device, sensor, "persist_interval") ?? TimeSpan.FromMinutes(1),
                        StatePath = StatePath(context, sensor),
                        Time = context.TimeProvider,
                        Outputs = outputs,
                    },
                    logs.CreateLogger<PulseCounterSource>())),
                SensorDriver.CpuTemp => DeviceSources.Of(Cpu(context, sensor, outputs)),
                SensorDriver.Host => DeviceSources.Of(HostVitals(context, sensor, outputs)),
                _ => throw Problem(device, $"sensor driver '{sensor.Driver}' is not supported"),
            };
        }
        catch (ArgumentException ex)
        {
            throw Problem(device, $"profile '{profile.Id}': {ex.Message}", ex);
        }
    }

    public void Dispose()
    {
        lock (_gpioGate)
        {
            _gpio?.Dispose();
            _gpio = null;
        }
    }

    /// <summary>The gateway's GPIO controller, created on first use; a failure is retried by the next caller.</summary>
    private GpioController Gpio()
    {
        lock (_gpioGate)
        {
            if (_gpio is not null)
            {
                return _gpio;
            }

            try
            {
                _gpio = _environment.OpenGpio();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The board driver probe throws a variety of types (no gpiochip, no libgpiod, unknown board).
                throw new IOException("no usable GPIO controller on this machine: " + ex.Message, ex);
            }

            return _gpio;
        }
    }

    private I2cSensorOptions I2c(DeviceConfig device, DeviceProfile profile, SensorSettings sensor, IReadOnlyList<SensorOutput> outputs)
    {
        var address = Require(device, profile, AddressScheme.I2c, "i2c:BUS:0xADDR");
        var options = new I2cSensorOptions
        {
            DeviceId = device.Id,
            BusId = address.Bus!.Value,
            Address = address.I2cAddress!.Value,
            OpenDevice = _environment.OpenI2c,
            Timeout = device.Timeout,
            Outputs = outputs,
        };
        if (sensor.Parameters.TryGetValue("oversampling", out var os))
        {
            if (!SensorParameters.TryOversampling(os, out var n))
            {
                throw Problem(device, $"profile '{profile.Id}': {SensorParameters.OversamplingProblem(os)}");
            }

            options = options with { Oversampling = n };
        }

        if (sensor.Parameters.TryGetValue("repeatability", out var rep))
        {
            options = options with
            {
                Repeatability = rep switch
                {
                    "high" => Sht3xRepeatability.High,
                    "medium" => Sht3xRepeatability.Medium,
                    "low" => Sht3xRepeatability.Low,
                    _ => throw Problem(device, $"profile '{profile.Id}': {SensorParameters.RepeatabilityProblem(rep)}"),
                },
            };
        }

        return options;
    }

    private CpuTemperatureSource Cpu(SourceContext context, SensorSettings sensor, IReadOnlyList<SensorOutput> outputs)
    {
        var device = context.Device;
        var address = Require(device, context.Profile, AddressScheme.Cpu, "cpu");
        var file = address.Path ?? DeviceAddress.DefaultCpuThermalPath;
        if (_environment.ThermalRoot is { } fakeRoot && file.StartsWith(SysClassThermal + "/", StringComparison.Ordinal))
        {
            file = fakeRoot + file[SysClassThermal.Length..];
        }

        // cpu:/sys/class/thermal/thermal_zone0/temp → root /sys/class/thermal, zone directory thermal_zone0.
        var zoneDir = Path.GetDirectoryName(file);
        var root = zoneDir is null ? null : Path.GetDirectoryName(zoneDir);
        if (zoneDir is null || root is null || Path.GetFileName(file) != "temp" || !Path.GetFileName(zoneDir).StartsWith("thermal_zone", StringComparison.Ordinal))
        {
            throw Problem(device, $"'{address}' does not name a thermal zone's temp file (cpu:/sys/class/thermal/thermal_zoneN/temp)");
        }

        // parameters: { zones: "cpu-thermal,x86_pkg_temp" } reads those zone types wherever they are instead.
        var zones = sensor.Parameters.TryGetValue("zones", out var z)
            ? z.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : [];
        return new CpuTemperatureSource(
            new CpuTemperatureOptions
            {
                DeviceId = device.Id,
                ThermalRoot = root,
                Zones = zones,
                ZoneDirectories = zones.Length == 0 ? [Path.GetFileName(zoneDir)] : [],
                Timeout = device.Timeout,
                Outputs = outputs,
            },
            context.LoggerFactory.CreateLogger<CpuTemperatureSource>());
    }

    private HostVitalsSource HostVitals(SourceContext context, SensorSettings sensor, IReadOnlyList<SensorOutput> outputs)
    {
        var device = context.Device;
        Require(device, context.Profile, AddressScheme.Host, "host");

        // The state directory's file system first: the outbox filling it is what stops the agent keeping data.
        var watched = new List<string>();
        if (StateDirectory(context) is { } state)
        {
            watched.Add(state);
        }

        if (sensor.Parameters.TryGetValue("paths", out var paths))
        {
            if (SensorParameters.PathsProblem(paths) is { } problem)
            {
                throw Problem(device, $"profile '{context.Profile.Id}': {problem}");
            }

            watched.AddRange(SensorParameters.Paths(paths).Select(p => Path.TrimEndingDirectorySeparator(p)).Where(p => !watched.Contains(p, StringComparer.Ordinal)));
        }

        return new HostVitalsSource(
            new HostVitalsOptions
            {
                DeviceId = device.Id,
                ProcRoot = _environment.ProcRoot,
                FileSystems = watched,
                ReadClock = _environment.ReadClock,
                Timeout = device.Timeout,
                Outputs = outputs,
            },
            context.LoggerFactory.CreateLogger<HostVitalsSource>());
    }

    private static List<SensorOutput> Outputs(DeviceConfig device, DeviceProfile profile)
    {
        var outputs = new List<SensorOutput>();
        foreach (var m in profile.AllMetrics)
        {
            var channel = m.Channel ?? throw Problem(device, $"profile '{profile.Id}': metric '{m.Name}' has no channel");
            // A rate is a level, not a monotonic count (as the SNMP source publishes it): the S0 meter's power kept the
            // counter kind of its channel, and the anomaly twin took every drop in power for a counter reset.
            var kind = m.Rate && m.Kind == MetricKind.Counter ? MetricKind.Gauge : m.Kind;
            var spec = new SeriesSpec(m.Name, m.Unit, kind, m.Role, m.Min ?? double.NegativeInfinity, m.Max ?? double.PositiveInfinity)
            {
                Scale = m.Scale,
                Offset = m.Offset,
            };
            outputs.Add(new SensorOutput(channel, spec, m.Rate));
        }

        if (outputs.Count == 0)
        {
            throw Problem(device, $"profile '{profile.Id}' has no metrics");
        }

        return outputs;
    }

    private static DeviceAddress Require(DeviceConfig device, DeviceProfile profile, AddressScheme scheme, string example) =>
        device.Address.Scheme == scheme
            ? device.Address
            : throw Problem(device, $"profile '{profile.Id}' (driver {DriverName(profile.Sensor!.Driver)}) needs an address like {example}, not '{device.Address}'");

    private static PinMode InputMode(PullMode pull) => pull switch
    {
        PullMode.Up => PinMode.InputPullUp,
        PullMode.Down => PinMode.InputPullDown,
        _ => PinMode.Input,
    };

    /// <summary>Explicit <c>parameters: { kind: leak }</c>, else guessed from the roles and profile id.</summary>
    private static DigitalInputKind InputKind(DeviceProfile profile, SensorSettings sensor)
    {
        if (sensor.Parameters.TryGetValue("kind", out var k))
        {
            // The profile loader admits exactly these (check names the key otherwise); no guessing from a substring.
            return k.ToLowerInvariant() switch
            {
                "leak" => DigitalInputKind.Leak,
                "smoke" => DigitalInputKind.Smoke,
                "door" => DigitalInputKind.Door,
                "lamp" => DigitalInputKind.Lamp,
                _ => DigitalInputKind.Generic,
            };
        }

        var text = profile.Id + " " + string.Join(' ', profile.Metrics.Select(m => m.Role));
        return text.Contains("leak", StringComparison.OrdinalIgnoreCase) ? DigitalInputKind.Leak
            : text.Contains("smoke", StringComparison.OrdinalIgnoreCase) ? DigitalInputKind.Smoke
            : text.Contains("door", StringComparison.OrdinalIgnoreCase) ? DigitalInputKind.Door
            : text.Contains("lamp", StringComparison.OrdinalIgnoreCase) || text.Contains("stack_light", StringComparison.OrdinalIgnoreCase) || text.Contains("stack-light", StringComparison.OrdinalIgnoreCase) ? DigitalInputKind.Lamp
            : DigitalInputKind.Generic;
    }

    private static int ChatterChanges(DeviceConfig device, DeviceProfile profile, SensorSettings sensor)
    {
        if (!sensor.Parameters.TryGetValue("chatter_changes", out var text))
        {
            return 6;
        }

        return SensorParameters.TryChatterChanges(text, out var n)
            ? n
            : throw Problem(device, $"profile '{profile.Id}': {SensorParameters.ChatterChangesProblem(text)}");
    }

    private string? StatePath(SourceContext context, SensorSettings sensor)
    {
        if (sensor.Parameters.TryGetValue("state_file", out var file))
        {
            return file;
        }

        var dir = StateDirectory(context);
        return dir is null ? null : Path.Combine(dir, $"pulse-{context.Device.Id}.json");
    }

    /// <summary>
    /// The agent's state directory: the environment's, else the agent's (the outbox in use, which the demo and tests
    /// move), else the site config's outbox directory (<c>edgetwin poll</c>); null without a site.
    /// </summary>
    private string? StateDirectory(SourceContext context) =>
        _environment.StateDirectory
        ?? context.StateDirectory
        ?? (context.Site?.Outbox.Path is { } outbox ? Path.GetDirectoryName(Path.GetFullPath(outbox)) : null);

    private static TimeSpan? Duration(DeviceConfig device, SensorSettings sensor, string key)
    {
        if (!sensor.Parameters.TryGetValue(key, out var text))
        {
            return null;
        }

        return Durations.TryParse(text, out var value) && value > TimeSpan.Zero
            ? value
            : throw Problem(device, $"{key} '{text}' is not a duration (500ms, 10s, 5m)");
    }

    private static string DriverName(SensorDriver driver) => driver switch
    {
        SensorDriver.CpuTemp => "cpu_temp",
        _ => driver.ToString().ToLowerInvariant(),
    };

    private static SourceCreationException Problem(DeviceConfig device, string message, Exception? inner = null) =>
        new(device.Id, message, inner);
}
