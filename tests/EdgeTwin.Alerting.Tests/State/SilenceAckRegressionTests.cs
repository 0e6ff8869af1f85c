using System.Device.Gpio;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// Silences and acknowledges against the real GPIO panel (<see cref="GpioSink"/> on the simulated chip) and the
/// message sinks' groups (on-call audit, findings 1 and 4).
/// </summary>
public sealed class SilenceAckRegressionTests
{
    private const int Relay = 24;
    private const int Buzzer = 25;

    private const string Rules = """
        alerts:
          group_by: [room]
          group_interval: 10s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    [Fact]
    public async Task Regression_a_silenced_rule_left_the_relay_on_after_its_alerts_resolved()
    {
        await using var p = await Panel.StartAsync();
        var s = p.Series("rack-r01");
        p.Feed(s, 35);
        await Wait.UntilAsync(() => p.Chip.Output(Relay) == PinValue.High, "relay on");
        await Wait.UntilAsync(() => p.Messages.All.Any(a => a.Status == AlertStatus.Firing), "firing message");

        Assert.Equal(ControlResult.Done, p.Manager.Silence("inlet-hot", p.Time.GetUtcNow().AddHours(1)));
        p.Time.Advance(TimeSpan.FromSeconds(30));
        p.Feed(s, 20);
        await Wait.UntilAsync(() => p.Chip.Output(Relay) == PinValue.Low && p.Chip.Output(Buzzer) == PinValue.Low, "relay and buzzer off once the alert resolved");
        Assert.Equal([OutputPattern.Off, OutputPattern.Off], p.Gpio.Patterns);
        Assert.DoesNotContain(p.Messages.All, a => a.Status == AlertStatus.Resolved); // messages stay muted

        // The silence ends: the outputs stay off, and the NOC, which had the firing, now hears the clear.
        Assert.Equal(ControlResult.Done, p.Manager.Silence("inlet-hot", p.Time.GetUtcNow()));
        await Wait.UntilAsync(() => p.Messages.All.Any(a => a.Status == AlertStatus.Resolved), "resolved message after the silence");
        Assert.Equal(PinValue.Low, p.Chip.Output(Relay));
    }

    [Fact]
    public async Task Regression_a_new_alert_of_a_silenced_rule_never_drove_the_relay()
    {
        var p = await Panel.StartAsync();
        p.Manager.Silence("inlet-hot", p.Time.GetUtcNow().AddHours(1));
        p.Feed(p.Series("rack-r01"), 35);
        await Wait.UntilAsync(() => p.Chip.Output(Relay) == PinValue.High && p.Chip.Output(Buzzer) == PinValue.High, "relay and buzzer on for the silenced rule's alert");

        // Acknowledged while silenced: the buzzer (silence_on_ack) stops, the relay stays.
        Assert.Equal(ControlResult.Done, p.Manager.Acknowledge(p.Manager.Active()[0].Id, "ops"));
        await Wait.UntilAsync(() => p.Chip.Output(Buzzer) == PinValue.Low, "buzzer off after the ack");
        Assert.Equal(PinValue.High, p.Chip.Output(Relay));

        // A restart during the silence sets the relay again from the restored state.
        var p2 = await p.RestartAsync();
        await using (p2)
        {
            await Wait.UntilAsync(() => p2.Chip.Output(Relay) == PinValue.High, "relay on after the restart");
            Assert.Equal(PinValue.Low, p2.Chip.Output(Buzzer));
            await Task.Delay(200, TestContext.Current.CancellationToken);
            Assert.Empty(p2.Messages.All);
        }

        Assert.Empty(p.Messages.All);
    }

    [Fact]
    public async Task Regression_a_rule_silenced_while_its_firing_waited_in_the_group_still_reached_the_NOC_as_FIRING()
    {
        await using var p = await Panel.StartAsync();
        p.Feed(p.Series("rack-r01"), 35); // the quiet group's first alert goes at once
        await Wait.UntilAsync(() => p.Messages.Got.Count == 1, "first message");
        p.Feed(p.Series("rack-r02"), 35); // this one waits for the group interval
        var waiting = p.Manager.Active().Single(a => a.Key == "rack-r02/inlet").Id;

        p.Manager.Silence("inlet-hot", p.Time.GetUtcNow().AddMinutes(5));
        Advance(p.Time, TimeSpan.FromSeconds(15));
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.Single(p.Messages.Got);

        // Still firing when the silence ends: the NOC hears of it then, once.
        Advance(p.Time, TimeSpan.FromMinutes(5));
        await Wait.UntilAsync(() => p.Messages.All.Any(a => a.Id == waiting), "firing after the silence");
        Assert.Single(p.Messages.All, a => a.Id == waiting && a.Status == AlertStatus.Firing);
    }

    [Fact]
    public async Task Regression_an_alert_acknowledged_while_its_firing_waited_in_the_group_reached_the_NOC_as_FIRING()
    {
        await using var p = await Panel.StartAsync();
        p.Feed(p.Series("rack-r01"), 35);
        await Wait.UntilAsync(() => p.Messages.Got.Count == 1, "first message");
        p.Feed(p.Series("rack-r02"), 35);
        var waiting = p.Manager.Active().Single(a => a.Key == "rack-r02/inlet").Id;

        Assert.Equal(ControlResult.Done, p.Manager.Acknowledge(waiting, "ops"));
        Advance(p.Time, TimeSpan.FromSeconds(11));
        await Wait.UntilAsync(() => p.Messages.All.Any(a => a.Id == waiting), "the group's message");
        await Task.Delay(200, TestContext.Current.CancellationToken);

        var sent = Assert.Single(p.Messages.All, a => a.Id == waiting);
        Assert.Equal(AlertStatus.Acknowledged, sent.Status);
        Assert.NotNull(sent.AckedAt);
        Assert.NotNull(sent.FiredAt);
    }

    private static void Advance(FakeTimeProvider time, TimeSpan by)
    {
        for (var left = by; left > TimeSpan.Zero; left -= TimeSpan.FromMilliseconds(250))
        {
            time.Advance(left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
        }
    }

    /// <summary>The service with a relay/buzzer panel on the simulated chip and a recording message sink.</summary>
    private sealed class Panel : IAsyncDisposable
    {
        private static readonly GpioSinkConfig PanelConfig = new()
        {
            Name = "panel",
            Chip = "simulated",
            Outputs =
            [
                new("relay", Relay, ActiveHigh: true, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On }, FailsafeActive: true, SilenceOnAck: false),
                new("buzzer", Buzzer, ActiveHigh: true, new Dictionary<EventSeverity, OutputPattern> { [EventSeverity.Critical] = OutputPattern.On }, FailsafeActive: false, SilenceOnAck: true),
            ],
        };

        private readonly string _dir;
        private readonly GpioController _controller;
        private AlertingService _service = null!;

        private Panel(string dir, FakeTimeProvider time)
        {
            _dir = dir;
            Time = time;
            _controller = new GpioController(Chip);
            Gpio = new GpioSink(PanelConfig, () => _controller, time);
        }

        public FakeTimeProvider Time { get; }

        public SimulatedGpioDriver Chip { get; } = new();

        public GpioSink Gpio { get; }

        public RecordingSink Messages { get; } = new("noc");

        public SeriesRegistry Registry { get; } = new();

        public AlertManager Manager => _service.Manager;

        public static async Task<Panel> StartAsync(string? dir = null, FakeTimeProvider? time = null)
        {
            var p = new Panel(dir ?? Directory.CreateTempSubdirectory("edgetwin-silence-").FullName, time ?? new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero)));
            p._service = new AlertingService(Yaml.Valid(Rules), Harness.Site, p.Registry, new CollectingEvents(), new AlertingOptions
            {
                StorePath = Path.Combine(p._dir, "alerts.db"),
                TimeProvider = p.Time,
                RunConnectivityProbe = false,
                ExtraSinks = [(p.Gpio, PanelConfig), (p.Messages, new WebhookSinkConfig { Name = "noc", Url = new Uri("http://unused/"), Retries = 0 })],
            });
            await p._service.StartAsync(CancellationToken.None);
            return p;
        }

        public SeriesId Series(string device) => Registry.GetOrAdd(new SeriesDescriptor(device, "inlet", "Cel", MetricKind.Gauge, null));

        public void Feed(SeriesId id, double value) =>
            _service.Process([new Sample(id, Time.GetUtcNow().ToUnixTimeMilliseconds(), value, SampleQuality.Good)]);

        /// <summary>Stops this one (outputs to failsafe) and starts a new service, panel and chip on the same state and clock.</summary>
        public async Task<Panel> RestartAsync()
        {
            await _service.DisposeAsync();
            _controller.Dispose();
            return await StartAsync(_dir, Time);
        }

        public async ValueTask DisposeAsync()
        {
            await _service.DisposeAsync();
            _controller.Dispose();
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
