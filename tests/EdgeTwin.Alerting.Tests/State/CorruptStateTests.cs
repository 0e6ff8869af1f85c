using System.Buffers.Binary;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.State;

/// <summary>
/// A corrupt <c>alerts.db</c> or <c>alerts.journal</c> (an SD card bit flip, a power cut during a header write) is set
/// aside with a warning naming the file and the reason; alerting starts on an empty store and keeps raising alarms.
/// </summary>
public sealed class CorruptStateTests
{
    private const string Rules = GroupCommitTests.Rules;

    [Fact]
    public async Task Regression_a_corrupt_alerts_db_stopped_the_agent()
    {
        // Before: LiteException "File is not a valid LiteDB database format" out of the store's constructor, which
        // stopped the agent's start (exit 1, no file named, a restart loop under systemd).
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-corrupt-").FullName;
        var db = Path.Combine(dir, "alerts.db");
        var garbage = new byte[20_000];
        new Random(42).NextBytes(garbage);
        await File.WriteAllBytesAsync(db, garbage, TestContext.Current.CancellationToken);
        var log = new ListLogger();

        var h = await Harness.StartAsync(Rules, dir, loggerFactory: new OneLoggerFactory(log));
        try
        {
            var warning = Assert.Single(log.At(LogLevel.Warning), l => l.Contains(" is corrupt ", StringComparison.Ordinal));
            Assert.True(warning.StartsWith($"alert store {db} is corrupt (", StringComparison.Ordinal), warning);
            Assert.Contains($"set aside ({db}.corrupt)", warning, StringComparison.Ordinal);
            Assert.Equal(garbage, await File.ReadAllBytesAsync(db + ".corrupt", TestContext.Current.CancellationToken));

            // Alarms work on the new store, and what they change is saved.
            h.Feed(h.Series("rack-r01", "inlet"), 35);
            await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing && a.Rule == "inlet-hot"), "the firing message");
            await h.StopKeepingStateAsync();
            using var reopened = new AlertStore(db);
            Assert.Equal(1, reopened.LoadAlerts().Count(a => a.State == AlertState.Firing));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("zeros")]
    [InlineData("truncated")]
    [InlineData("damaged-pages")]
    public async Task A_damaged_alerts_db_is_set_aside_or_read_and_alarms_still_work(string damage)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-corrupt-").FullName;
        var db = Path.Combine(dir, "alerts.db");
        var first = await Harness.StartAsync(Rules, dir);
        first.Feed(first.Series("rack-r02", "inlet"), 35);
        await Wait.UntilAsync(() => first.Sink.All.Any(a => a.Status == AlertStatus.Firing), "a firing message before the damage");
        await first.StopKeepingStateAsync();

        var bytes = await File.ReadAllBytesAsync(db, TestContext.Current.CancellationToken);
        Assert.True(bytes.Length >= 16_384, $"alerts.db is {bytes.Length} bytes");
        var damaged = damage switch
        {
            "zeros" => new byte[bytes.Length],
            "truncated" => bytes[..5000],
            _ => Damage(bytes),
        };
        await File.WriteAllBytesAsync(db, damaged, TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(dir, "alerts.journal")); // LiteDB alone holds the state now
        var log = new ListLogger();

        await using var h = await Harness.StartAsync(Rules, dir, loggerFactory: new OneLoggerFactory(log));

        var warnings = log.At(LogLevel.Warning).Where(l => l.Contains(" is corrupt ", StringComparison.Ordinal)).ToList();
        if (warnings.Count > 0)
        {
            Assert.StartsWith($"alert store {db} is corrupt (", Assert.Single(warnings), StringComparison.Ordinal);
            Assert.Equal(damaged, await File.ReadAllBytesAsync(db + ".corrupt", TestContext.Current.CancellationToken));
        }
        else
        {
            // LiteDB read it (the damage hit free space): the saved alert is back.
            Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        }

        Assert.True(damage == "damaged-pages" || warnings.Count == 1, "a file of zeros is not a LiteDB file, and a cut one is not whole");
        h.Feed(h.Series("rack-r01", "inlet"), 35);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing && a.Key.Contains("r01", StringComparison.Ordinal)), "the firing message on the damaged store");
    }

    [Fact]
    public async Task A_corrupt_alert_journal_keeps_the_writes_before_the_damage_and_sets_a_copy_aside()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-corrupt-").FullName;
        var journalPath = Path.Combine(dir, "alerts.journal");
        var first = await Harness.StartAsync(Rules, dir);
        first.Manager.Store.HoldApply = true; // killed after the journal write, before LiteDB had the changes
        first.Feed(first.Series("rack-r01", "inlet"), 35);
        await Wait.UntilAsync(() => first.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
        await first.StopKeepingStateAsync();

        // A whole record is in the journal; a damaged one (bad checksum) follows, then more bytes: corruption, not a cut.
        var good = await File.ReadAllBytesAsync(journalPath, TestContext.Current.CancellationToken);
        Assert.NotEmpty(good);
        var bad = new byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(bad, 40);
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(4), 0xDEADBEEF);
        var journal = good.Concat(bad).Concat(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }).ToArray();
        await File.WriteAllBytesAsync(journalPath, journal, TestContext.Current.CancellationToken);
        var log = new ListLogger();

        await using var h = await Harness.StartAsync(Rules, dir, loggerFactory: new OneLoggerFactory(log));

        var warning = Assert.Single(log.At(LogLevel.Warning), l => l.Contains(" is corrupt ", StringComparison.Ordinal));
        Assert.StartsWith($"alert journal {journalPath} is corrupt (record at byte {good.Length} fails its checksum); the ", warning, StringComparison.Ordinal);
        Assert.EndsWith($"writes before it were replayed, what follows it is lost; a copy was set aside ({journalPath}.corrupt)", warning, StringComparison.Ordinal);
        Assert.Equal(journal, await File.ReadAllBytesAsync(journalPath + ".corrupt", TestContext.Current.CancellationToken));
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot")); // the write before the damage was replayed
        h.Feed(h.Series("rack-r02", "inlet"), 35);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing && a.Key.Contains("r02", StringComparison.Ordinal)), "a new alarm after the damaged journal");
    }

    [Fact]
    public async Task A_journal_of_garbage_is_corruption_and_the_store_still_opens()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-corrupt-").FullName;
        var journalPath = Path.Combine(dir, "alerts.journal");
        var garbage = new byte[4096];
        BinaryPrimitives.WriteInt32LittleEndian(garbage, -7); // an impossible length, with bytes after it
        garbage.AsSpan(4).Fill(0x5A);
        await File.WriteAllBytesAsync(journalPath, garbage, TestContext.Current.CancellationToken);
        var log = new ListLogger();

        await using var h = await Harness.StartAsync(Rules, dir, loggerFactory: new OneLoggerFactory(log));

        Assert.Contains(log.At(LogLevel.Warning), l => l.StartsWith($"alert journal {journalPath} is corrupt (record at byte 0 has an impossible length -7); the 0 writes", StringComparison.Ordinal));
        Assert.True(File.Exists(journalPath + ".corrupt"));
        h.Feed(h.Series("rack-r01", "inlet"), 35);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Firing), "the firing message");
    }

    [Fact]
    public async Task A_journal_cut_short_at_the_end_is_not_corruption()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-corrupt-").FullName;
        var journalPath = Path.Combine(dir, "alerts.journal");
        var cut = new byte[20];
        BinaryPrimitives.WriteInt32LittleEndian(cut, 500); // the header of a record whose payload never arrived
        await File.WriteAllBytesAsync(journalPath, cut, TestContext.Current.CancellationToken);
        var log = new ListLogger();

        await using var h = await Harness.StartAsync(Rules, dir, loggerFactory: new OneLoggerFactory(log));

        Assert.Contains(log.At(LogLevel.Warning), l => l.Contains("the last record was cut short", StringComparison.Ordinal));
        Assert.DoesNotContain(log.At(LogLevel.Warning), l => l.Contains(" is corrupt ", StringComparison.Ordinal));
        Assert.False(File.Exists(journalPath + ".corrupt"));
    }

    /// <summary>
    /// History lines restarted at 1 in a new store, even when the journal replayed into it held the lost store's published
    /// mark (alerts.db corrupt, its journal emptied after the lines and holding only the mark written after them). Lines
    /// 1..mark then counted as handed to the outbox: a raise the agent was killed before handing over was not re-published
    /// at the next start and the centre never heard the alert fire. A store without lines now numbers them from the clock
    /// and always above the published mark. With a mark below the clock (40,000) the new line is above it whatever the
    /// mark, so the mark is also put an hour above the clock (a lost store numbered from a clock that ran ahead): only
    /// "above the mark" keeps that raise unpublished.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Regression_history_lines_restarted_at_1_below_a_replayed_published_mark_and_a_raise_was_never_republished(bool markAboveTheClock)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-seq-").FullName;
        var db = Path.Combine(dir, "alerts.db");
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 9, 0, 0, TimeSpan.Zero));
        var lostMark = markAboveTheClock ? time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds() : 40_000;
        try
        {
            using (var old = new AlertManager(Yaml.Valid(Rules), Harness.Site, db, time))
            {
                old.Store.HoldApply = true; // killed with only the journal holding the last write: the outbox took line lostMark
                old.MarkPublished(lostMark);
                await old.FlushAsync(TestContext.Current.CancellationToken);
            }

            var garbage = new byte[20_000];
            new Random(11).NextBytes(garbage);
            await File.WriteAllBytesAsync(db, garbage, TestContext.Current.CancellationToken); // set aside; the journal is replayed into a new store

            var registry = new EdgeTwin.Core.Samples.SeriesRegistry();
            var live = new List<OutgoingEvent>();
            using (var second = new AlertManager(Yaml.Valid(Rules), Harness.Site, db, time))
            using (var engine = new EdgeTwin.Alerting.Rules.RuleEngine(second, registry, time))
            {
                Assert.Equal(lostMark, second.Store.PublishedAtOpen);
                second.Attach(o =>
                {
                    if (o is OutgoingEvent e)
                    {
                        lock (live)
                        {
                            live.Add(e);
                        }
                    }
                });
                var s = registry.GetOrAdd(new EdgeTwin.Core.Samples.SeriesDescriptor("rack-r01", "inlet", "Cel", EdgeTwin.Core.Samples.MetricKind.Gauge, null));
                engine.Process([new EdgeTwin.Core.Samples.Sample(s, time.GetUtcNow().ToUnixTimeMilliseconds(), 35, EdgeTwin.Core.Samples.SampleQuality.Good)]);
                await second.FlushAsync(TestContext.Current.CancellationToken);

                // Stopped before the outbox took the raise: nothing marks it published.
                var raise = Assert.Single(live);
                Assert.Equal(EdgeTwin.Core.Events.EdgeEventKind.AlertRaised, raise.Event.Kind);
                Assert.True(raise.Seq > lostMark, $"the raise's history line {raise.Seq} is not above the replayed published mark {lostMark}");
                Assert.True(raise.Seq >= time.GetUtcNow().ToUnixTimeMilliseconds(), "a store without lines numbers them from the clock");
            }

            var replayed = new List<OutgoingEvent>();
            using (var third = new AlertManager(Yaml.Valid(Rules), Harness.Site, db, time))
            {
                third.Attach(o =>
                {
                    if (o is OutgoingEvent e)
                    {
                        replayed.Add(e);
                    }
                });
                var again = Assert.Single(replayed); // the centre still hears the alert fire
                Assert.Equal(EdgeTwin.Core.Events.EdgeEventKind.AlertRaised, again.Event.Kind);
                Assert.Equal(live[0].Seq, again.Seq);
                Assert.Equal(live[0].Event.Attributes!["alert_id"], again.Event.Attributes!["alert_id"]);
                Assert.Equal(live[0].Seq, Assert.Single(third.History(10)).Seq);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Random bytes over every page after the header page (the documents' pages).</summary>
    private static byte[] Damage(byte[] bytes)
    {
        var copy = (byte[])bytes.Clone();
        var random = new Random(7);
        for (var page = 8192; page < copy.Length; page += 8192)
        {
            random.NextBytes(copy.AsSpan(page + 32, 256));
        }

        return copy;
    }

    internal sealed class OneLoggerFactory(ILogger logger) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => logger;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }
    }

    /// <summary>
    /// Alert ids restarted from 1 when alerts.db was lost (corrupt and set aside, moved, a new disk), so the centre, which
    /// keeps its alert history by <c>alert_id</c>, filed the new alerts under the ids of unrelated old ones. A store
    /// without any alert now numbers from the clock (unix ms at the start), above every id the lost store gave.
    /// </summary>
    [Theory]
    [InlineData("deleted")]
    [InlineData("corrupt")]
    public async Task Regression_alert_ids_restarted_from_1_when_alerts_db_was_lost(string loss)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-alerting-ids-").FullName;
        try
        {
            var first = await Harness.StartAsync(Rules, dir);
            foreach (var rack in new[] { "rack-r01", "rack-r02", "rack-r03" })
            {
                first.Feed(first.Series(rack, "inlet"), 35);
            }

            await Wait.UntilAsync(() => first.Manager.Active().Count(a => a.FiredAt is not null) == 3, "three alerts firing");
            await Wait.UntilAsync(() => first.Events.Events.Count(e => e.Kind == EdgeTwin.Core.Events.EdgeEventKind.AlertRaised) == 3, "three alert_raised events");
            var old = first.Events.Events.Select(e => long.Parse(e.Attributes!["alert_id"], System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
            var later = first.Time.GetUtcNow().AddMinutes(10);
            await first.StopKeepingStateAsync();

            // The store is gone with its journal (a new SD card), or its file is garbage and nothing replays it.
            foreach (var file in Directory.GetFiles(dir))
            {
                File.Delete(file);
            }

            if (loss == "corrupt")
            {
                var garbage = new byte[20_000];
                new Random(7).NextBytes(garbage);
                await File.WriteAllBytesAsync(Path.Combine(dir, "alerts.db"), garbage, TestContext.Current.CancellationToken);
            }

            var second = await Harness.StartAsync(Rules, dir, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(later));
            await using (second)
            {
                second.Feed(second.Series("rack-r01", "inlet"), 35);
                await Wait.UntilAsync(() => second.Events.Events.Any(e => e.Kind == EdgeTwin.Core.Events.EdgeEventKind.AlertRaised), "the new alert's event");
                var raised = second.Events.Events.First(e => e.Kind == EdgeTwin.Core.Events.EdgeEventKind.AlertRaised);
                var id = long.Parse(raised.Attributes!["alert_id"], System.Globalization.CultureInfo.InvariantCulture);
                Assert.DoesNotContain(id, old);
                Assert.True(id > old.Max(), $"new id {id} not above the lost store's {old.Max()}");
                Assert.True(id < 1L << 53, "exact as a JSON number too");
                Assert.Equal(id, second.Manager.Active().Single().Id);
            }
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true); // the second harness deletes it when it got that far
            }
        }
    }
}
