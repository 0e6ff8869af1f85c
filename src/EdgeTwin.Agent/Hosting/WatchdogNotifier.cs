using System.Globalization;
using EdgeTwin.Core.Config;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// Feeds systemd's watchdog (<c>WatchdogSec=</c>) only while the poll loop makes progress, so a hung scheduler gets the
/// service killed and restarted by <c>Restart=on-failure</c>. Progress is poll attempts (failures count: an agent whose
/// devices are all down is alive), judged over a window longer than the slowest device's interval and the longest
/// backoff, because a healthy agent can go that long without a poll. The stall is measured on the monotonic clock: with
/// the wall clock, a backward NTP step made "now − last progress" negative for the size of the step, so a hung poller
/// kept being fed.
/// </summary>
internal sealed partial class WatchdogNotifier(AgentRuntime runtime, SiteConfig config, IHostApplicationLifetime lifetime, ILogger<WatchdogNotifier> logger) : BackgroundService
{
    /// <summary>The scheduler's longest backoff for a down device (see Core/Scheduling).</summary>
    private static readonly TimeSpan LongestBackoff = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!TryGetWatchdogInterval(out var watchdog))
        {
            return;
        }

        var notifier = new SystemdNotifier();
        var slowest = config.Devices.Where(d => d.Enabled).Select(d => d.Interval).DefaultIfEmpty(TimeSpan.Zero).Max();
        var stallLimit = TimeSpan.FromTicks(Math.Max(2 * slowest.Ticks, LongestBackoff.Ticks + slowest.Ticks)) + watchdog;
        var tick = watchdog / 2;
        string every = Durations.Approximate(watchdog), limit = Durations.Approximate(stallLimit);
        LogEnabled(every, limit);

        // Pings before READY=1 are pointless (systemd's start timeout covers that phase).
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
        }

        var lastPolls = PollAttempts();
        var time = TimeProvider.System; // real monotonic time, like the PeriodicTimer below
        var lastProgress = time.GetTimestamp();
        using var timer = new PeriodicTimer(tick);
        var stalled = false;
        try
        {
            // The first ping waits one tick: READY=1 goes out from another ApplicationStarted callback, and callbacks run
            // in no order we control, so pinging at once could reach systemd before READY=1 (seen under load in CI).
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var polls = PollAttempts();
                var now = time.GetTimestamp();
                if (polls != lastPolls || runtime.Devices.Count == 0)
                {
                    lastPolls = polls;
                    lastProgress = now;
                    stalled = false;
                }

                var sinceProgress = time.GetElapsedTime(lastProgress, now);
                if (sinceProgress <= stallLimit)
                {
                    notifier.Notify(new ServiceState("WATCHDOG=1"));
                }
                else if (!stalled)
                {
                    stalled = true;
                    var stalledFor = Durations.Approximate(sinceProgress);
                    LogStalled(stalledFor);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: systemd stops expecting pings once STOPPING=1 is sent.
        }
    }

    private long PollAttempts() => runtime.Scheduler?.Status().Sum(d => d.Polls + d.SkippedPolls) ?? 0;

    /// <summary>systemd passes <c>WATCHDOG_USEC</c> (and <c>WATCHDOG_PID</c>, which must be ours) when the unit sets <c>WatchdogSec=</c>.</summary>
    internal static bool TryGetWatchdogInterval(out TimeSpan interval)
    {
        interval = default;
        var usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (string.IsNullOrEmpty(usec) || !long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out var micros) || micros <= 0)
        {
            return false;
        }

        if (!string.IsNullOrEmpty(pid) && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return false;
        }

        interval = TimeSpan.FromTicks(micros * 10);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "systemd watchdog every {Watchdog}: fed while polls progress, withheld after {StallLimit} without one")]
    private partial void LogEnabled(string watchdog, string stallLimit);

    [LoggerMessage(Level = LogLevel.Critical, Message = "No poll for {Stalled}: the poll loop looks hung; no longer feeding the systemd watchdog so the service is restarted")]
    private partial void LogStalled(string stalled);
}
