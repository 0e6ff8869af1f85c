using System.Diagnostics.Metrics;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// Power-cut safety of the alert store: the journal is fsynced by the background thread, and it is emptied only after
/// LiteDB's files are on disk (else a power cut could keep the truncation and lose LiteDB's unsynced pages).
/// </summary>
public sealed class DurabilityTests
{
    private const string Rules = GroupCommitTests.Rules;

    private static readonly string[] TwoRacks = ["rack-r01", "rack-r02"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_change_reaches_the_disk_through_a_background_fsync_of_the_journal()
    {
        using var meters = new OneMeter();
        using var syncs = new SyncRecorder(meters, () => null);
        await using var h = await Harness.StartAsync(Rules, metrics: new AlertingMetrics(meters));
        h.Feed(h.Series("rack-r01", "inlet"), 35);

        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
        await Wait.UntilAsync(() => syncs.Count("journal") > 0, "an fsync of the alert journal");
    }

    [Fact]
    public async Task Replayed_changes_are_fsynced_in_LiteDB_before_the_journal_is_emptied()
    {
        var copy = Directory.CreateTempSubdirectory("edgetwin-alerting-sync-").FullName;
        try
        {
            await using (var h = await Harness.StartAsync(Rules))
            {
                h.Manager.Store.HoldApply = true; // killed after the journal write, before LiteDB had the changes
                foreach (var rack in TwoRacks)
                {
                    h.Feed(h.Series(rack, "inlet"), 35);
                }

                await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Firing) == 2, "two firing messages");
                foreach (var file in Directory.GetFiles(h.Dir))
                {
                    using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    using var target = File.Create(Path.Combine(copy, Path.GetFileName(file)));
                    await source.CopyToAsync(target, Ct);
                }

                h.Manager.Store.HoldApply = false;
            }

            var journal = Path.Combine(copy, "alerts.journal");
            Assert.True(new FileInfo(journal).Length > 0, "the crash left the changes in the journal");
            using var meters = new OneMeter();
            using var syncs = new SyncRecorder(meters, () => new FileInfo(journal).Length);
            using (var reopened = new AlertStore(Path.Combine(copy, "alerts.db"), metrics: new AlertingMetrics(meters)))
            {
                Assert.Equal(2, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
                Assert.Equal(0, new FileInfo(journal).Length);
            }

            var litedb = syncs.Seen("litedb");
            Assert.NotEmpty(litedb);
            Assert.True(litedb[0] > 0, "LiteDB was fsynced while the journal still held the replayed changes");
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public async Task At_shutdown_LiteDB_is_on_disk_before_the_journal_is_emptied()
    {
        using var meters = new OneMeter();
        string? journal = null;
        using var syncs = new SyncRecorder(meters, () => journal is null ? null : new FileInfo(journal).Length);
        await WithStoppedHarnessAsync(async h =>
        {
            journal = Path.Combine(h.Dir, "alerts.journal");
            h.Feed(h.Series("rack-r01", "inlet"), 35);
            await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
            await Wait.UntilAsync(() => h.Manager.Store.Unapplied == 0, "LiteDB has the change");

            await h.StopKeepingStateAsync();
            var atSync = syncs.Seen("litedb");
            Assert.NotEmpty(atSync);
            Assert.True(atSync[^1] > 0, "the journal still held the change when LiteDB was fsynced at shutdown");
            Assert.Equal(0, new FileInfo(journal).Length);
        }, new AlertingMetrics(meters));
    }

    [Fact]
    public async Task When_LiteDB_has_closed_itself_changes_stay_in_the_journal_and_shutdown_does_not_throw()
    {
        // Regression: a CI run's shutdown threw ObjectDisposedException from LiteDB's checkpoint (its engine had closed).
        await WithStoppedHarnessAsync(async h =>
        {
            h.Manager.Store.HoldReopen = true; // as if reopening kept failing: shutdown must still complete
            h.Manager.Store.CloseLiteDbForTest();
            foreach (var rack in TwoRacks)
            {
                h.Feed(h.Series(rack, "inlet"), 35);
            }

            await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Firing) == 2, "two firing messages");
            await Wait.UntilAsync(() => h.Manager.Store.Unapplied > 0, "changes journaled, LiteDB unable to take them");
            await h.StopKeepingStateAsync();

            using var reopened = new AlertStore(Path.Combine(h.Dir, "alerts.db"));
            Assert.Equal(2, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
            Assert.Equal(2, reopened.History(10).Count(e => e.Change == "raised"));
        });
    }

    [Fact]
    public async Task When_LiteDB_has_closed_itself_the_store_reopens_it_and_gives_it_the_journal()
    {
        await WithStoppedHarnessAsync(async h =>
        {
            h.Feed(h.Series("rack-r00", "inlet"), 35); // in LiteDB before it closes
            await Wait.UntilAsync(() => h.Manager.Store.Unapplied == 0 && h.Manager.Store.History(10).Count == 1, "the first change in LiteDB");
            h.Manager.Store.CloseLiteDbForTest();
            foreach (var rack in TwoRacks)
            {
                h.Feed(h.Series(rack, "inlet"), 35);
            }

            await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Firing) == 3, "three firing messages");
            await Wait.UntilAsync(() => h.Manager.Store.Reopens == 1 && h.Manager.Store.Unapplied == 0, "LiteDB reopened and given every change");

            // Read back through the running store, not only after a restart.
            Assert.Equal(3, h.Manager.Store.History(10).Count(e => e.Change == "raised"));
            Assert.Equal(3, h.Manager.Store.LoadAlerts().Count(a => a.State == AlertState.Firing));
            await h.StopKeepingStateAsync();

            using var reopened = new AlertStore(Path.Combine(h.Dir, "alerts.db"));
            Assert.Equal(3, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
        });
    }

    [Fact]
    public async Task While_LiteDB_is_closed_the_control_socket_answers_history_with_an_error_instead_of_dropping_the_client()
    {
        await using var h = await Harness.StartAsync(Rules);
        var socket = Path.Combine(h.Dir, "alerts.sock");
        await using var server = new AlertControlServer(h.Service, socket);
        server.Start();
        h.Manager.Store.HoldReopen = true;
        h.Manager.Store.CloseLiteDbForTest();

        using var history = await AlertControlClient.SendAsync(socket, """{"op":"history","limit":5}""", TimeSpan.FromSeconds(10), Ct);
        Assert.False(history.RootElement.GetProperty("ok").GetBoolean());
        var error = history.RootElement.GetProperty("error").GetString()!;
        Assert.Contains("alert history unavailable", error, StringComparison.Ordinal);
        Assert.Contains("alerts.db", error, StringComparison.Ordinal);

        // The rest of the socket still works.
        using var list = await AlertControlClient.SendAsync(socket, """{"op":"list"}""", TimeSpan.FromSeconds(10), Ct);
        Assert.True(list.RootElement.GetProperty("ok").GetBoolean());
    }

    // For tests that stop the harness themselves and keep its files (to reopen the store): the files go afterwards.
    private static async Task WithStoppedHarnessAsync(Func<Harness, Task> body, AlertingMetrics? metrics = null)
    {
        var h = await Harness.StartAsync(Rules, metrics: metrics);
        try
        {
            await body(h);
        }
        finally
        {
            Directory.Delete(h.Dir, recursive: true);
        }
    }

    /// <summary>One meter for one test, so parallel tests' stores are not counted.</summary>
    private sealed class OneMeter : IMeterFactory
    {
        public Meter? Meter { get; private set; }

        public Meter Create(MeterOptions options) => Meter = new Meter(options.Name, options.Version, options.Tags, scope: this);

        public void Dispose() => Meter?.Dispose();
    }

    /// <summary>Records, per fsync (tag file), the journal's length at that moment (from <c>journalLength</c>).</summary>
    private sealed class SyncRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Lock _gate = new();
        private readonly List<(string File, long? JournalLength)> _seen = [];

        public SyncRecorder(OneMeter meters, Func<long?> journalLength)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == "edgetwin.alerts.store.sync.duration")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((_, _, tags, _) =>
            {
                var file = "";
                foreach (var tag in tags)
                {
                    file = tag.Key == "file" ? (string)tag.Value! : file;
                }

                var length = journalLength();
                lock (_gate)
                {
                    _seen.Add((file, length));
                }
            });
            _listener.Start();
        }

        public int Count(string file)
        {
            lock (_gate)
            {
                return _seen.Count(s => s.File == file);
            }
        }

        public List<long> Seen(string file)
        {
            lock (_gate)
            {
                return [.. _seen.Where(s => s.File == file && s.JournalLength is not null).Select(s => s.JournalLength!.Value)];
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
