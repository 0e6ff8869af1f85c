using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Factory;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.I2c;
using EdgeTwin.Sensors.Tests.Fakes;
using EdgeTwin.Sensors.Thermal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Sensors.Tests.Factory;

/// <summary>From a site config file, through Core's <see cref="SourceFactories"/>, to running sensor sources.</summary>
public sealed class SiteConfigToSourcesTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string RepoFile(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return Path.Combine([dir.FullName, .. parts]);
            }
        }

        throw new DirectoryNotFoundException("repository root not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void The_example_sites_local_sensors_all_get_sources()
    {
        var site = SiteConfigLoader.LoadOrThrow(
            RepoFile("device-profiles", "examples", "small-dc-room.yaml"),
            new SiteConfigLoadOptions { ProfilesDir = RepoFile("device-profiles") });
        using var factory = new SensorSourceFactory();
        var factories = new SourceFactories([factory]);

        var local = site.Devices.Where(d => factory.Protocols.Contains(site.ProfileOf(d).Protocol)).ToList();
        var built = local.ToDictionary(d => d.Id, d => factories.Create(site, d, NullLoggerFactory.Instance, TimeProvider.System));

        Assert.Equal(["room1-env", "room1-leak", "a01-door", "gw-cpu"], local.Select(d => d.Id));
        Assert.IsType<Bme280Source>(built["room1-env"].Polled);
        Assert.IsType<DigitalInputSource>(built["room1-leak"].Push);
        Assert.IsType<DigitalInputSource>(built["a01-door"].Push);
        Assert.IsType<CpuTemperatureSource>(built["gw-cpu"].Polled);
    }

    [Fact]
    public async Task Pulse_counter_state_lives_beside_the_outbox_file()
    {
        await CountThreePulsesAsync(agentStateDirectory: null);

        Assert.Contains("\"pulses\":3", await File.ReadAllTextAsync(_dir.Combine("data", "pulse-it-meter.json"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pulse_counter_state_follows_the_agents_state_directory_when_the_outbox_is_moved()
    {
        // The demo and test hosts keep their outbox elsewhere than outbox.path; the counts went beside outbox.path, apart
        // from the alert store, the twin state and the SNMP rows of that run.
        var moved = _dir.Combine("moved");
        Directory.CreateDirectory(moved);

        await CountThreePulsesAsync(agentStateDirectory: moved);

        Assert.Contains("\"pulses\":3", await File.ReadAllTextAsync(Path.Combine(moved, "pulse-it-meter.json"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.Combine("data", "pulse-it-meter.json")));
    }

    private async Task CountThreePulsesAsync(string? agentStateDirectory)
    {
        var yaml = $$"""
            site:
              id: s1
              gateway_id: gw1
            devices:
              - { id: it-meter, profile: generic-s0-energy-meter, address: "gpio:22", interval: 10s }
            outbox: { path: "{{_dir.Combine("data", "outbox.db")}}", disk_budget_mb: 64, max_age: 1d }
            """;
        var file = _dir.Combine("edgetwin.yaml");
        await File.WriteAllTextAsync(file, yaml, TestContext.Current.CancellationToken);
        Directory.CreateDirectory(_dir.Combine("data"));
        var site = SiteConfigLoader.LoadOrThrow(file, new SiteConfigLoadOptions { ProfilesDir = RepoFile("device-profiles") });
        var driver = new SimulatedGpioDriver();
        using var factory = new SensorSourceFactory(new SensorEnvironment { OpenGpio = () => new GpioController(driver) });
        var time = new FakeTimeProvider();

        var context = SourceContext.For(site, site.Devices[0], NullLoggerFactory.Instance, time) with { StateDirectory = agentStateDirectory };
        await using var source = new SourceFactories([factory]).Create(context).Push!;
        source.RegisterSeries(new SeriesRegistry());
        using var stop = new CancellationTokenSource();
        var run = source.RunAsync(new CollectingSampleSink(), new CollectingEventSink(), stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (driver.CallbackCount(22) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        for (var i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            driver.Drive(22, PinValue.Low);
            time.Advance(TimeSpan.FromMilliseconds(50));
            driver.Drive(22, PinValue.High);
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(DeviceProtocol.Gpio, site.ProfileOf(site.Devices[0]).Protocol);
    }
}
