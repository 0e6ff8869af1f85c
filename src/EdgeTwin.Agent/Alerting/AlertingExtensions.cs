using System.Diagnostics;
using System.Diagnostics.Metrics;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Alerting;

/// <summary>What the host may override of the <c>alerts:</c> section (the demo and tests keep state in a temp directory).</summary>
public sealed record AlertingAgentOptions
{
    /// <summary>Overrides <c>alerts.state_directory</c> (default: the outbox's directory).</summary>
    public string? StateDirectory { get; init; }

    /// <summary>Overrides the whole section (tests).</summary>
    public AlertsConfig? Config { get; init; }

    /// <summary>Extra sinks built in code (tests, benchmarks).</summary>
    public IReadOnlyList<(IAlertSink Sink, SinkConfig Config)> ExtraSinks { get; init; } = [];

    /// <summary>Opens GPIO controllers (tests hand in a simulated chip).</summary>
    public Func<string, System.Device.Gpio.GpioController>? OpenGpio { get; init; }
}

public static class AlertingExtensions
{
    /// <summary>
    /// Adds local alerting behind the pipeline: a sample stage and an event stage feeding the rules, the sinks, the
    /// connectivity monitor and the control socket <c>alerts.sock</c> for <c>edgetwin alerts …</c>. Alert events go to the
    /// event hub, so with <see cref="StoreAndForwardExtensions.AddStoreAndForward"/> they reach the outbox and the centre.
    /// The stage drops the oldest batch when full: alerting must see the newest values, and a stalled alerting never
    /// holds back polling or the outbox.
    /// </summary>
    public static IServiceCollection AddAlerting(this IServiceCollection services, AlertingAgentOptions? options = null)
    {
        services.AddSingleton(options ?? new AlertingAgentOptions());
        services.AddSingleton<AlertingHostedService>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<AlertingHostedService>());
        services.AddSingleton<AlertingStage>();
        services.AddSingleton(new SampleStageRegistration(sp => sp.GetRequiredService<AlertingStage>(), new StageOptions(Capacity: 256, FullMode: QueueFullMode.DropOldest)));
        services.AddSingleton(new EventStageRegistration(sp => sp.GetRequiredService<AlertingStage>(), 1024));
        return services;
    }

    /// <summary>Where <c>alerts.db</c> and <c>alerts.sock</c> live: <c>alerts.state_directory</c>, else the outbox's directory.</summary>
    public static string StateDirectory(SiteConfig config, AlertsConfig alerts, StoreAndForwardOptions? storeAndForward = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(alerts);
        return alerts.StateDirectory ?? StoreAndForwardOptions.StateDirectory(config, storeAndForward);
    }

    /// <summary>
    /// Where the agent listens when the state directory holds no socket (read-only storage): systemd's runtime directory
    /// for the unit (<c>RUNTIME_DIRECTORY</c>, <c>/run/edgetwin</c> with the role's unit), where the CLI looks next.
    /// </summary>
    public static string FallbackControlSocket()
    {
        var runtime = Environment.GetEnvironmentVariable("RUNTIME_DIRECTORY")?.Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return Path.Combine(string.IsNullOrWhiteSpace(runtime) ? "/run/edgetwin" : runtime, "alerts.sock");
    }

    /// <summary>The control socket's path for a config (what <c>edgetwin alerts</c> connects to).</summary>
    public static string ControlSocketPath(SiteConfig config, AlertsConfig alerts, string? stateDirectory = null) =>
        alerts.ControlSocket ?? Path.Combine(stateDirectory ?? StateDirectory(config, alerts), "alerts.sock");
}

/// <summary>Feeds samples and events to the alerting (the pipeline runs it on its own task behind its own queue).</summary>
public sealed class AlertingStage(AlertingHostedService host) : ISampleStage, IEventStage
{
    public string Name => "alerting";

    public ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        host.Service?.Process(samples.Span, Stopwatch.GetTimestamp());
        return ValueTask.CompletedTask;
    }

    public ValueTask HandleAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
    {
        host.Service?.Handle(edgeEvent);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Owns the alerting for the agent's lifetime. It opens the store before the pipeline starts (so restored alerts drive the
/// relay at once) and stops after every hosted service has stopped (the last batches are evaluated first); then the
/// outputs go to their failsafe levels.
/// </summary>
public sealed partial class AlertingHostedService(
    SiteConfig config,
    AlertingAgentOptions options,
    AgentRuntime runtime,
    TimeProvider time,
    ILoggerFactory loggers,
    IMeterFactory meters,
    IServiceProvider services) : IHostedLifecycleService, IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger<AlertingHostedService>();
    private AlertControlServer? _control;
    private UplinkWatch? _watch;
    private ITimer? _storageTimer;

    public AlertingService? Service { get; private set; }

    public string? ControlSocket => _control?.Path;

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var alerts = options.Config ?? AlertsConfig.From(config);
        var storeAndForward = services.GetService<StoreAndForwardOptions>();
        var stateDirectory = options.StateDirectory ?? AlertingExtensions.StateDirectory(config, alerts, storeAndForward);

        // With no probe target of its own, the monitor probes the MQTT uplink's broker, else Kafka's first bootstrap server.
        var uplinks = storeAndForward?.Uplinks ?? (config.Uplinks is null ? null : UplinksConfig.From(config, stateDirectory));
        if (alerts.Connectivity.ProbeHost is null)
        {
            if (uplinks?.Mqtt is { Servers: { Count: > 0 } servers })
            {
                // With hosts: every broker of the list, in order: the uplink fails over to the next one (the probe was the
                // first entry's host with port:'s port, and said offline while the uplink delivered through the second).
                alerts = alerts with { Connectivity = alerts.Connectivity with { ProbeHost = servers[0].Host, ProbePort = servers[0].Port, AlsoProbe = [.. servers.Skip(1).Select(s => (s.Host, s.Port))] } };
            }
            else if (uplinks?.Kafka is { } kafka && KafkaBrokerList.Parse(kafka.BootstrapServers, out _) is { Count: > 0 } brokers)
            {
                // Every bootstrap broker, as for the MQTT hosts: the cluster is reachable while any of them answers (the
                // probe was the first broker alone and said offline while it was down for a rolling restart).
                alerts = alerts with { Connectivity = alerts.Connectivity with { ProbeHost = brokers[0].Host, ProbePort = brokers[0].Port, AlsoProbe = [.. brokers.Skip(1)] } };
            }
        }

        // check accepts a known role no device of this site has (shared rule sets); say which rules can never fire here.
        var siteRoles = new SiteReferences(config, () => []).SiteRoles;
        foreach (var rule in alerts.Rules)
        {
            if (rule.Match.Role is { } role && role.AsSpan().IndexOfAny('*', '?') < 0 && !siteRoles.Contains(role))
            {
                LogRuleMatchesNothing(rule.Name, role);
            }
        }

        var storeAndForwardService = services.GetService<StoreAndForwardService>();
        _watch = new UplinkWatch(storeAndForwardService);
        var metrics = new AlertingMetrics(meters);
        Service = new AlertingService(alerts, new SiteIndex(config), runtime.Registry, new HubSink(runtime), new AlertingOptions
        {
            StorePath = Path.Combine(stateDirectory, AlertsConfig.StoreFileName),
            TimeProvider = time,
            LoggerFactory = loggers,
            Metrics = metrics,
            // Without an uplink nothing is delivered or stalls: the monitor then runs only on an explicit probe_host.
            UplinkHealthy = uplinks is { Mqtt: null, Kafka: null } or null ? null : _watch.Healthy,
            ExtraSinks = options.ExtraSinks,
            OpenGpio = options.OpenGpio,
        });
        if (storeAndForwardService is not null)
        {
            // One direction only: the probe tells the uplinks to stop waiting out their backoff (F6: a site stayed dark
            // for up to 70 s although the probe saw its broker back); the uplinks know nothing of alerting.
            Service.Connectivity.ProbeRecovered += storeAndForwardService.WakeUplinks;
        }

        await Service.StartAsync(cancellationToken).ConfigureAwait(false);
        if (storeAndForwardService is not null)
        {
            var service = Service;
            var feed = new StorageAlertFeed(() => storeAndForwardService.Outbox.GetStats().Storage, service.Handle, time);
            _storageTimer = time.CreateTimer(_ => feed.Check(), null, StorageAlertFeed.CheckInterval, StorageAlertFeed.CheckInterval);
        }

        // `edgetwin maintenance done MACHINE` goes over the same socket as `alerts ack` (the operator's one way in).
        var maintenance = services.GetService<EdgeTwin.Agent.Twin.Models.MaintenanceStage>();
        _control = new AlertControlServer(Service, AlertingExtensions.ControlSocketPath(config, alerts, stateDirectory), time, loggers.CreateLogger<AlertControlServer>())
        {
            StatusWriter = storeAndForwardService is null ? null : storeAndForwardService.WriteStatus,
            Metrics = metrics,
            FallbackPath = AlertingExtensions.FallbackControlSocket(),
            MaintenanceDone = maintenance is null ? null : (machine, by) => maintenance.ReportRepaired(machine, by) is var a ? (a.Ok, a.PredictionId, a.Message) : default,
            MaintenanceStatus = maintenance?.Monitor is null ? null : maintenance.WriteStatus,
        };
        try
        {
            _control.Start();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            // Alarms still work without the CLI socket; say so loudly.
            LogControlFailed(ex, _control.Path);
            _control = null;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (_storageTimer is not null)
        {
            await _storageTimer.DisposeAsync().ConfigureAwait(false);
            _storageTimer = null;
        }

        if (_control is not null)
        {
            await _control.DisposeAsync().ConfigureAwait(false);
            _control = null;
        }

        if (Service is not null)
        {
            await Service.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_storageTimer is not null)
        {
            await _storageTimer.DisposeAsync().ConfigureAwait(false);
        }

        if (_control is not null)
        {
            await _control.DisposeAsync().ConfigureAwait(false);
        }

        if (Service is not null)
        {
            await Service.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert rule {Rule} can never fire here: no device of this site has role {Role}")]
    private partial void LogRuleMatchesNothing(string rule, string role);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert control socket {Path} could not be opened; `edgetwin alerts` will not reach this agent")]
    private partial void LogControlFailed(Exception ex, string path);

    /// <summary>Alert events go into the agent's event hub (and from there to the outbox) once it runs.</summary>
    internal sealed class HubSink(AgentRuntime runtime) : IEventSink
    {
        /// <summary>How long an event waits for the hub before the start counts as stuck (the caller then logs and retries).</summary>
        private static readonly TimeSpan StartWait = TimeSpan.FromMinutes(2);

        public async ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
        {
            if (runtime.Events is null)
            {
                // Alerting starts before the hub: an alert restored firing can change first (the uplink alert clears at the
                // first good probe, on every upgrade's start). It waits for the hub here; before, it threw and the caller
                // logged "could not hand the alert event … to the outbox" as a warning with a stack trace, then retried.
                try
                {
                    await runtime.Started.WaitAsync(StartWait, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    throw new InvalidOperationException($"the event hub is not running {StartWait.TotalMinutes:0} min after the alert");
                }
            }

            var hub = runtime.Events ?? throw new InvalidOperationException("the agent started without an event hub");
            await hub.PublishAsync(edgeEvent, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The uplinks' own view for the connectivity monitor: healthy while nothing waits in the outbox or an uplink's
    /// acknowledged position moved since the last look; failing when entries wait and no position moved twice in a row.
    /// </summary>
    private sealed class UplinkWatch(StoreAndForwardService? storeAndForward)
    {
        private readonly Dictionary<string, long> _last = new(StringComparer.Ordinal);
        private int _stalls;

        public bool? Healthy()
        {
            if (storeAndForward is null)
            {
                return null;
            }

            try
            {
                var positions = storeAndForward.UplinkPositions;
                if (positions.Count == 0)
                {
                    return null;
                }

                var last = storeAndForward.Outbox.GetStats().LastSequence;
                var moved = false;
                var behind = false;
                foreach (var (name, position) in positions)
                {
                    moved |= _last.TryGetValue(name, out var before) && position > before;
                    behind |= position < last;
                    _last[name] = position;
                }

                _stalls = !behind || moved ? 0 : _stalls + 1;
                return _stalls < 2;
            }
            catch (InvalidOperationException)
            {
                return null; // the outbox is not open (yet, or any more)
            }
        }
    }
}
