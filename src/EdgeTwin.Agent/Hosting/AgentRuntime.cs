using EdgeTwin.Core.Config;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;

namespace EdgeTwin.Agent.Hosting;

/// <summary>One device the agent reads, with the sources built for it.</summary>
public sealed record RunningDevice(DeviceConfig Config, DeviceSources Sources);

/// <summary>
/// The live agent, for whoever hosts it (the demo's view, tests, status commands): config, series, the scheduler's
/// device states and the pipeline's queues. Filled when the agent starts.
/// </summary>
public sealed class AgentRuntime(SiteConfig config, SeriesRegistry registry, TimeProvider timeProvider)
{
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SiteConfig Config { get; } = config;

    public SeriesRegistry Registry { get; } = registry;

    public TimeProvider TimeProvider { get; } = timeProvider;

    public PollScheduler? Scheduler { get; internal set; }

    public SamplePipeline? Pipeline { get; internal set; }

    public EventHub? Events { get; internal set; }

    public IReadOnlyList<RunningDevice> Devices { get; internal set; } = [];

    public DateTimeOffset StartedAt { get; private set; }

    internal long StartedTimestamp { get; private set; }

    public TimeSpan Uptime => StartedTimestamp == 0 ? TimeSpan.Zero : TimeProvider.GetElapsedTime(StartedTimestamp);

    /// <summary>Completes when every source runs (the moment systemd is told READY=1); faults if the start failed.</summary>
    public Task Started => _started.Task;

    /// <summary>The error that stopped the agent, or null.</summary>
    public Exception? Fatal { get; internal set; }

    /// <summary>Every polled device's state (up/down, failures, last success, next poll).</summary>
    public IReadOnlyList<DeviceStatus> DeviceStatus() => Scheduler?.Status() ?? [];

    internal void MarkStarted()
    {
        StartedAt = TimeProvider.GetUtcNow();
        StartedTimestamp = TimeProvider.GetTimestamp();
        _started.TrySetResult();
    }

    internal void MarkFailed(Exception ex)
    {
        Fatal ??= ex;
        _started.TrySetException(ex);
    }
}
