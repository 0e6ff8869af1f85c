using System.Text;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Outbox.Tests.Summaries;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// The outbox on a real ext4 file system (a loop device) that the kernel remounts read-only under it, as a failing SD
/// card's first I/O error does with <c>errors=remount-ro</c>: <c>/sys/fs/ext4/loopN/trigger_fs_error</c> raises exactly
/// that error path. Needs root and loop devices; skipped with the reason otherwise.
/// </summary>
public sealed class ReadOnlyFileSystemTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OutboxRecord[] Summaries(long t0, int from, int count) =>
        [.. Enumerable.Range(from, count).Select(i => UplinkBodiesTests.PduSummary(t0 + (i * 1000L), i))];

    /// <summary>Appends until accepted: the commit that meets the read-only remount fails (its caller keeps the batch), as the feeder retries it.</summary>
    private static async Task<long> AppendRetryingAsync(LiteDbOutbox outbox, OutboxRecord[] batch)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await outbox.AppendAsync(batch, Ct);
            }
            catch (OutboxStorageException) when (attempt < 3)
            {
            }
        }
    }

    private static async Task<List<OutboxEntry>> ReadAllAsync(LiteDbOutbox outbox, string uplink, long after)
    {
        var all = new List<OutboxEntry>();
        while (true)
        {
            var page = await outbox.ReadAsync(uplink, after, 500, Ct);
            if (page.Count == 0)
            {
                return all;
            }

            all.AddRange(page);
            after = page[^1].Sequence;
        }
    }

    /// <summary>
    /// Regression: at the kernel's read-only remount every append and every reopen failed from then on, with a stack
    /// trace every few seconds: nothing more reached the uplinks although the broker was up, and <c>edgetwin status</c>
    /// still said "nothing unsent". Now the outbox goes on in memory: what the file held and had not delivered is taken
    /// along, new entries are accepted and read by the uplinks, a <c>storage_failed</c> event says so in the stream, and
    /// the stats say since when. After the reboot the file is whole again with what it held before the failure, and its
    /// new sequences stay below those handed out in memory (the centre de-duplicates on them).
    /// </summary>
    [Fact]
    public async Task Regression_a_file_system_remounted_read_only_stopped_every_append_and_delivery_until_a_restart()
    {
        await using var disk = await Ext4Loop.CreateAsync();
        var path = Path.Combine(disk.Dir, "outbox.db");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();
        long firstBefore, lastBefore;
        long firstInMemory;
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            lastBefore = await outbox.AppendAsync(Summaries(t0, 0, 100), Ct);
            firstBefore = lastBefore - 99;
            await outbox.AcknowledgeAsync("mqtt", firstBefore + 39, Ct); // 40 delivered, 60 waiting

            var failedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await disk.FailAsync();
            var lastInMemory = await AppendRetryingAsync(outbox, Summaries(t0, 100, 50));

            var stats = outbox.GetStats();
            Assert.NotNull(stats.Storage.MemoryOnlySince);
            Assert.Contains("Read-only file system", stats.Storage.MemoryOnlyCause, StringComparison.Ordinal);
            firstInMemory = stats.Storage.FirstSequenceInMemory;
            Assert.True(firstInMemory >= failedAt * 1000, $"memory sequences start from the clock: {firstInMemory} < {failedAt * 1000}");
            Assert.Null(stats.Storage.FailingSince);

            // The uplink reads the 60 the file held and had not delivered, the event, and the 50 new ones.
            var entries = await ReadAllAsync(outbox, "mqtt", firstBefore + 39);
            Assert.Equal(Enumerable.Range(0, 60).Select(i => firstBefore + 40 + i), entries.Take(60).Select(e => e.Sequence));
            var storageEvent = Encoding.UTF8.GetString(entries[60].Record.Payload.Span);
            Assert.Equal(firstInMemory, entries[60].Sequence);
            Assert.Contains("\"event\":\"storage_failed\"", storageEvent, StringComparison.Ordinal);
            Assert.Contains("\"state\":\"memory_only\"", storageEvent, StringComparison.Ordinal);
            Assert.Contains("\"held_from_file\":\"60\"", storageEvent, StringComparison.Ordinal);
            Assert.Equal(Enumerable.Range(1, 50).Select(i => firstInMemory + i), entries.Skip(61).Select(e => e.Sequence));
            Assert.Equal(lastInMemory, entries[^1].Sequence);
            Assert.Equal(111, outbox.GetStats().Depth);

            // Delivery goes on: acknowledged, they leave memory as they would leave the file.
            await outbox.AcknowledgeAsync("mqtt", lastInMemory, Ct);
            Assert.Equal(0, outbox.GetStats().Depth);
            Assert.Equal(lastInMemory, await outbox.AppendAsync(Array.Empty<OutboxRecord>(), Ct));
        }

        await disk.RebootAsync();
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct))
        {
            // The file as it was at the failure: acknowledgements made in memory could not be written, so the 60 are sent
            // again (at least once); its own numbering goes on below the numbers handed out in memory.
            Assert.Equal(firstBefore + 39, outbox.GetAcknowledged("mqtt"));
            var held = await ReadAllAsync(outbox, "mqtt", firstBefore + 39);
            Assert.Equal(Enumerable.Range(0, 60).Select(i => firstBefore + 40 + i), held.Select(e => e.Sequence));
            var next = await outbox.AppendAsync(Summaries(t0, 200, 1), Ct);
            Assert.Equal(lastBefore + 1, next);
            Assert.True(next < firstInMemory, $"after the reboot {next} must stay below the memory outbox's {firstInMemory}");
            Assert.Null(outbox.GetStats().Storage.MemoryOnlySince);
        }
    }

    /// <summary>
    /// Regression: a start on storage that was read-only already (the agent restarted after the card failed: the watchdog,
    /// a crash, an upgrade) failed with "is in use by another process (cannot lock outbox.db.lock): Read-only file system",
    /// and systemd gave up after five. Now the outbox goes on in memory from the file's own state: each uplink's position,
    /// what is held above it, a storage_failed event, and the file is not changed.
    /// </summary>
    [Fact]
    public async Task Regression_an_outbox_opened_on_storage_already_read_only_failed_as_in_use_by_another_process()
    {
        await using var disk = await Ext4Loop.CreateAsync();
        var path = Path.Combine(disk.Dir, "outbox.db");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();
        long first, last;
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            outbox.RegisterUplink("kafka");
            last = await outbox.AppendAsync(Summaries(t0, 0, 100), Ct);
            first = last - 99;
            await outbox.AcknowledgeAsync("mqtt", first + 69, Ct);  // 30 waiting for mqtt
            await outbox.AcknowledgeAsync("kafka", first + 19, Ct); // 80 waiting for kafka
        }

        await disk.FailAsync();
        var fileBefore = await File.ReadAllBytesAsync(path, Ct);
        var openedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            outbox.RegisterUplink("kafka");
            var stats = outbox.GetStats();
            Assert.NotNull(stats.Storage.MemoryOnlySince);
            Assert.Contains("Read-only file system", stats.Storage.MemoryOnlyCause, StringComparison.Ordinal);
            Assert.True(stats.Storage.FirstSequenceInMemory >= openedAt * 1000, "memory sequences start from the clock");

            // Each uplink goes on from its own position in the file: nothing it had is sent again, nothing it lacks is skipped.
            Assert.Equal(first + 69, outbox.GetAcknowledged("mqtt"));
            Assert.Equal(first + 19, outbox.GetAcknowledged("kafka"));
            var forMqtt = await ReadAllAsync(outbox, "mqtt", first + 69);
            Assert.Equal(Enumerable.Range(70, 30).Select(i => first + i), forMqtt.Take(30).Select(e => e.Sequence));
            var forKafka = await ReadAllAsync(outbox, "kafka", first + 19);
            Assert.Equal(Enumerable.Range(20, 80).Select(i => first + i), forKafka.Take(80).Select(e => e.Sequence));
            var storageEvent = Encoding.UTF8.GetString(forKafka[80].Record.Payload.Span);
            Assert.Contains("\"event\":\"storage_failed\"", storageEvent, StringComparison.Ordinal);
            Assert.Contains("\"held_from_file\":\"80\"", storageEvent, StringComparison.Ordinal);

            // New entries are accepted and delivered from memory.
            var added = await outbox.AppendAsync(Summaries(t0, 100, 5), Ct);
            Assert.Equal(added, (await ReadAllAsync(outbox, "mqtt", first + 69))[^1].Sequence);
            await outbox.AcknowledgeAsync("mqtt", added, Ct);
        }

        Assert.Equal(fileBefore, await File.ReadAllBytesAsync(path, Ct));
    }

    /// <summary>
    /// Regression: an outbox opened in memory on read-only storage began this run one entry after its own storage_failed
    /// event, so the event (stamped by this run's clock) was counted as an earlier run's: the clock_stepped event named no
    /// range with it, and its age was taken from the open instead of its acceptance.
    /// </summary>
    [Fact]
    public async Task Regression_the_storage_failed_event_of_a_memory_outbox_opened_read_only_was_left_out_of_this_run()
    {
        await using var disk = await Ext4Loop.CreateAsync();
        var path = Path.Combine(disk.Dir, "outbox.db");
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            await outbox.AppendAsync(Summaries(DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds(), 0, 10), Ct);
        }

        await disk.FailAsync();
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            var stats = outbox.GetStats();
            var entries = await ReadAllAsync(outbox, "mqtt", 0);
            var storageEvent = entries.Single(e => Encoding.UTF8.GetString(e.Record.Payload.Span).Contains("\"event\":\"storage_failed\"", StringComparison.Ordinal));
            Assert.Equal(stats.Storage.FirstSequenceInMemory, storageEvent.Sequence);
            Assert.Equal(storageEvent.Sequence, stats.RunFirstSequence);
            var added = await outbox.AppendAsync(Summaries(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 10, 1), Ct);
            Assert.Equal(storageEvent.Sequence, outbox.GetStats().RunFirstSequence);
            Assert.True(added > storageEvent.Sequence);
        }
    }

    /// <summary>
    /// Regression: when the storage turned read-only, the append that failed was retried into the memory outbox and the
    /// feeder logged "Outbox writable again after 1 failed appends …; nothing lost": the opposite of what happened.
    /// </summary>
    [Fact]
    public async Task Regression_the_feeder_said_the_outbox_was_writable_again_when_it_went_on_in_memory()
    {
        await using var disk = await Ext4Loop.CreateAsync();
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(disk.Dir, "outbox.db"), Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        var registry = new SeriesRegistry();
        var id = registry.GetOrAdd(UplinkBodiesTests.Inlet);
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { MaxRawPointsPerRecord = 1 }, _ => new RawPolicy(0));
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        using var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, logger: loggerFactory.CreateLogger<OutboxFeeder>());
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await feeder.WriteAsync(new[] { new Sample(id, t0, 100) }, Ct);
        await feeder.DrainAsync(Ct);

        await disk.FailAsync();
        for (var i = 1; i <= 3 && (feeder.Pending > 0 || i == 1); i++)
        {
            await feeder.WriteAsync(new[] { new Sample(id, t0 + i, i) }, Ct);
            await feeder.DrainAsync(Ct);
        }

        Assert.Equal(0, feeder.Pending);
        Assert.NotNull(outbox.GetStats().Storage.MemoryOnlySince);
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Message.Contains("writable again", StringComparison.Ordinal));
        var taken = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 25);
        Assert.Contains("but in memory only: its storage is read-only since", taken.Message, StringComparison.Ordinal);
    }

    /// <summary>In memory the budget is the memory budget: a long outage condenses and drops as on disk, it does not grow the process.</summary>
    [Fact]
    public async Task The_memory_outbox_keeps_within_its_memory_budget_dropping_the_oldest_summaries()
    {
        await using var disk = await Ext4Loop.CreateAsync();
        var path = Path.Combine(disk.Dir, "outbox.db");
        var t0 = DateTimeOffset.UtcNow.AddHours(-3).ToUnixTimeMilliseconds();
        const long budget = 1L << 20;
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw, MemoryBudgetBytes = budget }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt"); // never acknowledges: the uplink is down
        await outbox.AppendAsync(Summaries(t0, 0, 10), Ct);
        await disk.FailAsync();
        await AppendRetryingAsync(outbox, Summaries(t0, 10, 500));
        for (var i = 1; i < 20; i++)
        {
            await outbox.AppendAsync(Summaries(t0, 10 + (i * 500), 500), Ct);
        }

        var stats = outbox.GetStats();
        Assert.NotNull(stats.Storage.MemoryOnlySince);
        Assert.Equal(budget, stats.Storage.MemoryBudgetBytes);
        Assert.True(stats.EntryBytes <= budget, $"{stats.EntryBytes} entry bytes held in memory, budget {budget}");
        Assert.True(stats.Dropped > 0, "the oldest summaries are dropped for the budget");
        Assert.True(stats.Depth > 500, $"what fits is kept: {stats.Depth}");
    }
}
