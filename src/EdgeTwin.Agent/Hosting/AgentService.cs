using System.Globalization;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// The agent itself. <see cref="StartAsync"/> builds every device's sources (all problems at once, no I/O), starts
/// the pipeline stages, the event hub, the poll scheduler and the push sources — only then does the host report
/// started (and systemd hears READY=1). <see cref="StopAsync"/> stops the producers first, lets polls in flight finish,
/// drains every stage queue and flushes the stages, all within the host's shutdown timeout.
/// </summary>
internal sealed class AgentService(
    IServiceProvider services,
    AgentRuntime runtime,
    SourceFactories factories,
    AgentHostOptions options,
    ILoggerFactory loggerFactory) : BackgroundService
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("EdgeTwin.Agent");
    private readonly CancellationTokenSource _pushStop = new();
    private readonly List<Task> _pushTasks = [];
    private PollScheduler? _scheduler;
    private SamplePipeline? _pipeline;
    private EventHub? _events;
    private List<RunningDevice> _devices = [];

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await StartAgentAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            runtime.MarkFailed(ex);
            await DisposeSourcesAsync().ConfigureAwait(false);
            throw;
        }

        runtime.MarkStarted();
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task StartAgentAsync(CancellationToken cancellationToken)
    {
        var config = runtime.Config;
        var time = options.TimeProvider;
        var enabled = config.Devices.Where(d => d.Enabled).ToList();
        AgentLog.Starting(_logger, config.Site.Id, config.Site.GatewayId, enabled.Count, config.Devices.Count - enabled.Count, config.SourcePath ?? "(built in code)");

        // What `check` prints as warnings (the config still loads), so a journal shows them too.
        foreach (var warning in config.Warnings)
        {
            AgentLog.ConfigWarning(_logger, warning.ToString());
        }

        // systemd's default soft limit is 1024 (the runtime raises it to the hard one); a site past it loses devices.
        if (DescriptorBudget.Warning(config, ProcessDescriptors.SoftLimit()) is { } low)
        {
            AgentLog.DescriptorLimitLow(_logger, low);
        }

        // Build every source first and report every problem at once, like the config check does. With an outbox, its
        // directory is the state directory the sources may keep files in (as the alert store and twin stages do).
        var stateDirectory = services.GetService<StoreAndForwardOptions>() is { } storeAndForward ? StoreAndForwardOptions.StateDirectory(config, storeAndForward) : null;
        var problems = new List<string>();
        foreach (var device in enabled)
        {
            try
            {
                _devices.Add(new RunningDevice(device, factories.Create(SourceContext.For(config, device, loggerFactory, time) with { StateDirectory = stateDirectory })));
            }
            catch (SourceCreationException ex)
            {
                problems.Add(ex.Message);
            }
            catch (KeyNotFoundException ex)
            {
                problems.Add(ex.Message);
            }
        }

        if (problems.Count > 0)
        {
            throw new AgentStartException(problems);
        }

        runtime.Devices = _devices;
        foreach (var d in _devices)
        {
            // Before any source registers: a table walk must meet its device's cap from the first row on.
            LimitSeries(runtime.Registry, d.Config, config);
        }

        var pipelineMetrics = services.GetRequiredService<PipelineMetrics>();
        _pipeline = new SamplePipeline(pipelineMetrics, services.GetRequiredService<ILogger<SamplePipeline>>(), time);
        foreach (var registration in services.GetServices<SampleStageRegistration>())
        {
            _pipeline.AddStage(registration.Create(services), registration.Options);
        }

        foreach (var (name, onSamples) in options.SampleObservers)
        {
            _pipeline.AddStage(new DelegateSampleStage(name, onSamples), options.ObserverStageOptions);
        }

        _events = new EventHub(pipelineMetrics, services.GetRequiredService<ILogger<EventHub>>());
        foreach (var registration in services.GetServices<EventStageRegistration>())
        {
            _events.AddStage(registration.Create(services), registration.Capacity);
        }

        foreach (var (name, onEvent) in options.EventObservers)
        {
            _events.AddStage(new DelegateEventStage(name, onEvent));
        }

        var polled = new List<PolledDevice>();
        foreach (var d in _devices)
        {
            if (d.Sources.Polled is { } source)
            {
                polled.Add(new PolledDevice(source, d.Config.Interval, d.Config.Timeout, QualityRulesOf(config.ProfileOf(d.Config))));
            }
        }

        _scheduler = new PollScheduler(
            polled,
            runtime.Registry,
            _pipeline,
            _events,
            options.Scheduler,
            time,
            services.GetRequiredService<ILogger<PollScheduler>>(),
            services.GetRequiredService<SchedulerMetrics>());

        runtime.Pipeline = _pipeline;
        runtime.Events = _events;
        runtime.Scheduler = _scheduler;

        _pipeline.Start();
        _events.Start();
        await _scheduler.StartAsync(cancellationToken).ConfigureAwait(false);

        var metrics = services.GetRequiredService<AgentMetrics>();
        var pushLogger = loggerFactory.CreateLogger<PushSourceRunner>();
        foreach (var d in _devices)
        {
            if (d.Sources.Push is { } push)
            {
                push.RegisterSeries(runtime.Registry);
                var runner = new PushSourceRunner(push, _pipeline, _events, metrics, time, pushLogger);
                _pushTasks.Add(Task.Run(() => runner.RunAsync(_pushStop.Token), CancellationToken.None));
            }
        }

        // The trap listener is the site's, not a device's: one socket for every sender (snmp_traps:, off when absent).
        if (Sources.Snmp.SnmpTrapsConfig.From(config) is { } traps)
        {
            var trapSource = new Sources.Snmp.SnmpTrapSource(traps.ToOptions(config), loggerFactory.CreateLogger<Sources.Snmp.SnmpTrapSource>());
            trapSource.RegisterSeries(runtime.Registry);
            var runner = new PushSourceRunner(trapSource, _pipeline, _events, metrics, time, pushLogger);
            _pushTasks.Add(Task.Run(() => runner.RunAsync(_pushStop.Token), CancellationToken.None));
        }

        var stages = string.Join(", ", _pipeline.StageNames);
        AgentLog.Started(_logger, polled.Count, _pushTasks.Count, runtime.Registry.Count, stages);
    }

    /// <summary>Out-of-range limits from the profile's <c>min</c>/<c>max</c>, looked up by metric name.</summary>
    /// <summary>Sets a device's series cap from its <c>max_series</c>, naming where an operator raises it (the agent and <c>edgetwin poll</c>).</summary>
    internal static DeviceSeriesBudget LimitSeries(SeriesRegistry registry, DeviceConfig device, SiteConfig config) =>
        registry.LimitDevice(device.Id, device.MaxSeries, $"max_series of device '{device.Id}' in {config.SourcePath ?? "the site config"}");

    internal static Func<SeriesDescriptor, QualityRule> QualityRulesOf(DeviceProfile profile)
    {
        var rules = new Dictionary<string, QualityRule>(StringComparer.Ordinal);
        foreach (var m in profile.AllMetrics)
        {
            if (m.Min is not null || m.Max is not null)
            {
                rules[m.Name] = new QualityRule(m.Min, m.Max);
            }
        }

        return d => rules.GetValueOrDefault(d.Metric, QualityRule.None);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var status = options.StatusLogInterval is { } interval ? LogStatusAsync(interval, stoppingToken) : Task.CompletedTask;
        var firstRound = LogFirstRoundAsync(stoppingToken);
        try
        {
            // Device errors never end a loop; only a bug does, and then the agent must exit non-zero.
            await _scheduler!.Failure.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            await status.ConfigureAwait(false);
            await firstRound.ConfigureAwait(false);
            return;
        }
        catch (Exception ex)
        {
            AgentLog.SchedulerFailed(_logger, ex);
            runtime.Fatal ??= ex;
            throw;
        }
    }

    /// <summary>
    /// The start log counts the series known before any poll; SNMP tables add their rows with the first walk, so once every
    /// device has answered or failed once, say what the site really is.
    /// </summary>
    private async Task LogFirstRoundAsync(CancellationToken stoppingToken)
    {
        if (runtime.DeviceStatus().Count == 0)
        {
            return;
        }

        var started = options.TimeProvider.GetTimestamp();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), options.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var states = runtime.DeviceStatus();
                var up = states.Count(s => s.State == DeviceState.Up);
                var down = states.Count(s => s.State == DeviceState.Down);
                if (up + down == states.Count)
                {
                    var elapsed = Durations.Approximate(options.TimeProvider.GetElapsedTime(started));
                    AgentLog.FirstRound(_logger, elapsed, up, down, runtime.Registry.Count);
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task LogStatusAsync(TimeSpan interval, CancellationToken stoppingToken)
    {
        var metrics = services.GetRequiredService<AgentMetrics>();
        using var timer = new PeriodicTimer(interval, options.TimeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var states = runtime.DeviceStatus();
                var queues = string.Join(", ", _pipeline!.Stats().Select(s => $"{s.Name}={s.QueueDepth}/{s.Capacity}"));
                var up = states.Count(s => s.State == DeviceState.Up);
                var down = states.Count(s => s.State == DeviceState.Down);
                var unknown = states.Count - up - down;
                var rate = metrics.SamplesPerSecond();
                var capped = SeriesCapped(states);
                AgentLog.Status(_logger, up, down, unknown, rate, queues, capped);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// The devices losing rows to their max_series cap, for the status line (empty when none): the cap's own warning is
    /// rate-limited, so this is where an operator keeps seeing it.
    /// </summary>
    internal static string SeriesCapped(IReadOnlyList<DeviceStatus> states)
    {
        var capped = states.Where(s => s.SeriesDropped > 0).ToList();
        return capped.Count == 0 ? ""
            : "; at max_series, samples of new series dropped: " + string.Join(", ", capped.Select(s =>
                string.Create(CultureInfo.InvariantCulture, $"{s.DeviceId} {s.Series}/{s.MaxSeries} ({s.SeriesDropped} dropped)")));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        AgentLog.Stopping(_logger);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        var cut = false;

        // Producers first: no new polls or pushes, polls in flight finish and forward their samples.
        await _pushStop.CancelAsync().ConfigureAwait(false);
        if (_scheduler is not null)
        {
            await _scheduler.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        await Task.WhenAll(_pushTasks).ConfigureAwait(false);

        // Then the consumers: every queued batch and event is handled and every stage flushed.
        if (_pipeline is not null)
        {
            await _pipeline.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_events is not null)
        {
            await _events.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        cut |= cancellationToken.IsCancellationRequested;
        if (cut)
        {
            AgentLog.ShutdownCut(_logger);
        }

        await DisposeSourcesAsync().ConfigureAwait(false);
        var uptime = Durations.Approximate(runtime.Uptime);
        AgentLog.Stopped(_logger, _pipeline?.TotalSamples ?? 0, uptime);
        if (_scheduler is not null)
        {
            await _scheduler.DisposeAsync().ConfigureAwait(false);
        }

        if (_pipeline is not null)
        {
            await _pipeline.DisposeAsync().ConfigureAwait(false);
        }

        if (_events is not null)
        {
            await _events.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task DisposeSourcesAsync()
    {
        foreach (var d in _devices)
        {
            try
            {
                await d.Sources.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                AgentLog.DisposeFailed(_logger, d.Config.Id, ex);
            }
        }

        _devices = [];
    }

    public override void Dispose()
    {
        // Disposed without StopAsync (a failed start, a caller's `using` after an exception): the device loops must not
        // outlive the host. Regression: they went on polling disposed sources ("the SNMP socket is closed") and feeding a
        // closed outbox every second for the rest of the process.
        _scheduler?.Abort();
        try
        {
            _pushStop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        _pushStop.Dispose();
        base.Dispose();
    }
}
