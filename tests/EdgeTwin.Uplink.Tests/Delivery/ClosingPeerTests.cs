using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Delivery;

/// <summary>
/// A peer that answers each message after a short delay, unless <see cref="ClosesOn"/> or <see cref="CloseAfterAnswers"/>
/// makes it close the connection: then every message awaiting its answer fails as the MQTT transport fails it
/// (<see cref="UplinkPeerClosedException"/>), and later sends fail as not connected.
/// </summary>
internal sealed class ClosingPeer : IUplinkTransport
{
    private readonly Lock _gate = new();
    private int _inFlight;

    public string Name => "closing";

    public string Peer => "closing://peer";

    /// <summary>Entries the peer closes the connection on when it reads them.</summary>
    public Func<long, bool> ClosesOn { get; set; } = _ => false;

    /// <summary>Closes the connection after this many answers in one session (a flaky link); 0: never.</summary>
    public int CloseAfterAnswers { get; init; }

    public int Connects;

    /// <summary>The most messages that awaited their answers at once, after <see cref="ResetMaxInFlight"/>.</summary>
    public int MaxInFlight;

    public List<bool> EndedOnOurSend { get; } = [];

    public List<long> Delivered { get; } = [];

    public void ResetMaxInFlight()
    {
        lock (_gate)
        {
            MaxInFlight = _inFlight;
        }
    }

    public Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Connects);
        return Task.FromResult<IUplinkSession>(new Session(this));
    }

    private sealed class Session(ClosingPeer peer) : IUplinkSession
    {
        private readonly List<TaskCompletionSource<DeliveryOutcome>> _awaiting = [];
        private bool _closed;
        private int _answers;

        public int? PeerWindow => null;

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken)
        {
            var answer = new TaskCompletionSource<DeliveryOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (peer._gate)
            {
                if (_closed)
                {
                    return Task.FromException<DeliveryOutcome>(new IOException("not connected"));
                }

                _awaiting.Add(answer);
                peer._inFlight++;
                peer.MaxInFlight = Math.Max(peer.MaxInFlight, peer._inFlight);
                if (peer.ClosesOn(entry.Sequence))
                {
                    Close();
                    return answer.Task;
                }
            }

            _ = AnswerLaterAsync(entry.Sequence, answer);
            return answer.Task;
        }

        private async Task AnswerLaterAsync(long sequence, TaskCompletionSource<DeliveryOutcome> answer)
        {
            await Task.Delay(2);
            lock (peer._gate)
            {
                if (_closed)
                {
                    return;
                }

                _awaiting.Remove(answer);
                peer._inFlight--;
                peer.Delivered.Add(sequence);
                answer.TrySetResult(DeliveryOutcome.Delivered);
                if (peer.CloseAfterAnswers > 0 && ++_answers >= peer.CloseAfterAnswers)
                {
                    Close();
                }
            }
        }

        private void Close()
        {
            _closed = true;
            foreach (var awaiting in _awaiting)
            {
                peer._inFlight--;
                awaiting.TrySetException(new UplinkPeerClosedException("closing://peer closed the connection", "t", 10, new IOException("connection reset by peer")));
            }

            _awaiting.Clear();
        }

        public ValueTask<Exception?> EndedByPeerAsync(bool closedOnOurSend)
        {
            lock (peer._gate)
            {
                peer.EndedOnOurSend.Add(closedOnOurSend);
            }

            return ValueTask.FromResult<Exception?>(null);
        }

        public ValueTask DisposeAsync()
        {
            lock (peer._gate)
            {
                if (!_closed)
                {
                    Close();
                }
            }

            return ValueTask.CompletedTask;
        }
    }
}

public sealed class ClosingPeerTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    private static UplinkPump Pump(IOutbox outbox, ClosingPeer peer) =>
        UplinkPumpTests.Pump(outbox, peer, UplinkPumpTests.Fast with { RefusalBatchDelay = TimeSpan.FromMilliseconds(20) });

    [Fact]
    public async Task The_entry_the_peer_closes_on_is_found_by_sending_alone_and_refused_and_the_window_opens_after_it()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 300).Select(i => Record("d", i))], CancellationToken.None);
        var peer = new ClosingPeer { ClosesOn = s => s == 57 };
        var pump = Pump(outbox, peer);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        // 300 entries, 57 refused, 301 the data_gap naming it.
        await WaitForPositionAsync(() => outbox.GetAcknowledged("closing"), 301, Long);
        Assert.Equal(1, pump.Rejections.Count);
        Assert.Equal(57, pump.Rejections.LastSequence);
        Assert.Contains("closed the connection each time this entry was sent: 2 times alone", pump.Rejections.LastReason);
        Assert.Equal(Enumerable.Range(1, 301).Select(i => (long)i).Where(s => s != 57), peer.Delivered.Distinct().Order());
        var gap = (await outbox.ReadAsync("x", 300, 1, CancellationToken.None)).Single();
        Assert.Contains("\"seqs\":\"57\"", System.Text.Encoding.UTF8.GetString(gap.Record.Payload.Span));

        // Sessions that got answers before 57 closed them count for nothing; then two closed with nothing answered, and two
        // with 57 alone: each of those four told the transport that the close answered our send (no takeover sign).
        Assert.Equal(peer.EndedOnOurSend.Count + 1, peer.Connects);
        Assert.Equal([true, true, true, true], peer.EndedOnOurSend.TakeLast(4));
        Assert.DoesNotContain(true, peer.EndedOnOurSend.SkipLast(4));

        // Past the entries awaiting at the last close with others, the window is open again.
        peer.ResetMaxInFlight();
        await outbox.AppendAsync([.. Enumerable.Range(0, 400).Select(i => Record("live", i))], CancellationToken.None);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("closing"), 701, Long);
        Assert.True(peer.MaxInFlight > 1, $"at most {peer.MaxInFlight} in flight after the refused entry");
        await cts.CancelAsync();
        await run;
    }

    /// <summary>A link that drops every session after some answers (each session gets further): no entry is ever suspected.</summary>
    [Fact]
    public async Task Closes_after_progress_never_refuse_an_entry()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 200).Select(i => Record("d", i))], CancellationToken.None);
        var peer = new ClosingPeer { CloseAfterAnswers = 25 };
        var pump = Pump(outbox, peer);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        await WaitForPositionAsync(() => outbox.GetAcknowledged("closing"), 200, Long);
        Assert.Equal(0, pump.Rejections.Count);
        Assert.True(peer.Connects >= 8, $"{peer.Connects} sessions");
        Assert.DoesNotContain(true, peer.EndedOnOurSend);
        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// A peer that closes on two entries in one window: each is found alone in turn and refused, and nothing else is.
    /// </summary>
    [Fact]
    public async Task Two_entries_the_peer_closes_on_are_both_found_and_nothing_else_is_refused()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 60).Select(i => Record("d", i))], CancellationToken.None);
        var peer = new ClosingPeer { ClosesOn = s => s is 10 or 13 };
        var pump = Pump(outbox, peer);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        // 60 entries, 10 and 13 refused; their data_gaps (one or two) follow.
        await WaitForPositionAsync(() => outbox.GetAcknowledged("closing"), 61, Long);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("closing"), outbox.LastSequence, Long);
        Assert.Equal(2, pump.Rejections.Count);
        Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i).Where(s => s is not 10 and not 13), peer.Delivered.Distinct().Where(s => s <= 60).Order());
        await cts.CancelAsync();
        await run;
    }

    /// <summary>
    /// A 3.1.1 broker whose ACL forbids our topics closes the connection on every publish: the pump refused the outbox
    /// entry by entry, each named by a data_gap that could not be delivered either. After three such refusals in a row
    /// with nothing delivered, it stops refusing and backs off; once the broker takes publishes again, every entry kept
    /// is delivered.
    /// </summary>
    [Fact]
    public async Task Regression_a_broker_closing_on_every_publish_had_the_outbox_refused_entry_by_entry()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 30).Select(i => Record("d", i))], CancellationToken.None);
        var peer = new ClosingPeer { ClosesOn = _ => true };
        var pump = Pump(outbox, peer);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        await WaitUntilAsync(() => pump.Rejections.Count == UplinkPump.RefusedOnCloseInARowLimit, "the first refusals");
        var connects = peer.Connects;
        await WaitUntilAsync(() => peer.Connects >= connects + 12, "more sessions");
        Assert.Equal(UplinkPump.RefusedOnCloseInARowLimit, pump.Rejections.Count);
        Assert.Empty(peer.Delivered);
        Assert.NotNull(pump.Rejections.ClosesOnEveryEntrySince); // edgetwin status says so

        peer.ClosesOn = _ => false;
        await WaitForPositionAsync(() => outbox.GetAcknowledged("closing"), outbox.LastSequence, Long);
        Assert.Equal(UplinkPump.RefusedOnCloseInARowLimit, pump.Rejections.Count);
        Assert.Equal(30 - UplinkPump.RefusedOnCloseInARowLimit, peer.Delivered.Distinct().Count(s => s <= 30));
        Assert.Null(pump.Rejections.ClosesOnEveryEntrySince);
        await cts.CancelAsync();
        await run;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Long;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
