using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>The outbox alone on a real 2 MB tmpfs (needs root to mount it; skipped with the reason otherwise).</summary>
public sealed class SmallDiskTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private bool _mounted;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (_mounted)
        {
            Run("umount", _dir.Path);
        }

        _dir.Dispose();
    }

    private static (int Exit, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit(30_000);
        return (p.ExitCode, output);
    }

    private void MountTmpfs(string size)
    {
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            Console.WriteLine("SmallDiskTests: skipped, mounting a tmpfs needs root on Linux");
            Assert.Skip("mounting a tmpfs needs root on Linux");
        }

        var (exit, output) = Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", _dir.Path);
        if (exit != 0)
        {
            Console.WriteLine($"SmallDiskTests: skipped, mount failed: {output}");
            Assert.Skip($"mount -t tmpfs failed: {output}");
        }

        _mounted = true;
    }

    /// <summary>
    /// Regression (robustness audit F5): 2 MB tmpfs, 512 MB budget, uplink down, group commits of 440 and (after a
    /// slow moment) 973 summaries. 50–54 of the 60 appends failed with ENOSPC on outbox-log.db: one commit's journal
    /// (~0.9 KB per summary) did not fit the room the pressure threshold left, and every disk_budget round's data_gap
    /// event pinned a page, so the data file grew until nothing fitted. Now every append succeeds: the outbox drops the
    /// oldest summaries (named in data_gap events) before a commit whose journal would not fit and commits large
    /// appends in pieces. Nothing accepted is lost without a data_gap naming it, and once space returns after the
    /// disk was made smaller again, the same outbox goes on.
    /// </summary>
    [Fact]
    public async Task A_2mb_disk_takes_every_append_dropping_the_oldest_summaries_with_data_gap_events()
    {
        MountTmpfs("2m");
        var path = Path.Combine(_dir.Path, "outbox.db");
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        var t0 = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeMilliseconds();
        var failures = new List<string>();
        var accepted = new List<(long First, long Last)>();
        var window = 0;
        OutboxRecord[] Batch(int size)
        {
            var records = new OutboxRecord[size];
            for (var i = 0; i < size; i++)
            {
                var acc = default(WindowAccumulator);
                var end = t0 + ((window + (i / 440)) * 10_000L);
                acc.Reset(end - 10_000, end);
                acc.Add(i * 0.1, end - 1, good: true);
                records[i] = UplinkBodies.Summary(UplinkBodiesTests.Gw, new Core.Samples.SeriesDescriptor($"pdu-a{i % 16:00}", $"outlet_current_{i % 440}", "A"), acc);
            }

            window += (size / 440) + 1;
            return records;
        }

        long lastAccepted = 0;
        long minFree = long.MaxValue, maxFree = 0;
        for (var batch = 0; batch < 60; batch++)
        {
            var records = Batch(batch % 7 == 6 ? 973 : 440);
            try
            {
                var last = await outbox.AppendAsync(records, Ct);
                Assert.True(last - records.Length >= lastAccepted, $"append {batch} ended at {last}, overlapping the one before ({lastAccepted})");
                accepted.Add((last - records.Length + 1, last));
                lastAccepted = last;
            }
            catch (OutboxStorageException ex)
            {
                failures.Add(ex.Message);
            }

            if (batch >= 10)
            {
                var free = new DriveInfo(_dir.Path).AvailableFreeSpace;
                (minFree, maxFree) = (Math.Min(minFree, free), Math.Max(maxFree, free));
            }
        }

        Console.WriteLine($"SmallDiskTests: {failures.Count} of 60 appends failed; free space from the 10th append on {minFree}..{maxFree} bytes; dropped {outbox.GetStats().Dropped}, held {outbox.GetStats().Depth}");
        Assert.All(failures, f => Assert.Contains(_dir.Path, f, StringComparison.Ordinal));
        Assert.All(failures, f => Assert.Contains("No space left on device", f, StringComparison.Ordinal));
        Assert.Empty(failures);
        Assert.True(minFree > 0, "the disk was full at some point");

        // Every accepted sequence is held or inside the range of a data_gap event, and the events name every drop.
        await outbox.RunMaintenanceAsync(Ct); // writes the data_gap of drops since the last one (one a minute otherwise)
        var entries = await outbox.ReadFromAsync(0, 100_000, Ct);
        var held = entries.Select(e => e.Sequence).ToHashSet();
        var gaps = entries
            .Where(e => e.Record.Kind == OutboxKind.Event)
            .Select(e => JsonDocument.Parse(e.Record.Payload).RootElement)
            .Where(e => e.GetProperty("event").GetString() == "data_gap")
            .Select(e => e.GetProperty("attributes"))
            .Select(a => (First: long.Parse(a.GetProperty("first_seq").GetString()!, CultureInfo.InvariantCulture), Last: long.Parse(a.GetProperty("last_seq").GetString()!, CultureInfo.InvariantCulture), Dropped: long.Parse(a.GetProperty("dropped").GetString()!, CultureInfo.InvariantCulture)))
            .ToList();
        var stats = outbox.GetStats();
        Console.WriteLine($"SmallDiskTests: {gaps.Count} data_gap events name the {stats.Dropped} drops; {stats.Appended} records appended");
        Assert.True(stats.Dropped > 0, "nothing was dropped: the test did not reach the disk's size");
        Assert.Equal(stats.Dropped, gaps.Sum(g => g.Dropped));
        Assert.True(gaps.Count < 60, $"{gaps.Count} data_gap events for 60 appends: each pins a page of the small disk");
        foreach (var (first, last) in accepted)
        {
            for (var s = first; s <= last; s++)
            {
                Assert.True(held.Contains(s) || gaps.Any(g => g.First <= s && s <= g.Last), $"accepted entry {s} is neither held nor named in a data_gap");
            }
        }

        Assert.Contains(lastAccepted, held);

        // Space returns: the same outbox goes on.
        var (exit, output) = Run("mount", "-o", "remount,size=16m", _dir.Path);
        Assert.True(exit == 0, output);
        var after = await outbox.AppendAsync(Batch(440), Ct);
        Assert.True(after >= lastAccepted + 440);
        Assert.Equal(440, (await outbox.ReadFromAsync(after - 440, 1000, Ct)).Count(e => e.Sequence <= after && e.Record.Kind == OutboxKind.Summary));
    }

    /// <summary>
    /// What a small disk still cannot fix: another process filled it. The append fails naming the file and the cause,
    /// nothing is dropped for it (dropping frees no disk space), nothing accepted is lost, and once the other files
    /// are gone the same outbox takes appends again (its reopen backoff, "next attempt in 0.8 s").
    /// </summary>
    [Fact]
    public async Task A_disk_filled_by_someone_else_fails_appends_naming_the_file_drops_nothing_and_recovers()
    {
        MountTmpfs("2m");
        var path = Path.Combine(_dir.Path, "outbox.db");
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        var t0 = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds();
        var n = 0;
        OutboxRecord[] Batch(int size) => Enumerable.Range(0, size).Select(i =>
        {
            var acc = default(WindowAccumulator);
            var end = t0 + (n++ * 1000L);
            acc.Reset(end - 10_000, end);
            acc.Add(i, end - 1, good: true);
            return UplinkBodies.Summary(UplinkBodiesTests.Gw, new Core.Samples.SeriesDescriptor("pdu-a01", $"outlet_current_{i}", "A"), acc);
        }).ToArray();

        var lastAccepted = await outbox.AppendAsync(Batch(440), Ct);

        // Someone else takes the rest of the disk.
        var filler = Path.Combine(_dir.Path, "someone-else.bin");
        await using (var fill = new FileStream(filler, FileMode.Create, FileAccess.Write))
        {
            var chunk = new byte[4096];
            try
            {
                while (true)
                {
                    fill.Write(chunk);
                    fill.Flush();
                }
            }
            catch (IOException)
            {
                // full
            }
        }

        var failure = await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AppendAsync(Batch(440), Ct));
        Assert.Contains(path, failure.Message, StringComparison.Ordinal);
        Assert.Contains("No space left on device", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, outbox.GetStats().Dropped);

        File.Delete(filler);
        var retry = Batch(440);
        long after = 0;
        for (var attempt = 0; after == 0; attempt++)
        {
            try
            {
                after = await outbox.AppendAsync(retry, Ct);
            }
            catch (OutboxStorageException ex) when (attempt < 120 && ex.Message.Contains("next attempt in", StringComparison.Ordinal))
            {
                await Task.Delay(250, Ct);
            }
        }

        Assert.Equal(lastAccepted + 440, after);
        var entries = await outbox.ReadFromAsync(0, 10_000, Ct);
        Assert.Equal(880, entries.Count);
        Assert.Equal(0, outbox.GetStats().Dropped);
    }
}
