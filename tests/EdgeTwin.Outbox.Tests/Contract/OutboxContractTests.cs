using System.Text;

namespace EdgeTwin.Outbox.Tests.Contract;

/// <summary>
/// The one suite every <see cref="IOutbox"/> implementation must pass (like Telegraf's shared buffer suite).
/// Derive, implement <see cref="CreateAsync"/>, and for durable stores <see cref="ReopenAsync"/>.
/// </summary>
public abstract class OutboxContractTests : IAsyncLifetime
{
    private readonly List<IOutbox> _open = [];

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// The last sequence of the store made by the latest <see cref="CreateAsync"/> before anything was appended: 0 for
    /// the in-memory store, Unix ms × 1000 at creation for a new LiteDB file (so a replaced file never reuses the
    /// sequences the centre already holds). The contract is relative to it: the first append gets <c>Base + 1</c>.
    /// </summary>
    protected long Base { get; private set; }

    /// <summary>The n-th sequence of the fresh store (1-based).</summary>
    protected long S(long n) => Base + n;

    /// <summary>A fresh, empty outbox.</summary>
    protected abstract ValueTask<IOutbox> CreateOutboxAsync();

    /// <summary>Disposes <paramref name="outbox"/> and opens the same store again; null when the store is not durable.</summary>
    protected virtual ValueTask<IOutbox?> ReopenOutboxAsync(IOutbox outbox) => ValueTask.FromResult<IOutbox?>(null);

    protected async ValueTask<IOutbox> CreateAsync()
    {
        var outbox = await CreateOutboxAsync();
        _open.Add(outbox);
        Base = await outbox.AppendAsync([], Ct);
        return outbox;
    }

    protected async ValueTask<IOutbox?> ReopenAsync(IOutbox outbox)
    {
        _open.Remove(outbox);
        var reopened = await ReopenOutboxAsync(outbox);
        if (reopened is not null)
        {
            _open.Add(reopened);
        }

        return reopened;
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public virtual async ValueTask DisposeAsync()
    {
        foreach (var outbox in _open)
        {
            await outbox.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    protected static OutboxRecord Rec(int n, OutboxKind kind = OutboxKind.Summary, string device = "dev-1") =>
        new(kind, device, 1_700_000_000_000 + n, Encoding.UTF8.GetBytes($"{{\"n\":{n}}}"));

    protected static OutboxRecord[] Batch(int from, int count, OutboxKind kind = OutboxKind.Summary) =>
        Enumerable.Range(from, count).Select(n => Rec(n, kind)).ToArray();

    protected static int N(OutboxEntry e)
    {
        var json = Encoding.UTF8.GetString(e.Record.Payload.Span);
        return int.Parse(json.AsSpan(5, json.Length - 6), System.Globalization.CultureInfo.InvariantCulture);
    }

    protected static OutboxStats Stats(IOutbox outbox) => ((IOutboxStatistics)outbox).GetStats();

    [Fact]
    public async Task Sequences_start_after_the_base_and_are_gap_free_across_batches()
    {
        var outbox = await CreateAsync();
        Assert.True(Base >= 0);
        Assert.Equal(S(3), await outbox.AppendAsync(Batch(0, 3), Ct));
        Assert.Equal(S(4), await outbox.AppendAsync(Batch(3, 1), Ct));
        Assert.Equal(S(9), await outbox.AppendAsync(Batch(4, 5), Ct));

        outbox.RegisterUplink("a");
        var all = await outbox.ReadAsync("a", 0, 100, Ct);
        Assert.Equal(Enumerable.Range(1, 9).Select(i => S(i)), all.Select(e => e.Sequence));
        Assert.Equal(Enumerable.Range(0, 9), all.Select(N));
    }

    [Fact]
    public async Task Empty_batch_returns_the_last_sequence_and_stores_nothing()
    {
        var outbox = await CreateAsync();
        Assert.Equal(Base, await outbox.AppendAsync([], Ct));
        await outbox.AppendAsync(Batch(0, 2), Ct);
        Assert.Equal(S(2), await outbox.AppendAsync([], Ct));
        Assert.Equal(2, Stats(outbox).Depth);
    }

    [Fact]
    public async Task Records_come_back_with_kind_device_time_and_payload_intact()
    {
        var outbox = await CreateAsync();
        var payload = Encoding.UTF8.GetBytes("{\"v\":1,\"type\":\"event\",\"message\":\"ünïcode ✓\"}");
        var record = new OutboxRecord(OutboxKind.Event, "pdu-a01-a", 1_712_345_678_901, payload);
        await outbox.AppendAsync([record, Rec(1, OutboxKind.Prediction, "model/thermal"), Rec(2, OutboxKind.Raw), Rec(3, OutboxKind.TwinState)], Ct);

        outbox.RegisterUplink("a");
        var read = await outbox.ReadAsync("a", 0, 10, Ct);
        Assert.Equal(4, read.Count);
        Assert.Equal(OutboxKind.Event, read[0].Record.Kind);
        Assert.Equal("pdu-a01-a", read[0].Record.DeviceId);
        Assert.Equal(1_712_345_678_901, read[0].Record.TimestampUnixMs);
        Assert.Equal(payload, read[0].Record.Payload.ToArray());
        Assert.Equal([OutboxKind.Event, OutboxKind.Prediction, OutboxKind.Raw, OutboxKind.TwinState], read.Select(e => e.Record.Kind));
        Assert.Equal("model/thermal", read[1].Record.DeviceId);
    }

    [Fact]
    public async Task Caller_may_reuse_its_payload_buffer_after_the_append()
    {
        var outbox = await CreateAsync();
        var buffer = Encoding.UTF8.GetBytes("{\"n\":7}");
        await outbox.AppendAsync([new OutboxRecord(OutboxKind.Summary, "d", 1, buffer)], Ct);
        buffer.AsSpan().Fill((byte)'x');

        outbox.RegisterUplink("a");
        var read = await outbox.ReadAsync("a", 0, 1, Ct);
        Assert.Equal("{\"n\":7}", Encoding.UTF8.GetString(read[0].Record.Payload.Span));
    }

    [Fact]
    public async Task Read_honours_after_sequence_and_max()
    {
        var outbox = await CreateAsync();
        await outbox.AppendAsync(Batch(0, 10), Ct);
        outbox.RegisterUplink("a");

        var page = await outbox.ReadAsync("a", S(3), 4, Ct);
        Assert.Equal([S(4), S(5), S(6), S(7)], page.Select(e => e.Sequence));
        Assert.Empty(await outbox.ReadAsync("a", S(10), 4, Ct));
        Assert.Equal([S(10)], (await outbox.ReadAsync("a", S(9), 4, Ct)).Select(e => e.Sequence));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await outbox.ReadAsync("a", 0, 0, Ct));
    }

    [Fact]
    public async Task Each_uplink_has_its_own_position()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("mqtt");
        outbox.RegisterUplink("kafka");
        Assert.Equal(Base, outbox.GetAcknowledged("mqtt"));
        await outbox.AppendAsync(Batch(0, 5), Ct);

        await outbox.AcknowledgeAsync("mqtt", S(4), Ct);
        await outbox.AcknowledgeAsync("kafka", S(2), Ct);
        Assert.Equal(S(4), outbox.GetAcknowledged("mqtt"));
        Assert.Equal(S(2), outbox.GetAcknowledged("kafka"));
        Assert.Equal([S(5)], (await outbox.ReadAsync("mqtt", outbox.GetAcknowledged("mqtt"), 10, Ct)).Select(e => e.Sequence));
        Assert.Equal([S(3), S(4), S(5)], (await outbox.ReadAsync("kafka", outbox.GetAcknowledged("kafka"), 10, Ct)).Select(e => e.Sequence));
        Assert.Equal(new Dictionary<string, long> { ["mqtt"] = S(4), ["kafka"] = S(2) }, Stats(outbox).UplinkPositions);
    }

    [Fact]
    public async Task An_entry_is_removed_only_when_every_uplink_acknowledged_it()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("mqtt");
        outbox.RegisterUplink("kafka");
        await outbox.AppendAsync(Batch(0, 6), Ct);

        await outbox.AcknowledgeAsync("mqtt", S(6), Ct);
        Assert.Equal(6, Stats(outbox).Depth);
        Assert.Equal(6, (await outbox.ReadAsync("kafka", 0, 100, Ct)).Count);

        await outbox.AcknowledgeAsync("kafka", S(3), Ct);
        var stats = Stats(outbox);
        Assert.Equal(3, stats.Depth);
        Assert.Equal(S(4), stats.FirstSequence);
        Assert.Equal(S(6), stats.LastSequence);

        await outbox.AcknowledgeAsync("kafka", S(6), Ct);
        Assert.Equal(0, Stats(outbox).Depth);
        Assert.Equal(S(6), Stats(outbox).LastSequence);
        Assert.Equal(S(7), await outbox.AppendAsync(Batch(6, 1), Ct));
    }

    [Fact]
    public async Task Nothing_is_removed_while_no_uplink_is_registered()
    {
        var outbox = await CreateAsync();
        await outbox.AppendAsync(Batch(0, 4), Ct);
        Assert.Equal(4, Stats(outbox).Depth);

        outbox.RegisterUplink("late");
        Assert.Equal(Base, outbox.GetAcknowledged("late"));
        Assert.Equal(4, (await outbox.ReadAsync("late", outbox.GetAcknowledged("late"), 100, Ct)).Count);
    }

    [Fact]
    public async Task A_new_uplink_starts_at_the_oldest_entry_still_held()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("a");
        await outbox.AppendAsync(Batch(0, 5), Ct);
        await outbox.AcknowledgeAsync("a", S(3), Ct);

        outbox.RegisterUplink("b");
        Assert.Equal(S(3), outbox.GetAcknowledged("b"));
        Assert.Equal([S(4), S(5)], (await outbox.ReadAsync("b", outbox.GetAcknowledged("b"), 100, Ct)).Select(e => e.Sequence));

        await outbox.AcknowledgeAsync("a", S(5), Ct);
        await outbox.AcknowledgeAsync("b", S(5), Ct);
        outbox.RegisterUplink("c");
        Assert.Equal(S(5), outbox.GetAcknowledged("c"));
    }

    [Fact]
    public async Task Registering_again_keeps_the_position()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("a");
        outbox.RegisterUplink("b");
        await outbox.AppendAsync(Batch(0, 5), Ct);
        await outbox.AcknowledgeAsync("a", S(2), Ct);
        outbox.RegisterUplink("a");
        Assert.Equal(S(2), outbox.GetAcknowledged("a"));
    }

    [Fact]
    public async Task Acknowledgements_are_cumulative_and_a_lower_one_is_ignored()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("a");
        outbox.RegisterUplink("b");
        await outbox.AppendAsync(Batch(0, 5), Ct);
        await outbox.AcknowledgeAsync("a", S(4), Ct);
        await outbox.AcknowledgeAsync("a", S(2), Ct);
        await outbox.AcknowledgeAsync("a", S(4), Ct);
        Assert.Equal(S(4), outbox.GetAcknowledged("a"));
    }

    [Fact]
    public async Task Acknowledging_beyond_the_last_sequence_is_an_error()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("a");
        await outbox.AppendAsync(Batch(0, 2), Ct);
        var ex = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await outbox.AcknowledgeAsync("a", S(3), Ct));
        Assert.Contains("'a'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(Base, outbox.GetAcknowledged("a"));
        Assert.Equal(2, Stats(outbox).Depth);
    }

    [Fact]
    public async Task An_unknown_uplink_is_named_in_the_error()
    {
        var outbox = await CreateAsync();
        await outbox.AppendAsync(Batch(0, 2), Ct);
        var ex = Assert.Throws<UnknownUplinkException>(() => outbox.GetAcknowledged("nobody"));
        Assert.Equal("nobody", ex.Uplink);
        await Assert.ThrowsAsync<UnknownUplinkException>(async () => await outbox.ReadAsync("nobody", 0, 10, Ct));
        await Assert.ThrowsAsync<UnknownUplinkException>(async () => await outbox.AcknowledgeAsync("nobody", S(1), Ct));
    }

    [Fact]
    public async Task An_invalid_record_rejects_the_whole_batch()
    {
        var outbox = await CreateAsync();
        var bad = new OutboxRecord(OutboxKind.Summary, "", 1, new byte[] { (byte)'{', (byte)'}' });
        var ex = await Assert.ThrowsAnyAsync<ArgumentException>(async () => await outbox.AppendAsync([Rec(0), bad, Rec(2)], Ct));
        Assert.Contains("device id", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, Stats(outbox).Depth);
        Assert.Equal(S(1), await outbox.AppendAsync([Rec(0)], Ct));
    }

    [Fact]
    public async Task WaitForEntries_completes_at_once_when_entries_exist()
    {
        var outbox = await CreateAsync();
        await outbox.AppendAsync(Batch(0, 3), Ct);
        var wait = outbox.WaitForEntriesAsync(S(2), Ct);
        Assert.True(wait.IsCompleted);
        await wait;
    }

    [Fact]
    public async Task WaitForEntries_wakes_on_the_next_append()
    {
        var outbox = await CreateAsync();
        await outbox.AppendAsync(Batch(0, 3), Ct);
        var wait = outbox.WaitForEntriesAsync(S(3), Ct).AsTask();
        await Task.Delay(50, Ct);
        Assert.False(wait.IsCompleted);

        await outbox.AppendAsync(Batch(3, 1), Ct);
        await wait.WaitAsync(TimeSpan.FromSeconds(30), Ct);
    }

    [Fact]
    public async Task WaitForEntries_is_cancellable()
    {
        var outbox = await CreateAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var wait = outbox.WaitForEntriesAsync(Base, cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(TimeSpan.FromSeconds(30), Ct));
    }

    [Fact]
    public async Task Concurrent_appends_get_distinct_gap_free_sequences()
    {
        var outbox = await CreateAsync();
        const int writers = 4, batches = 25, size = 8;
        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var lasts = new List<long>();
            for (var b = 0; b < batches; b++)
            {
                lasts.Add(await outbox.AppendAsync(Batch((w * batches + b) * size, size), Ct));
            }

            return lasts;
        }, Ct)).ToArray();
        var lastSequences = (await Task.WhenAll(tasks)).SelectMany(l => l).ToList();

        Assert.Equal(writers * batches, lastSequences.Distinct().Count());
        outbox.RegisterUplink("a");
        var all = await outbox.ReadAsync("a", 0, 10_000, Ct);
        Assert.Equal(Enumerable.Range(1, writers * batches * size).Select(i => S(i)), all.Select(e => e.Sequence));
        Assert.Equal(Enumerable.Range(0, writers * batches * size), all.Select(N).Order());

        // A batch stays contiguous: its records' payloads follow each other.
        foreach (var last in lastSequences)
        {
            var batch = all.Where(e => e.Sequence > last - size && e.Sequence <= last).Select(N).ToList();
            Assert.Equal(Enumerable.Range(batch[0], size), batch);
        }
    }

    [Fact]
    public async Task A_consumer_loop_receives_everything_in_order_while_a_producer_appends()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("a");
        const int total = 600;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(60));

        var consumer = Task.Run(async () =>
        {
            var seen = new List<int>();
            while (seen.Count < total)
            {
                var position = outbox.GetAcknowledged("a");
                await outbox.WaitForEntriesAsync(position, cts.Token);
                var page = await outbox.ReadAsync("a", position, 37, cts.Token);
                seen.AddRange(page.Select(N));
                if (page.Count > 0)
                {
                    await outbox.AcknowledgeAsync("a", page[^1].Sequence, cts.Token);
                }
            }

            return seen;
        }, cts.Token);

        for (var i = 0; i < total; i += 20)
        {
            await outbox.AppendAsync(Batch(i, 20), cts.Token);
            if (i % 100 == 0)
            {
                await Task.Yield();
            }
        }

        var received = await consumer;
        Assert.Equal(Enumerable.Range(0, total), received);
        Assert.Equal(0, Stats(outbox).Depth);
    }

    [Fact]
    public async Task Stats_report_depth_range_oldest_time_and_positions()
    {
        var outbox = await CreateAsync();
        var empty = Stats(outbox);
        Assert.Equal(0, empty.Depth);
        Assert.Null(empty.OldestTimestampUnixMs);
        Assert.Null(empty.OldestAge(DateTimeOffset.UtcNow));

        outbox.RegisterUplink("a");
        await outbox.AppendAsync(Batch(0, 4), Ct);
        await outbox.AcknowledgeAsync("a", S(1), Ct);
        var stats = Stats(outbox);
        Assert.Equal(3, stats.Depth);
        Assert.Equal(S(2), stats.FirstSequence);
        Assert.Equal(S(4), stats.LastSequence);
        Assert.Equal(Rec(1).TimestampUnixMs, stats.OldestTimestampUnixMs);
        Assert.True(stats.Bytes > 0);
        Assert.Equal(S(1), stats.UplinkPositions["a"]);
        Assert.Equal(TimeSpan.FromMilliseconds(999), stats.OldestAge(DateTimeOffset.FromUnixTimeMilliseconds(Rec(1).TimestampUnixMs + 999)));
    }
}

public sealed class InMemoryOutboxContractTests : OutboxContractTests
{
    protected override ValueTask<IOutbox> CreateOutboxAsync() => ValueTask.FromResult<IOutbox>(new InMemoryOutbox());

    /// <summary>
    /// The shared contract only checks <c>Base &gt;= 0</c>, which every store passes (a LiteDB file's base is the clock,
    /// LiteDbOutboxTests): the in-memory store's own promise is that it numbers from 1.
    /// </summary>
    [Fact]
    public async Task Its_sequences_start_at_1()
    {
        var outbox = await CreateAsync();
        Assert.Equal(0, Base);
        Assert.Equal(1, await outbox.AppendAsync(Batch(0, 1), Ct));
    }
}

/// <summary>The extra contract of outboxes that survive a restart.</summary>
public abstract class DurableOutboxContractTests : OutboxContractTests
{
    protected abstract override ValueTask<IOutbox?> ReopenOutboxAsync(IOutbox outbox);

    [Fact]
    public async Task Sequences_positions_and_unacknowledged_entries_survive_a_reopen()
    {
        var outbox = await CreateAsync();
        outbox.RegisterUplink("mqtt");
        outbox.RegisterUplink("kafka");
        await outbox.AppendAsync(Batch(0, 5), Ct);
        await outbox.AcknowledgeAsync("mqtt", S(5), Ct);
        await outbox.AcknowledgeAsync("kafka", S(2), Ct);

        // Reopening an existing file continues from its last sequence; only a new file starts from the clock.
        var reopened = await ReopenAsync(outbox);
        Assert.NotNull(reopened);
        Assert.Equal(S(5), reopened.GetAcknowledged("mqtt"));
        Assert.Equal(S(2), reopened.GetAcknowledged("kafka"));
        Assert.Equal([S(3), S(4), S(5)], (await reopened.ReadAsync("kafka", S(2), 10, Ct)).Select(e => e.Sequence));
        Assert.Equal([2, 3, 4], (await reopened.ReadAsync("kafka", S(2), 10, Ct)).Select(N));
        Assert.Equal(S(6), await reopened.AppendAsync(Batch(5, 1), Ct));
        Assert.Equal(4, Stats(reopened).Depth);
    }
}
