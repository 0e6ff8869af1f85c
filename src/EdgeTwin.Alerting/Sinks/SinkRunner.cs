using System.Diagnostics;
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
/// A webhook's or MQTT sink's queued message is superseded by a later one that carries every alert it carries (their later
/// state): it is not sent, so after an outage the peer gets each alert's latest state once (no FIRING for an alert that
/// resolved hours ago, then its RESOLVED). The held message too, between attempts. A superseded message is done at once,
/// or, when the manager's delivered mark of one of its alerts depends on it (see <see cref="Queued"/>), when the message
/// that superseded it is: never while the alert's later state is still owed to the peer.
/// A sink with a <see cref="IAlertSink.ResendInterval"/> (Alertmanager) also gets, every interval, one message with the
/// latest state of every alert it was handed that has not been handed resolved since (see <see cref="Seed"/> for a
/// restart), delivered like any other (timeout, retries, held while the peer is down, rebuilt from the latest states
/// before each new attempt), between the queued messages.
/// </summary>
public sealed partial class SinkRunner : IAsyncDisposable
{
    private readonly IAlertSink _sink;
    private readonly SinkConfig _config;
    private readonly ILogger _logger;
    private readonly AlertingMetrics? _metrics;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();

    // The queue, in order; guarded by _gate. A List: at most QueueCapacity (default 256) entries, a peer that is up
    // keeps it near empty, and every operation on it is one pass at most.
    private readonly Lock _gate = new();
    private readonly List<Queued> _items = [];
    private TaskCompletionSource? _signal;
    private bool _closed;

    // Cancelled by StopAsync: a runner whose peer is down stops waiting for it (what it holds stays owed).
    private readonly CancellationTokenSource _leave = new();
    private Task? _run;
    private long _delivered;
    private long _failed;
    private long _dropped;
    private long _superseded;
    private long _resent;

    // Re-sends (IAlertSink.ResendInterval > 0): the latest state handed of each alert not handed resolved since, by id;
    // guarded by _gate. _lastResend is a TimeProvider timestamp, touched by the run task only.
    private readonly TimeSpan _resendInterval;
    private readonly Dictionary<long, AlertSnapshot>? _live;
    private long _lastResend;
    private bool _resendNow;

    // The peer's outage, touched only by the run task; _outage is what alerts list shows of it.
    private SinkOutage? _outage;
    private bool _down;
    private long _downSince;
    private int _downAttempts;
    private TimeSpan _downDelay;
    private long _supersededAtDown;
    private long _droppedAtDown;

    public SinkRunner(IAlertSink sink, SinkConfig config, ILogger? logger = null, AlertingMetrics? metrics = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(config);
        _sink = sink;
        _config = config;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        _time = time ?? TimeProvider.System;
        _resendInterval = sink.FollowsState ? TimeSpan.Zero : sink.ResendInterval;
        if (_resendInterval > TimeSpan.Zero)
        {
            _live = [];
            _lastResend = _time.GetTimestamp();
        }
    }

    public IAlertSink Sink => _sink;

    /// <summary>Whether this runner re-sends the firing alerts every <see cref="IAlertSink.ResendInterval"/>.</summary>
    public bool Resends => _live is not null;

    /// <summary>Messages re-sending the firing alerts that went through (not counted in <see cref="Delivered"/>).</summary>
    public long Resent => Interlocked.Read(ref _resent);

    /// <summary>
    /// For a runner that <see cref="Resends"/>, at start: the alerts firing that the last run had delivered (the
    /// manager's notified mark), which no message will carry again; they are re-sent at once and then every interval.
    /// A restart took longer than the peer waits (Alertmanager's resolve_timeout) and it had resolved them: they fire
    /// there again. Alerts handed since (a later state) keep that state.
    /// </summary>
    public void Seed(IEnumerable<AlertSnapshot> firing)
    {
        ArgumentNullException.ThrowIfNull(firing);
        if (_live is null)
        {
            return;
        }

        lock (_gate)
        {
            foreach (var a in firing)
            {
                if (a.Status != AlertStatus.Resolved && (a.Targets.Count == 0 || a.Targets.Contains(_sink.Name)))
                {
                    _live.TryAdd(a.Id, a);
                    _resendNow = true;
                }
            }
        }
    }

    public string Name => _sink.Name;

    public long Delivered => Interlocked.Read(ref _delivered);

    public long Failed => Interlocked.Read(ref _failed);

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queued messages that were not sent because a later queued message carried the later state of all their alerts.</summary>
    public long Superseded => Interlocked.Read(ref _superseded);

    public int QueueDepth
    {
        get
        {
            lock (_gate)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Since when the peer is down (its fast retries ran out) and the last failure; null while it answers.</summary>
    public SinkOutage? Outage => Volatile.Read(ref _outage);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _sink.StartAsync(cancellationToken).ConfigureAwait(false);
        _run = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>
    /// Queues a message; never waits. Queued messages it supersedes leave the queue first; a queue still full then drops
    /// its oldest message, so it drops only when it holds that many messages none of which a later one covers.
    /// </summary>
    public void Enqueue(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts)
    {
        var item = new Queued(notification, alerts);
        Queued? dropped = null;
        TaskCompletionSource? wake;
        var superseded = 0;
        List<Queued>? doneNow = null;
        bool closed;
        lock (_gate)
        {
            closed = _closed;
            if (closed)
            {
                wake = null;
            }
            else
            {
                // Nothing queued (a peer that is up): no pass, no set.
                if (_items.Count > 0 && _sink.SendsLatestStateOnly)
                {
                    superseded = SupersedeQueued(item, ref doneNow);
                }

                if (_live is not null)
                {
                    foreach (var a in alerts)
                    {
                        if (a.Status == AlertStatus.Resolved)
                        {
                            _live.Remove(a.Id);
                        }
                        else
                        {
                            _live[a.Id] = a;
                        }
                    }
                }

                if (_items.Count >= _config.QueueCapacity)
                {
                    dropped = _items[0];
                    _items.RemoveAt(0);
                }

                _items.Add(item);
                wake = _signal;
                _signal = null;
            }
        }

        if (closed)
        {
            notification.Complete(); // stopped
            return;
        }

        CompleteAll(doneNow);
        if (superseded > 0)
        {
            Interlocked.Add(ref _superseded, superseded);
            _metrics?.Superseded(_sink.Name, superseded);
        }

        if (dropped is not null)
        {
            Interlocked.Increment(ref _dropped);
            _metrics?.Dropped(_sink.Name);
            LogDropped(_sink.Name, _config.QueueCapacity);
            dropped.Complete();
        }

        wake?.TrySetResult();
    }

    /// <summary>
    /// Under _gate. Takes out of the queue every message whose alerts <paramref name="later"/> all carries (their later
    /// state), in one pass that keeps the order of the rest. What is done at once goes to <paramref name="doneNow"/>.
    /// </summary>
    private int SupersedeQueued(Queued later, ref List<Queued>? doneNow)
    {
        var states = States(later.Alerts);
        var kept = 0;
        var superseded = 0;
        for (var i = 0; i < _items.Count; i++)
        {
            var q = _items[i];
            if (CarriesAll(states, q.Alerts))
            {
                later.Absorb(q, states, ref doneNow);
                superseded++;
            }
            else
            {
                _items[kept++] = q;
            }
        }

        if (superseded > 0)
        {
            _items.RemoveRange(kept, _items.Count - kept);
        }

        return superseded;
    }

    /// <summary>
    /// The held message, between two attempts: superseded when a queued message carries all its alerts (an alert that
    /// fired while the peer was down and has resolved since goes out as RESOLVED only).
    /// </summary>
    private bool HeldSuperseded(Queued held)
    {
        List<Queued>? doneNow = null;
        lock (_gate)
        {
            if (_items.Count == 0 || held.Alerts.Count == 0)
            {
                return false;
            }

            var ids = new HashSet<long>(held.Alerts.Count);
            foreach (var a in held.Alerts)
            {
                ids.Add(a.Id);
            }

            foreach (var q in _items)
            {
                var covered = 0;
                foreach (var a in q.Alerts)
                {
                    if (ids.Contains(a.Id))
                    {
                        covered++;
                    }
                }

                if (covered == ids.Count)
                {
                    q.Absorb(held, States(q.Alerts), ref doneNow);
                    break;
                }
            }

            if (held.SupersededBy is null)
            {
                return false;
            }
        }

        CompleteAll(doneNow);
        Interlocked.Increment(ref _superseded);
        _metrics?.Superseded(_sink.Name, 1);
        return true;
    }

    private static Dictionary<long, AlertSnapshot> States(IReadOnlyList<AlertSnapshot> alerts)
    {
        var states = new Dictionary<long, AlertSnapshot>(alerts.Count);
        foreach (var a in alerts)
        {
            states[a.Id] = a;
        }

        return states;
    }

    private static bool CarriesAll(Dictionary<long, AlertSnapshot> states, IReadOnlyList<AlertSnapshot> alerts)
    {
        if (alerts.Count == 0)
        {
            return false;
        }

        foreach (var a in alerts)
        {
            if (!states.ContainsKey(a.Id))
            {
                return false;
            }
        }

        return true;
    }

    private static void CompleteAll(List<Queued>? done)
    {
        if (done is not null)
        {
            foreach (var q in done)
            {
                q.Notification.Complete();
            }
        }
    }

    /// <summary>The alerts to re-send, by id (under _gate).</summary>
    private List<AlertSnapshot> LiveLocked() => [.. _live!.Values.OrderBy(a => a.Id)];

    private List<AlertSnapshot> Live()
    {
        lock (_gate)
        {
            return LiveLocked();
        }
    }

    /// <summary>
    /// The next queued message, or the re-send when it is due (before the queue, so a busy queue cannot starve it); null
    /// once stopped and empty.
    /// </summary>
    private async ValueTask<Queued?> NextAsync(CancellationToken stop)
    {
        while (true)
        {
            Task wait;
            var untilResend = Timeout.InfiniteTimeSpan;
            lock (_gate)
            {
                if (_live is not null && !_closed)
                {
                    untilResend = _resendNow ? TimeSpan.Zero : _resendInterval - _time.GetElapsedTime(_lastResend);
                    if (untilResend <= TimeSpan.Zero)
                    {
                        _resendNow = false;
                        _lastResend = _time.GetTimestamp();
                        untilResend = _resendInterval;
                        if (_live.Count > 0)
                        {
                            var alerts = LiveLocked();
                            return new Queued(new AlertNotification("resend", alerts, _time.GetUtcNow()), alerts) { IsResend = true };
                        }
                    }
                }

                if (_items.Count > 0)
                {
                    var q = _items[0];
                    _items.RemoveAt(0);
                    return q;
                }

                if (_closed)
                {
                    return null;
                }

                _signal ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _signal.Task;
            }

            if (untilResend == Timeout.InfiniteTimeSpan)
            {
                await wait.WaitAsync(stop).ConfigureAwait(false);
                continue;
            }

            try
            {
                await wait.WaitAsync(untilResend, _time, stop).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The re-send is due: taken at the top of the loop.
            }
        }
    }

    private void Close()
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            _closed = true;
            wake = _signal;
            _signal = null;
        }

        wake?.TrySetResult();
    }

    private async Task RunAsync(CancellationToken stop)
    {
        try
        {
            while (await NextAsync(stop).ConfigureAwait(false) is { } item)
            {
                switch (await DeliverAsync(item, stop).ConfigureAwait(false))
                {
                    case Outcome.Left:
                        LogLeftOwed(_sink.Name, QueueDepth + 1);
                        return;
                    case Outcome.Superseded:
                        continue; // done already, or tied to the message that superseded it (Queued)
                    case Outcome.Done when item.IsResend:
                        break; // no message of the manager's: nothing to mark
                    default:
                        item.Complete();
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private enum Outcome
    {
        Done,
        Superseded,
        Left,
    }

    /// <summary>Done once the message is delivered or refused for good; Superseded when a later queued message took its place between attempts; Left when a stop found the peer down.</summary>
    private async Task<Outcome> DeliverAsync(Queued item, CancellationToken stop)
    {
        var notification = item.Notification;
        IReadOnlyList<AlertSnapshot> alerts = item.Alerts;
        if (item.IsResend)
        {
            LogResending(_sink.Name, alerts.Count);
        }

        // While the peer is down a new head (its held message superseded) keeps the outage's backoff.
        var delay = _down ? _downDelay : _config.RetryDelay;
        var attemptTimeout = _sink.AttemptTimeout(_config.Timeout);
        for (var attempt = 0; ; attempt++)
        {
            if (attempt > 0 && item.IsResend)
            {
                // Held while the peer is down: what is still firing now, not what was when the re-send was due.
                alerts = Live();
                if (alerts.Count == 0)
                {
                    return Outcome.Done;
                }
            }
            else if (attempt > 0 && _sink.SendsLatestStateOnly && HeldSuperseded(item))
            {
                return Outcome.Superseded;
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
            timeout.CancelAfter(attemptTimeout);
            try
            {
                await _sink.DeliverAsync(notification, alerts, timeout.Token).ConfigureAwait(false);

                // The recovery is logged before the delivery is counted, so whoever sees the count sees the line.
                PeerAnswered();
                if (item.IsResend)
                {
                    Interlocked.Increment(ref _resent);
                    _metrics?.Resent(_sink.Name);
                    return Outcome.Done;
                }

                Interlocked.Increment(ref _delivered);
                var latency = notification.CauseTimestamp == 0 ? -1 : Stopwatch.GetElapsedTime(notification.CauseTimestamp).TotalMilliseconds;
                _metrics?.Delivered(_sink.Name, latency);
                return Outcome.Done;
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
                return Outcome.Done;
            }
            catch (Exception ex)
            {
                var why = ex is OperationCanceledException ? $"timed out after {Core.Config.Durations.Format(attemptTimeout)}" : ex.Message;
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
                    _supersededAtDown = Superseded;
                    _droppedAtDown = Dropped;
                    Volatile.Write(ref _outage, new SinkOutage(_time.GetUtcNow(), _downAttempts, why));
                    LogDown(_sink.Name, attempt + 1, why, notification.Group, QueueDepth + 1);
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
                        return Outcome.Left;
                    }
                }
                else
                {
                    await Task.Delay(delay, _time, stop).ConfigureAwait(false);
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                _downDelay = delay;
            }
        }
    }

    private void PeerAnswered()
    {
        if (_down)
        {
            _down = false;
            Volatile.Write(ref _outage, null);
            // What the outage held: the message that just went out and those queued behind it go now; the rest were
            // superseded by a later state of their alerts, or dropped by a full queue.
            var sent = QueueDepth + 1;
            var superseded = Superseded - _supersededAtDown;
            var dropped = Dropped - _droppedAtDown;
            LogBack(_sink.Name, Core.Config.Durations.Approximate(Stopwatch.GetElapsedTime(_downSince)), _downAttempts, sent + superseded + dropped, sent, superseded, dropped);
        }
    }

    /// <summary>Stops after what is queued has been tried (bounded by <paramref name="cancellationToken"/>).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Close();
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
            LogStopCut(_sink.Name, QueueDepth);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Close();
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

    /// <summary>
    /// A queued message for one sink (the alerts of it this sink is a target of) and the superseded messages tied to it.
    /// A superseded message is done at once unless it carries an alert FIRING that this one carries in the same episode
    /// (same fired_at) and not resolved (acknowledged, flapping): then the manager's delivered mark for that alert depends
    /// on this one reaching the peer, so it is done when this one is (delivered, refused for good, dropped) and stays owed
    /// with it when a stop finds the peer down. Done at once otherwise (the alert resolved or fired again since: the mark
    /// cannot apply), so what is kept is bounded by the alerts firing, not by the length of the outage.
    /// </summary>
    private sealed class Queued(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts)
    {
        private List<Queued>? _tied;

        public AlertNotification Notification { get; } = notification;

        public IReadOnlyList<AlertSnapshot> Alerts { get; } = alerts;

        public Queued? SupersededBy { get; private set; }

        /// <summary>The periodic re-send of the firing alerts (<see cref="IAlertSink.ResendInterval"/>): never queued, never superseded, no manager mark.</summary>
        public bool IsResend { get; init; }

        /// <summary>Takes <paramref name="earlier"/>'s place (<paramref name="states"/>: this one's alerts by id).</summary>
        public void Absorb(Queued earlier, Dictionary<long, AlertSnapshot> states, ref List<Queued>? doneNow)
        {
            earlier.SupersededBy = this;
            Tie(earlier, states, ref doneNow);
            if (earlier._tied is { } tied)
            {
                earlier._tied = null;
                foreach (var t in tied)
                {
                    Tie(t, states, ref doneNow);
                }
            }
        }

        private void Tie(Queued earlier, Dictionary<long, AlertSnapshot> states, ref List<Queued>? doneNow)
        {
            foreach (var a in earlier.Alerts)
            {
                if (a.Status == AlertStatus.Firing && states.TryGetValue(a.Id, out var later) && later.Status != AlertStatus.Resolved && later.FiredAt == a.FiredAt)
                {
                    (_tied ??= []).Add(earlier);
                    return;
                }
            }

            (doneNow ??= []).Add(earlier);
        }

        public void Complete()
        {
            Notification.Complete();
            if (_tied is { } tied)
            {
                foreach (var t in tied)
                {
                    t.Notification.Complete();
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "alert sink {Sink}: re-sending {Count} firing alerts")]
    private partial void LogResending(string sink, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: attempt {Attempt} failed ({Reason}); retrying in {DelayMs} ms")]
    private partial void LogRetry(string sink, int attempt, string reason, double delayMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "alert sink {Sink}: peer down after {Attempts} attempts ({Reason}); holding {Held} messages (the first for group {Group}), trying again up to every 30 s until it is back (logged once; alerts still fire on the other sinks)")]
    private partial void LogDown(string sink, int attempts, string reason, string group, int held);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alert sink {Sink}: still down, attempt {Attempts} failed ({Reason}); next in {DelayMs} ms")]
    private partial void LogStillDown(string sink, int attempts, string reason, double delayMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert sink {Sink}: peer back after {Down} down ({Attempts} failed attempts): {Held} messages were held, {Sent} sent with each alert's latest state, {Superseded} superseded, {Dropped} dropped (queue full)")]
    private partial void LogBack(string sink, string down, int attempts, long held, long sent, long superseded, long dropped);

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
