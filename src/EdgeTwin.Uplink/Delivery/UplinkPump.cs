using System.Threading.Channels;
using EdgeTwin.Core;
using EdgeTwin.Core.Config;
using EdgeTwin.Outbox;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// Moves entries from the outbox to one peer and advances the outbox only over what the peer acknowledged.
/// <para>
/// Each connection splits the unacknowledged entries in two lanes. Everything already in the outbox when the
/// connection came up is the <b>backlog</b>: replayed oldest first, flagged historical, rate-limited and allowed at
/// most <see cref="DeliveryOptions.EffectiveBacklogWindow"/> of the in-flight window. Everything appended after that
/// is <b>live</b>: sent at once on the remaining window. Each lane sends in sequence order, so order per device holds
/// within a lane; the centre tells the lanes apart by the historical flag and de-duplicates by sequence.
/// </para>
/// <para>
/// Acknowledgements may arrive in any order (two lanes, or a peer that answers out of order); <see cref="AckTracker"/>
/// turns them into the in-order position written to the outbox, coalesced so a busy link does not write per message.
/// A failed send ends the connection; the next one starts from the acknowledged position, so whatever was in flight
/// is sent again (the duplicates QoS 1 allows), except entries already acknowledged, which are skipped.
/// </para>
/// </summary>
internal sealed class UplinkPump
{
    private readonly IOutbox _outbox;
    private readonly IUplinkTransport _transport;
    private readonly DeliveryOptions _options;
    private readonly TimeProvider _time;
    private readonly RepeatedFailureLog _connectFailures;
    private readonly ILogger _logger;
    private readonly UplinkMetrics _metrics;
    private readonly KeyValuePair<string, object?> _tag;
    // Capacity 1, extra signals dropped: one wake-up covers every completion since the last write.
    private readonly Channel<bool> _ackSignal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private AckTracker? _tracker;
    private long _written;
    private CancellationTokenSource? _backoff; // the reconnect wait under way, for WakeReconnect
    private int _wakeRequested; // a wake since the last attempt started: the next wait is skipped
    private readonly RefusalReporter _refusals;
    private readonly ByteBudget? _budget;
    private readonly UplinkTraffic _traffic = new();

    public UplinkPump(IOutbox outbox, IUplinkTransport transport, DeliveryOptions options, TimeProvider time, ILogger logger, UplinkMetrics metrics, Payloads.UplinkIdentity identity)
    {
        _outbox = outbox;
        _transport = transport;
        _options = options;
        _time = time;
        _connectFailures = new RepeatedFailureLog(time);
        _logger = logger;
        _metrics = metrics;
        _tag = new("uplink", transport.Name);
        _budget = options.MaxBytesPerSecond > 0 ? new ByteBudget(options.MaxBytesPerSecond, time) : null;
        _refusals = new RefusalReporter(outbox, transport.Name, transport.Peer, new Outbox.Summaries.UplinkIdentity(identity.Gateway, identity.Site), options, time, logger, Reported);
    }

    /// <summary>What the peer refused for good since start, and the last refusal.</summary>
    public UplinkRejections Rejections =>
        Volatile.Read(ref _closesOnEveryEntrySince) is DateTimeOffset since ? _refusals.Rejections with { ClosesOnEveryEntrySince = since } : _refusals.Rejections;

    private object? _closesOnEveryEntrySince; // a boxed DateTimeOffset while the peer closes on every entry, else null

    /// <summary>
    /// Ends the current reconnect wait now, if the pump is waiting out its backoff (no effect while connected or
    /// connecting). For a caller that saw the peer reachable again, e.g. a connectivity probe of the same broker.
    /// </summary>
    public void WakeReconnect()
    {
        Volatile.Write(ref _wakeRequested, 1);
        var wait = Volatile.Read(ref _backoff);
        if (wait is null)
        {
            return;
        }

        try
        {
            wait.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The wait had just ended.
        }
    }

    /// <summary>Bytes sent since start per kind and lane, the byte budget and how long it held the replay back.</summary>
    public UplinkTrafficSnapshot Traffic => _traffic.Snapshot(_budget);

    /// <summary>The in-order acknowledged position (what the outbox has been or is about to be told).</summary>
    public long Position => _tracker?.Position ?? 0;

    /// <summary>Sessions that ended in failure since start (for tests).</summary>
    public int FailedSessions { get; private set; }

    /// <summary>Sessions the broker ended because another connection took the client id, since start.</summary>
    public UplinkTakeovers Takeovers => Volatile.Read(ref _takeovers);

    private UplinkTakeovers _takeovers = UplinkTakeovers.None;

    // Takeovers in a row: each waits longer (to ReconnectMaxDelay) though the connect itself succeeded, so two gateways
    // with one identity do not take the session from each other every second.
    private int _takeoverStreak;

    /// <summary>Sessions in a row the peer closed while our sends awaited their answers, nothing acknowledged in them, before sending one entry at a time.</summary>
    internal const int StalledSessionsBeforeIsolating = 2;

    /// <summary>Closes that follow an entry sent alone before it is refused for good (it was sent at least this many times more before).</summary>
    internal const int ClosesAloneToRefuse = 2;

    // A peer that closes the connection on one message (MQTT 3.1.1 has no refusal: a broker over its size limit or ACL
    // closes instead) stalled the outbox for ever, and the run of short sessions looked like a second gateway. After
    // StalledSessionsBeforeIsolating such sessions, entries up to _isolateThrough go one at a time; the one each close
    // then follows is refused for good like a PUBACK refusal. Only the pump's own sessions touch these.
    private int _stalledSessions;
    private long _isolateThrough;
    private readonly Dictionary<long, int> _closedAlone = [];

    /// <summary>Entries refused for closes in a row, nothing delivered between, after which closes are the broker's, not an entry's.</summary>
    internal const int RefusedOnCloseInARowLimit = 3;

    // A broker that closes on every publish of ours (a 3.1.1 ACL that forbids our topics, a limit below our smallest
    // message) would have the outbox refused entry by entry; past the limit the pump keeps the entries and backs off.
    private int _refusedOnCloseInARow;
    private int _closesOnEverythingStreak;

    /// <summary>Runs until <paramref name="stoppingToken"/> fires; reconnects with backoff on any failure.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        _outbox.RegisterUplink(_transport.Name);
        var start = _outbox.GetAcknowledged(_transport.Name);
        _tracker = new AckTracker(start);
        _written = start;
        _metrics.Position(start);

        using var ackCts = new CancellationTokenSource();
        var ackLoop = AckLoopAsync(ackCts.Token);
        var refusalLoop = _refusals.RunAsync(ackCts.Token);
        var attempt = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                IUplinkSession? session = null;
                var connected = false;
                var connectedAt = 0L;
                Volatile.Write(ref _wakeRequested, 0); // this attempt answers the wakes so far; a later one skips the next wait
                try
                {
                    using (var connectCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                    {
                        var connectTimeout = _options.ConnectTimeout * _transport.ConnectAttempts;
                        connectCts.CancelAfter(connectTimeout);
                        try
                        {
                            session = await _transport.ConnectAsync(connectCts.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (connectCts.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                        {
                            // Our timeout, not a stop: the log said only "A task was canceled." (Kafka behind a firewall that drops).
                            throw new TimeoutException($"no answer from {_transport.Peer} within {Durations.Format(connectTimeout)}");
                        }
                    }

                    // Outside the connect timeout: a Sparkplug primary host may be away for hours (the outbox keeps the entries).
                    await session.ReadyAsync(stoppingToken).ConfigureAwait(false);
                    connected = true;
                    connectedAt = _time.GetTimestamp();
                    attempt = 0;
                    _metrics.Connected(_tag);
                    _metrics.ConnectedTo(_transport.Name, _transport.Peer);
                    if (_connectFailures.Succeeded() is { } outage)
                    {
                        Log.ReachedAgain(_logger, _transport.Name, _transport.Peer, outage.Failures, Durations.Approximate(outage.Down));
                    }

                    try
                    {
                        await RunSessionAsync(session, stoppingToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        _metrics.ConnectedTo(_transport.Name, null);
                    }
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
                catch (UplinkLeavingException leaving) when (!stoppingToken.IsCancellationRequested)
                {
                    if (leaving is UplinkHostOfflineException)
                    {
                        _metrics.HostOffline(_tag);
                    }

                    // The transport logged why; the dispose publishes NDEATH and disconnects, and the next connection (on the
                    // next server after a Next Server command, else waiting for the host again) starts at once: no backoff,
                    // nothing refused, the outbox keeps what was not acknowledged.
                    await DisposeQuietlyAsync(session).ConfigureAwait(false);
                    session = null;
                }
                catch (Exception ex)
                {
                    _metrics.Failed(_tag);
                    var delay = Backoff(attempt++);
                    if (connected && _time.GetElapsedTime(connectedAt) >= TakeoverStreakReset)
                    {
                        _takeoverStreak = 0;
                    }

                    if (ex is UplinkTakenOverException)
                    {
                        delay = Backoff(_takeoverStreak++);
                    }
                    else if (ex is UplinkClosesOnEverythingException)
                    {
                        delay = Backoff(_closesOnEverythingStreak++);
                    }
                    else if (connected)
                    {
                        _takeoverStreak = 0;
                    }

                    var wait = Durations.Approximate(delay);
                    var expected = ConnectFailures.IsExpected(ex);
                    if (ex is UplinkTakenOverException)
                    {
                        FailedSessions++;
                        var taken = Volatile.Read(ref _takeovers);
                        Volatile.Write(ref _takeovers, new UplinkTakeovers(taken.Count + 1, _time.GetUtcNow(), ex.Message));
                        Log.SessionTakenOver(_logger, _transport.Name, ex.Message, taken.Count + 1, wait);
                    }
                    else if (connected)
                    {
                        FailedSessions++;
                        if (expected)
                        {
                            Log.SessionLost(_logger, _transport.Name, _transport.Peer, _tracker.Position, SessionLostReason(ex), wait);
                        }
                        else
                        {
                            Log.SessionFailed(_logger, ex, _transport.Name, _transport.Peer, _tracker.Position, wait);
                        }
                    }
                    else
                    {
                        LogConnectFailure(ex, expected, attempt, wait);
                    }

                    if (expected)
                    {
                        Log.FailureDetail(_logger, ex, _transport.Name, _transport.Peer);
                    }

                    await DisposeQuietlyAsync(session).ConfigureAwait(false);
                    session = null;
                    using var backoff = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    Volatile.Write(ref _backoff, backoff);
                    try
                    {
                        // A wake (the peer was seen reachable again) ends the wait early; the attempt count stays, so a
                        // peer that accepts TCP but refuses the client is not retried any faster than its wakes come.
                        if (Volatile.Read(ref _wakeRequested) == 0)
                        {
                            await Task.Delay(delay, _time, backoff.Token).ConfigureAwait(false);
                        }
                    }
                    catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                    {
                        break;
                    }
                    catch (OperationCanceledException)
                    {
                        Log.ReconnectWoken(_logger, _transport.Name, _transport.Peer);
                    }
                    finally
                    {
                        Volatile.Write(ref _backoff, null);
                    }
                }
                finally
                {
                    await DisposeQuietlyAsync(session).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await ackCts.CancelAsync().ConfigureAwait(false);
            try
            {
                await ackLoop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            try
            {
                await refusalLoop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            // Refusals not yet named by a data_gap: one bounded try now; what fails is refused and reported again after the restart.
            await _refusals.FlushAsync(CancellationToken.None).ConfigureAwait(false);

            // Last write of the position, outside the cancelled token but bounded.
            await FlushAckAsync(CancellationToken.None).ConfigureAwait(false);
            Log.Stopped(_logger, _transport.Name, _tracker.Position);
        }
    }

    private async Task RunSessionAsync(IUplinkSession session, CancellationToken stoppingToken)
    {
        var tracker = _tracker!;
        var window = Math.Min(_options.Window, session.PeerWindow is > 0 and var w ? w : int.MaxValue);
        var backlogWindow = _options.EffectiveBacklogWindow(window);
        using var sessionCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var abortCts = new CancellationTokenSource();
        var state = new SessionState(window, backlogWindow, sessionCts, abortCts);
        using var ending = session.Ending.Register(() => state.Fail(session.EndingCause));

        var position = tracker.Position;
        long head;
        try
        {
            head = await FindHeadAsync(position, sessionCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (state.Failure is UplinkLeavingException leaving && !stoppingToken.IsCancellationRequested)
        {
            throw leaving; // the host went offline (or asked for the next server) between the births and the first read
        }

        var held = head <= position ? 0 : _outbox is IOutboxStatistics statistics ? Math.Min(statistics.GetStats().Depth, head - position) : head - position;
        Log.Connected(_logger, _transport.Name, _transport.Peer, position, head, held);

        var bucket = _options.BacklogRatePerSecond > 0
            ? new TokenBucket(_options.BacklogRatePerSecond, Math.Max(1, Math.Min(_options.BacklogRatePerSecond / 10, backlogWindow)), _time)
            : null;
        state.Progress(_time.GetTimestamp());
        var backlog = RunLaneAsync(session, state, position, head, historical: true, bucket);
        var live = RunLaneAsync(session, state, head, long.MaxValue, historical: false, bucket: null);
        var watchdog = WatchAcknowledgementsAsync(state);
        var progress = session is IUplinkProgressSession { ReportsProgress: true } reporter
            ? ReportProgressAsync(reporter, backlog, head, sessionCts.Token)
            : Task.CompletedTask;
        try
        {
            await Task.WhenAll(backlog, live).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (state.Failure is not null && !stoppingToken.IsCancellationRequested)
        {
            // A send failed and cancelled the lanes: report that failure, not the cancellation.
        }
        finally
        {
            await sessionCts.CancelAsync().ConfigureAwait(false);
            if (state.Failure is not null)
            {
                await abortCts.CancelAsync().ConfigureAwait(false);
            }

            // On a clean stop, give what is in flight its acknowledgement (fewer resends after restart); after a failure
            // the aborted sends finish at once. Either way every send of this session has answered before the next
            // session reads the tracker.
            await state.WaitForDrainAsync(_options.AckTimeout).ConfigureAwait(false);
            await abortCts.CancelAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);
            await progress.ConfigureAwait(false);
            if (state.Deliveries > 0)
            {
                _refusedOnCloseInARow = 0;
                _closesOnEverythingStreak = 0;
                Volatile.Write(ref _closesOnEveryEntrySince, null);
            }
        }

        if (state.Failure is UplinkLeavingException leavingNow && !stoppingToken.IsCancellationRequested)
        {
            throw leavingNow;
        }

        if (state.Failure is { } failure && !stoppingToken.IsCancellationRequested)
        {
            var closedAwaiting = state.ClosedAwaiting();
            var isolating = Volatile.Read(ref _isolateThrough) > position;
            var closedOnOurSend = closedAwaiting.Count > 0 && (state.Answers == 0 || (isolating && closedAwaiting.Count == 1));
            if (await session.EndedByPeerAsync(closedOnOurSend).ConfigureAwait(false) is UplinkTakenOverException takenOver)
            {
                throw new UplinkTakenOverException(takenOver.Message, failure);
            }

            if (SessionClosedOnSends(closedAwaiting, closedOnOurSend, isolating))
            {
                throw new UplinkClosesOnEverythingException($"Uplink {_transport.Name}: {_transport.Peer} closes the connection on every entry sent", failure);
            }

            throw new UplinkSessionException($"Uplink {_transport.Name}: sending to {_transport.Peer} failed", failure);
        }

        stoppingToken.ThrowIfCancellationRequested();
    }

    private async Task RunLaneAsync(IUplinkSession session, SessionState state, long after, long until, bool historical, TokenBucket? bucket)
    {
        // An outbox that answers synchronously must not run both lanes on the caller's thread.
        await Task.Yield();
        var tracker = _tracker!;
        var ct = state.Lanes.Token;
        var cursor = after;
        var emptyAfterWait = 0;
        Task<IReadOnlyList<OutboxEntry>>? prefetch = null;
        try
        {
            while (cursor < until)
            {
                var batch = prefetch is not null
                    ? await prefetch.ConfigureAwait(false)
                    : await _outbox.ReadAsync(_transport.Name, cursor, _options.ReadBatch, ct).ConfigureAwait(false);
                prefetch = null;
                if (batch.Count == _options.ReadBatch && batch[^1].Sequence < until)
                {
                    // A full batch, so more is waiting: read the next one (on the outbox's own thread) while this one goes out.
                    prefetch = _outbox.ReadAsync(_transport.Name, batch[^1].Sequence, _options.ReadBatch, ct).AsTask();
                }

                if (batch.Count == 0)
                {
                    if (until != long.MaxValue)
                    {
                        // The rest of the backlog is gone from the outbox (condensed or dropped under the disk budget).
                        Complete(tracker.Complete(cursor + 1, until));
                        break;
                    }

                    if (emptyAfterWait > 0)
                    {
                        // The outbox said there are entries after the cursor, yet none can be read: the newest ones were
                        // condensed away. Waiting again would return at once, so back off instead of spinning.
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 5 << Math.Min(emptyAfterWait, 7))), _time, ct).ConfigureAwait(false);
                    }

                    await _outbox.WaitForEntriesAsync(cursor, ct).ConfigureAwait(false);
                    emptyAfterWait++;
                    continue;
                }

                emptyAfterWait = 0;

                foreach (var entry in batch)
                {
                    var sequence = entry.Sequence;
                    if (sequence > until)
                    {
                        Complete(tracker.Complete(cursor + 1, until));
                        cursor = until;
                        break;
                    }

                    if (sequence > cursor + 1)
                    {
                        // Sequences the outbox no longer holds (condensed): nothing to send, so nothing to wait for.
                        Complete(tracker.Complete(cursor + 1, sequence - 1));
                    }

                    cursor = sequence;
                    if (tracker.IsComplete(sequence) || _refusals.IsWaiting(sequence))
                    {
                        // Acknowledged on an earlier connection, or refused for good there and waiting for its data_gap:
                        // sent again it would only be refused again, once per reconnect (and mosquitto 2.0.11 with
                        // max_queued_messages 0 drops the connection after every refusal).
                        continue;
                    }

                    if (bucket is not null)
                    {
                        await bucket.TakeAsync(ct).ConfigureAwait(false);
                    }

                    if (historical && _budget is not null)
                    {
                        // Only the backlog waits for the byte budget: live entries (alerts, predictions) never do.
                        await _budget.WaitAsync(ct).ConfigureAwait(false);
                    }

                    if (historical)
                    {
                        await state.BacklogSlots.WaitAsync(ct).ConfigureAwait(false);
                    }

                    try
                    {
                        await state.Slots.WaitAsync(ct).ConfigureAwait(false);
                    }
                    catch
                    {
                        if (historical)
                        {
                            state.BacklogSlots.Release();
                        }

                        throw;
                    }

                    var alone = IsIsolating(tracker);
                    if (alone)
                    {
                        try
                        {
                            await state.Alone.WaitAsync(ct).ConfigureAwait(false);
                        }
                        catch
                        {
                            state.Slots.Release();
                            if (historical)
                            {
                                state.BacklogSlots.Release();
                            }

                            throw;
                        }
                    }

                    Send(session, state, entry, historical, alone);
                }
            }
        }
        finally
        {
            // A read started for a batch the lane no longer needs (stopped, or the backlog ended): observe its outcome.
            _ = prefetch?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        if (historical)
        {
            Log.BacklogDone(_logger, _transport.Name, until);
        }
    }

    private void Send(IUplinkSession session, SessionState state, OutboxEntry entry, bool historical, bool alone)
    {
        var started = _time.GetTimestamp();
        if (state.Started() == 1)
        {
            // The clock of the watchdog starts with the first outstanding send, not at the last answer (maybe long ago).
            state.Progress(started);
        }

        _metrics.Sent(_tag, historical);
        Task<DeliveryOutcome> task;
        try
        {
            // No timer per message (that cost a third of the replay rate): the session watchdog fails the session
            // when nothing was acknowledged for AckTimeout while sends were outstanding.
            task = session.SendAsync(entry, historical, out var bytes, state.Abort.Token);
            if (bytes > 0)
            {
                _budget?.Spend(bytes);
                var kind = UplinkTraffic.Classify(entry.Record);
                _traffic.Add(kind, historical, bytes);
                _metrics.Bytes(_tag, kind, historical, bytes);
            }
        }
        catch (Exception ex)
        {
            task = Task.FromException<DeliveryOutcome>(ex);
        }

        _ = task.ContinueWith(
            (t, _) => Answered(state, entry, historical, alone, started, t), null, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void Answered(SessionState state, OutboxEntry entry, bool historical, bool alone, long started, Task<DeliveryOutcome> task)
    {
        try
        {
            if (task.IsCompletedSuccessfully)
            {
                var outcome = task.Result;
                state.Answered(delivered: !outcome.IsRejected);
                if (!outcome.IsRejected && Volatile.Read(ref _closesOnEveryEntrySince) is not null)
                {
                    Volatile.Write(ref _closesOnEveryEntrySince, null); // the peer takes entries again (the counters reset at the session's end)
                }

                _metrics.Answered(_tag, outcome, _time.GetElapsedTime(started).TotalMilliseconds);
                if (!outcome.IsRejected)
                {
                    Complete(_tracker!.Complete(entry.Sequence));
                }
                else if (RefusalReporter.IsDataGap(entry))
                {
                    // Reporting it by another data_gap could loop (the peer refuses those the same way): log and count only.
                    Log.RejectedDataGap(_logger, _transport.Name, _transport.Peer, entry.Sequence, outcome.Reason ?? "refused");
                    _refusals.Add(Refusal(entry, outcome), report: false);
                    Complete(_tracker!.Complete(entry.Sequence));
                }
                else
                {
                    // Done for this uplink once the data_gap naming it is in the outbox (Reported), not before: a crash in
                    // between sends it again after the restart, and the refusal is reported then.
                    Log.Rejected(_logger, _transport.Name, _transport.Peer, entry.Sequence, entry.Record.Kind.ToString(), entry.Record.DeviceId, outcome.Reason ?? "refused");
                    _refusals.Add(Refusal(entry, outcome), report: true);
                }
            }
            else
            {
                _metrics.SendFailed();
                var failure = task.Exception?.GetBaseException();
                if (failure is UplinkPeerClosedException closed)
                {
                    state.ClosedWhileAwaiting(entry, closed);
                }

                state.Fail(failure ?? new OperationCanceledException($"Acknowledgement of entry {entry.Sequence} timed out"));
            }
        }
        finally
        {
            state.Progress(_time.GetTimestamp());
            state.Slots.Release();
            if (historical)
            {
                state.BacklogSlots.Release();
            }

            if (alone)
            {
                state.Alone.Release();
            }

            state.Finished();
        }
    }

    /// <summary>True while entries go one at a time to find the one the peer closes the connection on; logs the end of it once.</summary>
    private bool IsIsolating(AckTracker tracker)
    {
        var through = Volatile.Read(ref _isolateThrough);
        if (through == 0)
        {
            return false; // per send: the tracker's lock only while isolating
        }

        if (tracker.Position < through)
        {
            return true;
        }

        if (Interlocked.CompareExchange(ref _isolateThrough, 0, through) == through)
        {
            Log.IsolationEnded(_logger, _transport.Name, _transport.Peer, through);
        }

        return false;
    }

    /// <summary>
    /// After a failed session: counts sessions the peer closed on our sends with nothing acknowledged, starts sending one
    /// entry at a time after <see cref="StalledSessionsBeforeIsolating"/> of them, and refuses for good the entry that
    /// closes followed each time it went alone.
    /// </summary>
    /// <returns>True when the peer closes on every entry (<see cref="RefusedOnCloseInARowLimit"/>): nothing was refused, back off.</returns>
    private bool SessionClosedOnSends(IReadOnlyList<(OutboxEntry Entry, UplinkPeerClosedException Close)> closedAwaiting, bool closedOnOurSend, bool isolating)
    {
        if (!closedOnOurSend)
        {
            _stalledSessions = 0;
            return false;
        }

        if (isolating)
        {
            if (closedAwaiting.Count != 1)
            {
                return false;
            }

            var (entry, close) = closedAwaiting[0];
            var closes = _closedAlone[entry.Sequence] = _closedAlone.GetValueOrDefault(entry.Sequence) + 1;
            if (closes < ClosesAloneToRefuse)
            {
                Log.ClosedOnEntryAlone(_logger, _transport.Name, _transport.Peer, entry.Sequence, closes, ClosesAloneToRefuse);
                return false;
            }

            if (_refusedOnCloseInARow >= RefusedOnCloseInARowLimit)
            {
                if (Volatile.Read(ref _closesOnEveryEntrySince) is null)
                {
                    Volatile.Write(ref _closesOnEveryEntrySince, _time.GetUtcNow());
                }

                if (_closesOnEverythingStreak % 20 == 0)
                {
                    Log.ClosesOnEverything(_logger, _transport.Name, _transport.Peer, _refusedOnCloseInARow, entry.Sequence, _closesOnEverythingStreak + 1);
                }

                return true;
            }

            _refusedOnCloseInARow++;
            _closedAlone.Remove(entry.Sequence);
            var outcome = DeliveryOutcome.Refused(
                $"the peer closed the connection each time this entry was sent: {closes} times alone, after {StalledSessionsBeforeIsolating} sessions it closed with this entry among others " +
                $"awaiting their answers ({close.Message}); an MQTT 3.1.1 broker refuses so a publish over its maximum packet size or forbidden by its ACL",
                close.Topic, close.Size);
            Log.Rejected(_logger, _transport.Name, _transport.Peer, entry.Sequence, entry.Record.Kind.ToString(), entry.Record.DeviceId, outcome.Reason!);
            _refusals.Add(Refusal(entry, outcome), report: !RefusalReporter.IsDataGap(entry));
            if (RefusalReporter.IsDataGap(entry))
            {
                Complete(_tracker!.Complete(entry.Sequence));
            }

            return false;
        }

        if (++_stalledSessions < StalledSessionsBeforeIsolating)
        {
            return false;
        }

        _stalledSessions = 0;
        _closedAlone.Clear();
        var through = closedAwaiting.Max(c => c.Entry.Sequence);
        Volatile.Write(ref _isolateThrough, through);
        Log.Isolating(_logger, _transport.Name, _transport.Peer, StalledSessionsBeforeIsolating, _tracker!.Position, closedAwaiting.Count, through);
        return false;
    }

    private Refusal Refusal(OutboxEntry entry, DeliveryOutcome outcome) =>
        new(entry, outcome.Reason ?? "refused", outcome.Topic, outcome.Size ?? entry.Record.Payload.Length, _time.GetUtcNow());

    /// <summary>The refused entries a data_gap event now names are done for this uplink.</summary>
    private void Reported(IReadOnlyList<long> sequences)
    {
        foreach (var sequence in sequences)
        {
            Complete(_tracker!.Complete(sequence));
        }
    }

    /// <summary>
    /// Tells the centre where this uplink stands: right after connecting (the head the backlog replay goes up to and how
    /// much it holds), once the backlog is replayed and acknowledged (<c>backlog: 0</c>: the centre can close its books on
    /// the outage), then every <see cref="DeliveryOptions.ProgressInterval"/> (the acknowledged sequence, so loss at the
    /// tail of a stream shows). A failed status publish is logged; the data sends decide whether the session is broken.
    /// </summary>
    private async Task ReportProgressAsync(IUplinkProgressSession session, Task backlog, long head, CancellationToken cancellationToken)
    {
        var tracker = _tracker!;
        try
        {
            // Judged by what the first status said, not by the position now: the backlog may be acknowledged while that
            // status is on its way (a Kafka status waits for its delivery report), and then the closing status was never
            // published — a consumer waited a ProgressInterval (never, with 0) to close its books on the outage.
            var reported = await PublishProgressAsync(session, head, cancellationToken).ConfigureAwait(false);
            if (reported < head)
            {
                // The lane has sent everything up to the head; its last acknowledgements may still be on their way.
                try
                {
                    await backlog.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception) when (!cancellationToken.IsCancellationRequested)
                {
                    return; // the lane failed: the session ends and the next one reports
                }

                while (tracker.Position < head)
                {
                    await Task.Delay(ProgressPoll, _time, cancellationToken).ConfigureAwait(false);
                }

                await PublishProgressAsync(session, head, cancellationToken).ConfigureAwait(false);
                Log.ReplayComplete(_logger, _transport.Name, head, tracker.Position);
            }

            if (_options.ProgressInterval <= TimeSpan.Zero)
            {
                return;
            }

            using var timer = new PeriodicTimer(_options.ProgressInterval, _time);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                await PublishProgressAsync(session, head, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static readonly TimeSpan ProgressPoll = TimeSpan.FromMilliseconds(50);

    /// <summary>Publishes the progress; returns the acknowledged position it reported.</summary>
    private async Task<long> PublishProgressAsync(IUplinkProgressSession session, long head, CancellationToken cancellationToken)
    {
        var position = _tracker!.Position;
        var progress = new UplinkProgress(position, head, Math.Max(0, head - position));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.AckTimeout);
        try
        {
            await session.PublishProgressAsync(progress, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException && ConnectFailures.IsExpected(ex))
        {
            // The session going away fails its status too (a broker stopped between two statuses): one line with the
            // reason, as for the session itself. It carried MQTTnet's stack trace at every broker outage.
            Log.ProgressNotPublished(_logger, _transport.Name, _transport.Peer, position, ConnectFailures.Describe(ex));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.ProgressFailed(_logger, ex, _transport.Name, _transport.Peer, position);
        }

        return position;
    }

    /// <summary>Fails the session when sends are outstanding and none was answered for <see cref="DeliveryOptions.AckTimeout"/>.</summary>
    private async Task WatchAcknowledgementsAsync(SessionState state)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_options.AckTimeout.TotalMilliseconds / 4, 10, 1000));
        try
        {
            while (!state.Abort.IsCancellationRequested)
            {
                await Task.Delay(period, _time, state.Abort.Token).ConfigureAwait(false);
                if (state.InFlight > 0 && _time.GetElapsedTime(state.LastProgress) > _options.AckTimeout)
                {
                    state.Fail(new TimeoutException($"No acknowledgement from {_transport.Peer} for {_options.AckTimeout} with {state.InFlight} messages in flight"));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Complete(long position)
    {
        if (position > Volatile.Read(ref _written))
        {
            _ackSignal.Writer.TryWrite(true);
        }
    }

    private async Task AckLoopAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await _ackSignal.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            await FlushAckAsync(cancellationToken).ConfigureAwait(false);
            if (_options.AckFlushInterval > TimeSpan.Zero)
            {
                // Spares the outbox (an SD card) a write per message; a crash resends at most this much.
                await Task.Delay(_options.AckFlushInterval, _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task FlushAckAsync(CancellationToken cancellationToken)
    {
        var position = _tracker!.Position;
        if (position <= Volatile.Read(ref _written))
        {
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(_options.OutboxTimeout);
        try
        {
            await _outbox.AcknowledgeAsync(_transport.Name, position, cts.Token).ConfigureAwait(false);
            Volatile.Write(ref _written, position);
            _metrics.Position(position);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Log.AckWriteFailed(_logger, ex, _transport.Name, position);
        }
    }

    /// <summary>The highest sequence in the outbox, by galloping then bisecting with one-entry reads.</summary>
    internal async Task<long> FindHeadAsync(long after, CancellationToken cancellationToken)
    {
        var first = await _outbox.ReadAsync(_transport.Name, after, 1, cancellationToken).ConfigureAwait(false);
        if (first.Count == 0)
        {
            return after;
        }

        var known = first[0].Sequence; // the head is at least this
        long step = 256;
        long upper; // the head is below this
        while (true)
        {
            var probe = await _outbox.ReadAsync(_transport.Name, known + step - 1, 1, cancellationToken).ConfigureAwait(false);
            if (probe.Count == 0)
            {
                upper = known + step;
                break;
            }

            known = probe[0].Sequence;
            step *= 2;
        }

        while (upper - known > 1)
        {
            var mid = known + ((upper - known) / 2);
            var probe = await _outbox.ReadAsync(_transport.Name, mid - 1, 1, cancellationToken).ConfigureAwait(false);
            if (probe.Count == 0)
            {
                upper = mid;
            }
            else
            {
                known = probe[0].Sequence;
            }
        }

        return known;
    }

    /// <summary>
    /// Why a session was lost, for the line that already names the uplink and its peer: our own send wrapper's message
    /// repeated both ("lost its session with mqtt://… : Uplink mqtt: sending to mqtt://… failed: …").
    /// </summary>
    internal static string SessionLostReason(Exception ex) =>
        ex is UplinkSessionException { InnerException: { } met } ? "sending failed: " + ConnectFailures.Describe(met) : ConnectFailures.Describe(ex);

    /// <summary>A failed connect, through the outage's rate limit: the first few and then one line per reason change or few minutes.</summary>
    private void LogConnectFailure(Exception ex, bool expected, int attempt, string wait)
    {
        var reason = expected ? ConnectFailures.Describe(ex) : ex.GetType().FullName + ": " + ex.Message;
        var line = _connectFailures.Failed(reason);
        switch (line.Kind)
        {
            case FailureLineKind.Log when line.Unlogged > 0:
                Log.StillCannotConnect(_logger, expected ? null : ex, _transport.Name, _transport.Peer, attempt, Durations.Approximate(line.Down), line.Unlogged, expected ? reason : ex.Message, wait);
                break;
            case FailureLineKind.Log when expected:
                Log.ConnectRefused(_logger, _transport.Name, _transport.Peer, attempt, reason, wait);
                break;
            case FailureLineKind.Log:
                Log.ConnectFailed(_logger, ex, _transport.Name, _transport.Peer, attempt, wait);
                break;
            case FailureLineKind.QuietFromNow:
                Log.ConnectFailuresQuiet(_logger, _transport.Name, _transport.Peer, Durations.Approximate(_connectFailures.Every));
                break;
        }
    }

    /// <summary>A session that lasted this long ends a streak of takeovers (the other gateway was stopped meanwhile).</summary>
    private static readonly TimeSpan TakeoverStreakReset = TimeSpan.FromMinutes(5);

    private TimeSpan Backoff(int attempt)
    {
        var baseMs = _options.ReconnectInitialDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20));
        var capped = Math.Min(baseMs, _options.ReconnectMaxDelay.TotalMilliseconds);
        // ±20 % jitter so a fleet of gateways does not reconnect in lockstep after a broker restart.
        return TimeSpan.FromMilliseconds(capped * (0.8 + (Random.Shared.NextDouble() * 0.4)));
    }

    private async Task DisposeQuietlyAsync(IUplinkSession? session)
    {
        if (session is null)
        {
            return;
        }

        try
        {
            await session.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.CloseFailed(_logger, ex, _transport.Name, _transport.Peer);
        }
    }

    private sealed class SessionState(int window, int backlogWindow, CancellationTokenSource lanes, CancellationTokenSource abort)
    {
        private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _inFlight;
        private int _draining;
        private Exception? _failure;

        public WindowGate Slots { get; } = new(window);

        public WindowGate BacklogSlots { get; } = new(backlogWindow);

        private int _answers;

        /// <summary>Answers (acknowledgements and refusals) the peer gave in this session.</summary>
        public int Answers => Volatile.Read(ref _answers);

        private int _deliveries;

        /// <summary>Entries the peer acknowledged as delivered in this session.</summary>
        public int Deliveries => Volatile.Read(ref _deliveries);

        public void Answered(bool delivered)
        {
            Interlocked.Increment(ref _answers);
            if (delivered)
            {
                Interlocked.Increment(ref _deliveries);
            }
        }

        /// <summary>The one slot of entries sent alone (<see cref="IsIsolating"/>).</summary>
        public WindowGate Alone { get; } = new(1);

        private List<(OutboxEntry, UplinkPeerClosedException)>? _closedAwaiting; // under its own lock; only on a close

        public void ClosedWhileAwaiting(OutboxEntry entry, UplinkPeerClosedException close)
        {
            var list = LazyInitializer.EnsureInitialized(ref _closedAwaiting);
            lock (list)
            {
                list.Add((entry, close));
            }
        }

        /// <summary>The entries that awaited their answers when the peer closed the connection, in sequence order.</summary>
        public IReadOnlyList<(OutboxEntry Entry, UplinkPeerClosedException Close)> ClosedAwaiting()
        {
            var list = Volatile.Read(ref _closedAwaiting);
            if (list is null)
            {
                return [];
            }

            lock (list)
            {
                return [.. list.OrderBy(c => c.Item1.Sequence)];
            }
        }

        /// <summary>Stops reading and sending (stop requested or a send failed).</summary>
        public CancellationTokenSource Lanes => lanes;

        /// <summary>Abandons the acknowledgements still awaited (a send failed, or the drain timed out).</summary>
        public CancellationTokenSource Abort => abort;

        public Exception? Failure => Volatile.Read(ref _failure);

        private long _lastProgress;

        public int InFlight => Volatile.Read(ref _inFlight);

        public long LastProgress => Volatile.Read(ref _lastProgress);

        public void Progress(long timestamp) => Volatile.Write(ref _lastProgress, timestamp);

        public int Started() => Interlocked.Increment(ref _inFlight);

        public void Finished()
        {
            if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _draining) == 1)
            {
                _drained.TrySetResult();
            }
        }

        public void Fail(Exception exception)
        {
            if (Interlocked.CompareExchange(ref _failure, exception, null) is null)
            {
                try
                {
                    lanes.Cancel();
                    abort.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }

        public async Task WaitForDrainAsync(TimeSpan timeout)
        {
            Volatile.Write(ref _draining, 1);
            if (Volatile.Read(ref _inFlight) == 0)
            {
                return;
            }

            await Task.WhenAny(_drained.Task, Task.Delay(timeout)).ConfigureAwait(false);
        }
    }
}

/// <summary>A connection that was up failed while sending.</summary>
public sealed class UplinkSessionException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The peer closed the connection on every entry sent alone, <see cref="UplinkPump.RefusedOnCloseInARowLimit"/> refused
/// in a row with nothing delivered: the broker's ACL or limits, not the entries. The entries are kept; the pump backs off.
/// </summary>
public sealed class UplinkClosesOnEverythingException(string message, Exception inner) : Exception(message, inner);
