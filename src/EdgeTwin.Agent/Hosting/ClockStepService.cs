using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Runs the <see cref="ClockStepWatcher"/> every <see cref="ClockStepWatcher.CheckInterval"/> once the agent has started,
/// and hands its <c>clock_stepped</c> events to the event hub: to the outbox (and the centre) and the alert rules, like
/// any event. An event the hub does not take within <see cref="PublishTimeout"/> is kept and offered again at the next check.
/// </summary>
internal sealed partial class ClockStepService(
    ClockStepWatcher watcher,
    AgentRuntime runtime,
    IServiceProvider services,
    ILogger<ClockStepService> logger) : BackgroundService
{
    /// <summary>How long one hand-over to the hub may wait (its queues wait rather than drop when full).</summary>
    internal static readonly TimeSpan PublishTimeout = TimeSpan.FromSeconds(10);

    private readonly Queue<EdgeEvent> _pending = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await runtime.Started.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return; // the agent did not start; it reports why
        }

        var storeAndForward = services.GetService<StoreAndForwardService>();
        if (storeAndForward?.StateDirectory is { } stateDirectory)
        {
            // No outbox, nothing stamped to name: the file is kept only next to one.
            watcher.UseStateFile(new UnsyncedRunsFile(Path.Combine(stateDirectory, UnsyncedRunsFile.FileName), logger));
        }

        Func<OutboxStats?> stats = () => OutboxStats(storeAndForward);
        var time = runtime.TimeProvider;
        using var timer = new PeriodicTimer(ClockStepWatcher.CheckInterval, time);
        try
        {
            do
            {
                // chronyd is asked here, where waiting is allowed; the check then uses its answer (see RefreshAsync).
                await watcher.RefreshAsync(stoppingToken).ConfigureAwait(false);
                if (watcher.Check(stats) is { } stepped)
                {
                    _pending.Enqueue(stepped);
                }

                await PublishPendingAsync(time, stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    private async Task PublishPendingAsync(TimeProvider time, CancellationToken stoppingToken)
    {
        while (_pending.TryPeek(out var next))
        {
            var hub = runtime.Events;
            if (hub is null)
            {
                return;
            }

            using var timeout = new CancellationTokenSource(PublishTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
            try
            {
                await hub.PublishAsync(next, linked.Token).ConfigureAwait(false);
                _pending.Dequeue();
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                LogPublishWaits(logger, PublishTimeout.TotalSeconds);
                return;
            }
            catch (InvalidOperationException)
            {
                return; // the hub is shutting down
            }
        }
    }

    private static OutboxStats? OutboxStats(StoreAndForwardService? storeAndForward)
    {
        if (storeAndForward is null)
        {
            return null;
        }

        try
        {
            return storeAndForward.Outbox.GetStats();
        }
        catch (InvalidOperationException)
        {
            return null; // not open (starting or stopping)
        }
    }

    [LoggerMessage(EventId = 2031, Level = LogLevel.Warning, Message = "the clock_stepped event waited {Seconds} s for the event hub (its queues are full); it is offered again at the next clock check")]
    private static partial void LogPublishWaits(ILogger logger, double seconds);
}
