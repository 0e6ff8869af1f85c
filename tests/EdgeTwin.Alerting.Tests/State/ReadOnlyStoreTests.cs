using EdgeTwin.Alerting.Control;
using EdgeTwin.Core.Samples;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// The state directory's file system turns read-only while the agent runs (a failing SD card: ext4 errors=remount-ro, it
/// stays so until a reboot and fsck): alerting goes on from memory, says so once with what it means, reports it in the
/// status, and writes the changes held in memory back if the directory becomes writable again.
/// </summary>
public sealed class ReadOnlyStoreTests
{
    private const string Rules = GroupCommitTests.Rules;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// On a real read-only remount the log claimed the failed writes "stay in the journal and are replayed at the next
    /// start" while the journal writes failed too, logged an error with a stack for every change, and retried LiteDB with
    /// a full stack trace every few seconds for ever; the history answered with an error, and the status said nothing.
    /// </summary>
    [Fact]
    public async Task Regression_a_read_only_remount_claimed_the_changes_stay_in_the_journal_and_logged_a_stack_for_every_retry()
    {
        await using var fs = await Ext4Loop.CreateAsync();
        var log = new CapturingLogger();
        var dir = Path.Combine(fs.Dir, "state");
        var h = await Harness.StartAsync(Rules, dir, loggerFactory: new CorruptStateTests.OneLoggerFactory(log));
        try
        {
            var socket = Path.Combine(dir, "alerts.sock");
            await using var server = new AlertControlServer(h.Service, socket);
            server.Start(); // bound before the file system fails, as in the agent

            h.Feed(h.Series("rack-r01", "inlet"), 35);
            await Wait.UntilAsync(() => h.Manager.Store.Unapplied == 0 && h.Manager.Store.History(10).Count == 1, "the first change in LiteDB");

            await fs.FailAsync();
            h.Manager.Store.CloseLiteDbForTest(); // as LiteDB closes itself after its first failed write
            h.Feed(h.Series("rack-r02", "inlet"), 35);
            h.Feed(h.Series("rack-r01", "inlet"), 20);
            await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Firing) == 2 && h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "raise and clear notified");

            var outage = h.Manager.Store.Outage;
            Assert.NotNull(outage);
            Assert.Equal("read-only file system", outage.Cause);

            // Acknowledge and silence answer at once (in effect, in memory only), and say so.
            var r02 = h.Manager.Active().Single(a => a.Key.Contains("rack-r02", StringComparison.Ordinal)).Id;
            using (var ack = await AlertControlClient.SendAsync(socket, $$"""{"op":"ack","id":{{r02}}}""", TimeSpan.FromSeconds(10), Ct))
            {
                Assert.True(ack.RootElement.GetProperty("ok").GetBoolean(), ack.RootElement.ToString());
                Assert.False(ack.RootElement.GetProperty("saved").GetBoolean());
                Assert.Contains("read-only file system", ack.RootElement.GetProperty("warning").GetString(), StringComparison.Ordinal);
            }

            using (var silence = await AlertControlClient.SendAsync(socket, """{"op":"silence","rule":"inlet-hot","seconds":600}""", TimeSpan.FromSeconds(10), Ct))
            {
                Assert.True(silence.RootElement.GetProperty("ok").GetBoolean(), silence.RootElement.ToString());
                Assert.False(silence.RootElement.GetProperty("saved").GetBoolean());
            }

            using (var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct))
            {
                var alerts = list.RootElement.GetProperty("alerts").EnumerateArray().ToList();
                Assert.Equal("acknowledged", Assert.Single(alerts).GetProperty("state").GetString());
            }

            // LiteDB, opened read-only, serves what it had, the lines since come from memory; probes run meanwhile (1 s, 2 s, ...).
            await Task.Delay(TimeSpan.FromSeconds(4), Ct);
            using (var history = await AlertControlClient.SendAsync(socket, """{"op":"history","limit":10}""", TimeSpan.FromSeconds(10), Ct))
            {
                Assert.True(history.RootElement.GetProperty("ok").GetBoolean(), history.RootElement.ToString());
                var changes = history.RootElement.GetProperty("history").EnumerateArray().Select(e => e.GetProperty("change").GetString()!.Split(' ')[0]).ToList();
                Assert.Equal(["raised", "raised", "cleared", "acknowledged"], changes.Take(4));
            }

            using (var status = await AlertControlClient.SendAsync(socket, """{"op":"status"}""", TimeSpan.FromSeconds(10), Ct))
            {
                var alerts = status.RootElement.GetProperty("alerts");
                Assert.False(alerts.GetProperty("store_persisting").GetBoolean());
                Assert.Equal("read-only file system", alerts.GetProperty("store_cause").GetString());
                Assert.True(alerts.TryGetProperty("store_not_persisting_since", out _));
                Assert.Contains(status.RootElement.GetProperty("problems").EnumerateArray(), p => p.GetString()!.Contains("kept in memory only", StringComparison.Ordinal));
            }

            var entries = log.Entries;
            var error = Assert.Single(entries, e => e.Level >= LogLevel.Error);
            Assert.Contains(dir, error.Text, StringComparison.Ordinal);
            Assert.Contains("cannot be written (read-only file system)", error.Text, StringComparison.Ordinal);
            Assert.Contains("kept in memory only and are lost at a restart", error.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("stay in the journal", log.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("replayed at the next start", log.Text, StringComparison.Ordinal);
            Assert.True(entries.Count(e => e.Text.Contains("\n   at ", StringComparison.Ordinal)) <= 1, log.Text);
        }
        finally
        {
            await h.StopKeepingStateAsync();
        }

        Assert.Contains(log.Entries, e => e.Level == LogLevel.Error && e.Text.Contains("lost at this stop", StringComparison.Ordinal));
    }

    /// <summary>
    /// A start on a state directory that was read-only already (the agent restarted after the card failed) threw "alert
    /// store …/alerts.db: cannot open: Read-only file system" and the agent's start failed with it. Now alerting starts
    /// from a copy in memory: the alerts the file held (and the journal's writes LiteDB had not taken yet) are restored,
    /// new alarms go out, and when the directory becomes writable again the changes are written back.
    /// </summary>
    [Fact]
    public async Task Regression_an_alert_store_on_a_directory_already_read_only_failed_the_start()
    {
        var root = Directory.CreateTempSubdirectory("edgetwin-ro-store-").FullName;
        try
        {
            using var mount = ReadOnlyBindMount.Create(root);
            var dir = mount.Dir;
            mount.MakeWritable();
            var first = await Harness.StartAsync(Rules, dir);
            try
            {
                first.Feed(first.Series("rack-r01", "inlet"), 35);
                await Wait.UntilAsync(() => first.Manager.Store.Unapplied == 0 && first.Manager.Store.History(10).Count == 1, "the first raise in LiteDB");
                first.Manager.Store.HoldApply = true; // the second only in the journal, as after a kill before LiteDB had it
                first.Feed(first.Series("rack-r02", "inlet"), 35);
                await first.Manager.FlushAsync(Ct);
            }
            finally
            {
                await first.StopKeepingStateAsync();
            }

            mount.MakeReadOnly();
            var log = new CapturingLogger();
            var h = await Harness.StartAsync(Rules, dir, loggerFactory: new CorruptStateTests.OneLoggerFactory(log));
            try
            {
                var outage = h.Manager.Store.Outage;
                Assert.NotNull(outage);
                Assert.Equal("read-only file system", outage.Cause);
                Assert.Equal(["rack-r01", "rack-r02"], h.Manager.Active().Where(a => a.State == AlertState.Firing).Select(a => a.Key.Contains("rack-r01", StringComparison.Ordinal) ? "rack-r01" : "rack-r02").Order());
                var error = Assert.Single(log.Entries, e => e.Level >= LogLevel.Error);
                Assert.Contains($"the state directory {dir} is read-only at start (read-only file system)", error.Text, StringComparison.Ordinal);
                Assert.Matches(@"\(2 alerts restored with their silences and history, from the file and [1-9][0-9]* journal writes LiteDB did not have yet\)", error.Text);

                // Alarms go on: a new one reaches the sink.
                h.Feed(h.Series("rack-r03", "inlet"), 35);
                await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing && a.Key.Contains("rack-r03", StringComparison.Ordinal)), "the new raise notified");

                // Writable again (a remount): what was kept in memory is written and LiteDB is the file again.
                mount.MakeWritable();
                await Wait.UntilAsync(() => h.Manager.Store.Outage is null && h.Manager.Store.Unapplied == 0, "written back", seconds: 30);
            }
            finally
            {
                await h.StopKeepingStateAsync();
            }

            using var reopened = new AlertStore(Path.Combine(dir, "alerts.db"));
            Assert.Equal(3, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>
    /// Changes made while the journal could not be written were never written anywhere: when the directory became
    /// writable again (a full disk freed, a remount) they were lost at the next restart although the agent had run on.
    /// </summary>
    [Fact]
    public async Task Regression_changes_made_while_the_store_could_not_write_were_lost_when_the_directory_became_writable_again()
    {
        var log = new CapturingLogger();
        var h = await Harness.StartAsync(Rules, loggerFactory: new CorruptStateTests.OneLoggerFactory(log));
        try
        {
            var socket = Path.Combine(h.Dir, "alerts.sock");
            await using var server = new AlertControlServer(h.Service, socket);
            server.Start();
            Assert.True(await StorePersistingAsync(socket));
            h.Feed(h.Series("rack-r01", "inlet"), 35);
            await Wait.UntilAsync(() => h.Manager.Store.Unapplied == 0, "the first change in LiteDB");
            var readOnly = true;
            h.Manager.Store.FailJournalForTest = () => Volatile.Read(ref readOnly) ? new IOException("Read-only file system", 30) : null;
            h.Feed(h.Series("rack-r02", "inlet"), 35);
            h.Feed(h.Series("rack-r01", "inlet"), 20);
            await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Firing) == 2, "the second raise notified");
            Assert.NotNull(h.Manager.Store.Outage);
            var r02 = h.Manager.Active().Single().Id;
            Assert.Equal(ControlResult.Done, h.Manager.Acknowledge(r02, "op"));
            await h.Manager.FlushAsync(Ct); // answers: nothing waits for a durability that cannot come
            Assert.False(await StorePersistingAsync(socket));

            Volatile.Write(ref readOnly, false);
            await Wait.UntilAsync(() => h.Manager.Store.Outage is null && h.Manager.Store.Unapplied == 0, "written back and in LiteDB", seconds: 30);
            Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Text.Contains("writable again", StringComparison.Ordinal));
            Assert.True(await StorePersistingAsync(socket));
        }
        finally
        {
            await h.StopKeepingStateAsync();
        }

        try
        {
            using var reopened = new AlertStore(Path.Combine(h.Dir, "alerts.db"));
            var alerts = reopened.LoadAlerts();
            var r02 = Assert.Single(alerts, a => a.State == AlertState.Firing);
            Assert.Equal("inlet-hot", r02.Rule);
            Assert.NotNull(r02.AckedAt);
            Assert.Equal(["raised", "raised", "cleared", "acknowledged"], reopened.History(10).Select(e => e.Change.Split(' ')[0]));
        }
        finally
        {
            Directory.Delete(h.Dir, recursive: true);
        }
    }

    /// <summary>
    /// While the store cannot write, the alarm path tried the journal write for every change (an exception, a log entry
    /// with a stack each time); now it only queues in memory and the background thread probes with a growing delay.
    /// </summary>
    [Fact]
    public async Task Regression_every_change_retried_the_failing_journal_write_while_the_store_could_not_write()
    {
        var log = new CapturingLogger();
        await using var h = await Harness.StartAsync(Rules, loggerFactory: new CorruptStateTests.OneLoggerFactory(log));
        var tries = 0;
        h.Manager.Store.FailJournalForTest = () =>
        {
            Interlocked.Increment(ref tries);
            return new IOException("Read-only file system", 30);
        };
        var rack = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 200; i++)
        {
            h.Feed(rack, i % 2 == 0 ? 35 : 20);
            h.Advance(TimeSpan.FromMinutes(5)); // past the flap window: every change is a raise or a clear
        }

        Assert.NotNull(h.Manager.Store.Outage);
        Assert.True(Volatile.Read(ref tries) <= 3, $"{tries} journal writes tried for 200 changes");
        Assert.Single(log.Entries, e => e.Level >= LogLevel.Error);
    }

    /// <summary>
    /// A real full file system, freed again while the agent runs: nothing changed meanwhile is lost, and a write the full
    /// disk cut short does not hide the later ones from the next start (the journal is read up to its first bad record).
    /// </summary>
    [Fact]
    public async Task Regression_changes_made_while_the_disk_was_full_were_lost_when_space_was_freed()
    {
        await using var fs = await Ext4Loop.CreateAsync(megabytes: 32);
        var log = new CapturingLogger();
        var dir = Path.Combine(fs.Dir, "state");
        var h = await Harness.StartAsync(Rules, dir, loggerFactory: new CorruptStateTests.OneLoggerFactory(log));
        try
        {
            h.Feed(h.Series("rack-r01", "inlet"), 35);
            await Wait.UntilAsync(() => h.Manager.Store.Unapplied == 0, "the first change in LiteDB");
            var filler = await fs.FillAsync();
            var racks = Enumerable.Range(2, 40).Select(i => h.Series($"rack-r{i:00}", "inlet")).ToList();
            // One batch, one journal write of ~25 KB: its first bytes fill the journal's last page, the rest finds no block (a
            // short write, then ENOSPC), so the journal ends in a torn record.
            var now = h.Clock.GetUtcNow().ToUnixTimeMilliseconds();
            h.Service.Process([.. racks.Select(r => new Sample(r, now, 35, SampleQuality.Good))]);

            await Wait.UntilAsync(() => h.Manager.Store.Outage is not null, "the store noticed the full disk");
            Assert.Equal("no space left on device", h.Manager.Store.Outage!.Cause);
            h.Feed(h.Series("rack-r01", "inlet"), 20);
            await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Resolved), "the clear notified");

            File.Delete(filler);
            await Wait.UntilAsync(() => h.Manager.Store.Outage is null && h.Manager.Store.Unapplied == 0, "written back and in LiteDB", seconds: 60);
        }
        finally
        {
            await h.StopKeepingStateAsync();
        }

        using var reopened = new AlertStore(Path.Combine(dir, "alerts.db"));
        Assert.Equal(40, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
        Assert.Equal(42, reopened.History(100).Count);
        Assert.DoesNotContain("corrupt", log.Text, StringComparison.Ordinal);
    }

    private static async Task<bool> StorePersistingAsync(string socket)
    {
        using var status = await AlertControlClient.SendAsync(socket, """{"op":"status"}""", TimeSpan.FromSeconds(10), Ct);
        return status.RootElement.GetProperty("alerts").GetProperty("store_persisting").GetBoolean();
    }
}
