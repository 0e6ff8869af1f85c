using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// The read-only open behind <c>edgetwin outbox stats|peek|export</c> on a file that holds the committed pieces of an
/// append killed part-way: they are not entries to send, the file is not changed, and the inspection says they are there.
/// </summary>
public sealed class ReadOnlyInspectionTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(UnfinishedAppend.Now);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DbPath => _dir.File("outbox.db");

    public void Dispose() => _dir.Dispose();

    /// <summary>The options <c>edgetwin outbox</c> opens a file with (src/EdgeTwin.Agent/Cli/OutboxCommand.cs).</summary>
    internal static LiteDbOutboxOptions Inspect(string path) => new()
    {
        Path = path,
        MoveCorruptFileAside = false,
        DiskBudgetBytes = long.MaxValue / 2,
        MaxAge = TimeSpan.FromDays(365 * 100),
    };

    private static async Task<List<OutboxEntry>> ReadAllAsync(LiteDbOutbox outbox) => [.. await outbox.ReadFromAsync(0, 100_000, Ct)];

    private (byte[] Data, byte[] Journal, DateTime DataTime, DateTime JournalTime) Files()
    {
        var journal = LiteDbOutbox.JournalPath(DbPath);
        return (File.ReadAllBytes(DbPath), File.ReadAllBytes(journal), File.GetLastWriteTimeUtc(DbPath), File.GetLastWriteTimeUtc(journal));
    }

    /// <summary>
    /// Segments of 64 sequences: the killed append's pieces fill several segments that hold nothing else. Those counted as
    /// released at the read-only open, and it dropped them, changing the file it only inspected.
    /// </summary>
    [Theory]
    [InlineData(8192)]
    [InlineData(64)]
    public async Task Inspecting_a_file_with_pending_pieces_counts_no_entries_for_them_changes_nothing_and_says_they_are_there(int segmentCapacity)
    {
        var killed = await UnfinishedAppend.WriteAsync(DbPath, _time, Ct, segmentCapacity);
        var before = Files();
        Assert.NotEmpty(before.Journal); // the failed piece's pages: the agent's open checkpoints a journal, the inspection must not
        var first = killed.Kept - UnfinishedAppend.KeptEvents + 1;

        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        OutboxStats stats;
        await using (var inspect = await LiteDbOutbox.OpenAsync(Inspect(DbPath), loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct))
        {
            stats = inspect.GetStats();
            Assert.Equal(UnfinishedAppend.KeptEvents, stats.Depth);
            Assert.Equal(first, stats.FirstSequence);
            Assert.Equal(killed.Kept, stats.LastSequence);
            Assert.Equal(Enumerable.Range(0, UnfinishedAppend.KeptEvents).Select(i => first + i), (await ReadAllAsync(inspect)).Select(e => e.Sequence));
            Assert.Empty(await inspect.ReadFromAsync(killed.Kept, 1000, Ct));
        }

        Assert.True(stats.PendingEntries > 0, "the kill left no committed piece: the append did not go in pieces");
        Assert.InRange(stats.PendingEntries, 1, UnfinishedAppend.AppendRecords - 1);
        Assert.True(stats.PendingBytes > stats.PendingEntries * 96, $"{stats.PendingBytes} bytes for {stats.PendingEntries} entries");
        var said = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 33);
        Assert.Contains($"{stats.PendingEntries} entries in pending pieces of an unfinished append ({stats.PendingBytes} bytes, above sequence {killed.Kept})", said.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Id.Id == 31); // nothing removed

        var after = Files();
        Assert.Equal(before.Data, after.Data);
        Assert.Equal(before.Journal, after.Journal);
        Assert.Equal(before.DataTime, after.DataTime);
        Assert.Equal(before.JournalTime, after.JournalTime);

        // What the inspection named is what the agent's next open removes.
        await using var agent = await LiteDbOutbox.OpenAsync(UnfinishedAppend.Options(DbPath, segmentCapacity: segmentCapacity), loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct);
        Assert.Contains($"removed {stats.PendingEntries} entries", Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 31).Message, StringComparison.Ordinal);
        Assert.Equal(UnfinishedAppend.KeptEvents, agent.GetStats().Depth);
        Assert.Equal(0, agent.GetStats().PendingEntries);
    }

    [Fact]
    public async Task Inspecting_a_file_whose_append_in_pieces_completed_reports_no_pending_pieces()
    {
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new FakeLoggerProvider(logs)));
        await using (var outbox = await LiteDbOutbox.OpenAsync(UnfinishedAppend.Options(DbPath), loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            await outbox.AppendAsync(UnfinishedAppend.Summaries(973), Ct);
        }

        Assert.DoesNotContain(" 1 transactions", Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 30).Message, StringComparison.Ordinal);
        await using var inspect = await LiteDbOutbox.OpenAsync(Inspect(DbPath), loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct);
        var stats = inspect.GetStats();
        Assert.Equal(973, stats.Depth);
        Assert.Equal(0, stats.PendingEntries);
        Assert.Equal(0, stats.PendingBytes);
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Id.Id == 33);
    }
}
