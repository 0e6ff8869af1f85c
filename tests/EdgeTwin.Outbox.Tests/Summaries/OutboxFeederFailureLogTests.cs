using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.Summaries;

/// <summary>What the feeder logs while the outbox cannot take appends (a full disk), and when it can again.</summary>
public sealed class OutboxFeederFailureLogTests
{
    private const long T0 = 1_764_689_400_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_full_disk_logged_the_same_outbox_failure_seven_times_a_second()
    {
        var (time, registry, id, outbox, summarizer) = Rig();
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)).SetMinimumLevel(LogLevel.Trace));
        using var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, time, loggerFactory.CreateLogger<OutboxFeeder>());

        // 32 s of a full disk at 7 failed appends a second, two causes as LiteDbOutbox words them, figures changing.
        outbox.Full = true;
        var n = 0;
        for (var second = 0; second < 32; second++)
        {
            for (var k = 0; k < 7; k++)
            {
                outbox.Attempt = n;
                await feeder.WriteAsync(new[] { new Sample(id, T0 + n, n) }, Ct);
                await feeder.DrainAsync(Ct);
                n++;
                time.Advance(TimeSpan.FromMilliseconds(143));
            }
        }

        var failures = logs.GetSnapshot().Where(r => r.Id.Id == 20).ToList();

        // Before: 224 lines, each with the stack. Now: one line per cause in the minute, the stack once per cause.
        Assert.Equal(2, failures.Count);
        Assert.All(failures, f => Assert.NotNull(f.Exception));
        Assert.True(outbox.Failed >= 224, $"{outbox.Failed} failed appends");

        // A minute after the first line of a cause: its next line says how many were not logged, without the stack.
        time.Advance(TimeSpan.FromSeconds(30));
        outbox.Attempt = 1; // the "not usable" cause
        await feeder.WriteAsync(new[] { new Sample(id, T0 + n, n) }, Ct);
        await feeder.DrainAsync(Ct);
        n++;
        var third = logs.GetSnapshot().Where(r => r.Id.Id == 20).ToList();
        Assert.Equal(3, third.Count);
        Assert.Null(third[^1].Exception);
        Assert.Matches(@"\(\d+ more failures of this cause in the last 6\d s were not logged\)", third[^1].Message);

        // Space is back: one Information line, with the count, the span and that nothing was lost.
        outbox.Full = false;
        await feeder.WriteAsync(new[] { new Sample(id, T0 + n, n) }, Ct);
        await feeder.DrainAsync(Ct);
        n++;
        Assert.Equal(0, feeder.Pending);
        var again = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 24);
        Assert.Equal(LogLevel.Information, again.Level);
        Assert.Contains($"Outbox writable again after {outbox.Failed} failed appends over 1m 2s; nothing lost", again.Message, StringComparison.Ordinal);
        Assert.Equal(n, (await outbox.Inner.ReadAsync("u", 0, 1000, Ct)).Count);

        // A later failure is a new episode: its stack is logged again.
        outbox.Full = true;
        await feeder.WriteAsync(new[] { new Sample(id, T0 + n, n) }, Ct);
        await feeder.DrainAsync(Ct);
        Assert.NotNull(logs.GetSnapshot().Last(r => r.Id.Id == 20).Exception);
    }

    [Fact]
    public void The_cause_of_a_failure_is_its_message_without_figures()
    {
        Assert.Equal(
            OutboxFeeder.CauseKey("Outbox /d/outbox.db is not usable after an earlier failure (No space left on device : '/d/outbox-log.db'); next attempt in 11.2 s"),
            OutboxFeeder.CauseKey("Outbox /d/outbox.db is not usable after an earlier failure (No space left on device : '/d/outbox-log.db'); next attempt in 9 s"));
        Assert.NotEqual(OutboxFeeder.CauseKey("Outbox x: could not store the batch (973 records): No space left on device"), OutboxFeeder.CauseKey("Outbox x: permission denied"));
    }

    [Fact]
    public async Task Regression_a_backlog_after_a_long_failure_went_as_one_append_that_a_small_disk_could_never_take()
    {
        var (time, registry, id, outbox, summarizer) = Rig();
        using var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, time);
        const int backlog = (2 * OutboxFeeder.MaxRecordsPerAppend) + 808;

        outbox.Full = true;
        await feeder.WriteAsync(Enumerable.Range(0, backlog).Select(i => new Sample(id, T0 + i, i)).ToArray(), Ct);
        await feeder.DrainAsync(Ct);
        Assert.Equal(backlog, feeder.Pending);

        outbox.Full = false;
        await feeder.WriteAsync(new[] { new Sample(id, T0 + backlog, backlog) }, Ct);
        await feeder.DrainAsync(Ct);

        Assert.Equal(0, feeder.Pending);
        Assert.Equal([OutboxFeeder.MaxRecordsPerAppend, OutboxFeeder.MaxRecordsPerAppend, 809], outbox.Stored);
        var entries = await outbox.Inner.ReadAsync("u", 0, backlog + 10, Ct);
        Assert.Equal(Enumerable.Range(0, backlog + 1).Select(i => T0 + i), entries.Select(e => e.Record.TimestampUnixMs));
    }

    /// <summary>One raw series (one record per sample) on a fake clock, into an outbox whose disk can be full.</summary>
    private static (FakeTimeProvider Time, SeriesRegistry Registry, SeriesId Id, FullDiskOutbox Outbox, SeriesSummarizer Summarizer) Rig()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(UplinkBodiesTests.Inlet);
        var outbox = new FullDiskOutbox();
        outbox.RegisterUplink("u");
        return (time, registry, id, outbox, new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { MaxRawPointsPerRecord = 1 }, _ => new RawPolicy(0)));
    }

    /// <summary>Fails appends while <see cref="Full"/> with LiteDbOutbox's two messages, alternating by attempt.</summary>
    private sealed class FullDiskOutbox : IOutbox
    {
        public InMemoryOutbox Inner { get; } = new();

        /// <summary>The sizes of the appends that were stored.</summary>
        public List<int> Stored { get; } = [];

        public bool Full { get; set; }

        public int Attempt { get; set; }

        public int Failed { get; private set; }

        public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken)
        {
            if (Full)
            {
                Failed++;
                var inner = new IOException("No space left on device : '/tmp/rb/tiny/outbox-log.db'");
                throw Attempt % 2 == 0
                    ? new OutboxStorageException($"Outbox /tmp/rb/tiny/outbox.db: could not store the batch ({records.Count + Attempt} records): {inner.Message}", inner)
                    : new OutboxStorageException($"Outbox /tmp/rb/tiny/outbox.db is not usable after an earlier failure ({inner.Message}); next attempt in {(Attempt % 30) / 2.0:0.#} s");
            }

            Stored.Add(records.Count);
            return Inner.AppendAsync(records, cancellationToken);
        }

        public void RegisterUplink(string uplink) => Inner.RegisterUplink(uplink);

        public ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken) =>
            Inner.ReadAsync(uplink, afterSequence, max, cancellationToken);

        public long GetAcknowledged(string uplink) => Inner.GetAcknowledged(uplink);

        public ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken) => Inner.AcknowledgeAsync(uplink, sequence, cancellationToken);

        public ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken) => Inner.WaitForEntriesAsync(afterSequence, cancellationToken);

        public ValueTask DisposeAsync() => Inner.DisposeAsync();
    }
}
