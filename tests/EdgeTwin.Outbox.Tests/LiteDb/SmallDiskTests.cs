using System.Diagnostics;
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
    /// The robustness audit's F5 scenario: 2 MB tmpfs, 512 MB budget, uplink down, group commits of 440 and (after a
    /// slow moment) 973 summaries. What the outbox promises there today: every failed append names the file and the
    /// cause (the caller keeps those records and retries), nothing accepted before is lost, and once space returns the
    /// same outbox takes appends again, with what it dropped for the disk named in a data_gap.
    /// </summary>
    /// <remarks>
    /// Not yet what the README wants (audit F5 (a), open): on this disk 50–54 of the 60 appends fail with ENOSPC on
    /// outbox-log.db — the pressure rounds free pages inside the data file, not disk space, so a commit's journal does
    /// not fit the room the threshold leaves. When that is fixed, assert <c>failures.Count == 0</c> here.
    /// </remarks>
    [Fact]
    public async Task A_full_2mb_disk_fails_appends_naming_the_file_loses_nothing_accepted_and_recovers_when_space_returns()
    {
        MountTmpfs("2m");
        var path = Path.Combine(_dir.Path, "outbox.db");
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        var t0 = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeMilliseconds();
        var failures = new List<string>();
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
        for (var batch = 0; batch < 60; batch++)
        {
            try
            {
                lastAccepted = await outbox.AppendAsync(Batch(batch % 7 == 6 ? 973 : 440), Ct);
            }
            catch (OutboxStorageException ex)
            {
                failures.Add(ex.Message);
            }
        }

        Assert.All(failures, f => Assert.Contains(_dir.Path, f, StringComparison.Ordinal));
        Assert.All(failures, f => Assert.Contains("No space left on device", f, StringComparison.Ordinal));
        Assert.True(lastAccepted > 0, "no append succeeded at all");

        // Space returns (the engineer cleaned up): the same outbox takes appends again, the last accepted entry is there.
        var (exit, output) = Run("mount", "-o", "remount,size=16m", _dir.Path);
        Assert.True(exit == 0, output);
        // After a failure the outbox reopens itself with a backoff ("next attempt in 0.8 s"); the feeder retries as here.
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

        Assert.True(after > lastAccepted);
        Assert.Contains(await outbox.ReadFromAsync(lastAccepted - 1, 10, Ct), e => e.Sequence == lastAccepted);
        var stats = outbox.GetStats();
        Assert.True(stats.Dropped + stats.Condensed > 0, "nothing was dropped: the test did not reach the disk's size");
        Assert.Contains(await outbox.ReadFromAsync(0, 100_000, Ct), e => e.Record.Kind == OutboxKind.Event && JsonDocument.Parse(e.Record.Payload).RootElement.GetProperty("event").GetString() == "data_gap");
    }
}
