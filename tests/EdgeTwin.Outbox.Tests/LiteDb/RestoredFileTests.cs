using System.Diagnostics;
using EdgeTwin.Outbox.Tests.Summaries;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// A gateway replaced with a restored backup of its state directory, or with the old gateway's outbox file copied in:
/// the file's own count is behind what the centre already has from the original, which de-duplicates on (gateway, seq).
/// The copies are made with the real <c>cp -p</c> (mtime kept, as tar and rsync keep it).
/// </summary>
public sealed class RestoredFileTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 20, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(Now);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _dir.Dispose();

    private string Original => _dir.File("outbox.db");

    private Task<LiteDbOutbox> OpenAsync(string path, string host, FakeLogger<LiteDbOutbox>? logger = null) =>
        LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw, Host = host }, logger, time: _time, cancellationToken: Ct);

    /// <summary>Appends <paramref name="count"/> summaries and returns their sequences.</summary>
    private async Task<long[]> AppendAsync(LiteDbOutbox outbox, int count)
    {
        var t0 = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var last = await outbox.AppendAsync(Enumerable.Range(0, count).Select(n => UplinkBodiesTests.PduSummary(t0 + n, n)).ToArray(), Ct);
        return Enumerable.Range(0, count).Select(n => last - count + 1 + n).ToArray();
    }

    /// <summary>The centre's side: every sequence the original file sent to the uplink, and the file's last one.</summary>
    private async Task<(HashSet<long> Sent, long Held)> OriginalRunsOnAsync(int before, int heldAtBackup, int after, Action backup)
    {
        var sent = new HashSet<long>();
        await using (var outbox = await OpenAsync(Original, "gw-a"))
        {
            outbox.RegisterUplink("mqtt");
            var first = await AppendAsync(outbox, before);
            await outbox.AcknowledgeAsync("mqtt", first[^1], Ct);
            sent.UnionWith(first);
            sent.UnionWith(await AppendAsync(outbox, heldAtBackup)); // in flight when the backup was taken: sent, not yet acknowledged
        }

        backup();

        _time.Advance(TimeSpan.FromMinutes(5));
        await using (var outbox = await OpenAsync(Original, "gw-a"))
        {
            var later = await AppendAsync(outbox, after); // what the original sent after the backup, until it died
            await outbox.AcknowledgeAsync("mqtt", later[^1], Ct);
            sent.UnionWith(later);
        }

        return (sent, heldAtBackup);
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        foreach (var (source, target) in new[] { (from, to), (LiteDbOutbox.JournalPath(from), LiteDbOutbox.JournalPath(to)) })
        {
            using var cp = Process.Start(new ProcessStartInfo("cp", ["-p", source, target]) { RedirectStandardError = true })!;
            cp.WaitForExit();
            Assert.True(cp.ExitCode == 0, cp.StandardError.ReadToEnd());
        }
    }

    [Fact]
    public async Task Regression_a_restored_backup_numbered_new_entries_with_sequences_the_original_had_already_sent()
    {
        var restored = _dir.File("restored/outbox.db");
        var (sent, held) = await OriginalRunsOnAsync(before: 50, heldAtBackup: 7, after: 200, backup: () => Copy(Original, restored));

        _time.Advance(TimeSpan.FromMinutes(10)); // the replacement gateway starts from the backup, on the same machine id
        var logger = new FakeLogger<LiteDbOutbox>();
        await using var outbox = await OpenAsync(restored, "gw-a", logger);
        var fresh = await AppendAsync(outbox, 30);

        // Before, they continued from the backup's last sequence: 200 of them were numbers the centre already held for the
        // original's data, and a consumer de-duplicating on (gateway, seq) dropped them silently.
        Assert.DoesNotContain(fresh, sent.Contains);
        Assert.True(fresh[0] > sent.Max(), $"new entries start at {fresh[0]}, the original went up to {sent.Max()}");
        Assert.Equal(fresh[0] + 29, fresh[^1]); // contiguous after the jump
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Id.Id == 35 && r.Message.Contains("is a copy", StringComparison.Ordinal));

        // The entries the backup held keep their sequences (the centre de-duplicates them if the original delivered
        // them) and the uplink goes over the jump to the new ones.
        var read = await outbox.ReadAsync("mqtt", 0, 1000, Ct);
        Assert.Equal(held + 30, read.Count);
        Assert.All(read.Take((int)held), e => Assert.Contains(e.Sequence, sent));
        await outbox.AcknowledgeAsync("mqtt", read[^1].Sequence, Ct);
        Assert.Equal(0, outbox.GetStats().Depth);
    }

    [Fact]
    public async Task An_outbox_file_moved_onto_another_machine_numbers_new_entries_from_the_clock()
    {
        var sent = new HashSet<long>();
        await using (var outbox = await OpenAsync(Original, "gw-old"))
        {
            outbox.RegisterUplink("mqtt");
            sent.UnionWith(await AppendAsync(outbox, 20));
        }

        _time.Advance(TimeSpan.FromMinutes(1));
        var logger = new FakeLogger<LiteDbOutbox>();
        await using var moved = await OpenAsync(Original, "gw-new", logger); // the same file (no copy), another machine id
        var fresh = await AppendAsync(moved, 5);
        Assert.True(fresh[0] >= Now.AddMinutes(1).ToUnixTimeMilliseconds() * 1000, $"new entries start at {fresh[0]}");
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Id.Id == 35 && r.Message.Contains("another machine", StringComparison.Ordinal));
        Assert.Equal(20, (await moved.ReadAsync("mqtt", 0, 1000, Ct)).Count(e => sent.Contains(e.Sequence)));
    }

    [Fact]
    public async Task A_restart_in_place_keeps_sequences_contiguous_and_says_nothing_about_copies()
    {
        long last;
        await using (var outbox = await OpenAsync(Original, "gw-a"))
        {
            last = (await AppendAsync(outbox, 10))[^1];
        }

        _time.Advance(TimeSpan.FromHours(3));
        var logger = new FakeLogger<LiteDbOutbox>();
        await using var again = await OpenAsync(Original, "gw-a", logger);
        Assert.Equal(last + 1, (await AppendAsync(again, 1))[0]);
        Assert.DoesNotContain(logger.Collector.GetSnapshot(), r => r.Id.Id == 35);
    }
}
