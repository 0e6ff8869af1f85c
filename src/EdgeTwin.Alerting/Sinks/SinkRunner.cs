using System.Diagnostics;
using System.Threading.Channels;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// Runs one sink: a bounded queue (the oldest message is dropped and counted when it is full, so a dead peer cannot grow
/// memory), a timeout per attempt and retries with doubling delays. Its own task: a slow sink only fills its own queue.
/// When the retries run out on a failure that may pass (no answer, timeout, 5xx) the peer is "down": that is logged
/// once, the message is held and tried again at the doubling delay (at most 30 s) until it goes through, and the
/// recovery is logged once. Giving the message up lost it for good: a webhook receiver or local broker restarted for
/// 10 s during a raise never heard of an alert that then fired all night. A stop while down leaves the held message
/// and those behind it undelivered (not completed), so alerts still firing are notified again after the restart.
/// </summary>
public sealed partial class SinkRunner : IAsyncDisposable
{
    private readonly IAlertSink _sink;
    private readonly SinkConfig _config;
    private readonly ILogger _logger;
    private readonly AlertingMetrics? _metrics;
    private readonly TimeProvider _time;
    private readonly Channel<(AlertNotification Notification, IReadOnlyList<AlertSnapshot> Alerts)> _queue;
    private readonly CancellationTokenSource _stop = new();

    // Cancelled by StopAsync: a runner whose peer is down stops waiting for it (what it holds stays owed).
    private readonly CancellationTokenSource _leave = new();
    private Task? _run;
    private long _delivered;
    private long _failed;
    private long _dropped;

    // The peer's outage, touched only by the run task; _outage is what alerts list shows of it.
    private SinkOutage? _outage;
    private bool _down;
    private long _downSince;
    private int _downAttempts;

    public SinkRunner(IAlertSink sink, SinkConfig config, ILogger? logger = null, AlertingMetrics? metrics = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(config);
        _sink = sink;
        _config = config;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        _time = time ?? TimeProvider.System;
        _queue = Channel.CreateBounded<(AlertNotification, IReadOnlyList<AlertSnapshot>)>(
            new BoundedChannelOptions(config.QueueCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            dropped =>
            {
                Interlocked.Increment(ref _dropped);
                _metrics?.Dropped(_sink.Name);
                LogDropped(_sink.Name, _config.QueueCapacity);
                dropped.Item1.Complete();
            });
    }

    public IAlertSink Sink => _sink;

    public string Name => _sink.Name;

    public long Delivered => Interlocked.Read(ref _delivered);

    public long Failed => Interlocked.Read(ref _failed);

    public long Dropped => Interlocked.Read(ref _dropped);

    public int QueueDepth => _queue.Reader.Count;

    /// <summary>Since when the peer is down (its fast retries ran out) and the last failure; null while it answers.</summary>
    public SinkOutage? Outage => Volatile.Read(ref _outage);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _sink.StartAsync(cancellationToken).ConfigureAwait(false);
        _run = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>Queues a message; never waits (a full queue drops its oldest message).</summary>
    public void Enqueue(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts)
    {
        if (!_queue.Writer.TryWrite((notification, alerts)))
        {
            notification.Complete(); // stopped
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        try
        {
            await foreach (var (notification, alerts) in _queue.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                if (!await DeliverAsync(notification, alerts, stop).ConfigureAwait(false))
                {
                    LogLeftOwed(_sink.Name, _queue.Reader.Count + 1);
                    return;
                }

                notification.Complete();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>True once the message is delivered or refused for good; false when a stop found the peer down.</summary>
    private async Task<bool> DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken stop)
    {
        var delay = _config.RetryDelay;
        for (var attempt = 0; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            timeout.CancelAfter(_config.Timeout);
            try
            {
                await _sink.DeliverAsync(notification, alerts, timeout.Token).ConfigureAwait(false);

                // The recovery is logged before the delivery is counted, so whoever sees the count sees the line.
                PeerAnswered();
                Interlocked.Increment(ref _delivered);
                var latency = notification.CauseTimestamp == 0 ? -1 : Stopwatch.GetElapsedTime(notification.CauseTimestamp).TotalMilliseconds;
                _metrics?.Delivered(_sink.Name, latency);
                return true;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                throw;
            }
            catch (SinkRejectedException ex)
            {
                Interlocked.Increment(ref _failed);
                _metrics?.Failed(_sink.Name);
                PeerAnswered();
                LogRejected(ex, _sink.Name, notification.Group);
                return true;
            }
            catch (Exception ex)
            {
                var why = ex is OperationCanceledException ? $"timed out after {Core.Config.Durations.Format(_config.Timeout)}" : ex.Message;
                _metrics?.Retried(_sink.Name);
                if (_down)
                {
                    _downAttempts++;
                    Volatile.Write(ref _outage, _outage! with { Attempts = _downAttempts, Reason = why });
                    LogStillDown(_sink.Name, _downAttempts, why, delay.TotalMilliseconds);
                }
                else if (attempt >= _config.Retries)
                {
                    Interlocked.Increment(ref _failed);
                    _metrics?.Failed(_sink.Name);
                    _down = true;
                    _downSince = Stopwatch.GetTimestamp();
                    _downAttempts = attempt + 1;
                    Volatile.Write(ref _outage, new SinkOutage(_time.GetUtcNow(), _downAttempts, why));
                    LogDown(_sink.Name, attempt + 1, why, notification.Group, _queue.Reader.Count + 1);
                }
                else
                {
                    LogRetry(_sink.Name, attempt + 1, why, delay.TotalMilliseconds);
                }

                if (_down)
                {
                    using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop, _leave.Token);
                    try
                    {
                        await Task.Delay(delay, _time, wait.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (_leave.IsCancellationRequested && !stop.IsCancellationRequested)
                    {
                        return false;
                    }
                }
                else
                {
                    await Task.Delay(delay, _time, stop).ConfigureAwait(false);
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    private void PeerAnswered()
    {
        if (_down)
        {
            _down = false;
            Volatile.Write(ref _outage, null);
            LogBack(_sink.Name, Stopwatch.GetElapsedTime(_downSince).TotalSeconds, _downAttempts, _queue.Reader.Count);
        }
    }

    /// <summary>Stops after what is queued has been tried (bounded by <paramref name="cancellationToken"/>).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await _leave.CancelAsync().ConfigureAwait(false);
        if (_run is null)
        {
            return;
        }

        try
        {
            await _run.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            LogStopCut(_sink.Name, _queue.Reader.Count);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_run is not null)
        {
            try
            {
                await _run.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await _sink.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
        _leave.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: attempt {Attempt} failed ({Reason}); retrying in {DelayMs} ms")]
    private partial void LogRetry(string sink, int attempt, string reason, double delayMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert sink {Sink}: peer down after {Attempts} attempts ({Reason}); holding {Held} messages (the first for group {Group}), trying again up to every 30 s until it is back (logged once; alerts still fire on the other sinks)")]
    private partial void LogDown(string sink, int attempts, string reason, string group, int held);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alert sink {Sink}: still down, attempt {Attempts} failed ({Reason}); next in {DelayMs} ms")]
    private partial void LogStillDown(string sink, int attempts, string reason, double delayMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: peer back after {Seconds:F0} s down ({Attempts} failed attempts); the held message went out, {Queued} more queued")]
    private partial void LogBack(string sink, double seconds, int attempts, int queued);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: stopping while its peer is down; {Left} messages not delivered (alerts still firing then are notified again after the restart)")]
    private partial void LogLeftOwed(string sink, int left);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert sink {Sink}: the peer refused the message for group {Group}")]
    private partial void LogRejected(Exception ex, string sink, string group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: queue full ({Capacity}); the oldest message was dropped")]
    private partial void LogDropped(string sink, int capacity);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: stop cut short with {Left} messages queued")]
    private partial void LogStopCut(string sink, int left);
}

/// <summary>A sink's peer is down: since when (wall clock), failed attempts so far and the last reason.</summary>
public sealed record SinkOutage(DateTimeOffset Since, int Attempts, string Reason);
