using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>How many fsynced commits the durable store makes for a given load (flash wear), counted, not timed.</summary>
public sealed class FlashWearTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 4, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();
    private readonly TestMeterFactory _meters = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _meters.Dispose();
        _dir.Dispose();
    }

    private static OutboxRecord Summary(long timeMs)
    {
        var acc = default(WindowAccumulator);
        acc.Reset(timeMs - 60_000, timeMs);
        acc.Add(1, timeMs - 1, good: true);
        return UplinkBodies.Summary(UplinkBodiesTests.Gw, new Core.Samples.SeriesDescriptor("rack-a01", "inlet_temperature", "Cel"), acc);
    }

    private Task<LiteDbOutbox> OpenAsync(TimeSpan ackCommitInterval, TimeProvider time) =>
        LiteDbOutbox.OpenAsync(
            new LiteDbOutboxOptions { Path = _dir.File("wear.db"), Identity = UplinkBodiesTests.Gw, AckCommitInterval = ackCommitInterval },
            null, _meters, time, Ct);

    /// <summary>
    /// Soak audit: with the broker up, every append (one per commit_interval) was acknowledged within milliseconds and
    /// the acknowledgement started its own fsynced commit: two commits per append. Now it rides on the next append's.
    /// </summary>
    [Fact]
    public async Task Regression_every_uplink_acknowledgement_was_its_own_fsynced_commit_wearing_the_flash()
    {
        const int appends = 50;
        long last = 0;
        await using (var outbox = await OpenAsync(TimeSpan.FromMinutes(1), new FakeTimeProvider(Now)))
        {
            outbox.RegisterUplink("mqtt");
            await outbox.AppendAsync([Summary(1)], Ct); // the registration's commit is behind us
            using var commits = new MetricCollector<double>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.commit.duration");
            Task? ack = null;
            for (var i = 0; i < appends; i++)
            {
                last = await outbox.AppendAsync([Summary(1000 + i)], Ct);
                if (ack is not null)
                {
                    await ack; // committed with this append
                }

                ack = outbox.AcknowledgeAsync("mqtt", last, Ct).AsTask(); // as the uplink does once the broker has it
                await outbox.ReadAsync("mqtt", last, 10, Ct); // queued behind the ack: the writer has taken it alone, as when the broker answers between polls
            }

            Assert.Equal(appends, commits.GetMeasurementSnapshot().Count); // before: 2 × appends (100)
            Assert.Equal(last - 1, outbox.GetAcknowledged("mqtt")); // the last acknowledgement still waits…
            Assert.False(ack!.IsCompleted);
        }

        // …and a clean stop commits it: nothing delivered is sent again.
        await using var reopened = await OpenAsync(TimeSpan.Zero, TimeProvider.System);
        Assert.Equal(last, reopened.GetAcknowledged("mqtt"));
        Assert.Equal(0, reopened.GetStats().Depth);
    }

    /// <summary>With nothing appended (an idle site), an acknowledgement is committed alone once the interval is up.</summary>
    [Fact]
    public async Task An_acknowledgement_without_a_following_append_commits_alone_after_the_interval()
    {
        await using var outbox = await OpenAsync(TimeSpan.FromMilliseconds(100), TimeProvider.System);
        outbox.RegisterUplink("mqtt");
        var last = await outbox.AppendAsync([Summary(1), Summary(2)], Ct);
        using var commits = new MetricCollector<double>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.commit.duration");
        await outbox.AcknowledgeAsync("mqtt", last - 1, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await outbox.AcknowledgeAsync("mqtt", last, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(2, commits.GetMeasurementSnapshot().Count);
        Assert.Equal(last, outbox.GetAcknowledged("mqtt"));
        Assert.Equal(0, outbox.GetStats().Depth);
    }
    [Theory]
    [InlineData(0, 0)] // off: each acknowledgement commits at once
    [InlineData(1_000, 2_000)] // the default: twice commit_interval
    [InlineData(30_000, 4_000)] // checkpoint_interval allows up to 1h; the wait must stay inside the uplink's 10 s outbox timeout
    [InlineData(3_600_000, 4_000)]
    public void Regression_a_long_commit_interval_made_acknowledgements_wait_past_the_uplinks_outbox_timeout(int commitMs, int expectedMs)
    {
        // AcknowledgeAsync completes only at the commit the acknowledgement rides on; with commit_interval: 30s it waited a
        // minute, and the uplink gave every acknowledgement of an idle minute up after 10 s and logged it as failed.
        var settings = Core.Config.OutboxSettings.Default with { CommitInterval = TimeSpan.FromMilliseconds(commitMs) };
        var options = LiteDbOutboxOptions.From(settings, "s1", "g1");
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), options.AckCommitInterval);
        Assert.True(options.AckCommitInterval <= LiteDbOutboxOptions.MaxAckCommitInterval);
    }
    /// <summary>
    /// Flash audit: LiteDB 5 ends a checkpoint's copy of the journal into the data file with a plain Flush (no fsync), then
    /// writes the journal from its start again. A power cut before the kernel wrote those pages back (up to ~30 s) lost
    /// entries that had been acknowledged durable: in neither file any more. The data file is now fsynced by that Flush.
    /// </summary>
    [Fact]
    public async Task Regression_a_checkpoint_left_the_data_file_unsynced_while_the_journal_was_reused()
    {
        var dataOps = new List<string>();
        var path = _dir.File("ckpt.db");
        var options = new LiteDbOutboxOptions
        {
            Path = path,
            Identity = UplinkBodiesTests.Gw,
            DiskBudgetBytes = 1 << 20, // a 64 KiB journal: checkpoints every few appends
            WrapStream = file => file.Name == path ? new RecordingFileStream(file, dataOps) : file,
        };
        await using (var outbox = await LiteDbOutbox.OpenAsync(options, null, _meters, TimeProvider.System, Ct))
        {
            for (var i = 0; i < 40; i++)
            {
                await outbox.AppendAsync([.. Enumerable.Range(0, 10).Select(k => Summary(10_000 + (i * 10) + k))], Ct);
            }

            lock (dataOps)
            {
                var written = dataOps.FindLastIndex(o => o == "write");
                Assert.True(written >= 0, "no checkpoint reached the data file");
                Assert.Contains("fsync", dataOps.Skip(written)); // every page a checkpoint wrote is on disk before the journal is reused
            }
        }
    }

    /// <summary>A FileStream over the outbox's own data file handle that records writes and flushes.</summary>
    private sealed class RecordingFileStream(FileStream file, List<string> ops) : FileStream(file.SafeFileHandle, FileAccess.ReadWrite, 0)
    {
        private void Record(string op)
        {
            lock (ops)
            {
                ops.Add(op);
            }
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Record("write");
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Record("write");
            base.Write(buffer);
        }

        public override void Flush(bool flushToDisk)
        {
            Record(flushToDisk ? "fsync" : "flush");
            base.Flush(flushToDisk);
        }

        public override void Flush() => Flush(false);
    }
}
