using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// <c>alerts.db</c> records its format (meta <c>format</c>): a store without it (main before it) is read as format 1 and
/// gets it; a build that finds a newer format (a rollback over a newer build's store) keeps the store untouched.
/// </summary>
public sealed class FormatVersionTests
{
    private const string Rules = GroupCommitTests.Rules;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A store with a firing alert, stopped cleanly (LiteDB holds it all), its format set as another build would.</summary>
    private static async Task<string> StoreWithFiringAlertAsync(string dir, int? format)
    {
        var first = await Harness.StartAsync(Rules, dir);
        first.Feed(first.Series("rack-r02", "inlet"), 35);
        await Wait.UntilAsync(() => first.Sink.All.Any(a => a.Status == AlertStatus.Firing), "a firing message");
        await first.StopKeepingStateAsync();

        var db = Path.Combine(dir, "alerts.db");
        using (var lite = new LiteDatabase(new ConnectionString { Filename = db, Connection = ConnectionType.Direct }))
        {
            var meta = lite.GetCollection("meta");
            Assert.Equal(AlertStore.FormatVersion, meta.FindById("format")["version"].AsInt32); // this build writes it
            if (format is { } f)
            {
                meta.Upsert(new BsonDocument { ["_id"] = "format", ["version"] = f });
            }
            else
            {
                meta.Delete("format");
            }

            lite.Checkpoint();
        }

        return db;
    }

    [Fact]
    public async Task A_store_an_older_build_wrote_without_a_format_is_restored()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-format-").FullName;
        try
        {
            await StoreWithFiringAlertAsync(dir, format: null);
            await using var h = await Harness.StartAsync(Rules, dir);
            Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // the harness removes it when it is disposed
        }
    }

    [Fact]
    public async Task Regression_a_rollback_would_have_read_a_newer_builds_alert_store_as_its_own()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-format-").FullName;
        try
        {
            var db = await StoreWithFiringAlertAsync(dir, format: 2);
            var journal = Path.Combine(dir, "alerts.journal");
            await File.WriteAllBytesAsync(journal, [1, 2, 3, 4, 5, 6, 7, 8, 9], Ct); // the newer build's, not readable here
            var before = await File.ReadAllBytesAsync(db, Ct);
            var log = new ListLogger();

            await using var h = await Harness.StartAsync(Rules, dir, loggerFactory: new CorruptStateTests.OneLoggerFactory(log));
            var error = Assert.Single(log.At(LogLevel.Error), l => l.Contains("newer build", StringComparison.Ordinal));
            Assert.StartsWith($"alert store {db} was written by a newer build (format 2; this build reads format 1): kept untouched as {db}.format2 with its journal and LiteDB log", error, StringComparison.Ordinal);
            Assert.DoesNotContain(log.At(LogLevel.Warning), l => l.Contains("corrupt", StringComparison.Ordinal));
            Assert.Equal(before, await File.ReadAllBytesAsync(db + ".format2", Ct));
            Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9], await File.ReadAllBytesAsync(journal + ".format2", Ct));
            Assert.Equal(AlertState.Inactive, h.StateOf("inlet-hot"));

            // Alarms work on the new store.
            h.Feed(h.Series("rack-r01", "inlet"), 35);
            await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing && a.Key.Contains("r01", StringComparison.Ordinal)), "a firing message on the new store");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // the harness removes it when it is disposed
        }
    }
}
