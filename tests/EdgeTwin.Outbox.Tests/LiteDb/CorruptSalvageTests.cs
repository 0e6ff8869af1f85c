using System.Text.Json;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>A damaged outbox file: what is readable is salvaged (agent) or exported (CLI), what is not is counted.</summary>
public sealed class CorruptSalvageTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 15, 33, 26, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(Now);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DbPath => _dir.File("outbox.db");

    public void Dispose() => _dir.Dispose();

    private static OutboxRecord Summary(long timeMs, int n) => UplinkBodiesTests.PduSummary(timeMs, n);

    /// <summary>1207 undelivered entries (uplink down), closed cleanly; returns them as written.</summary>
    private async Task<List<OutboxEntry>> WriteBacklogAsync(int count = 1207)
    {
        var t0 = Now.AddMinutes(-30).ToUnixTimeMilliseconds();
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        for (var i = 0; i < count; i += 100)
        {
            await outbox.AppendAsync(Enumerable.Range(i, Math.Min(100, count - i)).Select(n => Summary(t0 + (n * 1000L), n)).ToArray(), Ct);
        }

        return await ReadAllAsync(outbox);
    }

    /// <summary>The audit's damage: <c>dd if=/dev/urandom of=outbox.db bs=8192 seek=3 count=4 conv=notrunc</c> (fixed bytes here).</summary>
    private static void Damage(string path, int firstPage = 3, int pages = 4)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        Assert.True(file.Length > 8192L * (firstPage + pages + 4), $"expected a file of many pages, got {file.Length} bytes");
        var noise = new byte[8192 * pages];
        new Random(20261202).NextBytes(noise);
        file.Position = 8192L * firstPage;
        file.Write(noise);
    }

    private static JsonElement Json(OutboxEntry e) => JsonDocument.Parse(e.Record.Payload).RootElement;

    [Fact]
    public async Task Regression_32k_of_damage_lost_the_whole_outbox_backlog()
    {
        var written = await WriteBacklogAsync();
        Assert.Equal(1207, written.Count);
        Damage(DbPath);

        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        _time.Advance(TimeSpan.FromMinutes(1));
        await using var outbox = await LiteDbOutbox.OpenAsync(
            new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct);
        Assert.NotNull(outbox.MovedAsidePath);

        var held = await ReadAllAsync(outbox);

        // Before: the new file held only the corrupt_file data_gap event; all 1207 entries were gone.
        var gap = held[^1];
        var salvaged = held.Take(held.Count - 1).ToList();
        Assert.True(salvaged.Count >= 1207 - 200, $"only {salvaged.Count} of 1207 entries salvaged from 32 KiB of damage");

        // Sequences, times and bodies as written; only what was on the damaged pages is missing.
        var original = written.ToDictionary(e => e.Sequence);
        foreach (var entry in salvaged)
        {
            var before = original[entry.Sequence];
            Assert.Equal(before.Record.TimestampUnixMs, entry.Record.TimestampUnixMs);
            Assert.Equal(before.Record.DeviceId, entry.Record.DeviceId);
            Assert.Equal(before.Record.Payload.ToArray(), entry.Record.Payload.ToArray());
        }

        var attributes = Json(gap).GetProperty("attributes");
        Assert.Equal("corrupt_file", attributes.GetProperty("reason").GetString());
        Assert.Equal(salvaged.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), attributes.GetProperty("salvaged").GetString());
        var lost = long.Parse(attributes.GetProperty("lost").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        if (attributes.GetProperty("lost_exact").GetString() == "true")
        {
            Assert.Equal(1207 - salvaged.Count, lost);
        }

        Assert.Contains($"{salvaged.Count} readable entries were salvaged", Json(gap).GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(gap.Sequence > written[^1].Sequence);
        var line = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 17);
        Assert.Contains($"salvaged {salvaged.Count} readable entries", line.Message, StringComparison.Ordinal);

        // The new file is a normal outbox: appends continue above the gap event, and it reopens as it is.
        Assert.Equal(gap.Sequence + 1, await outbox.AppendAsync([Summary(Now.ToUnixTimeMilliseconds(), 1)], Ct));
    }

    [Fact]
    public async Task A_salvaged_file_reopens_with_the_salvaged_entries_and_their_holes()
    {
        var written = await WriteBacklogAsync(600);
        Damage(DbPath, firstPage: 4, pages: 2);
        long depth, first;
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct))
        {
            Assert.NotNull(outbox.MovedAsidePath);
            depth = outbox.GetStats().Depth;
            first = outbox.GetStats().FirstSequence;
            Assert.True(first <= written[^1].Sequence, "the first entry held is the gap event, not a salvaged one");
            Assert.True(depth > 1, "nothing salvaged");
        }

        await using var reopened = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct);
        Assert.Null(reopened.MovedAsidePath);
        Assert.Equal(depth, reopened.GetStats().Depth);
        Assert.Equal(first, reopened.GetStats().FirstSequence);
    }

    /// <summary>Page 3..6 held the meta document (the audit's damage); 20..23 and 40..43 hold entries.</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(20)]
    [InlineData(40)]
    public async Task Salvage_reads_a_moved_aside_file_without_changing_it_and_counts_what_it_cannot_read(int firstPage)
    {
        var written = await WriteBacklogAsync();
        Damage(DbPath, firstPage);
        var before = await File.ReadAllBytesAsync(DbPath, Ct);

        var result = LiteDbOutbox.Salvage(DbPath, LiteDbOutbox.JournalPath(DbPath), TimeSpan.FromSeconds(30), Ct);

        var detail = $"{result.Entries.Count} salvaged, {result.Lost} lost, incomplete {result.Incomplete}: {string.Join(" / ", result.Problems)}";
        Assert.Equal(before, await File.ReadAllBytesAsync(DbPath, Ct));
        Assert.True(result.Entries.Count >= 1000, detail);
        Assert.NotEmpty(result.Problems);
        Assert.Equal(result.Entries.Select(e => e.Sequence).Order(), result.Entries.Select(e => e.Sequence));
        var original = written.ToDictionary(e => e.Sequence);
        Assert.All(result.Entries, e => Assert.Equal(original[e.Sequence].Record.Payload.ToArray(), e.Record.Payload.ToArray()));
        if (!result.Incomplete)
        {
            Assert.True(result.Entries.Count + result.Lost == 1207, detail);
        }
    }

    /// <summary>
    /// An append committed in pieces was killed part-way (its caller never heard "stored"), and at the next start the file
    /// was found corrupt: the salvage copied the committed pieces into the new file as entries, and the caller's retry
    /// stored the same records again under new sequences, so uplinks sent them twice. The audit's damage at pages 20–23
    /// lands on the pieces, so the normal open fails while removing them and the file goes to the salvage with them.
    /// </summary>
    [Fact]
    public async Task Regression_pieces_of_an_append_killed_part_way_in_a_file_later_found_corrupt_were_salvaged_and_sent_twice()
    {
        var killed = await UnfinishedAppend.WriteAsync(DbPath, _time, Ct);
        Damage(DbPath, firstPage: 20);

        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        await using var outbox = await LiteDbOutbox.OpenAsync(UnfinishedAppend.Options(DbPath), loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct);
        Assert.NotNull(outbox.MovedAsidePath);

        // Only the 10 accepted events are salvaged, then the corrupt_file gap event; nothing of the unfinished append.
        var held = await ReadAllAsync(outbox);
        Assert.Equal(Enumerable.Range(0, UnfinishedAppend.KeptEvents).Select(i => killed.Kept - UnfinishedAppend.KeptEvents + 1 + i), held.Take(held.Count - 1).Select(e => e.Sequence));
        var attributes = Json(held[^1]).GetProperty("attributes");
        Assert.Equal("corrupt_file", attributes.GetProperty("reason").GetString());
        Assert.Equal("10", attributes.GetProperty("salvaged").GetString());
        Assert.Equal("0", attributes.GetProperty("lost").GetString());
        Assert.Contains("salvaged 10 readable entries", Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 17).Message, StringComparison.Ordinal);
        var notSalvaged = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 32);
        Assert.Matches(@"held [1-9]\d* entries \([1-9]\d* bytes, above sequence " + killed.Kept + @"\) of an append that never completed", notSalvaged.Message);

        // The caller retries the whole append: every record is held once. Before: the salvaged pieces' records twice.
        var retried = await outbox.AppendAsync(killed.Append, Ct);
        var summaries = (await ReadAllAsync(outbox)).Where(e => e.Record.Kind == OutboxKind.Summary).ToList();
        Assert.Equal(UnfinishedAppend.AppendRecords, summaries.Count);
        Assert.Equal(killed.Append.Select(r => r.Payload.ToArray()), summaries.Select(e => e.Record.Payload.ToArray()));
        Assert.Equal(retried, summaries[^1].Sequence);
    }

    [Fact]
    public async Task Salvage_leaves_out_and_counts_the_pieces_of_an_unfinished_append_without_changing_the_file()
    {
        var killed = await UnfinishedAppend.WriteAsync(DbPath, _time, Ct);
        long pieces, pieceBytes;
        await using (var inspect = await LiteDbOutbox.OpenAsync(ReadOnlyInspectionTests.Inspect(DbPath), time: _time, cancellationToken: Ct))
        {
            (pieces, pieceBytes) = (inspect.GetStats().PendingEntries, inspect.GetStats().PendingBytes);
        }

        Assert.True(pieces > 0, "the kill left no committed piece: the append did not go in pieces");
        var before = await File.ReadAllBytesAsync(DbPath, Ct);

        var result = LiteDbOutbox.Salvage(DbPath, LiteDbOutbox.JournalPath(DbPath), TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(before, await File.ReadAllBytesAsync(DbPath, Ct));
        Assert.Equal(Enumerable.Range(0, UnfinishedAppend.KeptEvents).Select(i => killed.Kept - UnfinishedAppend.KeptEvents + 1 + i), result.Entries.Select(e => e.Sequence));
        Assert.All(result.Entries, e => Assert.Equal(OutboxKind.Event, e.Record.Kind));
        Assert.Equal(pieces, result.PendingDropped);
        Assert.Equal(pieceBytes, result.PendingBytes);
        Assert.Equal(killed.Kept, result.LastSequence);
        Assert.Equal(0, result.Lost);
        Assert.False(result.Incomplete);
        Assert.Empty(result.Problems);
    }

    private static async Task<List<OutboxEntry>> ReadAllAsync(LiteDbOutbox outbox)
    {
        var all = new List<OutboxEntry>();
        long after = 0;
        while ((await outbox.ReadFromAsync(after, 1000, Ct)) is { Count: > 0 } page)
        {
            all.AddRange(page);
            after = page[^1].Sequence;
        }

        return all;
    }

    [Fact]
    public async Task Salvage_of_a_file_that_is_all_noise_returns_nothing_and_says_so()
    {
        var noise = new byte[8192 * 16];
        new Random(3).NextBytes(noise);
        await File.WriteAllBytesAsync(DbPath, noise, Ct);

        var result = LiteDbOutbox.Salvage(DbPath, null, TimeSpan.FromSeconds(10), Ct);

        Assert.Empty(result.Entries);
        Assert.True(result.Incomplete);
        Assert.NotEmpty(result.Problems);
    }
}
