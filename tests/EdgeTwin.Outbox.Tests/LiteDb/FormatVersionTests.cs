using System.Text.Json;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// meta.state.format: an upgrade reads what the older build stored (files without the field are format 1), and a build
/// that finds a newer format (a rollback over a newer build's backlog) keeps the file untouched instead of reading it.
/// </summary>
public sealed class FormatVersionTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 21, 40, 0, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(Now);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DbPath => _dir.File("outbox.db");

    public void Dispose() => _dir.Dispose();

    private static OutboxRecord Summary(long timeMs, int n) => UplinkBodiesTests.PduSummary(timeMs, n);

    /// <summary>An uplink that went down: 300 entries appended, the first 100 acknowledged (and released), closed cleanly.</summary>
    private async Task<List<OutboxEntry>> WriteBacklogAsync()
    {
        var t0 = Now.AddMinutes(-30).ToUnixTimeMilliseconds();
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        await outbox.AppendAsync(Enumerable.Range(0, 300).Select(n => Summary(t0 + (n * 1000L), n)).ToArray(), Ct);
        var all = await ReadAllAsync(outbox);
        await outbox.AcknowledgeAsync("mqtt", all[99].Sequence, Ct);
        return all;
    }

    /// <summary>Edits meta.state the way another build's file would have it (null: no format field, as main wrote it).</summary>
    private void SetFormat(int? format)
    {
        using var db = new LiteDatabase($"Filename={DbPath};Connection=direct");
        var meta = db.GetCollection("meta");
        var state = meta.FindById("state");
        Assert.Equal(1, state["format"].AsInt32); // this build writes it
        if (format is { } f)
        {
            state["format"] = f;
        }
        else
        {
            state.Remove("format");
        }

        meta.Update(state);
        db.Checkpoint();
    }

    [Fact]
    public async Task A_file_an_older_build_wrote_without_a_format_is_read_whole_with_its_positions()
    {
        var written = await WriteBacklogAsync();
        SetFormat(null);

        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        Assert.Null(outbox.MovedAsidePath);
        Assert.Equal(written[99].Sequence, outbox.GetAcknowledged("mqtt"));
        var waiting = await outbox.ReadAsync("mqtt", written[99].Sequence, 1000, Ct);
        Assert.Equal(written.Skip(100).Select(e => e.Sequence), waiting.Select(e => e.Sequence));
        Assert.Equal(written.Skip(100).Select(e => e.Record.Payload.ToArray()), waiting.Select(e => e.Record.Payload.ToArray()));
    }

    [Fact]
    public async Task Regression_a_rollback_would_have_read_a_newer_builds_outbox_as_its_own()
    {
        // No build before this one wrote a format, so an older build read (and condensed, dropped, acknowledged in) any
        // file a newer one left. Now a format above this build's is kept whole and named; collecting goes on in a new file.
        var written = await WriteBacklogAsync();
        SetFormat(FormatVersionOfNewerBuild);
        var before = await File.ReadAllBytesAsync(DbPath, Ct);

        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        _time.Advance(TimeSpan.FromMinutes(1));
        await using var outbox = await LiteDbOutbox.OpenAsync(
            new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, loggerFactory.CreateLogger<LiteDbOutbox>(), time: _time, cancellationToken: Ct);
        var movedTo = outbox.MovedAsidePath;
        Assert.Equal($"{DbPath}.format{FormatVersionOfNewerBuild}-20261203T214100Z", movedTo);
        Assert.Equal(before, await File.ReadAllBytesAsync(movedTo!, Ct));

        var error = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 34);
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains($"Outbox {DbPath} was written by a newer build (file format {FormatVersionOfNewerBuild}; this build reads format 1): kept untouched as {movedTo}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Message.Contains("corrupt", StringComparison.OrdinalIgnoreCase));

        // The new file starts with a data_gap event naming the kept file, above every sequence the kept file holds.
        var held = await ReadAllAsync(outbox);
        var gap = Assert.Single(held);
        Assert.True(gap.Sequence > written[^1].Sequence);
        var attributes = JsonDocument.Parse(gap.Record.Payload).RootElement.GetProperty("attributes");
        Assert.Equal("newer_format", attributes.GetProperty("reason").GetString());
        Assert.Equal(movedTo, attributes.GetProperty("moved_to").GetString());
        Assert.False(attributes.TryGetProperty("lost", out _));

        // The kept file, opened by a build that reads it (here: with the format set back), still holds the backlog.
        await outbox.DisposeAsync();
        File.Move(DbPath, _dir.File("new.db"));
        File.Move(movedTo!, DbPath);
        SetFormatFrom(FormatVersionOfNewerBuild);
        await using var again = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct);
        Assert.Equal(written.Skip(100).Select(e => e.Sequence), (await ReadAllAsync(again)).Select(e => e.Sequence)); // the acknowledged 100 were released
    }

    [Fact]
    public async Task The_outbox_cli_refuses_a_newer_builds_file_naming_it_and_leaves_it_as_it_is()
    {
        await WriteBacklogAsync();
        SetFormat(FormatVersionOfNewerBuild);
        var before = await File.ReadAllBytesAsync(DbPath, Ct);

        var ex = await Assert.ThrowsAsync<OutboxStorageException>(async () =>
            await LiteDbOutbox.OpenAsync(ReadOnlyInspectionTests.Inspect(DbPath), time: _time, cancellationToken: Ct));
        Assert.Equal($"Outbox {DbPath} was written by a newer build (file format {FormatVersionOfNewerBuild}; this build reads format 1): not read. Read it with that build's edgetwin.", ex.Message);
        Assert.Equal(before, await File.ReadAllBytesAsync(DbPath, Ct));
    }

    private const int FormatVersionOfNewerBuild = 2;

    private void SetFormatFrom(int expected)
    {
        using var db = new LiteDatabase($"Filename={DbPath};Connection=direct");
        var meta = db.GetCollection("meta");
        var state = meta.FindById("state");
        Assert.Equal(expected, state["format"].AsInt32);
        state["format"] = 1;
        meta.Update(state);
        db.Checkpoint();
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
}
