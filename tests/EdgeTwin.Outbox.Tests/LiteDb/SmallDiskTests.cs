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
    /// Regression (audit F5): the README's scenario, 2 MB tmpfs, 512 MB budget, uplink down, group commits of 440 and
    /// (after a slow moment) 973 summaries: the rounds ran, but a commit's journal pages did not fit in the room left,
    /// and appends failed with ENOSPC on outbox-log.db.
    /// </summary>
    /// <remarks>
    /// Known failure, kept as the reproduction for audit F5 (a), which is not fixed yet: on main and on this branch 54 of
    /// the 60 appends fail (the first at the 973-record commit, "No space left on device : '…/outbox-log.db'"). An attempt
    /// to check the commit's estimated journal size against the room above the reserve before committing (checkpoint,
    /// pressure round, else not written) still failed 50–54 of 60: the rounds free pages inside the data file, not disk
    /// space, so the data file must stop growing earlier than the present threshold makes it.
    /// </remarks>
    [Fact(Skip = "audit F5 (a) not fixed yet: 54 of 60 appends fail with ENOSPC on a 2 MB tmpfs; see the remarks")]
    public async Task Regression_a_full_2mb_disk_still_failed_outbox_commits_with_enospc()
    {
        MountTmpfs("2m");
        var path = Path.Combine(_dir.Path, "outbox.db");
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw }, cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        var t0 = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeMilliseconds();
        var failures = new List<string>();
        var window = 0;
        for (var batch = 0; batch < 60; batch++)
        {
            var size = batch % 7 == 6 ? 973 : 440;
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
            try
            {
                await outbox.AppendAsync(records, Ct);
            }
            catch (OutboxStorageException ex)
            {
                failures.Add($"batch {batch} ({size} records): {ex.Message}");
            }
        }

        var drive = new DriveInfo(_dir.Path);
        Assert.True(failures.Count == 0, $"{failures.Count} of 60 appends failed on a disk the outbox has alone; {string.Join(" | ", failures.Take(4))}");
        Assert.True(drive.AvailableFreeSpace > 0, "the disk is full");
        var stats = outbox.GetStats();
        Assert.True(stats.Dropped + stats.Condensed > 0, "nothing was dropped: the test did not reach the disk's size");
        var last = await outbox.ReadFromAsync(stats.LastSequence - 1, 10, Ct);
        Assert.NotEmpty(last);
        Assert.Contains(await outbox.ReadFromAsync(0, 100_000, Ct), e => e.Record.Kind == OutboxKind.Event && JsonDocument.Parse(e.Record.Payload).RootElement.GetProperty("event").GetString() == "data_gap");
    }
}
