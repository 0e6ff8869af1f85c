using System.Diagnostics;
using System.Text;
using EdgeTwin.Outbox.Tests.Summaries;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>
/// The memory outbox written back to its file once its storage is writable again. The storage is a real read-only bind
/// mount remounted read-write (<see cref="ReadOnlyBindMount"/>): an admin's <c>mount -o remount,rw</c>, a state directory
/// bind-mounted or overlaid and remounted. An ext4 the kernel put into <c>emergency_ro</c> by <c>trigger_fs_error</c> cannot
/// be made writable again (checked on 6.18: <c>mount -o remount,rw</c> succeeds and writes still fail with EROFS; it
/// needs the reboot and fsck), so it is not used here. Root only; skipped with the reason otherwise.
/// </summary>
public sealed class WriteBackTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Probe = TimeSpan.FromMilliseconds(100);

    private static OutboxRecord[] Summaries(long t0, int from, int count) =>
        [.. Enumerable.Range(from, count).Select(i => UplinkBodiesTests.PduSummary(t0 + (i * 1000L), i))];

    private static LiteDbOutboxOptions Options(string path, TimeSpan? probe = null, long diskBudget = 512L << 20) =>
        new() { Path = path, Identity = UplinkBodiesTests.Gw, WriteBackProbeInterval = probe ?? Probe, DiskBudgetBytes = diskBudget };

    /// <summary>Appends, retrying the commit that meets the read-only mount (its caller keeps the batch, as the feeder does).</summary>
    private static async Task<long> AppendAsync(LiteDbOutbox outbox, OutboxRecord[] batch, Dictionary<long, OutboxRecord> sent)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var last = await outbox.AppendAsync(batch, Ct);
                for (var i = 0; i < batch.Length; i++)
                {
                    sent.Add(last - batch.Length + 1 + i, batch[i]);
                }

                return last;
            }
            catch (OutboxStorageException) when (attempt < 3)
            {
            }
        }
    }

    private static async Task<List<OutboxEntry>> ReadAllAsync(LiteDbOutbox outbox, string uplink, long after)
    {
        var all = new List<OutboxEntry>();
        while (true)
        {
            var page = await outbox.ReadAsync(uplink, after, 1000, Ct);
            if (page.Count == 0)
            {
                return all;
            }

            all.AddRange(page);
            after = page[^1].Sequence;
        }
    }

    private static bool IsOwnEvent(OutboxEntry e) => e.Record.DeviceId == "outbox";

    private static string Text(OutboxEntry e) => Encoding.UTF8.GetString(e.Record.Payload.Span);

    private static async Task WaitUntilOnFileAsync(LiteDbOutbox outbox, Func<Task>? meanwhile = null)
    {
        var deadline = Stopwatch.StartNew();
        while (outbox.GetStats().Storage.MemoryOnlySince is not null)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "the outbox did not go back to its file within 60 s of the remount read-write");
            if (meanwhile is not null)
            {
                await meanwhile();
            }

            await Task.Delay(10, Ct);
        }
    }

    /// <summary>
    /// Regression: once in memory the outbox stayed there until the agent stopped, although the storage was writable again
    /// (a remount read-write by hand was not watched for): a power cut then lost everything since the failure, delivered or
    /// not, and after the reboot the entries acknowledged in memory were sent again. Now it probes, writes back and goes on
    /// from its file: every entry appended before, in memory, during the write and after it is there exactly once under
    /// its sequence, sequences strictly increasing, no uplink moved back, and a new outbox on the file sees the same.
    /// The agent here started on the read-only mount (a mount with files open for writing cannot be made read-only by a
    /// remount; the kernel's own error path, which can, cannot be undone without fsck): the lock it held read-only becomes
    /// a writable one.
    /// </summary>
    [Fact]
    public async Task Regression_an_outbox_that_went_on_in_memory_never_wrote_back_when_the_storage_became_writable_again()
    {
        using var temp = new TempDirectory();
        using var mount = ReadOnlyBindMount.Create(temp.Path);
        mount.MakeWritable();
        var path = Path.Combine(mount.Dir, "outbox.db");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-30).ToUnixTimeMilliseconds();
        var sent = new Dictionary<long, OutboxRecord>();
        long firstBefore;
        await using (var outbox = await LiteDbOutbox.OpenAsync(Options(path), cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            outbox.RegisterUplink("kafka");
            var lastBefore = await AppendAsync(outbox, Summaries(t0, 0, 100), sent);
            firstBefore = lastBefore - 99;
            await outbox.AcknowledgeAsync("mqtt", firstBefore + 39, Ct);
            await outbox.AcknowledgeAsync("kafka", firstBefore + 9, Ct);
        }

        mount.MakeReadOnly();
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        long mqttAt, kafkaAt, lastOverall, firstInMemory;
        await using (var outbox = await LiteDbOutbox.OpenAsync(Options(path), loggerFactory.CreateLogger("outbox"), cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            outbox.RegisterUplink("kafka");
            var stats = outbox.GetStats();
            Assert.NotNull(stats.Storage.MemoryOnlySince);
            firstInMemory = stats.Storage.FirstSequenceInMemory;
            await AppendAsync(outbox, Summaries(t0, 100, 50), sent);

            // Delivered in memory: this position must survive the write-back and a restart (before, it was lost at the stop).
            mqttAt = sent.Keys.Where(s => s > firstInMemory).Order().ElementAt(20);
            await outbox.AcknowledgeAsync("mqtt", mqttAt, Ct);
            await Task.Delay(Probe * 5, Ct); // probes on the read-only mount: no line each, still in memory
            Assert.NotNull(outbox.GetStats().Storage.MemoryOnlySince);
            Assert.Empty(Directory.GetFiles(mount.Dir, "outbox.db.writeback*"));

            // Writable again: appends go on while the write-back runs.
            mount.MakeWritable();
            var i = 150;
            await WaitUntilOnFileAsync(outbox, async () => { await AppendAsync(outbox, Summaries(t0, i, 3), sent); i += 3; });
            await AppendAsync(outbox, Summaries(t0, i, 30), sent);

            stats = outbox.GetStats();
            Assert.Null(stats.Storage.MemoryOnlySince);
            Assert.Null(stats.Storage.FailingSince);
            Assert.Equal(0, stats.Storage.MemoryBudgetBytes);
            Assert.Equal(mqttAt, outbox.GetAcknowledged("mqtt"));
            kafkaAt = outbox.GetAcknowledged("kafka");
            Assert.Equal(firstBefore + 9, kafkaAt);

            // Every appended entry after kafka's position exactly once, in order, with its own record; between them the
            // outbox's two storage events (memory_only, then resolved).
            var read = await ReadAllAsync(outbox, "kafka", kafkaAt);
            Assert.True(read.Zip(read.Skip(1)).All(p => p.First.Sequence < p.Second.Sequence), "sequences strictly increasing");
            var expected = sent.Where(s => s.Key > kafkaAt).OrderBy(s => s.Key).ToList();
            var entries = read.Where(e => !IsOwnEvent(e)).ToList();
            Assert.Equal(expected.Select(s => s.Key), entries.Select(e => e.Sequence));
            Assert.All(expected.Zip(entries), p => Assert.True(p.First.Value.Payload.Span.SequenceEqual(p.Second.Record.Payload.Span), $"entry {p.First.Key} changed"));
            var events = read.Where(IsOwnEvent).Select(Text).ToList();
            Assert.Equal(2, events.Count);
            Assert.Contains("\"state\":\"memory_only\"", events[0], StringComparison.Ordinal);
            Assert.Contains("\"event\":\"storage_failed\"", events[1], StringComparison.Ordinal);
            Assert.Contains("\"state\":\"resolved\"", events[1], StringComparison.Ordinal);
            Assert.Contains("\"failed\":\"0\"", events[1], StringComparison.Ordinal);
            Assert.Contains($"\"first_seq_in_memory\":\"{firstInMemory}\"", events[1], StringComparison.Ordinal);
            lastOverall = read[^1].Sequence;
            Assert.Equal(outbox.GetStats().LastSequence, lastOverall);

            var line = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 39);
            Assert.Equal(LogLevel.Warning, line.Level);
            Assert.DoesNotContain(logs.GetSnapshot(), r => r.Id.Id == 40); // the read-only probes said nothing
            Assert.Empty(Directory.GetFiles(mount.Dir, "outbox.db.writeback*"));

            // The lock is a writable agent's again: a second agent is refused as on a healthy disk.
            var second = await Assert.ThrowsAsync<OutboxStorageException>(async () => await LiteDbOutbox.OpenAsync(Options(path), cancellationToken: Ct));
            Assert.True(second.InUse, second.Message);
        }

        // The agent stops; the next one finds on the file what the last one had: positions, pending entries, numbering.
        await using (var outbox = await LiteDbOutbox.OpenAsync(Options(path), cancellationToken: Ct))
        {
            Assert.Null(outbox.GetStats().Storage.MemoryOnlySince);
            Assert.Equal(mqttAt, outbox.GetAcknowledged("mqtt"));
            Assert.Equal(kafkaAt, outbox.GetAcknowledged("kafka"));
            var read = (await ReadAllAsync(outbox, "kafka", kafkaAt)).Where(e => !IsOwnEvent(e)).ToList();
            Assert.Equal(sent.Keys.Where(s => s > kafkaAt).Order(), read.Select(e => e.Sequence));
            var next = await outbox.AppendAsync(Summaries(t0, 10_000, 1), Ct);
            Assert.Equal(lastOverall + 1, next); // above everything handed out in memory, no jump: not taken for a copy
        }
    }

    /// <summary>
    /// The storage failing under the running agent (EROFS injected into its writes and reopens, the files on a writable
    /// disk) and coming back: the same write-back, with the agent's writable lock kept throughout.
    /// </summary>
    [Fact]
    public async Task An_outbox_that_failed_under_the_running_agent_writes_back_and_keeps_every_entry_and_position()
    {
        using var temp = new TempDirectory();
        var path = temp.File("outbox.db");
        var faults = new ReadOnlyFaults();
        var options = new LiteDbOutboxOptions { Path = path, Identity = UplinkBodiesTests.Gw, WriteBackProbeInterval = TimeSpan.FromMilliseconds(300), WrapStream = faults.Wrap };
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-30).ToUnixTimeMilliseconds();
        var sent = new Dictionary<long, OutboxRecord>();
        long acked;
        await using (var outbox = await LiteDbOutbox.OpenAsync(options, cancellationToken: Ct))
        {
            outbox.RegisterUplink("mqtt");
            var lastBefore = await AppendAsync(outbox, Summaries(t0, 0, 100), sent);
            await outbox.AcknowledgeAsync("mqtt", lastBefore - 50, Ct);

            faults.ReadOnly = true;
            await AppendAsync(outbox, Summaries(t0, 100, 50), sent);
            Assert.NotNull(outbox.GetStats().Storage.MemoryOnlySince);
            acked = sent.Keys.Max() - 10;
            await outbox.AcknowledgeAsync("mqtt", acked, Ct);

            faults.ReadOnly = false;
            var i = 150;
            await WaitUntilOnFileAsync(outbox, async () => { await AppendAsync(outbox, Summaries(t0, i, 2), sent); i += 2; });
            Assert.Equal(acked, outbox.GetAcknowledged("mqtt"));
            var read = (await ReadAllAsync(outbox, "mqtt", acked)).Where(e => !IsOwnEvent(e)).ToList();
            Assert.Equal(sent.Keys.Where(s => s > acked).Order(), read.Select(e => e.Sequence));
            var second = await Assert.ThrowsAsync<OutboxStorageException>(async () => await LiteDbOutbox.OpenAsync(options, cancellationToken: Ct));
            Assert.True(second.InUse, second.Message);
        }

        await using (var outbox = await LiteDbOutbox.OpenAsync(options, cancellationToken: Ct))
        {
            Assert.Equal(acked, outbox.GetAcknowledged("mqtt"));
            var read = (await ReadAllAsync(outbox, "mqtt", acked)).Where(e => !IsOwnEvent(e)).ToList();
            Assert.Equal(sent.Keys.Where(s => s > acked).Order(), read.Select(e => e.Sequence));
            Assert.True(await outbox.AppendAsync(Summaries(t0, 10_000, 1), Ct) > sent.Keys.Max());
        }
    }

    /// <summary>
    /// A write-back onto a disk too full for it stays in memory and says why once, then succeeds after space is freed.
    /// A tmpfs of 8 MiB under the bind mount, filled while the mount was read-only.
    /// </summary>
    [Fact]
    public async Task A_write_back_that_finds_the_disk_full_stays_in_memory_says_why_once_and_succeeds_once_there_is_room()
    {
        using var temp = new TempDirectory();
        using var tmpfs = SmallTmpfs.Mount(Path.Combine(temp.Path, "small"), megabytes: 8);
        using var mount = ReadOnlyBindMount.Create(tmpfs.Dir);
        mount.MakeWritable();
        var path = Path.Combine(mount.Dir, "outbox.db");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-30).ToUnixTimeMilliseconds();
        var sent = new Dictionary<long, OutboxRecord>();
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        await using (var first = await LiteDbOutbox.OpenAsync(Options(path, diskBudget: 4L << 20), cancellationToken: Ct))
        {
            first.RegisterUplink("mqtt");
            await AppendAsync(first, Summaries(t0, 0, 10), sent);
        }

        mount.MakeReadOnly();
        await using var outbox = await LiteDbOutbox.OpenAsync(Options(path, diskBudget: 4L << 20), loggerFactory.CreateLogger("outbox"), cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");
        await AppendAsync(outbox, Summaries(t0, 10, 2000), sent);
        Assert.NotNull(outbox.GetStats().Storage.MemoryOnlySince);

        // The rest of the tmpfs taken (through the writable source): what memory holds cannot fit.
        var filler = Path.Combine(mount.Source, "filler");
        await using (var f = new FileStream(filler, FileMode.Create, FileAccess.Write))
        {
            var block = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    await f.WriteAsync(block, Ct);
                }
            }
            catch (IOException)
            {
            }
        }

        mount.MakeWritable();
        var deadline = Stopwatch.StartNew();
        while (!logs.GetSnapshot().Any(r => r.Id.Id == 40))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the failed write-back said nothing");
            await Task.Delay(20, Ct);
        }

        await Task.Delay(Probe * 8, Ct); // several more tries of the same cause
        Assert.NotNull(outbox.GetStats().Storage.MemoryOnlySince);
        var failed = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 40);
        Assert.Contains("not enough free space", failed.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(mount.Dir, "outbox.db.writeback*"));

        // The log said it once; the stats (edgetwin status) say it as long as it lasts, with the next try.
        var storage = outbox.GetStats().Storage;
        Assert.NotNull(storage.WriteBackFailedAt);
        Assert.InRange(storage.WriteBackFailedAt.Value, DateTimeOffset.UtcNow - TimeSpan.FromSeconds(30), DateTimeOffset.UtcNow);
        Assert.Contains("not enough free space for the write-back", storage.WriteBackFailure, StringComparison.Ordinal);
        Assert.NotNull(storage.NextWriteBackIn);
        Assert.InRange(storage.NextWriteBackIn.Value, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        Assert.Null(storage.FailingSince); // the existing fields as they were: in memory, not failing appends
        await AppendAsync(outbox, Summaries(t0, 2010, 10), sent); // still taking appends in memory

        File.Delete(filler);
        await WaitUntilOnFileAsync(outbox);
        storage = outbox.GetStats().Storage;
        Assert.Null(storage.WriteBackFailedAt);
        Assert.Null(storage.WriteBackFailure);
        Assert.Null(storage.NextWriteBackIn);
        var read = (await ReadAllAsync(outbox, "mqtt", 0)).Where(e => !IsOwnEvent(e)).ToList();
        Assert.Equal(sent.Keys.Order(), read.Select(e => e.Sequence));
    }

    /// <summary>
    /// How long an append waits while a full memory outbox (100,000 entries, ~57 MiB of entries: the 64 MiB budget up to
    /// its high-water mark) is written back: only the copy of the memory database on the writer thread and the switch at
    /// the end hold appends; the write and its fsync run on another thread.
    /// </summary>
    [Fact]
    public async Task An_append_waits_only_for_the_copy_and_the_switch_while_a_full_memory_outbox_is_written_back()
    {
        using var temp = new TempDirectory();
        using var mount = ReadOnlyBindMount.Create(temp.Path);
        mount.MakeWritable();
        var path = Path.Combine(mount.Dir, "outbox.db");
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        var t0 = DateTimeOffset.UtcNow.AddHours(-30).ToUnixTimeMilliseconds();
        var sent = new Dictionary<long, OutboxRecord>();
        await using (var first = await LiteDbOutbox.OpenAsync(Options(path), cancellationToken: Ct))
        {
            first.RegisterUplink("mqtt");
            await AppendAsync(first, Summaries(t0, 0, 1), sent);
        }

        mount.MakeReadOnly();
        await using var outbox = await LiteDbOutbox.OpenAsync(Options(path, probe: TimeSpan.FromMilliseconds(500)), loggerFactory.CreateLogger("outbox"), cancellationToken: Ct);
        outbox.RegisterUplink("mqtt");

        var payload = new byte[480];
        Random.Shared.NextBytes(payload);
        for (var i = 0; i < 100; i++)
        {
            var batch = Enumerable.Range(i * 1000, 1000).Select(n => new OutboxRecord(OutboxKind.Summary, "pdu-a01-a", t0 + n, payload)).ToArray();
            await AppendAsync(outbox, batch, sent);
        }

        var stats = outbox.GetStats();
        Assert.NotNull(stats.Storage.MemoryOnlySince);
        Assert.Equal(0, stats.Dropped);
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"in memory: {stats.Depth} entries, {stats.EntryBytes / 1048576.0:0.0} MiB of entries, {stats.Bytes / 1048576.0:0.0} MiB of LiteDB pages");

        // One record at a time, as the feeder's events come, each waited for: the longest wait is what a caller sees.
        mount.MakeWritable();
        var longest = TimeSpan.Zero;
        var appends = 0;
        var n = 100_000;
        await WaitUntilOnFileAsync(outbox, async () =>
        {
            var started = Stopwatch.GetTimestamp();
            await AppendAsync(outbox, [new OutboxRecord(OutboxKind.Summary, "pdu-a01-a", t0 + n, payload)], sent);
            var waited = Stopwatch.GetElapsedTime(started);
            longest = waited > longest ? waited : longest;
            appends++;
            n++;
        });

        var line = Assert.Single(logs.GetSnapshot(), r => r.Id.Id == 39).Message;
        output?.WriteLine($"{appends} appends during the write-back, the longest waited {longest.TotalMilliseconds:0} ms; {line}");
        Assert.True(appends > 0, "no append ran during the write-back");
        Assert.True(longest < TimeSpan.FromSeconds(5), $"an append waited {longest.TotalMilliseconds:0} ms during the write-back");
        var read = (await ReadAllAsync(outbox, "mqtt", 0)).Where(e => !IsOwnEvent(e)).ToList();
        Assert.Equal(sent.Keys.Order(), read.Select(e => e.Sequence));
    }
}

/// <summary>EROFS injected into an outbox's writes and into its reopens while <see cref="ReadOnly"/> is set.</summary>
internal sealed class ReadOnlyFaults
{
    private volatile bool _readOnly;

    public bool ReadOnly
    {
        get => _readOnly;
        set => _readOnly = value;
    }

    public Stream Wrap(FileStream inner)
    {
        Throw(inner.Name);
        return new FaultInjectingStream(inner, Throw, faultsSetLength: true);
    }

    private void Throw(string name)
    {
        if (_readOnly)
        {
            throw new IOException($"Read-only file system : '{name}'", EdgeTwin.Core.StorageErrors.ReadOnlyFileSystem);
        }
    }
}

/// <summary>A small tmpfs (root only): a disk that fills up.</summary>
internal sealed class SmallTmpfs : IDisposable
{
    private SmallTmpfs(string dir) => Dir = dir;

    public string Dir { get; }

    public static SmallTmpfs Mount(string dir, int megabytes)
    {
        Assert.SkipUnless(Environment.UserName == "root", "mounting a tmpfs needs root");
        Directory.CreateDirectory(dir);
        var (code, error) = Run("/usr/bin/mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", dir);
        Assert.True(code == 0, $"mount tmpfs: {error}");
        return new SmallTmpfs(dir);
    }

    public void Dispose() => Run("/usr/bin/umount", "-l", Dir);

    private static (int Code, string Error) Run(string file, params string[] args) => ReadOnlyBindMount.Run(file, args);
}
