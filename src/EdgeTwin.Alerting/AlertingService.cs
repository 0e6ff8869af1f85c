using System.Device.Gpio;
using System.Threading.Channels;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Alerting.Inputs;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting;

/// <summary>What the host gives the alerting besides the <c>alerts:</c> section.</summary>
public sealed record AlertingOptions
{
    /// <summary>The LiteDB file of the alert state (<c>alerts.db</c>).</summary>
    public required string StorePath { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    public AlertingMetrics? Metrics { get; init; }

    /// <summary>
    /// Opens the GPIO controller for <c>chip</c> (<c>simulated</c> or <c>auto</c>). The default gives one shared
    /// <see cref="SimulatedGpioDriver"/> for <c>simulated</c> and the board's controller otherwise.
    /// </summary>
    public Func<string, GpioController>? OpenGpio { get; init; }

    /// <summary>The uplink client's view for the connectivity monitor (true healthy, false failing, null unknown).</summary>
    public Func<bool?>? UplinkHealthy { get; init; }

    /// <summary>Run the connectivity monitor's probe loop (tests drive <see cref="ConnectivityMonitor.Observe"/> directly).</summary>
    public bool RunConnectivityProbe { get; init; } = true;

    /// <summary>Extra sinks built in code (tests, benchmarks), with their runner settings.</summary>
    public IReadOnlyList<(IAlertSink Sink, SinkConfig Config)> ExtraSinks { get; init; } = [];
}

/// <summary>
/// The local alerting of one gateway: rules on samples and events, the lifecycle and its store, the sinks (each behind its
/// own runner), GPIO alarm inputs and the connectivity monitor. Raised and cleared alerts also go to
/// <see cref="IEventSink"/> (the outbox), with the time they happened, so the centre gets the outage's history in order.
/// </summary>
public sealed partial class AlertingService : IAsyncDisposable
{
    private readonly AlertsConfig _config;
    private readonly AlertingOptions _options;
    private readonly IEventSink? _events;
    private readonly ILogger _logger;
    private readonly List<SinkRunner> _runners = [];
    private readonly Channel<OutgoingEvent> _eventQueue = Channel.CreateUnbounded<OutgoingEvent>();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly Dictionary<string, GpioController> _controllers = new(StringComparer.Ordinal);
    private SimulatedGpioDriver? _simulated;
    private GpioInputAlarms? _inputs;
    private ITimer? _tick;
    private int _stopped;

    public AlertingService(AlertsConfig config, SiteIndex site, SeriesRegistry registry, IEventSink? events, AlertingOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        _config = config;
        _options = options;
        _events = events;
        _logger = options.LoggerFactory.CreateLogger<AlertingService>();
        Manager = new AlertManager(config, site, options.StorePath, options.TimeProvider, options.LoggerFactory.CreateLogger<AlertManager>(), options.Metrics);
        Engine = new RuleEngine(Manager, registry, options.TimeProvider, options.LoggerFactory.CreateLogger<RuleEngine>());
        Connectivity = new ConnectivityMonitor(
            config.Connectivity,
            options.UplinkHealthy,
            options.TimeProvider,
            options.LoggerFactory.CreateLogger<ConnectivityMonitor>());
        if (Manager.RestoredUplink is { } uplink)
        {
            Connectivity.Seed(uplink.State, uplink.Since);
        }

        Connectivity.Changed += c => Manager.SetUplink(c.State, c.Since, c.Reason);
    }

    public AlertManager Manager { get; }

    public RuleEngine Engine { get; }

    public ConnectivityMonitor Connectivity { get; }

    public IReadOnlyList<SinkRunner> Sinks => _runners;

    /// <summary>The simulated chip when a sink or input uses <c>chip: simulated</c> (demo, tests).</summary>
    public SimulatedGpioDriver? SimulatedGpio => _simulated;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var site = Manager.Site;
        foreach (var sinkConfig in _config.Sinks)
        {
            IAlertSink sink = sinkConfig switch
            {
                GpioSinkConfig g => new GpioSink(g, () => Controller(g.Chip), _options.TimeProvider, _options.LoggerFactory.CreateLogger<GpioSink>()),
                SyslogSinkConfig s => new SyslogSink(s, site.SiteId),
                MqttSinkConfig m => new MqttSink(m, site.SiteId, site.GatewayId, _options.LoggerFactory.CreateLogger<MqttSink>(), _options.TimeProvider),
                WebhookSinkConfig w => new WebhookSink(w, site.SiteId, site.GatewayId, _options.TimeProvider, _options.LoggerFactory.CreateLogger<WebhookSink>()),
                SmtpSinkConfig mail => new SmtpSink(mail, site.SiteId, site.GatewayId, _options.LoggerFactory.CreateLogger<SmtpSink>(), _options.Metrics),
                _ => throw new InvalidOperationException("unknown sink type " + sinkConfig.GetType().Name),
            };
            _runners.Add(new SinkRunner(sink, sinkConfig, _options.LoggerFactory.CreateLogger<SinkRunner>(), _options.Metrics, _options.TimeProvider));
        }

        foreach (var (sink, sinkConfig) in _options.ExtraSinks)
        {
            _runners.Add(new SinkRunner(sink, sinkConfig, _options.LoggerFactory.CreateLogger<SinkRunner>(), _options.Metrics, _options.TimeProvider));
        }

        // Sinks that re-send what fires (Alertmanager) start from the alerts the last run had notified, which no message
        // carries again; before Attach, so no later state handed to them can be overwritten by these.
        if (_runners.Any(r => r.Resends) && Manager.NotifiedFiring(_options.TimeProvider.GetUtcNow()) is { Count: > 0 } notified)
        {
            foreach (var runner in _runners.Where(r => r.Resends))
            {
                runner.Seed(notified);
            }
        }

        foreach (var runner in _runners)
        {
            await runner.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        // State sinks start from the restored state (a relay that was on before the restart is on again at once).
        if (Manager.FiringState(_options.TimeProvider.GetUtcNow()) is { } state)
        {
            foreach (var runner in _runners.Where(r => r.Sink.FollowsState))
            {
                Route(runner, state);
            }
        }

        // Committed changes go straight from the store's writer thread into the sinks' queues: no hop in between.
        Manager.Attach(Dispatch);
        _loops.Add(Task.Run(() => PublishAsync(_stop.Token), CancellationToken.None));
        if (_options.RunConnectivityProbe && (_config.Connectivity.ProbeHost is not null || _options.UplinkHealthy is not null))
        {
            _loops.Add(Task.Run(() => Connectivity.RunAsync(_stop.Token), CancellationToken.None));
        }

        _tick = _options.TimeProvider.CreateTimer(_ => Tick(), null, _config.TickInterval, _config.TickInterval);

        var inputs = _config.Rules.Where(r => r.Kind == RuleKind.Input).ToList();
        if (inputs.Count > 0)
        {
            _inputs = new GpioInputAlarms(Engine, inputs, _options.TimeProvider, _options.LoggerFactory.CreateLogger<GpioInputAlarms>());
            var chip = _config.Sinks.OfType<GpioSinkConfig>().FirstOrDefault()?.Chip ?? GpioChips.Auto;
            _inputs.Start(() => Controller(chip));
        }

        LogStarted(_config.Rules.Count, _runners.Count, Engine.BoundSeries, Manager.Store.Path);
    }

    /// <summary>Evaluates a batch of samples (allocation-free unless an alert changes).</summary>
    public void Process(ReadOnlySpan<Sample> samples, long arrival = 0) => Engine.Process(samples, arrival);

    public void Handle(EdgeEvent edgeEvent) => Engine.Handle(edgeEvent);

    private void Tick()
    {
        try
        {
            Engine.Tick();
        }
        catch (Exception ex)
        {
            LogTickFailed(ex);
        }
    }

    private GpioController Controller(string chip)
    {
        lock (_controllers)
        {
            if (_controllers.TryGetValue(chip, out var c))
            {
                return c;
            }

            if (_options.OpenGpio is { } open)
            {
                c = open(chip);
            }
            else if (chip == GpioChips.Simulated)
            {
                _simulated ??= new SimulatedGpioDriver();
                c = new GpioController(_simulated);
            }
            else
            {
                c = GpioChips.Open(chip);
            }

            _controllers[chip] = c;
            return c;
        }
    }

    /// <summary>Routes one committed item; runs on the store's writer thread and never blocks (queues drop, not wait).</summary>
    private void Dispatch(Outgoing item)
    {
        switch (item)
        {
            case OutgoingEvent e:
                _eventQueue.Writer.TryWrite(e);
                break;
            case OutgoingNotification n:
                Dispatch(n);
                break;
        }
    }

    private void Dispatch(OutgoingNotification n)
    {
        var notification = n.Notification;
        notification.CommittedTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        if (n.StateOnly)
        {
            foreach (var runner in _runners)
            {
                if (runner.Sink.FollowsState)
                {
                    Route(runner, notification);
                }
            }

            return;
        }

        var targets = new List<(SinkRunner Runner, IReadOnlyList<AlertSnapshot> Alerts)>(_runners.Count);
        foreach (var runner in _runners)
        {
            if (!runner.Sink.FollowsState && notification.For(runner.Name) is { Count: > 0 } alerts)
            {
                targets.Add((runner, alerts));
            }
        }

        notification.Delivered = Manager.MarkNotified;
        if (targets.Count == 0)
        {
            Manager.MarkNotified(notification);
            return;
        }

        notification.Expect(targets.Count);
        foreach (var (runner, alerts) in targets)
        {
            runner.Enqueue(notification, alerts);
        }
    }

    private static void Route(SinkRunner runner, AlertNotification notification)
    {
        if (notification.For(runner.Name) is { Count: > 0 } alerts)
        {
            notification.Expect(int.MaxValue); // state messages are not tracked for delivery
            runner.Enqueue(notification, alerts);
        }
    }

    /// <summary>Raised/cleared alerts to the event sink (the outbox) in order; a line is marked published only once accepted.</summary>
    private async Task PublishAsync(CancellationToken stop)
    {
        try
        {
            await foreach (var e in _eventQueue.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                if (_events is null)
                {
                    Manager.MarkPublished(e.Seq);
                    continue;
                }

                while (true)
                {
                    try
                    {
                        await _events.PublishAsync(e.Event, stop).ConfigureAwait(false);
                        Manager.MarkPublished(e.Seq);
                        break;
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        LogPublishFailed(ex, e.Event.Source);
                        await Task.Delay(TimeSpan.FromSeconds(1), _options.TimeProvider, stop).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Stops inputs and ticks, lets the queues drain (bounded by <paramref name="cancellationToken"/>), sets outputs failsafe.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        _inputs?.Dispose();
        if (_tick is not null)
        {
            await _tick.DisposeAsync().ConfigureAwait(false);
        }

        Manager.SavePeaks(Engine.AfterTimers());

        // Let what the manager already queued reach the runners and the outbox before they stop.
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while ((Manager.PendingWrites > 0 || _eventQueue.Reader.Count > 0)
            && System.Diagnostics.Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(2) && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }

        foreach (var runner in _runners)
        {
            await runner.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var loop in _loops)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        foreach (var runner in _runners)
        {
            await runner.DisposeAsync().ConfigureAwait(false);
        }

        lock (_controllers)
        {
            foreach (var c in _controllers.Values)
            {
                c.Dispose();
            }

            _controllers.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await StopAsync(cts.Token).ConfigureAwait(false);
        }

        Engine.Dispose();
        Manager.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "alerting: {Rules} rules, {Sinks} sinks, {Series} series bound, state in {Store}")]
    private partial void LogStarted(int rules, int sinks, int series, string store);

    [LoggerMessage(Level = LogLevel.Error, Message = "alerting: tick failed")]
    private partial void LogTickFailed(Exception ex);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alerting: could not hand the alert event of {Rule} to the outbox; retrying")]
    private partial void LogPublishFailed(Exception ex, string rule);
}
