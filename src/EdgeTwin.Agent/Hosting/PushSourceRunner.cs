using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Runs one push source until stopped. A crash is one device's problem, not the agent's: it is logged, counted and
/// the source restarted after a backoff (1 s doubling to 5 min, reset after a minute of healthy running).
/// </summary>
internal sealed class PushSourceRunner(IPushSource source, ISampleSink samples, IEventSink events, AgentMetrics metrics, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan HealthyAfter = TimeSpan.FromMinutes(1);

    public string Name => source.Name;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var delay = FirstDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = time.GetTimestamp();
            try
            {
                await source.RunAsync(samples, events, stoppingToken).ConfigureAwait(false);
                if (stoppingToken.IsCancellationRequested)
                {
                    return;
                }

                throw new InvalidOperationException($"push source '{source.Name}' returned without being stopped");
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                if (time.GetElapsedTime(started) >= HealthyAfter)
                {
                    delay = FirstDelay;
                }

                metrics.PushRestarts.Add(1, new KeyValuePair<string, object?>("source", source.Name));
                AgentLog.PushSourceFailed(logger, source.Name, Durations.Approximate(delay), ex);
                try
                {
                    await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = delay * 2 > MaxDelay ? MaxDelay : delay * 2;
            }
        }
    }
}
