using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>Records every message it gets; can be made to fail or hang.</summary>
internal sealed class RecordingSink(string name, bool followsState = false) : IAlertSink
{
    private readonly Lock _gate = new();
    private readonly List<(AlertNotification Notification, IReadOnlyList<AlertSnapshot> Alerts)> _got = [];

    public string Name { get; } = name;

    public bool FollowsState { get; } = followsState;

    /// <summary>
    /// Off by default: the manager's tests read every message it sent from here, and a loaded machine could let a burst
    /// queue up and supersede (SinkSupersedeTests cover that with real peers).
    /// </summary>
    public bool LatestStateOnly { get; set; }

    public bool SendsLatestStateOnly => LatestStateOnly;

    /// <summary>As an Alertmanager sink: the runner re-sends the alerts not resolved at this interval (zero: never). Set before the runner is made.</summary>
    public TimeSpan ResendInterval { get; set; }

    public Func<CancellationToken, Task>? Before { get; set; }

    public int Attempts;

    private int _peerDown;

    /// <summary>While true, every delivery fails as a refused connection (after <see cref="Before"/>).</summary>
    public bool PeerDown
    {
        get => Volatile.Read(ref _peerDown) == 1;
        set => Volatile.Write(ref _peerDown, value ? 1 : 0);
    }

    /// <summary>Sends each alert's latest state only, as the webhook does, with a peer that <see cref="PeerDown"/> takes down.</summary>
    public void ActAsWebhook(bool peerDown)
    {
        LatestStateOnly = true;
        PeerDown = peerDown;
    }

    public IReadOnlyList<(AlertNotification Notification, IReadOnlyList<AlertSnapshot> Alerts)> Got
    {
        get
        {
            lock (_gate)
            {
                return [.. _got];
            }
        }
    }

    public IReadOnlyList<AlertSnapshot> All => [.. Got.SelectMany(g => g.Alerts)];

    public async Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Attempts);
        if (Before is { } before)
        {
            await before(cancellationToken);
        }

        if (PeerDown)
        {
            throw new IOException("connection refused");
        }

        lock (_gate)
        {
            _got.Add((notification, alerts));
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal sealed class CollectingEvents : IEventSink
{
    private readonly Lock _gate = new();
    private readonly List<EdgeEvent> _events = [];

    public IReadOnlyList<EdgeEvent> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Where the events also go (the outbox feeder of an end-to-end test); null: only collected.</summary>
    public IEventSink? Forward { get; set; }

    public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _events.Add(edgeEvent);
        }

        return Forward?.PublishAsync(edgeEvent, cancellationToken) ?? ValueTask.CompletedTask;
    }
}

internal static class Yaml
{
    /// <summary>Reads an <c>alerts:</c> document; returns the config and the problems found.</summary>
    public static (AlertsConfig Config, IReadOnlyList<ConfigDiagnostic> Problems) Alerts(string yaml, string file = "site.yaml")
    {
        var diagnostics = new ConfigDiagnostics();
        var root = YamlTree.Parse(yaml, file, diagnostics) as ConfigMapping ?? throw new InvalidOperationException("not a mapping: " + string.Join("\n", diagnostics.Items));
        var alerts = (ConfigMapping)root["alerts"]!;
        var config = AlertsConfig.Read(new ConfigReader(alerts, diagnostics), Path.GetDirectoryName(Path.GetFullPath(file)) ?? Path.GetTempPath());
        return (config, diagnostics.Sorted());
    }

    public static AlertsConfig Valid(string yaml)
    {
        var (config, problems) = Alerts(yaml);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        return config;
    }
}

internal static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, string what, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {seconds} s waiting for {what}");
            }

            await Task.Delay(10);
        }
    }
}

/// <summary>An alerting service on a fake clock, a temp state directory, a recording sink and collected events.</summary>
internal sealed class Harness : IAsyncDisposable
{
    public static readonly SiteIndex Site = WithUpsStates(new("dc1", "gw1", new Dictionary<string, DevicePlace>
    {
        ["pdu-r01"] = new("r01", "room1", null, null, null),
        ["rack-r01"] = new("r01", "room1", null, null, null),
        ["rack-r02"] = new("r02", "room1", null, null, null),
        ["rack-r03"] = new("r03", "room2", null, null, null),
        ["crac-1"] = new(null, "room1", null, null, "crac-1"),
        ["room1-env"] = new(null, "room1", null, null, null),
        ["press-1"] = new(null, null, "line1", "press-1", null),
    }));

    private Harness(string dir, AlertsConfig config, FakeTimeProvider time, SeriesRegistry registry, AlertingMetrics? metrics = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null, TimeSpan wallOffset = default)
    {
        LoggerFactory = loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        Metrics = metrics;
        Dir = dir;
        Config = config;
        Time = time;
        Clock = new SteppableClock(time, wallOffset);
        Timers = new AdvancedClock(time, Clock);
        Registry = registry;
    }

    public string Dir { get; }

    /// <summary>Two UPSs whose profiles code the same role differently (as ietf-ups-mib and apc-smart-ups do).</summary>
    private static SiteIndex WithUpsStates(SiteIndex site)
    {
        site.AddStateNames("ups-ietf", "output_source", new Dictionary<long, string> { [3] = "normal", [4] = "bypass", [5] = "battery", [6] = "booster", [7] = "reducer" });
        site.AddStateNames("ups-apc", "output_status", new Dictionary<long, string> { [2] = "onLine", [3] = "onBattery", [4] = "onSmartBoost", [12] = "onSmartTrim" });
        return site;
    }

    public AlertingMetrics? Metrics { get; }

    public Microsoft.Extensions.Logging.ILoggerFactory LoggerFactory { get; }

    public AlertsConfig Config { get; }

    public FakeTimeProvider Time { get; }

    /// <summary>The service's clock: <see cref="Time"/>, whose wall clock a test can step (NTP) while its timestamp and timers run on.</summary>
    public SteppableClock Clock { get; }

    /// <summary>What the service is given: <see cref="Clock"/>, whose timers run only on the thread in <see cref="Advance"/>.</summary>
    public AdvancedClock Timers { get; }

    public SeriesRegistry Registry { get; }

    public RecordingSink Sink { get; } = new("rec");

    public RecordingSink StateSink { get; } = new("state", followsState: true);

    public CollectingEvents Events { get; } = new();

    public AlertingService Service { get; private set; } = null!;

    public AlertManager Manager => Service.Manager;

    public static async Task<Harness> StartAsync(string yaml, string? dir = null, FakeTimeProvider? time = null, SeriesRegistry? registry = null, AlertingMetrics? metrics = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        var config = Yaml.Valid(yaml);
        dir ??= Directory.CreateTempSubdirectory("edgetwin-alerting-").FullName;
        time ??= new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var h = new Harness(dir, config, time, registry ?? new SeriesRegistry(), metrics, loggerFactory);
        await h.StartServiceAsync();
        return h;
    }

    private async Task StartServiceAsync()
    {
        var sinkConfig = new WebhookSinkConfig { Name = "rec", Url = new Uri("http://unused/"), Retries = 0 };
        Service = new AlertingService(Config, Site, Registry, Events, new AlertingOptions
        {
            StorePath = Path.Combine(Dir, "alerts.db"),
            TimeProvider = Timers,
            LoggerFactory = LoggerFactory,
            Metrics = Metrics,
            RunConnectivityProbe = false,
            ExtraSinks = [(Sink, sinkConfig), (StateSink, sinkConfig with { Name = "state" })],
        });
        await Service.StartAsync(CancellationToken.None);
    }

    /// <summary>Stops the service (as a clean shutdown would) and starts a new one on the same state file and clock.</summary>
    public async Task<Harness> RestartAsync()
    {
        await Service.DisposeAsync();
        var next = new Harness(Dir, Config, Time, new SeriesRegistry(), loggerFactory: LoggerFactory);
        await next.StartServiceAsync();
        return next;
    }

    /// <summary>
    /// A clean stop, <paramref name="down"/> of downtime, and a start on the same state file, whose wall clock reads
    /// <paramref name="wallOffset"/> off the real time (a box booted with a clock behind: negative).
    /// </summary>
    public async Task<Harness> RestartAsync(TimeSpan down, TimeSpan wallOffset = default, AlertsConfig? config = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        await Service.DisposeAsync();
        Time.Advance(down);
        var next = new Harness(Dir, config ?? Config, Time, new SeriesRegistry(), Metrics, loggerFactory ?? LoggerFactory, wallOffset);
        await next.StartServiceAsync();
        return next;
    }

    public SeriesId Series(string device, string metric, string? role = null, string unit = "Cel") =>
        Registry.GetOrAdd(new SeriesDescriptor(device, metric, unit, MetricKind.Gauge, role));

    public void Feed(SeriesId id, double value, SampleQuality quality = SampleQuality.Good) =>
        Service.Process([new Sample(id, Clock.GetUtcNow().ToUnixTimeMilliseconds(), value, quality)]);

    /// <summary>Advances the fake clock (the tick timer fires on the way, on this thread: see <see cref="AdvancedClock"/>).</summary>
    public void Advance(TimeSpan by)
    {
        var step = TimeSpan.FromMilliseconds(250);
        while (by > TimeSpan.Zero)
        {
            var s = by < step ? by : step;
            Timers.Advance(s);
            by -= s;
        }
    }

    public AlertSnapshot? Active(string rule, string? key = null) =>
        Manager.Active().FirstOrDefault(a => a.Rule == rule && (key is null || a.Key == key));

    public AlertState StateOf(string rule, string? key = null) => Active(rule, key)?.State ?? AlertState.Inactive;

    public async ValueTask DisposeAsync()
    {
        await Service.DisposeAsync();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Disposes the service but keeps the directory (for restart tests that hand it on).</summary>
    public ValueTask StopKeepingStateAsync() => Service.DisposeAsync();
}
