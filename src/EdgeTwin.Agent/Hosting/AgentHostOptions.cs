using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>How <see cref="AgentHostBuilder"/> builds an agent: the service (<c>edgetwin run</c>), the demo, or a test.</summary>
public sealed class AgentHostOptions
{
    /// <summary>The agent's clock; tests may pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The kernel clock's state for the clock watcher (tests: a clock NTP has or has not synchronised); adjtimex(2) when null.</summary>
    internal Func<EdgeTwin.Sensors.Host.ClockReading>? KernelClock { get; set; }

    /// <summary>This boot's id for the clock watcher (tests: a power cut between two runs); <c>/proc/sys/kernel/random/boot_id</c> when null.</summary>
    internal Func<string?>? BootId { get; set; }

    /// <summary>systemd-timesyncd's runtime directory for the clock watcher when adjtimex(2) is denied (tests); <see cref="ClockStepWatcher.TimesyncDirectory"/> when null.</summary>
    internal string? TimesyncDirectory { get; set; }

    /// <summary>chronyd's command port for the clock watcher when adjtimex(2) is denied and timesyncd does not run (tests: a chronyd of their own); <see cref="EdgeTwin.Sensors.Host.ChronyCommandClient.DefaultEndPoint"/> when null.</summary>
    internal System.Net.IPEndPoint? ChronyCommand { get; set; }

    /// <summary>Poll scheduler settings (concurrency, jitter, backoff).</summary>
    public PollSchedulerOptions Scheduler { get; set; } = new();

    /// <summary>Queue settings of the stages added through <see cref="SampleObservers"/>.</summary>
    public StageOptions ObserverStageOptions { get; set; } = new(Capacity: 64, FullMode: QueueFullMode.Wait);

    /// <summary>
    /// Run as a systemd service when started by systemd: <c>Type=notify</c> readiness (sent once the config is
    /// valid and every source has started) and journald-formatted console logs. Harmless outside systemd.
    /// </summary>
    public bool UseSystemd { get; set; } = true;

    /// <summary>How long shutdown may take (in-flight polls, queued batches, stage flushes) before it is cut.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Writes a one-line status (devices up/down, samples/s, queue depths) at this period; null for never.</summary>
    public TimeSpan? StatusLogInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Minimum log level of the console logger.</summary>
    public LogLevel MinimumLogLevel { get; set; } = LogLevel.Information;

    /// <summary>Observers of every sample batch (demo view, tests); each becomes a pipeline stage.</summary>
    public IList<(string Name, Func<ReadOnlyMemory<Sample>, CancellationToken, ValueTask> OnSamples)> SampleObservers { get; } = [];

    /// <summary>Observers of every event (device up/down, traps, inputs).</summary>
    public IList<(string Name, Func<EdgeEvent, CancellationToken, ValueTask> OnEvent)> EventObservers { get; } = [];

    /// <summary>Last word on the services: extra source factories, stages (<c>services.AddSampleStage</c>), replacements.</summary>
    public Action<IServiceCollection>? ConfigureServices { get; set; }

    /// <summary>Last word on logging (providers, filters).</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; set; }

    /// <summary>The Prometheus endpoint's settings instead of the config's <c>metrics:</c> section (tests: port 0).</summary>
    public EdgeTwin.Core.Prometheus.MetricsConfig? Metrics { get; set; }

    /// <summary>Skip the reflection scan of EdgeTwin assemblies for source factories (tests that bring their own).</summary>
    public bool DiscoverSourceFactories { get; set; } = true;

    public AgentHostOptions ObserveSamples(string name, Func<ReadOnlyMemory<Sample>, CancellationToken, ValueTask> onSamples)
    {
        SampleObservers.Add((name, onSamples));
        return this;
    }

    public AgentHostOptions ObserveEvents(string name, Func<EdgeEvent, CancellationToken, ValueTask> onEvent)
    {
        EventObservers.Add((name, onEvent));
        return this;
    }
}
