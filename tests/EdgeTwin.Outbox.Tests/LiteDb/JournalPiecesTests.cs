using EdgeTwin.Core.Events;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>An append whose journal would not fit the disk's room is committed in pieces, and is still one append.</summary>
public sealed class JournalPiecesTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeLogCollector _logs = new();
    private readonly ILoggerFactory _loggerFactory;

    public JournalPiecesTests() => _loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new FakeLoggerProvider(_logs)));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DbPath => _dir.File("pieces.db");

    public void Dispose()
    {
        _loggerFactory.Dispose();
        _dir.Dispose();
    }

    /// <summary>300 KiB free above the reserve on a 64 MiB filesystem: a 973-summary commit needs ~0.9 MB of journal.</summary>
    private Task<LiteDbOutbox> OpenAsync(JournalWriteLimit? limit = null) =>
        LiteDbOutbox.OpenAsync(
            new LiteDbOutboxOptions
            {
                Path = DbPath,
                Identity = UplinkBodiesTests.Gw,
                DiskReserveBytes = 0,
                FileSystemSpace = () => (300 * 1024, 64L << 20),
                WrapStream = limit is null ? null : limit.Wrap,
            },
            _loggerFactory.CreateLogger<LiteDbOutbox>(),
            cancellationToken: Ct);

    private static OutboxRecord[] Summaries(int count, int salt = 0)
    {
        var t0 = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds();
        var records = new OutboxRecord[count];
        for (var i = 0; i < count; i++)
        {
            var acc = default(WindowAccumulator);
            acc.Reset(t0 - 10_000, t0);
            acc.Add(i + salt, t0 - 1, good: true);
            records[i] = UplinkBodies.Summary(UplinkBodiesTests.Gw, new Core.Samples.SeriesDescriptor($"pdu-a{i % 16:00}", $"outlet_current_{i}", "A"), acc);
        }

        return records;
    }

    private static async Task<List<OutboxEntry>> ReadAllAsync(LiteDbOutbox outbox) => [.. await outbox.ReadFromAsync(0, 100_000, Ct)];

    [Fact]
    public async Task A_973_summary_append_on_a_small_disk_goes_in_pieces_and_is_read_as_one_append()
    {
        long first, last;
        await using (var outbox = await OpenAsync())
        {
            outbox.RegisterUplink("mqtt");
            var before = outbox.GetStats().LastSequence;
            last = await outbox.AppendAsync(Summaries(973), Ct);
            first = before + 1;
            Assert.Equal(before + 973, last);
            Assert.Equal(Enumerable.Range(0, 973).Select(i => first + i), (await ReadAllAsync(outbox)).Select(e => e.Sequence));
        }

        var pieces = Assert.Single(_logs.GetSnapshot(), r => r.Id.Id == 30);
        Assert.DoesNotContain(" 1 transactions", pieces.Message, StringComparison.Ordinal);

        await using var reopened = await OpenAsync();
        Assert.Equal(Enumerable.Range(0, 973).Select(i => first + i), (await ReadAllAsync(reopened)).Select(e => e.Sequence));
    }

    [Fact]
    public async Task Regression_an_append_that_failed_part_way_through_its_pieces_left_nothing_and_used_no_sequences()
    {
        var limit = new JournalWriteLimit();
        await using var outbox = await OpenAsync(limit);
        outbox.RegisterUplink("mqtt");
        // Events: never dropped to make room, so the sequences below are exactly the appends'.
        var kept = await outbox.AppendAsync(
            Enumerable.Range(0, 10).Select(i => UplinkBodies.Event(UplinkBodiesTests.Gw, new EdgeEvent(EdgeEventKind.AlertRaised, "rack-a01", DateTimeOffset.UtcNow, EventSeverity.Warning, $"alert {i}"))).ToArray(),
            Ct);

        // The disk fills after ~300 KB more of journal: the first pieces commit, a later one fails.
        limit.FailAfter(300 * 1024);
        var failed = await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AppendAsync(Summaries(973, salt: 1), Ct));
        Assert.Contains(DbPath, failed.Message, StringComparison.Ordinal);
        Assert.Contains("No space left on device", failed.Message, StringComparison.Ordinal);
        limit.FailAfter(long.MaxValue);

        // Readers never see the committed pieces, the reopen removes them, and the caller's retry gets the next sequences.
        Assert.Equal(Enumerable.Range(0, 10).Select(i => kept - 9 + i), (await ReadAllAsync(outbox)).Select(e => e.Sequence));
        var removed = Assert.Single(_logs.GetSnapshot(), r => r.Id.Id == 31);
        Assert.DoesNotContain("removed 0 entries", removed.Message, StringComparison.Ordinal);
        Assert.Equal(kept + 973, await outbox.AppendAsync(Summaries(973, salt: 1), Ct));
        var entries = await ReadAllAsync(outbox);
        Assert.Equal(Enumerable.Range(0, 983).Select(i => kept - 9 + i), entries.Select(e => e.Sequence));
        Assert.Equal(0, outbox.GetStats().Dropped);
    }
}
