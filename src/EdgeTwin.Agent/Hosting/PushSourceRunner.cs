using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Runs one push source until stopped. A crash is one device's problem, not the agent's: it is logged, counted and
/// the source restarted after a backoff (1 s doubling to 5 min, reset after a minute of healthy running). A source that
/// keeps failing the same way (a GPIO line another process holds, a bus that is gone) is logged once at Error with its
/// stack trace, then at Debug, with one Warning an hour while it lasts, and one Information line when it runs again:
/// before, every restart was an Error with the whole trace, every 5 minutes for as long as the fault lasted.
/// </summary>
internal sealed class PushSourceRunner(IPushSource source, ISampleSink samples, IEventSink events, AgentMetrics metrics, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan HealthyAfter = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan StillFailingEvery = TimeSpan.FromHours(1);

    private string? _failure; // the reason of the failures in a row, null while healthy
    private int _failures;
    private DateTimeOffset _failingSince;
    private long _lastWarning;

    public string Name => source.Name;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var delay = FirstDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            var started = time.GetTimestamp();
            using var running = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var healthy = _failure is null ? Task.CompletedTask : ReportRecoveryAsync(running.Token);
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
                await running.CancelAsync().ConfigureAwait(false);
                await healthy.ConfigureAwait(false);
                if (time.GetElapsedTime(started) >= HealthyAfter)
                {
                    delay = FirstDelay;
                }

                metrics.PushRestarts.Add(1, new KeyValuePair<string, object?>("source", source.Name));
                LogFailure(ex, Durations.Approximate(delay));
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

    private void LogFailure(Exception ex, string delay)
    {
        var reason = $"{ex.GetType().Name}: {ex.Message}";
        if (_failure != reason)
        {
            // A new fault (or the first): the trace once, then repeats of it are quiet.
            _failure = reason;
            _failures = 1;
            _failingSince = time.GetUtcNow();
            _lastWarning = time.GetTimestamp();
            AgentLog.PushSourceFailed(logger, source.Name, reason, delay, ex);
            return;
        }

        _failures++;
        if (time.GetElapsedTime(_lastWarning) >= StillFailingEvery)
        {
            _lastWarning = time.GetTimestamp();
            AgentLog.PushSourceStillFailing(logger, source.Name, _failures, _failingSince, reason, delay);
        }
        else
        {
            AgentLog.PushSourceFailedAgain(logger, source.Name, _failures, _failingSince, reason, delay);
        }
    }

    /// <summary>After failures, a run that lasts <see cref="HealthyAfter"/> is a recovery: said once, and the next fault is new.</summary>
    private async Task ReportRecoveryAsync(CancellationToken failedOrStopped)
    {
        try
        {
            await Task.Delay(HealthyAfter, time, failedOrStopped).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        AgentLog.PushSourceRecovered(logger, source.Name, _failures, _failingSince);
        _failure = null;
        _failures = 0;
    }
}
