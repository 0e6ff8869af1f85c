using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Core.Scheduling;

/// <summary>
/// Polls every <see cref="IPolledSource"/> on its own fixed grid: <c>start + phase + n × interval</c> plus a small
/// jitter that never accumulates. The grid runs on the monotonic clock (<see cref="TimeProvider.GetTimestamp"/>): a
/// step of the wall clock (NTP, an operator's <c>date -s</c>) changes the samples' timestamps, never the cadence. Each device has its own loop, so a slow or dead device only ever delays itself:
/// its poll is cut at its timeout, a poll that ignores cancellation is abandoned (and that device skips polls until it
/// returns), and a down device backs off exponentially but stays on its grid. For devices sharing a line (RS-485 units)
/// the timeout covers only the device's own exchanges: time the source reports as queued for the line (a
/// <see cref="PollDeadline"/>) is bounded separately, so a dead unit never fails its healthy neighbours' polls. Phases spread devices with the same
/// interval evenly over the interval. A shared FIFO gate bounds the polls in flight.
/// </summary>
public sealed class PollScheduler : IAsyncDisposable
{
    private readonly DeviceRunner[] _devices;
    private readonly SeriesRegistry _registry;
    private readonly ISampleSink _samples;
    private readonly IEventSink _events;
    private readonly PollSchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SchedulerMetrics _metrics;
    private readonly bool _ownsMetrics;
    // How long a timed-out poll may take to return after its cancellation, to report its own reason.
    private static readonly TimeSpan CancelGrace = TimeSpan.FromMilliseconds(200);

    private readonly Activity _activity = new();
    private readonly ConcurrencyGate _gate;
    private readonly CancellationTokenSource _stopScheduling = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _failure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _origin;
    private Task[] _loops = [];
    private int _started;

    public PollScheduler(
        IEnumerable<PolledDevice> devices,
        SeriesRegistry registry,
        ISampleSink samples,
        IEventSink events,
        PollSchedulerOptions? options = null,
        TimeProvider? timeProvider = null,
        ILogger<PollScheduler>? logger = null,
        SchedulerMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(devices);
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _samples = samples ?? throw new ArgumentNullException(nameof(samples));
        _events = events ?? throw new ArgumentNullException(nameof(events));
        _options = options ?? new PollSchedulerOptions();
        _options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _ownsMetrics = metrics is null;
        _metrics = metrics ?? new SchedulerMetrics();
        _gate = new ConcurrencyGate(_options.MaxConcurrency, _activity);

        var list = devices.ToList();
        var duplicate = list.GroupBy(d => d.DeviceId, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"Device '{duplicate.Key}' is scheduled twice.", nameof(devices));
        }

        foreach (var d in list)
        {
            if (d.Interval <= TimeSpan.Zero)
            {
                throw new ArgumentException($"Device '{d.DeviceId}': interval must be positive, not {d.Interval}.", nameof(devices));
            }
        }

        _devices = new DeviceRunner[list.Count];
        var seed = _options.RandomSeed ?? Random.Shared.Next();
        _origin = _time.GetTimestamp();

        // Spread devices that share an interval evenly over it, in config order, so they never all fire together.
        foreach (var group in list.Select((d, i) => (Device: d, Order: i)).GroupBy(x => x.Device.Interval))
        {
            var members = group.ToList();
            for (var k = 0; k < members.Count; k++)
            {
                var phase = TimeSpan.FromTicks(group.Key.Ticks * k / members.Count);
                _devices[members[k].Order] = new DeviceRunner(members[k].Device, phase, _options.JitterFraction, HashCode.Combine(seed, members[k].Order));
            }
        }

        _metrics.Observe(
            () => _devices.Count(d => d.State == DeviceState.Down),
            () => _gate.InUse,
            () => _gate.Waiting);
    }

    /// <summary>Device loops that are runnable right now (not waiting on time, a poll, or a slot). Tests wait for 0.</summary>
    internal int BusyLoops => _activity.Busy;

    public int DeviceCount => _devices.Length;

    /// <summary>Monotonic time since the scheduler was created: the clock of every device's grid.</summary>
    private TimeSpan Elapsed => _time.GetElapsedTime(_origin);

    /// <summary>
    /// Faults with the exception of the first device loop that crashed (a bug, not a device error: device errors
    /// never end a loop); never completes otherwise. Hosts watch it to stop with a non-zero exit code.
    /// </summary>
    public Task Failure => _failure.Task;

    /// <summary>Registers every source's series, then starts one loop per device. Returns once all loops run.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The scheduler is already started.");
        }

        foreach (var device in _devices)
        {
            cancellationToken.ThrowIfCancellationRequested();
            device.Device.Source.RegisterSeries(_registry);
        }

        foreach (var _ in _devices)
        {
            _activity.Enter();
        }

        _loops = Array.ConvertAll(_devices, d => Task.Run(() => RunDeviceAsync(d), CancellationToken.None));
        SchedulerLog.Started(_logger, _devices.Length, _options.MaxConcurrency);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops starting polls, lets the polls in flight finish (each bounded by its timeout) and forwards their samples.
    /// If <paramref name="cancellationToken"/> fires first, the polls in flight are cancelled.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopScheduling.CancelAsync().ConfigureAwait(false);
        var all = Task.WhenAll(_loops);
        try
        {
            await all.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await _abort.CancelAsync().ConfigureAwait(false);
            await all.ConfigureAwait(false);
        }

        var stillRunning = 0;
        foreach (var d in _devices)
        {
            stillRunning += d.Abandoned is { IsCompleted: false } ? 1 : 0;
        }

        SchedulerLog.Stopped(_logger, stillRunning);
    }

    /// <summary>
    /// Stops every loop at once without waiting or forwarding (for a host disposed without being stopped); polls in
    /// flight are cancelled. <see cref="StopAsync"/> is the orderly way.
    /// </summary>
    public void Abort()
    {
        try
        {
            _stopScheduling.Cancel();
            _abort.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already stopped and disposed.
        }
    }

    /// <summary>A snapshot of every device's state.</summary>
    public IReadOnlyList<DeviceStatus> Status() => Array.ConvertAll(_devices, d =>
    {
        var budget = _registry.Budget(d.DeviceId);
        return d.Snapshot() with { Series = budget.Count, MaxSeries = budget.MaxSeries, SeriesDropped = budget.Dropped };
    });

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _started) != 0 && !_stopScheduling.IsCancellationRequested)
        {
            using var cts = new CancellationTokenSource();
            await cts.CancelAsync().ConfigureAwait(false);
            await StopAsync(cts.Token).ConfigureAwait(false);
        }

        _stopScheduling.Dispose();
        _abort.Dispose();
        if (_ownsMetrics)
        {
            _metrics.Dispose();
        }
    }

    private async Task RunDeviceAsync(DeviceRunner device)
    {
        var stop = _stopScheduling.Token;
        var tags = SchedulerMetrics.Device(device.DeviceId);
        try
        {
            long tick = 0;
            while (!stop.IsCancellationRequested)
            {
                var due = device.DueTime(tick);
                // For status only: the wall-clock reading expected at the due time (it moves with a step, the grid does not).
                device.NextPoll = _time.GetUtcNow() + (due - Elapsed);
                await DelayUntilAsync(due, stop).ConfigureAwait(false);

                if (device.Abandoned is { IsCompleted: false })
                {
                    // The last poll ignored its cancellation; a second one on the same device would only pile up.
                    var late = Elapsed;
                    SchedulerLog.StillInFlight(_logger, device.DeviceId, Durations.Approximate(late - due));
                    device.Skipped++;
                    _metrics.PollsSkipped.Add(1, tags);
                    tick = device.NextTick(tick, late);
                    continue;
                }

                device.Abandoned = null;
                await _gate.WaitAsync(stop).ConfigureAwait(false);
                try
                {
                    await PollOnceAsync(device, due, tags).ConfigureAwait(false);
                }
                finally
                {
                    _gate.Release();
                }

                var now = Elapsed;
                var notBefore = device.State == DeviceState.Down ? now + Backoff(device) - device.Interval : now;
                var next = device.NextTick(tick, notBefore);
                if (next > tick + 1)
                {
                    device.Skipped += next - tick - 1;
                    _metrics.PollsSkipped.Add(next - tick - 1, tags);
                }

                tick = next;
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested || _abort.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (Exception ex)
        {
            SchedulerLog.LoopCrashed(_logger, device.DeviceId, ex);
            _failure.TrySetException(ex);
            throw;
        }
        finally
        {
            _activity.Park();
        }
    }

    /// <summary>
    /// Time between polls of a down device: twice the interval after it goes down, doubling with every further
    /// failure up to <see cref="PollSchedulerOptions.MaxBackoff"/> (never less than the interval).
    /// </summary>
    private TimeSpan Backoff(DeviceRunner device)
    {
        var exponent = Math.Min(device.ConsecutiveFailures - _options.FailuresBeforeDown + 1, 20);
        var backoff = device.Interval * Math.Pow(2, exponent);
        var cap = _options.MaxBackoff < device.Interval ? device.Interval : _options.MaxBackoff;
        return backoff > cap ? cap : backoff;
    }

    private async Task PollOnceAsync(DeviceRunner device, TimeSpan due, System.Diagnostics.TagList tags)
    {
        var abort = _abort.Token;
        // The wall clock only stamps the samples (what consumers want); lateness and durations are monotonic.
        var startedAt = _time.GetUtcNow();
        var acquiredAt = startedAt.ToUnixTimeMilliseconds();
        var startTimestamp = _time.GetTimestamp();
        _metrics.PollLateness.Record(Math.Max(0, (_time.GetElapsedTime(_origin, startTimestamp) - due).TotalMilliseconds), tags);
        device.Polls++;

        using var pollCts = CancellationTokenSource.CreateLinkedTokenSource(abort);
        device.Sink.Open();
        // The device's timeout runs from here, except while the source says it waits for a shared line (RS-485): then
        // the wait has its own bound, so a dead unit ahead on the line never fails this device's poll.
        var deadline = new PollDeadline(_time, device.Timeout);
        Task poll;
        try
        {
            poll = device.Device.Source.PollAsync(device.Sink, acquiredAt, deadline, pollCts.Token).AsTask();
        }
        catch (Exception ex)
        {
            poll = Task.FromException(ex);
        }

        var timedOut = false;
        if (!poll.IsCompleted)
        {
            // Arm every wake-up before parking, so the loop is never counted idle while a wake-up is still missing.
            var wake = new Wake(_activity);
            var expiry = new DeadlineWake(deadline, wake);
            await using (var timer = _time.CreateTimer(DeadlineWake.Callback, expiry, System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan))
            {
                deadline.Arm(timer);
                _ = poll.ContinueWith(static (_, s) => ((Wake)s!).Fire(), wake, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                await using (abort.UnsafeRegister(Wake.FireCallback, wake))
                {
                    _activity.Park();
                    await wake.Task.ConfigureAwait(false);
                }

                deadline.Disarm();
            }

            if (!poll.IsCompleted)
            {
                timedOut = !abort.IsCancellationRequested;
                await pollCts.CancelAsync().ConfigureAwait(false);
                if (timedOut && !poll.IsCompleted)
                {
                    // A source that honours cancellation returns at once, and may say what it was waiting for
                    // (unit, function, address); a short real-time wait lets that message replace the generic one.
                    await Task.WhenAny(poll, Task.Delay(CancelGrace, CancellationToken.None)).ConfigureAwait(false);
                }
            }
        }

        var samples = device.Sink.Close();
        Exception? error = null;
        if (!poll.IsCompleted)
        {
            // Cancelled but not returning: leave it behind, observe its end so its exception is not unobserved.
            device.Abandoned = poll.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        else if (poll.IsFaulted || poll.IsCanceled)
        {
            error = poll.Exception?.InnerException ?? new OperationCanceledException();
            timedOut |= error is OperationCanceledException && pollCts.IsCancellationRequested && !abort.IsCancellationRequested;
        }

        var elapsed = _time.GetElapsedTime(startTimestamp);
        _metrics.PollDuration.Record(elapsed.TotalSeconds, tags);
        if (abort.IsCancellationRequested && (timedOut || error is OperationCanceledException || error?.InnerException is OperationCanceledException || !poll.IsCompleted))
        {
            abort.ThrowIfCancellationRequested();
        }

        var failed = timedOut || error is not null;
        if (failed)
        {
            await OnFailureAsync(device, timedOut, error, deadline, startedAt, tags).ConfigureAwait(false);
        }
        else
        {
            SchedulerLog.Polled(_logger, device.DeviceId, samples.Count, elapsed.TotalMilliseconds);
            await OnSuccessAsync(device, startedAt).ConfigureAwait(false);
        }

        device.ApplyQuality(samples, _registry, acquiredAt, failed, emitStale: device.State != DeviceState.Down);
        if (samples.Count > 0)
        {
            CountSamples(samples, tags);
            await _samples.WriteAsync(device.Stage(samples), abort).ConfigureAwait(false);
        }
    }

    private void CountSamples(List<Sample> samples, System.Diagnostics.TagList deviceTags)
    {
        var good = 0;
        foreach (var s in samples)
        {
            if (s.Quality == SampleQuality.Good)
            {
                good++;
            }
        }

        var goodTags = deviceTags;
        goodTags.Add("quality", "good");
        _metrics.Samples.Add(good, goodTags);
        if (good < samples.Count)
        {
            var badTags = deviceTags;
            badTags.Add("quality", "other");
            _metrics.Samples.Add(samples.Count - good, badTags);
        }
    }

    private async ValueTask OnSuccessAsync(DeviceRunner device, DateTimeOffset at)
    {
        var wasDown = device.State == DeviceState.Down;
        var failures = device.ConsecutiveFailures;
        device.State = DeviceState.Up;
        device.HasAnswered = true;
        device.ConsecutiveFailures = 0;
        device.LastSuccess = at;
        device.LastError = null;
        if (wasDown)
        {
            SchedulerLog.DeviceUp(_logger, device.DeviceId, failures);
            _metrics.DeviceTransitions.Add(1, new System.Diagnostics.TagList { { "device", device.DeviceId }, { "state", "up" } });
            await _events.PublishAsync(
                new EdgeEvent(EdgeEventKind.DeviceUp, device.DeviceId, at, EventSeverity.Info, $"device '{device.DeviceId}' answers again after {failures} failed polls"),
                _abort.Token).ConfigureAwait(false);
        }
    }

    private async ValueTask OnFailureAsync(DeviceRunner device, bool timedOut, Exception? error, PollDeadline deadline, DateTimeOffset at, System.Diagnostics.TagList tags)
    {
        device.ConsecutiveFailures++;
        device.Failures++;
        var reason = timedOut ? "timeout" : "error";
        // A source's own account of the timeout (a DeviceException raised as it was cancelled) names what it waited
        // for; the generic text is for sources that say nothing. A poll cut while it waited for a shared line never
        // reached the device: "no answer" would blame it for the unit ahead of it.
        var message = timedOut && error is not (null or OperationCanceledException)
            ? error.Message
            : timedOut && deadline.ExpiredWaiting
                ? $"device '{device.DeviceId}': still waiting for its shared line after {Durations.Approximate(deadline.Waited)} (not sent)"
                : timedOut
                    ? $"device '{device.DeviceId}': no answer within {device.Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s"
                    : error!.Message;
        if (!timedOut && error is not DeviceException and not OperationCanceledException)
        {
            SchedulerLog.UnexpectedException(_logger, device.DeviceId, error!.GetType().Name, error);
        }

        device.LastError = message;
        var errorTags = tags;
        errorTags.Add("reason", reason);
        _metrics.PollErrors.Add(1, errorTags);
        if (!device.HasAnswered && device.Failures == 1)
        {
            // A device that fails from the start is usually misconfigured (address, unit id, credentials): say so now,
            // not only when it goes down several intervals later. Later failures stay at Debug.
            SchedulerLog.FirstPollFailed(_logger, device.DeviceId, reason, message);
        }
        else
        {
            SchedulerLog.PollFailed(_logger, device.DeviceId, reason, device.ConsecutiveFailures, message);
        }

        if (device.State != DeviceState.Down && device.ConsecutiveFailures >= _options.FailuresBeforeDown)
        {
            device.State = DeviceState.Down;
            SchedulerLog.DeviceDown(_logger, device.DeviceId, device.ConsecutiveFailures, Durations.Approximate(Backoff(device)), message);
            _metrics.DeviceTransitions.Add(1, new System.Diagnostics.TagList { { "device", device.DeviceId }, { "state", "down" } });
            await _events.PublishAsync(
                new EdgeEvent(
                    EdgeEventKind.DeviceDown,
                    device.DeviceId,
                    at,
                    EventSeverity.Warning,
                    $"device '{device.DeviceId}' down after {device.ConsecutiveFailures} failed polls: {message}",
                    new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["reason"] = reason,
                        ["failures"] = device.ConsecutiveFailures.ToString(CultureInfo.InvariantCulture),
                        ["error"] = message,
                    }),
                _abort.Token).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until <paramref name="due"/> (monotonic time since the start), parking the loop meanwhile.</summary>
    private async ValueTask DelayUntilAsync(TimeSpan due, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var wait = due - Elapsed;
        if (wait <= TimeSpan.Zero)
        {
            return;
        }

        var wake = new Wake(_activity);
        await using (var timer = _time.CreateTimer(Wake.FireTimerCallback, wake, wait, System.Threading.Timeout.InfiniteTimeSpan))
        await using (cancellationToken.UnsafeRegister(Wake.FireCallback, wake))
        {
            _activity.Park();
            await wake.Task.ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>The deadline's timer: wakes the poll's loop only when the deadline has really passed.</summary>
    private sealed class DeadlineWake(PollDeadline deadline, Wake wake)
    {
        public static readonly TimerCallback Callback = static s =>
        {
            var self = (DeadlineWake)s!;
            if (self._deadline.OnTimer())
            {
                self._wake.Fire();
            }
        };

        private readonly PollDeadline _deadline = deadline;
        private readonly Wake _wake = wake;
    }
}
