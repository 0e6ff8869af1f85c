using System.Collections.Concurrent;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Delivery;

/// <summary>
/// A peer under the test's control: it records what was sent and answers only when told to, in any order.
/// </summary>
internal sealed class ScriptedTransport : IUplinkTransport
{
    public ConcurrentQueue<(long Sequence, bool Historical, TaskCompletionSource<DeliveryOutcome> Answer)> Pending { get; } = new();

    public ConcurrentQueue<(long Sequence, bool Historical)> Sent { get; } = new();

    public int Connects;

    public string Name => "scripted";

    public string Peer => "scripted://peer";

    public int? Window { get; init; }

    public Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Connects);
        return Task.FromResult<IUplinkSession>(new Session(this));
    }

    private sealed class Session(ScriptedTransport t) : IUplinkSession
    {
        public int? PeerWindow => t.Window;

        public Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken)
        {
            var tcs = new TaskCompletionSource<DeliveryOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
            cancellationToken.Register(() => tcs.TrySetCanceled(cancellationToken));
            t.Sent.Enqueue((entry.Sequence, historical));
            t.Pending.Enqueue((entry.Sequence, historical, tcs));
            return tcs.Task;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

public sealed class UplinkPumpTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    internal static DeliveryOptions Fast => new()
    {
        Window = 40, // the backlog lane may use 20: room for every test backlog below
        BacklogRatePerSecond = 0,
        AckFlushInterval = TimeSpan.Zero,
        ReconnectInitialDelay = TimeSpan.FromMilliseconds(10),
        ReconnectMaxDelay = TimeSpan.FromMilliseconds(50),
    };

    internal static UplinkPump Pump(IOutbox outbox, IUplinkTransport transport, DeliveryOptions? options = null) =>
        new(outbox, transport, options ?? Fast, TimeProvider.System, NullLogger.Instance, new UplinkMetrics(), new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"));

    private static async Task<List<(long Sequence, bool Historical, TaskCompletionSource<DeliveryOutcome> Answer)>> TakePendingAsync(ScriptedTransport t, int count)
    {
        var taken = new List<(long, bool, TaskCompletionSource<DeliveryOutcome>)>();
        var deadline = DateTime.UtcNow + Long;
        while (taken.Count < count)
        {
            if (t.Pending.TryDequeue(out var p))
            {
                taken.Add(p);
            }
            else if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"only {taken.Count} of {count} sends happened");
            }
            else
            {
                await Task.Delay(5, TestContext.Current.CancellationToken);
            }
        }

        return taken;
    }

    [Fact]
    public async Task Acks_arriving_in_reverse_order_advance_the_outbox_in_order()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(i => Record("d", i))], CancellationToken.None);
        var transport = new ScriptedTransport();
        var pump = Pump(outbox, transport);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        var pending = await TakePendingAsync(transport, 10);
        foreach (var p in pending.OrderByDescending(p => p.Sequence).Take(9))
        {
            p.Answer.SetResult(DeliveryOutcome.Delivered);
        }

        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(0, outbox.GetAcknowledged("scripted")); // sequence 1 still unanswered: nothing may be acknowledged
        pending.Single(p => p.Sequence == 1).Answer.SetResult(DeliveryOutcome.Delivered);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("scripted"), 10, Long);
        var acks = outbox.AckLog.Select(a => a.Sequence).ToList();
        Assert.Equal(acks.Order(), acks);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Window_caps_messages_in_flight_and_the_peer_receive_maximum_lowers_it()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 100).Select(i => Record("d", i))], CancellationToken.None);
        var transport = new ScriptedTransport { Window = 6 };
        var pump = Pump(outbox, transport);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        // All 100 are backlog; the backlog lane may hold three quarters of the peer's window of 6 (6 - 6/4 = 5).
        await TakePendingAsync(transport, 5);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(5, transport.Sent.Count);

        // A live entry still gets a slot although the backlog lane is full.
        var live = await outbox.AppendAsync([Record("live", 1)], CancellationToken.None);
        var next = await TakePendingAsync(transport, 1);
        Assert.Equal(live, next[0].Sequence);
        Assert.False(next[0].Historical);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task A_failed_send_reconnects_and_resends_only_what_was_not_acknowledged()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 8).Select(i => Record("d", i))], CancellationToken.None);
        var transport = new ScriptedTransport();
        var pump = Pump(outbox, transport);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);

        var first = await TakePendingAsync(transport, 8);
        // 1, 2 and 5 acknowledged; 3 fails: the session ends, 4 and 6..8 are abandoned.
        foreach (var s in new long[] { 1, 2, 5 })
        {
            first.Single(p => p.Sequence == s).Answer.SetResult(DeliveryOutcome.Delivered);
        }

        first.Single(p => p.Sequence == 3).Answer.SetException(new IOException("connection reset"));
        var second = await TakePendingAsync(transport, 5);
        Assert.Equal([3L, 4, 6, 7, 8], second.Select(p => p.Sequence).Order());
        Assert.All(second, p => Assert.True(p.Historical));
        Assert.True(transport.Connects >= 2);
        foreach (var p in second)
        {
            p.Answer.SetResult(DeliveryOutcome.Delivered);
        }

        await WaitForPositionAsync(() => outbox.GetAcknowledged("scripted"), 8, Long);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Rejected_messages_are_passed_over_instead_of_stalling_the_outbox()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 3).Select(i => Record("d", i))], CancellationToken.None);
        var transport = new ScriptedTransport();
        var pump = Pump(outbox, transport);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);
        var pending = await TakePendingAsync(transport, 3);
        pending[0].Answer.SetResult(DeliveryOutcome.Delivered);
        pending[1].Answer.SetResult(DeliveryOutcome.Rejected);
        pending[2].Answer.SetResult(DeliveryOutcome.Delivered);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("scripted"), 3, Long);
        Assert.Equal(1, transport.Connects);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Holes_left_by_condensation_do_not_block_the_position()
    {
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 20).Select(i => Record("d", i))], CancellationToken.None);
        outbox.Remove(e => e.Sequence is >= 5 and <= 9 or 20);
        var transport = new ScriptedTransport();
        var pump = Pump(outbox, transport);
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);
        var pending = await TakePendingAsync(transport, 14);
        Assert.DoesNotContain(pending, p => p.Sequence is >= 5 and <= 9);
        foreach (var p in pending)
        {
            p.Answer.SetResult(DeliveryOutcome.Delivered);
        }

        await WaitForPositionAsync(() => outbox.GetAcknowledged("scripted"), 19, Long);
        await cts.CancelAsync();
        await run;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(255)]
    [InlineData(256)]
    [InlineData(257)]
    [InlineData(5000)]
    public async Task FindHead_finds_the_last_sequence(int count)
    {
        await using var outbox = new TestOutbox();
        if (count > 0)
        {
            await outbox.AppendAsync([.. Enumerable.Range(0, count).Select(i => Record("d", i))], CancellationToken.None);
        }

        outbox.Remove(e => e.Sequence % 7 == 3 && e.Sequence != count);
        var pump = Pump(outbox, new ScriptedTransport());
        Assert.Equal(count, await pump.FindHeadAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task A_refused_entry_is_acknowledged_only_once_the_data_gap_naming_it_is_in_the_outbox()
    {
        // Acknowledging it at once and writing the data_gap later lost the report in a crash in between: the restart
        // started after the refused entry, so it was neither sent nor reported again.
        await using var inner = new TestOutbox();
        var outbox = new AppendGate(inner) { Failing = true };
        await inner.AppendAsync([.. Enumerable.Range(0, 3).Select(i => Record("d", i))], CancellationToken.None);
        var transport = new ScriptedTransport();
        var pump = Pump(outbox, transport, Fast with { RefusalBatchDelay = TimeSpan.Zero });
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);
        var pending = await TakePendingAsync(transport, 3);
        pending[0].Answer.SetResult(DeliveryOutcome.Delivered);
        pending[1].Answer.SetResult(DeliveryOutcome.Refused("PUBACK 0x87 NotAuthorized", "t/summary", 321));
        pending[2].Answer.SetResult(DeliveryOutcome.Delivered);
        await WaitForPositionAsync(() => outbox.FailedAppends, 1, Long);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(1, inner.GetAcknowledged("scripted")); // held before the refused entry while its data_gap is not stored
        Assert.Equal(1, pump.Rejections.Count);

        outbox.Failing = false; // the reporter retries after a second
        await WaitForPositionAsync(() => inner.GetAcknowledged("scripted"), 3, Long);
        var gap = (await TakePendingAsync(transport, 1)).Single();
        Assert.Equal(4, gap.Sequence);
        var body = (await inner.ReadAsync("scripted", 3, 1, CancellationToken.None)).Single().Record;
        using var doc = System.Text.Json.JsonDocument.Parse(body.Payload);
        var attributes = doc.RootElement.GetProperty("attributes");
        Assert.Equal("data_gap", doc.RootElement.GetProperty("event").GetString());
        Assert.Equal("outbox", body.DeviceId);
        Assert.Equal(RefusalReporter.GapReason, attributes.GetProperty("reason").GetString());
        Assert.Equal("scripted", attributes.GetProperty("uplink").GetString());
        Assert.Equal("2", attributes.GetProperty("seqs").GetString());
        Assert.Equal("321", attributes.GetProperty("entry.2.size_bytes").GetString());
        Assert.Equal("t/summary", attributes.GetProperty("entry.2.topic").GetString());
        Assert.Equal("PUBACK 0x87 NotAuthorized", attributes.GetProperty("entry.2.peer_reason").GetString());
        gap.Answer.SetResult(DeliveryOutcome.Delivered);
        await WaitForPositionAsync(() => inner.GetAcknowledged("scripted"), 4, Long);
        Assert.Equal(1, transport.Connects); // the refusal never broke the session
        await cts.CancelAsync();
        await run;
    }

    /// <summary>An outbox whose appends fail while <see cref="Failing"/> (a full disk, say); everything else passes through.</summary>
    private sealed class AppendGate(TestOutbox inner) : IOutbox
    {
        private int _failed;

        public volatile bool Failing;

        public long FailedAppends => Volatile.Read(ref _failed);

        public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken)
        {
            if (Failing)
            {
                Interlocked.Increment(ref _failed);
                throw new OutboxStorageException("the test's disk is full");
            }

            return inner.AppendAsync(records, cancellationToken);
        }

        public void RegisterUplink(string uplink) => inner.RegisterUplink(uplink);

        public ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken) =>
            inner.ReadAsync(uplink, afterSequence, max, cancellationToken);

        public long GetAcknowledged(string uplink) => inner.GetAcknowledged(uplink);

        public ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken) => inner.AcknowledgeAsync(uplink, sequence, cancellationToken);

        public ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken) => inner.WaitForEntriesAsync(afterSequence, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
