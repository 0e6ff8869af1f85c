using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// A file at the outbox's path that is not an outbox (a mistyped <c>--path</c> or <c>outbox.path</c>: the site config,
/// /etc/passwd). LiteDB re-initialised a file shorter than a page as an empty database and cut a longer one to whole pages
/// before it failed on it; <c>edgetwin outbox stats --path /etc/passwd</c> replaced the file with an empty outbox.
/// </summary>
public sealed class ForeignFileTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _dir.Dispose();

    private static byte[] Text(int bytes) =>
        [.. Enumerable.Repeat("root:x:0:0:root:/root:/bin/bash\n"u8.ToArray(), (bytes / 32) + 1).SelectMany(b => b).Take(bytes)];

    [Theory]
    [InlineData(1460)] // under a page: LiteDB wrote a new database over it
    [InlineData(29_200)] // over three pages: LiteDB cut it to 24576 bytes, then failed
    public async Task Regression_inspecting_a_file_that_is_not_an_outbox_rewrote_it(int size)
    {
        var path = _dir.File("passwd");
        var content = Text(size);
        await File.WriteAllBytesAsync(path, content, Ct);

        var e = await Assert.ThrowsAsync<OutboxStorageException>(async () =>
            await (await LiteDbOutbox.OpenAsync(ReadOnlyInspectionTests.Inspect(path), cancellationToken: Ct)).DisposeAsync());

        Assert.Contains($"{path} is not an outbox", e.Message, StringComparison.Ordinal);
        Assert.Contains("nothing was read or changed", e.Message, StringComparison.Ordinal);
        Assert.Equal(content, await File.ReadAllBytesAsync(path, Ct));
        Assert.Equal(["passwd"], Directory.GetFiles(_dir.Path).Select(Path.GetFileName)); // no passwd.lock, no passwd-log
    }

    [Fact]
    public async Task Regression_the_agent_wrote_its_outbox_over_a_file_that_was_not_one()
    {
        var path = _dir.File("outbox.db");
        var content = Text(1460);
        await File.WriteAllBytesAsync(path, content, Ct);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 14, 0, 0, TimeSpan.Zero));

        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path }, time: time, cancellationToken: Ct);

        // Kept whole beside the new outbox, as a damaged outbox is.
        var aside = Assert.IsType<string>(outbox.MovedAsidePath);
        Assert.Equal(content, await File.ReadAllBytesAsync(aside, Ct));
        Assert.Null(LiteDbOutbox.NotLiteDbFile(path));
    }

    [Fact]
    public async Task An_empty_file_and_a_real_outbox_are_opened_as_before()
    {
        var empty = _dir.File("empty.db");
        await File.WriteAllBytesAsync(empty, [], Ct);
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = empty }, cancellationToken: Ct))
        {
            Assert.Null(outbox.MovedAsidePath);
        }

        await using var inspect = await LiteDbOutbox.OpenAsync(ReadOnlyInspectionTests.Inspect(empty), cancellationToken: Ct);
        Assert.Equal(0, inspect.GetStats().Depth);
    }
}
