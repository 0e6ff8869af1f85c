using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.Tests.Fakes;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Sensors.Tests.Gpio;

public sealed class PulseCounterSourceTests : IDisposable
{
    private const int Pin = 22;
    private readonly SimulatedGpioDriver _driver = new();
    private readonly GpioController _controller;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _samples = new();
    private readonly CollectingEventSink _events = new();
    private readonly TempDir _dir = new();

    public PulseCounterSourceTests()
    {
        _controller = new GpioController(_driver);
    }

    public void Dispose()
    {
        _controller.Dispose();
        _dir.Dispose();
    }

    private PulseCounterSource Create(PulseMeterKind kind = PulseMeterKind.Energy, double ppu = 1000, string? statePath = null) =>
        new(new PulseCounterOptions
        {
            DeviceId = "meter-it-load",
            Controller = () => _controller,
            Pin = Pin,
            Kind = kind,
            PulsesPerUnit = ppu,
            ReportInterval = TimeSpan.FromSeconds(10),
            PersistInterval = TimeSpan.FromSeconds(30),
            StatePath = statePath,
            Time = _time,
        });

    private async Task<(Task Run, CancellationTokenSource Stop)> StartAsync(PulseCounterSource source)
    {
        source.RegisterSeries(_registry);
        var stop = new CancellationTokenSource();
        var run = source.RunAsync(_samples, _events, stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (_driver.CallbackCount(Pin) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "pulse counter never armed its edge callback");
            await Task.Delay(5);
        }

        return (run, stop);
    }

    private void Pulse(TimeSpan after)
    {
        _time.Advance(after);
        _driver.Drive(Pin, PinValue.Low); // S0 opto closes: falling edge counts
        _time.Advance(TimeSpan.FromMilliseconds(40));
        _driver.Drive(Pin, PinValue.High);
    }

    private double Last(string metric) => _samples.All.Last(s => _registry[s.Series].Metric == metric).Value;

    [Fact]
    public async Task Reports_energy_total_and_mean_power_over_the_interval()
    {
        var source = Create();
        var (run, stop) = await StartAsync(source);

        for (var i = 0; i < 50; i++)
        {
            Pulse(TimeSpan.FromMilliseconds(60)); // 50 pulses × 100 ms = 5 s
        }

        await _time.AdvanceUntilAsync(() => _samples.All.Count >= 2, TimeSpan.FromMilliseconds(500));
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(50, source.Pulses);
        Assert.Equal(0.05, Last("energy"), 1e-12);              // 50 pulses / 1000 imp/kWh
        Assert.Equal(18.0, Last("power"), 1e-9);                 // 0.05 kWh in 10 s = 18 kW
        var energy = _registry.Snapshot().Single(x => x.Descriptor.Metric == "energy").Descriptor;
        Assert.Equal("kW.h", energy.Unit);
        Assert.Equal(MetricKind.Counter, energy.Kind);
        Assert.False(_driver.IsOpen(Pin));
    }

    [Fact]
    public async Task Edges_closer_than_the_minimum_gap_are_rejected_as_bounce()
    {
        var source = Create();
        var (run, stop) = await StartAsync(source);

        _driver.Drive(Pin, PinValue.Low);
        for (var i = 0; i < 4; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(2));
            _driver.Drive(Pin, PinValue.High);
            _driver.Drive(Pin, PinValue.Low);
        }

        _driver.Drive(Pin, PinValue.High);
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(1, source.Pulses);
        Assert.Equal(4, source.Rejected);
    }

    [Fact]
    public async Task Flow_meter_reports_cubic_metres_and_cubic_metres_per_hour()
    {
        var source = Create(PulseMeterKind.Flow, ppu: 100); // 10 L per pulse
        var (run, stop) = await StartAsync(source);

        for (var i = 0; i < 20; i++)
        {
            Pulse(TimeSpan.FromMilliseconds(210)); // 20 × 250 ms = 5 s, so the 500 ms steps land on the 10 s tick
        }

        await _time.AdvanceUntilAsync(() => _samples.All.Count >= 2, TimeSpan.FromMilliseconds(500));
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(0.2, Last("volume"), 1e-12);
        Assert.Equal(72.0, Last("flow"), 1e-9); // 0.2 m³ in 10 s
        Assert.Equal("m3/h", _registry.Snapshot().Single(x => x.Descriptor.Metric == "flow").Descriptor.Unit);
    }

    [Fact]
    public async Task Count_survives_a_restart_through_the_state_file()
    {
        var path = _dir.Combine("meter-it-load.json");
        var first = Create(statePath: path);
        var (run, stop) = await StartAsync(first);
        for (var i = 0; i < 7; i++)
        {
            Pulse(TimeSpan.FromMilliseconds(100));
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.True(File.Exists(path));
        Assert.False(File.Exists(path + ".tmp"));
        Assert.Contains("\"pulses\":7", File.ReadAllText(path), StringComparison.Ordinal);

        var second = Create(statePath: path);
        (run, stop) = await StartAsync(second);
        Pulse(TimeSpan.FromMilliseconds(100));
        await _time.AdvanceUntilAsync(() => _samples.All.Count >= 2, TimeSpan.FromMilliseconds(500));
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(8, second.Pulses);
        Assert.Equal(0.008, Last("energy"), 1e-12);
    }

    [Fact]
    public async Task State_is_saved_periodically_while_running_not_only_at_shutdown()
    {
        var path = _dir.Combine("periodic.json");
        var source = Create(statePath: path);
        var (run, stop) = await StartAsync(source);
        Pulse(TimeSpan.FromMilliseconds(100));

        await _time.AdvanceUntilAsync(() => File.Exists(path), TimeSpan.FromSeconds(1), limit: TimeSpan.FromMinutes(2));

        Assert.Contains("\"pulses\":1", File.ReadAllText(path), StringComparison.Ordinal);
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Corrupt_state_file_starts_from_zero_instead_of_refusing_to_run()
    {
        var path = _dir.Combine("corrupt.json");
        await File.WriteAllTextAsync(path, "{\"pulses\": 12", TestContext.Current.CancellationToken); // torn write from an old version
        var source = Create(statePath: path);
        var (run, stop) = await StartAsync(source);
        Pulse(TimeSpan.FromMilliseconds(100));

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(1, source.Pulses);
        Assert.Contains("\"pulses\":1", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_reed_contact_bouncing_as_it_opened_counted_every_pulse_twice()
    {
        // A reed-switch water meter (100 imp/m³): the contact bounces when it closes and again when it opens, which is
        // a pulse length later (here 400 ms), far more than the 20 ms gap after the counted edge.
        var source = Create(PulseMeterKind.Flow, ppu: 100);
        var (run, stop) = await StartAsync(source);
        for (var i = 0; i < 10; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(500));
            _driver.Bounce(Pin, PinValue.Low, transitions: 5); // closes: falling, rising, falling, rising, falling
            _time.Advance(TimeSpan.FromMilliseconds(400));
            _driver.Bounce(Pin, PinValue.High, transitions: 5); // opens: rising, falling, rising, falling, rising
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(10, source.Pulses); // was 20: each opening's bounce counted as a pulse
        Assert.Equal(40, source.Rejected); // 2 falling bounce edges as it closes, 2 as it opens
    }
}
