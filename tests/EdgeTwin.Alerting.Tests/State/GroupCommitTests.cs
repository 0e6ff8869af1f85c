using System.Diagnostics.Metrics;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>The store's group commit: a change is durable before anyone hears of it, and a burst costs few commits.</summary>
public sealed class GroupCommitTests
{
    /// <summary>One threshold rule, one message per alert (also used by <see cref="DurabilityTests"/>).</summary>
    internal const string Rules = """
        alerts:
          group_by: [rack]
          group_interval: 0s
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    [Fact]
    public async Task What_reached_the_sinks_survives_a_crash_before_LiteDB_had_it()
    {
        await using var h = await Harness.StartAsync(Rules);
        h.Manager.Store.HoldApply = true; // as if killed right after the journal write, before the background ran
        var ids = Enumerable.Range(1, 3).Select(i => h.Series($"rack-r0{i}", "inlet")).ToArray();
        foreach (var id in ids)
        {
            h.Feed(id, 35);
        }

        await Wait.UntilAsync(() => h.Sink.All.Count(a => a.Status == AlertStatus.Firing) == 3, "three firing messages");
        Assert.True(h.Manager.Store.Unapplied > 0, "LiteDB was held back, so the changes live only in the journal");

        // The files as a SIGKILL would leave them, opened by a new store.
        var copy = Directory.CreateTempSubdirectory("edgetwin-alerting-crash-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(h.Dir))
            {
                using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var target = File.Create(Path.Combine(copy, Path.GetFileName(file)));
                source.CopyTo(target);
            }

            using var reopened = new AlertStore(Path.Combine(copy, "alerts.db"));
            Assert.Equal(3, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
            Assert.Equal(3, reopened.History(10).Count(e => e.Change == "raised"));
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
            h.Manager.Store.HoldApply = false;
        }
    }

    [Fact]
    public void Regression_reading_the_store_while_the_first_alert_created_its_collections_failed_with_page_type_must_be_collection_page()
    {
        // LiteDB 5 can fail a read of a collection another transaction is creating (LiteDB issue 2792): the first alert's
        // apply created "alerts" and "history" while a reader (this class's burst test, the history command) read them.
        // Since the fix a new store creates every collection when it opens the file, before anyone can read.
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-collections-").FullName;
        try
        {
            var path = Path.Combine(dir, "alerts.db");
            using (new AlertStore(path))
            {
            }

            using var db = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = path, ReadOnly = true });
            Assert.Equal(AlertStore.CollectionNames.Order(), db.GetCollectionNames().Order());
            // Empty but for the store's format document in meta (read by a rollback to refuse a newer store) and its origin
            // (birth time and machine: a restored copy numbers new alert ids from the clock, RestoredStoreTests).
            Assert.All(AlertStore.CollectionNames, name => Assert.Equal(name == "meta" ? 2 : 0, db.GetCollection(name).Count()));
            Assert.NotNull(db.GetCollection("meta").FindById("origin"));
            Assert.Equal(AlertStore.FormatVersion, db.GetCollection("meta").FindById("format")["version"].AsInt32);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_burst_of_changes_is_written_in_a_few_group_commits_not_one_per_change()
    {
        var commits = 0L;
        var writes = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == AlertingMetrics.MeterName && instrument.Name == "edgetwin.alerts.store.commit.writes")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            Interlocked.Increment(ref commits);
            Interlocked.Add(ref writes, value);
        });
        listener.Start();

        await using var h = await Harness.StartAsync(Rules, metrics: new AlertingMetrics());
        var ids = Enumerable.Range(0, 500).Select(i => h.Series($"rack-{i}", "inlet")).ToArray();
        var t = h.Time.GetUtcNow().ToUnixTimeMilliseconds();
        h.Service.Process([.. ids.Select(id => new Sample(id, t, 35))]);
        // One message per alert (group_interval 0s) overflows the sink's queue of 256: delivered or dropped, each is done.
        var runner = h.Service.Sinks.Single(r => r.Name == "rec");
        await Wait.UntilAsync(() => runner.Delivered + runner.Dropped == 500, "500 firing messages delivered or dropped");
        // Delivered marks are bookkeeping: they ride along with later commits.
        for (var i = 0; i < 200 && h.Manager.Store.LoadAlerts().Count(a => a.NotifiedFiring) < 500; i++)
        {
            await h.Manager.FlushAsync(TestContext.Current.CancellationToken);
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        // 500 alerts: 1,000 writes (alert + history line) before the messages, plus delivered/published marks after.
        Assert.True(Interlocked.Read(ref writes) >= 1000, $"writes {writes}");
        Assert.True(Interlocked.Read(ref commits) < 100, $"{commits} commits for 500 changes");
        Assert.Equal(500, h.Manager.Store.LoadAlerts().Count(a => a.State == AlertState.Firing && a.NotifiedFiring));
    }
}
