using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Factory;
using EdgeTwin.Simulator.Line;
using EdgeTwin.Simulator.Physics;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.Agent.Line;

/// <summary>
/// Stack lights on stations of a simulated line, wired to the agent's GPIO inputs through an in-memory GPIO chip: the
/// simulator drives each lamp's input (active low, as the 24 V opto-coupler of <c>generic-stack-light</c> wires it,
/// with blinking, lamp-change gaps and contact bounce), the agent reads the lamps with its real GPIO source
/// (<c>DigitalInputSource</c>: edge events, debounce, keep-alives) and its line twin decodes the machine state from them.
/// Works in one process only (the demo, tests): a GPIO chip cannot be shared with another process, so
/// <c>edgetwin sim</c> serves the line's state words over Modbus instead.
/// </summary>
public sealed class SimulatedStackLights
{
    /// <summary>The lamp profile (one GPIO input per lamp).</summary>
    public const string Profile = "generic-stack-light";

    /// <summary>First GPIO line used (lines FirstPin.. in station order, red, amber, green).</summary>
    public const int FirstPin = 20;

    private readonly Dictionary<(string Station, SimLamp Lamp), int> _pins = [];

    private SimulatedStackLights(SimulatedSite site, IReadOnlyList<string> stations, SiteConfig config)
    {
        Chip = new SimulatedGpioDriver();
        var pin = FirstPin;
        foreach (var station in stations)
        {
            foreach (var lamp in new[] { SimLamp.Red, SimLamp.Amber, SimLamp.Green })
            {
                _pins[(station, lamp)] = pin++;
            }
        }

        Lights = new SimStackLights(site, stations, (station, lamp, lit) => Chip.Drive(_pins[(station, lamp)], lit ? PinValue.Low : PinValue.High), site.Spec.Seed);
        Config = config;
        // The towers show the line's state before the agent opens its inputs (else it would first read them all dark).
        Lights.Update();
    }

    /// <summary>The in-memory chip the lamps are wired to.</summary>
    public SimulatedGpioDriver Chip { get; }

    /// <summary>The towers (stepped by <see cref="RunAsync"/>).</summary>
    public SimStackLights Lights { get; }

    /// <summary>The site config with the lamp devices added and the line section reading those stations' state from their lamps.</summary>
    public SiteConfig Config { get; }

    /// <summary>The GPIO line of a lamp.</summary>
    public int Pin(string station, SimLamp lamp) => _pins[(station, lamp)];

    /// <summary>
    /// Puts stack lights on <paramref name="stations"/> of the site's line: adds one <c>generic-stack-light</c> device per
    /// lamp (address <c>gpio:N</c>, keep-alive every <paramref name="interval"/>) to <paramref name="config"/>, loads the
    /// profile from <paramref name="profilesDir"/>, and rewrites the <c>line:</c> section so those stations' state comes
    /// from their lamps (counters still from their PLCs). Null when <paramref name="stations"/> is empty.
    /// </summary>
    public static SimulatedStackLights? Attach(SimulatedSite site, SiteConfig config, IReadOnlyList<string> stations, string profilesDir, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stations);
        if (stations.Count == 0)
        {
            return null;
        }

        var line = site.Spec.Line ?? throw new ArgumentException("stack lights need a simulated line (--line-stations N)");
        foreach (var s in stations)
        {
            if (!line.Stations.Any(x => x.Id == s))
            {
                throw new ArgumentException($"stack light on station '{s}': the line has {string.Join(", ", line.Stations.Select(x => x.Id))}");
            }
        }

        var path = Path.Combine(profilesDir, Profile + ".yaml");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"device profile '{Profile}' not found in {profilesDir}", path);
        }

        var profiles = new Dictionary<string, DeviceProfile>(config.Profiles, StringComparer.Ordinal) { [Profile] = DeviceProfileLoader.LoadFileOrThrow(path) };
        var sections = new Dictionary<string, ConfigMapping>(config.Sections, StringComparer.Ordinal) { ["line"] = SimLineConfig.Section(line, stations) };
        var pin = FirstPin;
        var devices = config.Devices.ToList();
        foreach (var station in stations)
        {
            foreach (var lamp in new[] { SimLamp.Red, SimLamp.Amber, SimLamp.Green })
            {
                devices.Add(new DeviceConfig(SimLineConfig.LampDevice(station, lamp), Profile, DeviceAddress.Gpio(pin++)) { Interval = interval });
            }
        }

        return new SimulatedStackLights(site, stations, config with { Devices = devices, Profiles = profiles, Sections = sections });
    }

    /// <summary>
    /// Makes the agent's GPIO sources use <see cref="Chip"/>: replaces the discovered sensor source factory (one that
    /// would open the board's GPIO controller) by one on the in-memory chip. Call from <c>ConfigureServices</c>.
    /// </summary>
    public IServiceCollection AddTo(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var environment = new SensorEnvironment { OpenGpio = () => new GpioController(Chip) };
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i].ServiceType == typeof(ISourceFactory) && services[i].ImplementationType == typeof(SensorSourceFactory))
            {
                services.RemoveAt(i);
            }
        }

        return services.AddSourceFactory(new SensorSourceFactory(environment));
    }

    /// <summary>Steps the lamps every 20 ms (a PLC scan) until cancelled.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => Lights.RunAsync(TimeSpan.FromMilliseconds(20), TimeProvider.System, cancellationToken);
}
