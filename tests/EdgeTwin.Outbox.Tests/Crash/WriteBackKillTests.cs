using System.Diagnostics;
using EdgeTwin.Tests.Shared;

namespace EdgeTwin.Outbox.Tests.Crash;

/// <summary>
/// SIGKILL in the middle of the memory outbox's write-back (a child process on a read-only bind mount made writable, stopped
/// at each step of the write-back and killed there): the next open finds the old file whole or the new one whole, never a
/// broken one or the old journal replayed onto the new file. Before the commit point (the old journal moved aside) the old
/// file is used and the partial new one removed; after it the new one is put in place. Root only (the mount).
/// </summary>
public sealed class WriteBackKillTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("writing", false)]
    [InlineData("written", false)]
    [InlineData("committed", true)]
    [InlineData("replaced", true)]
    public Task A_kill_during_the_write_back_leaves_the_old_file_or_the_new_one_whole(string step, bool newFile) =>
        KillDuringWriteBackThenOpenAsync(step, newFile, asInspection: false);

    /// <summary>
    /// Regression: after a write-back killed past its commit point, <c>edgetwin outbox stats/peek/export</c> (which open
    /// without moving anything aside) read the old file without its journal, which had been moved aside as the commit
    /// point: the old file's last commits were missing and the new file's entries unseen until the agent's next start.
    /// </summary>
    [Fact]
    public Task Regression_an_inspection_after_a_write_back_killed_past_its_commit_point_read_the_old_file_without_its_journal() =>
        KillDuringWriteBackThenOpenAsync("committed", newFile: true, asInspection: true);

    private static async Task KillDuringWriteBackThenOpenAsync(string step, bool newFile, bool asInspection)
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Needs Linux: the test kills a child process with SIGKILL.");
        }

        var child = Path.Combine(AppContext.BaseDirectory, "EdgeTwin.Outbox.SoakChild.dll");
        Assert.True(File.Exists(child), $"soak child not built at {child}");
        using var temp = new TempDirectory();
        using var mount = ReadOnlyBindMount.Create(temp.Path);
        mount.MakeWritable();
        var path = Path.Combine(mount.Dir, "outbox.db");

        // The old file: 3000 entries, 1000 acknowledged; its journal holds the last commits (LiteDB checkpoints later).
        long oldLast, oldAcked;
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();
        await using (var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path }, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            var payload = new byte[300];
            for (var i = 0; i < 3; i++)
            {
                oldLast = await outbox.AppendAsync([.. Enumerable.Range(i * 1000, 1000).Select(n => new OutboxRecord(OutboxKind.Summary, "pdu-a01-a", t0 + n, payload))], Ct);
            }

            oldLast = outbox.GetStats().LastSequence;
            oldAcked = oldLast - 2000;
            await outbox.AcknowledgeAsync("mqtt", oldAcked, Ct);
        }

        mount.MakeReadOnly();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(child);
        start.ArgumentList.Add(path);
        start.ArgumentList.Add("--writeback");
        start.ArgumentList.Add(step);
        long childFirst, childLast, childAcked;
        using (var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the child"))
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(60));
                Assert.Equal("memory true", await ReadLineAsync(process, timeout.Token));
                var ready = (await ReadLineAsync(process, timeout.Token)).Split(' ');
                Assert.Equal("ready", ready[0]);
                (childFirst, childLast, childAcked) = (long.Parse(ready[1]), long.Parse(ready[2]), long.Parse(ready[3]));
                mount.MakeWritable();
                while (await ReadLineAsync(process, timeout.Token) is var line && line != $"step {step}")
                {
                    Assert.StartsWith("step ", line);
                }
            }
            finally
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(Ct);
            }
        }

        // The inspection commands' options (OutboxCommand.Inspect): nothing moved aside, condensed or dropped.
        var reopen = asInspection
            ? new LiteDbOutboxOptions { Path = path, MoveCorruptFileAside = false, DiskBudgetBytes = long.MaxValue / 2, MaxAge = TimeSpan.FromDays(36500) }
            : new LiteDbOutboxOptions { Path = path };
        await using (var outbox = await LiteDbOutbox.OpenAsync(reopen, cancellationToken: Ct))
        {
            Assert.Null(outbox.MovedAsidePath); // readable: neither file is broken
            Assert.Null(outbox.GetStats().Storage.MemoryOnlySince);
            Assert.Empty(Directory.GetFiles(mount.Dir, "outbox.db.writeback*"));
            var held = new List<OutboxEntry>();
            for (var after = 0L; ;)
            {
                var page = await outbox.ReadFromAsync(after, 5000, Ct);
                if (page.Count == 0)
                {
                    break;
                }

                held.AddRange(page);
                after = page[^1].Sequence;
            }

            var sequences = held.Where(e => e.Record.DeviceId != "outbox").Select(e => e.Sequence).ToList();
            if (newFile)
            {
                // The memory outbox as it was copied: the child's entries and its acknowledged position.
                Assert.Equal(childAcked, outbox.GetAcknowledged("mqtt"));
                Assert.Equal(Enumerable.Range(0, (int)(childLast - childAcked)).Select(i => childAcked + 1 + i), sequences);
                Assert.True(childFirst > oldLast);
                Assert.True(await outbox.AppendAsync([new OutboxRecord(OutboxKind.Summary, "pdu-a01-a", t0, new byte[10])], Ct) > childLast);
            }
            else
            {
                // The old file whole, as before the failure: what only memory held is lost (as it was without a write-back).
                Assert.Equal(oldAcked, outbox.GetAcknowledged("mqtt"));
                Assert.Equal(Enumerable.Range(0, (int)(oldLast - oldAcked)).Select(i => oldAcked + 1 + i), sequences);
                Assert.Equal(oldLast + 1, await outbox.AppendAsync([new OutboxRecord(OutboxKind.Summary, "pdu-a01-a", t0, new byte[10])], Ct));
            }
        }
    }

    private static async Task<string> ReadLineAsync(Process process, CancellationToken cancellationToken) =>
        await process.StandardOutput.ReadLineAsync(cancellationToken)
        ?? throw new InvalidOperationException($"the child ended: {await process.StandardError.ReadToEndAsync(cancellationToken)}");
}
