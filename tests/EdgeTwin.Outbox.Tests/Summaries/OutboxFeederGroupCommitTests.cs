using System.Text.Json;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;

namespace EdgeTwin.Outbox.Tests.Summaries;

/// <summary>
/// Regression: the feeder awaited a durable append per pipeline batch, so a stream of small batches was capped at one
/// batch per fsync (~10–30 ms on an SD card or a busy VM disk). Writes now accumulate while an append is in flight.
/// </summary>
public sealed class OutboxFeederGroupCommitTests
{
    private const long T0 = 1_764_500_040_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Poll_sized_writes_share_appends_while_one_is_in_flight_and_keep_their_order()
    {
        var registry = new SeriesRegistry();
        var series = Enumerable.Range(0, 50).Select(i => registry.GetOrAdd(new SeriesDescriptor("pdu-1", "current", "A", Tags: [new("outlet", i.ToString(System.Globalization.CultureInfo.InvariantCulture))]))).ToArray();
        var outbox = new SlowOutbox(TimeSpan.FromMilliseconds(40));
        outbox.Inner.RegisterUplink("u");
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { MaxRawPointsPerRecord = 1 }, _ => new RawPolicy(0));
        using var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw);

        // 200 writes, each completing one raw record: one append per write would take 200 × 40 ms.
        for (var i = 0; i < 200; i++)
        {
            await feeder.WriteAsync(new[] { new Sample(series[i % series.Length], T0 + (i * 1000L), i) }, Ct);
        }

        await feeder.DrainAsync(Ct);

        Assert.Equal(0, feeder.Pending);
        Assert.True(outbox.Appends < 50, $"{outbox.Appends} appends for 200 records");
        var entries = await outbox.Inner.ReadAsync("u", 0, 1000, Ct);
        Assert.Equal(200, entries.Count);
        var values = entries.Select(e => JsonDocument.Parse(e.Record.Payload).RootElement.GetProperty("points")[0][1].GetDouble()).ToList();
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (double)i), values); // the order the samples came in
    }

    [Fact]
    public async Task A_write_waits_when_more_than_the_high_water_mark_is_queued()
    {
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(UplinkBodiesTests.Inlet);
        var outbox = new SlowOutbox(TimeSpan.FromSeconds(2));
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { MaxRawPointsPerRecord = 1 }, _ => new RawPolicy(0));
        using var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, highWaterRecords: 3);

        for (var i = 0; i < 3; i++)
        {
            Assert.True(feeder.WriteAsync(new[] { new Sample(id, T0 + i, i) }, Ct).AsTask().IsCompleted);
        }

        var fourth = feeder.WriteAsync(new[] { new Sample(id, T0 + 3, 3) }, Ct).AsTask();
        Assert.False(fourth.IsCompleted); // backpressure up to the pipeline queue instead of unbounded memory here
        await fourth;
        await feeder.DrainAsync(Ct);
        Assert.Equal(0, feeder.Pending);
    }

    [Fact]
    public async Task Regression_every_poll_with_a_raw_point_was_its_own_fsynced_commit_wearing_the_flash()
    {
        // A soak of 53 devices polled every 10 s: ~2 fsynced LiteDB commits a second, each ~10 journal pages plus their
        // checkpoint into the data file (14 GB a day on a 16 GB eMMC). Polls that come after the last commit finished
        // each started one. Now samples' records wait up to commit_interval (events and flushes still commit at once).
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(UplinkBodiesTests.Inlet);
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        var outbox = new SlowOutbox(TimeSpan.Zero);
        outbox.Inner.RegisterUplink("u");
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { MaxRawPointsPerRecord = 1 }, _ => new RawPolicy(0));
        using var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, time, commitInterval: TimeSpan.FromSeconds(1));

        // 200 polls 100 ms apart, each making one raw record, each after the previous commit (if any) finished.
        for (var i = 0; i < 200; i++)
        {
            await feeder.WriteAsync(new[] { new Sample(id, T0 + (i * 100L), i) }, Ct);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (feeder.Committing && DateTime.UtcNow < deadline)
            {
                await Task.Delay(1, Ct);
            }

            time.Advance(TimeSpan.FromMilliseconds(100));
        }

        await feeder.DrainAsync(Ct);
        Assert.Equal(0, feeder.Pending);
        Assert.True(outbox.Appends <= 21, $"{outbox.Appends} appends for 200 polls over 20 s with a 1 s commit interval");
        Assert.Equal(200, (await outbox.Inner.ReadAsync("u", 0, 1000, Ct)).Count); // none lost, in order below
    }

    private sealed class SlowOutbox(TimeSpan delay) : IOutbox
    {
        private int _appends;

        public InMemoryOutbox Inner { get; } = new();

        public int Appends => Volatile.Read(ref _appends);

        public async ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _appends);
            await Task.Delay(delay, cancellationToken);
            return await Inner.AppendAsync(records, cancellationToken);
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
