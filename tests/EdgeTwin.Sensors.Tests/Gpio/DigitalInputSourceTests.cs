using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Sensors.Gpio;
using EdgeTwin.Sensors.Tests.Fakes;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Sensors.Tests.Gpio;

public sealed class DigitalInputSourceTests : IAsyncDisposable
{
    private const int Pin = 17;
    private readonly SimulatedGpioDriver _driver = new();
    private readonly GpioController _controller;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private readonly SeriesRegistry _registry = new();
    private readonly CollectingSampleSink _samples = new();
    private readonly CollectingEventSink _events = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _run;

    public DigitalInputSourceTests()
    {
        _controller = new GpioController(_driver);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(20));
        }

        _stop.Dispose();
        _controller.Dispose();
    }

    private async Task<DigitalInputSource> StartAsync(DigitalInputKind kind = DigitalInputKind.Leak, bool activeLow = true, int chatterChanges = 6, TimeSpan? chatterWindow = null)
    {
        var source = new DigitalInputSource(new DigitalInputOptions
        {
            DeviceId = "leak-under-crac1",
            Controller = () => _controller,
            Pin = Pin,
            Kind = kind,
            ActiveLow = activeLow,
            Debounce = TimeSpan.FromMilliseconds(50),
            StateInterval = TimeSpan.FromSeconds(60),
            ChatterChanges = chatterChanges,
            ChatterWindow = chatterWindow ?? TimeSpan.FromSeconds(60),
            Time = _time,
        });
        source.RegisterSeries(_registry);
        _run = source.RunAsync(_samples, _events, _stop.Token);
        await _samples.NextAsync(); // initial state published once the line is open and armed
        return source;
    }

    [Fact]
    public async Task Publishes_the_initial_state_without_an_event_when_inactive()
    {
        var source = await StartAsync();

        var s = Assert.Single(_samples.All);
        Assert.Equal(0, s.Value);
        Assert.Equal("leak-under-crac1/state", _registry[s.Series].Key);
        Assert.Equal(MetricKind.State, _registry[s.Series].Kind);
        Assert.Empty(_events.All);
        Assert.False(source.CurrentState);
        Assert.Equal(1, _driver.CallbackCount(Pin));
    }

    [Fact]
    public async Task Bouncing_contact_gives_exactly_one_event_stamped_at_the_first_edge()
    {
        await StartAsync();
        var firstEdge = _time.GetUtcNow();

        _driver.Bounce(Pin, PinValue.Low, transitions: 7); // leak rope gets wet, contact chatters
        await _time.AdvanceUntilAsync(() => _events.All.Count > 0, TimeSpan.FromMilliseconds(10));
        await _time.AdvanceSlowlyAsync(TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(50));

        var e = Assert.Single(_events.All);
        Assert.Equal(EdgeEventKind.InputChanged, e.Kind);
        Assert.Equal("leak-under-crac1", e.Source);
        Assert.Equal(EventSeverity.Critical, e.Severity);
        Assert.Equal(firstEdge, e.Time);
        Assert.Equal("1", e.Attributes!["state"]);
        Assert.Equal("leak detected", e.Attributes["label"]);
        Assert.Equal("7", e.Attributes["edges"]);
        Assert.Equal("17", e.Attributes["pin"]);
        Assert.Equal([0.0, 1.0], _samples.All.Select(s => s.Value));
    }

    [Fact]
    public async Task A_glitch_shorter_than_the_debounce_time_is_ignored()
    {
        await StartAsync();

        _driver.Drive(Pin, PinValue.Low);
        _driver.Drive(Pin, PinValue.High);
        await _time.AdvanceSlowlyAsync(TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(10));

        Assert.Empty(_events.All);
        Assert.Single(_samples.All);
    }

    [Fact]
    public async Task Change_and_return_give_two_events_with_labels_and_severities()
    {
        await StartAsync(DigitalInputKind.Door);

        _driver.Drive(Pin, PinValue.Low);
        await _time.AdvanceUntilAsync(() => _events.All.Count == 1, TimeSpan.FromMilliseconds(10));
        _driver.Bounce(Pin, PinValue.High, 3);
        await _time.AdvanceUntilAsync(() => _events.All.Count == 2, TimeSpan.FromMilliseconds(10));

        Assert.Equal(["open", "closed"], _events.All.Select(e => e.Attributes!["label"]));
        Assert.Equal([EventSeverity.Warning, EventSeverity.Info], _events.All.Select(e => e.Severity));
    }

    [Fact]
    public async Task Active_high_wiring_inverts_the_level()
    {
        _driver.Drive(Pin, PinValue.Low);
        await StartAsync(DigitalInputKind.Smoke, activeLow: false);
        Assert.Empty(_events.All);

        _driver.Drive(Pin, PinValue.High);
        await _time.AdvanceUntilAsync(() => _events.All.Count == 1, TimeSpan.FromMilliseconds(10));

        Assert.Equal("smoke detected", _events.All[0].Attributes!["label"]);
    }

    [Fact]
    public async Task An_alarm_present_at_start_raises_an_initial_event()
    {
        _driver.Drive(Pin, PinValue.Low);
        await StartAsync();

        var e = await _events.NextAsync();
        Assert.Equal("true", e.Attributes!["initial"]);
        Assert.Equal(1, _samples.All[0].Value);
    }

    [Fact]
    public async Task The_state_is_republished_every_state_interval()
    {
        await StartAsync();
        var start = _time.GetUtcNow();

        await _time.AdvanceUntilAsync(() => _samples.All.Count >= 3, TimeSpan.FromSeconds(1), limit: TimeSpan.FromMinutes(5));

        var stamps = _samples.All.Select(s => s.Timestamp - start).ToArray();
        Assert.True(stamps[1] >= TimeSpan.FromSeconds(60), $"second sample at {stamps[1]}");
        Assert.True(stamps[2] - stamps[1] >= TimeSpan.FromSeconds(60), $"third sample at {stamps[2]}");
        Assert.All(_samples.All, s => Assert.Equal(0, s.Value));
    }

    /// <summary>Drives the line to <paramref name="level"/>, lets the change be accepted, then holds it for <paramref name="hold"/>.</summary>
    private async Task ToggleAsync(PinValue level, TimeSpan hold)
    {
        var before = _samples.All.Count;
        _driver.Drive(Pin, level);
        await _time.AdvanceUntilAsync(() => _samples.All.Count > before, TimeSpan.FromMilliseconds(10));
        await _time.AdvanceSlowlyAsync(hold, hold >= TimeSpan.FromSeconds(5) ? TimeSpan.FromSeconds(1) : TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public async Task Regression_a_flashing_stack_light_lamp_raised_an_event_for_every_blink()
    {
        // The demo's faulted station blinks its red lamp at 1 Hz: two input_changed events a second went to the events,
        // the outbox and the journal for as long as the fault lasted.
        var source = await StartAsync(DigitalInputKind.Lamp, chatterChanges: 4, chatterWindow: TimeSpan.FromSeconds(10));

        for (var blink = 0; blink < 10; blink++)
        {
            await ToggleAsync(PinValue.Low, TimeSpan.FromMilliseconds(450));
            await ToggleAsync(PinValue.High, TimeSpan.FromMilliseconds(450));
        }

        Assert.Equal(["lit", "dark", "lit", "flashing"], _events.All.Select(e => e.Attributes!["label"]));
        var flashing = _events.All[3];
        Assert.Equal("true", flashing.Attributes!["chattering"]);
        Assert.Equal("0", flashing.Attributes["state"]);
        Assert.Equal(EventSeverity.Info, flashing.Severity);
        Assert.StartsWith("leak-under-crac1: flashing (4 changes within 10 s", flashing.Message, StringComparison.Ordinal);
        Assert.True(source.Chattering);
        Assert.Equal(21, _samples.All.Count); // every blink still reaches the line twin as a state sample
        Assert.Equal(20, source.Changes);

        await _time.AdvanceUntilAsync(() => _events.All.Count == 5, TimeSpan.FromMilliseconds(100), limit: TimeSpan.FromSeconds(11));

        var steady = _events.All[4];
        Assert.Equal("dark", steady.Attributes!["label"]);
        Assert.Equal("false", steady.Attributes["chattering"]);
        Assert.Equal("20", steady.Attributes["changes"]);
        Assert.True((steady.Time - _samples.All[^1].Timestamp).Duration() <= TimeSpan.FromMilliseconds(60), $"steady event at {steady.Time:O}, last change sampled at {_samples.All[^1].Timestamp:O}"); // stamped at its last change
        Assert.Contains("dark, steady again after flashing for", steady.Message, StringComparison.Ordinal);
        Assert.False(source.Chattering);

        await ToggleAsync(PinValue.Low, TimeSpan.FromMilliseconds(100)); // after the episode, changes are events again
        Assert.Equal("lit", _events.All[^1].Attributes!["label"]);
        Assert.Equal(6, _events.All.Count);
    }

    [Fact]
    public async Task A_door_used_normally_never_chatters()
    {
        await StartAsync(DigitalInputKind.Door);

        for (var i = 0; i < 4; i++) // a change every 15 s: any 6 changes span 75 s, more than the 60 s window
        {
            await ToggleAsync(PinValue.Low, TimeSpan.FromSeconds(15));
            await ToggleAsync(PinValue.High, TimeSpan.FromSeconds(15));
        }

        Assert.Equal(8, _events.All.Count);
        Assert.All(_events.All, e => Assert.True(e.Attributes!["label"] is "open" or "closed", e.Message));
    }

    [Fact]
    public async Task A_chattering_leak_contact_keeps_its_critical_first_event_and_says_it_is_chattering()
    {
        await StartAsync(DigitalInputKind.Leak);

        for (var i = 0; i < 3; i++)
        {
            await ToggleAsync(PinValue.Low, TimeSpan.FromMilliseconds(300));
            await ToggleAsync(PinValue.High, TimeSpan.FromMilliseconds(300));
        }

        Assert.Equal(["leak detected", "dry", "leak detected", "dry", "leak detected", "chattering"], _events.All.Select(e => e.Attributes!["label"]));
        Assert.Equal(EventSeverity.Critical, _events.All[0].Severity);
        Assert.Equal(EventSeverity.Critical, _events.All[5].Severity);
    }

    [Fact]
    public async Task Chatter_detection_off_publishes_every_change()
    {
        await StartAsync(DigitalInputKind.Lamp, chatterChanges: 0);

        for (var i = 0; i < 5; i++)
        {
            await ToggleAsync(PinValue.Low, TimeSpan.FromMilliseconds(200));
            await ToggleAsync(PinValue.High, TimeSpan.FromMilliseconds(200));
        }

        Assert.Equal(10, _events.All.Count);
        Assert.All(_events.All, e => Assert.False(e.Attributes!.ContainsKey("chattering")));
    }

    [Fact]
    public async Task Stopping_releases_the_line_and_the_callback()
    {
        await StartAsync();

        await _stop.CancelAsync();
        await _run!.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.False(_driver.IsOpen(Pin));
        Assert.Equal(0, _driver.CallbackCount(Pin));
    }

    [Fact]
    public async Task Regression_an_input_faster_than_its_debounce_published_nothing_and_said_nothing()
    {
        // A stack-light lamp on 24 V AC through an opto-coupler: a 50 Hz square wave, an edge every 10 ms, never quiet
        // for the 50 ms debounce. The settle wait never ended: not one sample more, not even the periodic state.
        var logger = new ListLogger<DigitalInputSource>();
        var source = new DigitalInputSource(
            new DigitalInputOptions
            {
                DeviceId = "press1-red",
                Controller = () => _controller,
                Pin = Pin,
                Kind = DigitalInputKind.Lamp,
                Debounce = TimeSpan.FromMilliseconds(50),
                StateInterval = TimeSpan.FromSeconds(2),
                Time = _time,
            },
            logger);
        source.RegisterSeries(_registry);
        _run = source.RunAsync(_samples, _events, _stop.Token);
        await _samples.NextAsync();

        var level = PinValue.High;
        for (var i = 0; i < 500; i++) // 5 s of 50 Hz
        {
            _time.Advance(TimeSpan.FromMilliseconds(10));
            level = level == PinValue.High ? PinValue.Low : PinValue.High;
            _driver.Drive(Pin, level);
            await Task.Delay(1, TestContext.Current.CancellationToken);
        }

        var warning = Assert.Single(logger.At(Microsoft.Extensions.Logging.LogLevel.Warning));
        Assert.Contains("gpio 17 is never quiet for the debounce of 50 ms", warning, StringComparison.Ordinal);
        Assert.True(_samples.All.Count >= 3, $"the state went on being published while the line was noisy ({_samples.All.Count} samples in 5 s)");
    }
}
