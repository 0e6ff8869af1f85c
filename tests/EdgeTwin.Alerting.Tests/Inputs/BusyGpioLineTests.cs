using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.Inputs;

/// <summary>A relay or contact line another process holds (a test script, gpioset, a kernel overlay) when the agent starts.</summary>
public sealed class BusyGpioLineTests
{
    private const int Relay = 17;
    private const int Leak = 5;

    private const string Config = """
        alerts:
          group_interval: 0s
          sinks:
            - name: panel
              type: gpio
              chip: auto
              outputs:
                - { name: relay, pin: 17, critical: on }
          inputs:
            - { name: leak-room1, pin: 5, active: low, debounce: 20ms, severity: critical, targets: [panel] }
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    [Fact]
    public async Task Regression_a_relay_line_held_by_another_process_kept_the_agent_from_starting()
    {
        var chip = new SimulatedGpioDriver();
        using var controller = new GpioController(chip);
        chip.Hold(Relay);
        chip.Hold(Leak);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 10, 0, 0, TimeSpan.Zero));
        var log = new CapturingLogger();
        using var logs = new OneLoggerFactory(log);
        var dir = Directory.CreateTempSubdirectory("edgetwin-busy-gpio-").FullName;
        var registry = new SeriesRegistry();
        var service = new AlertingService(Yaml.Valid(Config), Harness.Site, registry, new CollectingEvents(), new AlertingOptions
        {
            StorePath = Path.Combine(dir, "alerts.db"),
            TimeProvider = time,
            RunConnectivityProbe = false,
            LoggerFactory = logs,
            OpenGpio = _ => controller,
        });
        try
        {
            // Before: the IOException of the relay's OpenPin left StartAsync, and with it the agent's start.
            await service.StartAsync(CancellationToken.None);
            Assert.Contains(log.Entries, e => e.Text.Contains("cannot open output 'relay' on GPIO 17", StringComparison.Ordinal) && e.Text.Contains("busy", StringComparison.Ordinal));
            Assert.Contains(log.Entries, e => e.Text.Contains("alarm input leak-room1 (pin 5)", StringComparison.Ordinal) && e.Text.Contains("cannot open GPIO 5", StringComparison.Ordinal));

            // The rules on samples work meanwhile.
            var inlet = registry.GetOrAdd(new SeriesDescriptor("rack-r01", "inlet", "Cel", MetricKind.Gauge, null));
            service.Process([new Sample(inlet, time.GetUtcNow().ToUnixTimeMilliseconds(), 35, SampleQuality.Good)]);
            Assert.NotNull(service.Manager.Active().FirstOrDefault(a => a.Rule == "inlet-hot"));
            Assert.False(chip.IsOpen(Relay));

            // The other process lets go: within the retry interval the relay shows the firing alert and the contact works.
            chip.Hold(Relay, false);
            chip.Hold(Leak, false);
            for (var i = 0; i < 60 && !(chip.IsOpen(Relay) && chip.CallbackCount(Leak) > 0); i++)
            {
                time.Advance(TimeSpan.FromMilliseconds(125));
                await Task.Delay(1, TestContext.Current.CancellationToken);
            }

            await Wait.UntilAsync(() => chip.Output(Relay) == PinValue.High, "relay on once its line is free");
            chip.Drive(Leak, PinValue.Low);
            Assert.Equal(AlertState.Firing, service.Manager.Active().Single(a => a.Rule == "leak-room1").State);
        }
        finally
        {
            await service.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }
}

public sealed class NoGpioChipTests
{
    [Fact]
    public async Task A_machine_without_a_gpio_chip_starts_with_the_relay_and_inputs_logged_as_unavailable()
    {
        var log = new CapturingLogger();
        using var logs = new OneLoggerFactory(log);
        var dir = Directory.CreateTempSubdirectory("edgetwin-no-gpio-").FullName;
        var service = new AlertingService(Yaml.Valid("""
            alerts:
              sinks:
                - { name: panel, type: gpio, outputs: [ { name: relay, pin: 17, critical: on } ] }
              inputs:
                - { name: leak, pin: 5, severity: critical }
            """), Harness.Site, new SeriesRegistry(), new CollectingEvents(), new AlertingOptions
        {
            StorePath = Path.Combine(dir, "alerts.db"),
            TimeProvider = new FakeTimeProvider(),
            RunConnectivityProbe = false,
            LoggerFactory = logs,
            OpenGpio = _ => throw new PlatformNotSupportedException("no gpiochip0"),
        });
        try
        {
            await service.StartAsync(CancellationToken.None);
            Assert.Contains(log.Entries, e => e.Text.Contains("alert sink panel: no GPIO controller: no gpiochip0", StringComparison.Ordinal));
            Assert.Contains(log.Entries, e => e.Text.Contains("alarm input leak (pin 5): no GPIO controller: no gpiochip0", StringComparison.Ordinal));
        }
        finally
        {
            await service.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Regression_a_relay_on_a_numbered_chip_was_driven_on_the_default_controller()
    {
        // The agent's own opener (no OpenGpio): before, chip: 97 opened the board's default controller (gpiochip0 under
        // libgpiod), so the relay and the leak contact were lines of another chip and the relay never switched.
        const int Missing = 97;
        Assert.False(File.Exists($"/dev/gpiochip{Missing}"), "the test needs a chip number this machine does not have");
        var log = new CapturingLogger();
        using var logs = new OneLoggerFactory(log);
        var dir = Directory.CreateTempSubdirectory("edgetwin-gpio-chip-").FullName;
        var service = new AlertingService(Yaml.Valid($$"""
            alerts:
              sinks:
                - { name: panel, type: gpio, chip: {{Missing}}, outputs: [ { name: relay, pin: 17, critical: on } ] }
              inputs:
                - { name: leak, pin: 5, severity: critical }
            """), Harness.Site, new SeriesRegistry(), new CollectingEvents(), new AlertingOptions
        {
            StorePath = Path.Combine(dir, "alerts.db"),
            TimeProvider = new FakeTimeProvider(),
            RunConnectivityProbe = false,
            LoggerFactory = logs,
        });
        try
        {
            await service.StartAsync(CancellationToken.None);
            Assert.Contains(log.Entries, e => e.Text.Contains($"alert sink panel: no GPIO controller: chip: {Missing}: there is no /dev/gpiochip{Missing} on this machine", StringComparison.Ordinal));
            Assert.Contains(log.Entries, e => e.Text.Contains($"alarm input leak (pin 5): no GPIO controller: chip: {Missing}: there is no /dev/gpiochip{Missing}", StringComparison.Ordinal));
        }
        finally
        {
            await service.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("auto", true, null)]
    [InlineData("simulated", true, null)]
    [InlineData("4", true, 4)]
    [InlineData("gpiochip4", true, 4)]
    [InlineData("0", true, 0)]
    [InlineData("gpio4", false, null)]
    [InlineData("-1", false, null)]
    [InlineData("/dev/gpiochip4", false, null)]
    public void Gpio_chip_values(string chip, bool valid, int? number)
    {
        Assert.Equal(valid, GpioChips.TryParse(chip, out var n));
        Assert.Equal(number, n);
    }

    [Fact]
    public void Regression_check_accepted_a_gpio_chip_that_names_no_chip()
    {
        var (_, problems) = Yaml.Alerts("""
            alerts:
              sinks:
                - { name: panel, type: gpio, chip: header, outputs: [ { name: relay, pin: 17, critical: on } ] }
            """);
        var problem = Assert.Single(problems);
        Assert.Contains("alerts.sinks[0].chip", problem.ToString(), StringComparison.Ordinal);
        Assert.Contains("'header' is not a GPIO chip", problem.ToString(), StringComparison.Ordinal);
    }
}

/// <summary>Every category logs into one <see cref="CapturingLogger"/>.</summary>
internal sealed class OneLoggerFactory(CapturingLogger logger) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => logger;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }
}
