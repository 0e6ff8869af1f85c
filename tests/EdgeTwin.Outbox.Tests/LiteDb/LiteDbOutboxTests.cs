using System.Text;
using System.Text.Json;
using EdgeTwin.Core.Events;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Outbox.Tests.Summaries;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using EdgeTwin.Tests.Shared;

namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>What only the durable store does: files, faults, budget, age, metrics.</summary>
public sealed class LiteDbOutboxTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(Now);

    /// <summary>The last sequence of a file created at <see cref="Now"/>: its first entry gets <c>B + 1</c>.</summary>
    private static readonly long B = Now.ToUnixTimeMilliseconds() * 1000;
    private readonly TestMeterFactory _meters = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DbPath => _dir.File("specific.db");

    public void Dispose()
    {
        _meters.Dispose();
        _dir.Dispose();
    }

    private Task<LiteDbOutbox> OpenAsync(Func<LiteDbOutboxOptions, LiteDbOutboxOptions>? configure = null, ILogger? logger = null)
    {
        var options = new LiteDbOutboxOptions { Path = DbPath, Identity = UplinkBodiesTests.Gw };
        return LiteDbOutbox.OpenAsync(configure?.Invoke(options) ?? options, logger, _meters, _time, Ct);
    }

    private static OutboxRecord Summary(long timeMs, string device = "rack-a01", int n = 0)
    {
        var acc = default(WindowAccumulator);
        acc.Reset(timeMs - 60_000, timeMs);
        acc.Add(n, timeMs - 1, good: true);
        return UplinkBodies.Summary(UplinkBodiesTests.Gw, new Core.Samples.SeriesDescriptor(device, "inlet_temperature", "Cel"), acc);
    }

    private static OutboxRecord Event(long timeMs, string message) =>
        UplinkBodies.Event(UplinkBodiesTests.Gw, new EdgeEvent(EdgeEventKind.AlertRaised, "rack-a01", DateTimeOffset.FromUnixTimeMilliseconds(timeMs), EventSeverity.Critical, message));

    /// <summary>A forecast as the twins send it: an event <c>prediction</c> with its figures in string attributes.</summary>
    private static OutboxRecord Forecast(long timeMs, double value) =>
        UplinkBodies.Event(UplinkBodiesTests.Gw, new EdgeEvent(EdgeEventKind.Prediction, "room1/cooling_failure", DateTimeOffset.FromUnixTimeMilliseconds(timeMs), EventSeverity.Info, "forecast",
            new Dictionary<string, string> { ["model"] = "thermal", ["value"] = value.ToString("R", System.Globalization.CultureInfo.InvariantCulture) }));

    private static async Task<List<OutboxEntry>> ReadAllAsync(LiteDbOutbox outbox)
    {
        var all = new List<OutboxEntry>();
        long after = 0;
        while (true)
        {
            var page = await outbox.ReadFromAsync(after, 1000, Ct);
            if (page.Count == 0)
            {
                return all;
            }

            all.AddRange(page);
            after = page[^1].Sequence;
        }
    }

    private static JsonElement Json(OutboxEntry e) => JsonDocument.Parse(e.Record.Payload).RootElement;

    [Fact]
    public async Task A_corrupt_file_is_moved_aside_and_a_new_outbox_starts_with_a_gap_event()
    {
        await using (var first = await OpenAsync())
        {
            await first.AppendAsync([Summary(1), Summary(2)], Ct);
        }

        var bytes = await File.ReadAllBytesAsync(DbPath, Ct);
        new Random(7).NextBytes(bytes.AsSpan(0, 256));
        await File.WriteAllBytesAsync(DbPath, bytes, Ct);

        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        await using var outbox = await OpenAsync(logger: loggerFactory.CreateLogger<LiteDbOutbox>());

        var aside = Assert.IsType<string>(outbox.MovedAsidePath);
        Assert.StartsWith(DbPath + ".corrupt-20261130T120000Z", aside, StringComparison.Ordinal);
        Assert.True(File.Exists(aside));
        Assert.Equal(bytes, await File.ReadAllBytesAsync(aside, Ct));

        var error = Assert.Single(logs.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("corrupt", error.Message, StringComparison.Ordinal);
        Assert.Contains(DbPath, error.Message, StringComparison.Ordinal);
        Assert.Contains(aside, error.Message, StringComparison.Ordinal);

        // The new file holds one data_gap event, with a sequence far above anything the old file could have used.
        var entries = await ReadAllAsync(outbox);
        var gap = Assert.Single(entries);
        Assert.Equal(Now.ToUnixTimeMilliseconds() * 1000 + 1, gap.Sequence);
        Assert.Equal("data_gap", Json(gap).GetProperty("event").GetString());
        Assert.Equal("corrupt_file", Json(gap).GetProperty("attributes").GetProperty("reason").GetString());
        Assert.Equal(aside, Json(gap).GetProperty("attributes").GetProperty("moved_to").GetString());
        Assert.Equal(gap.Sequence + 1, await outbox.AppendAsync([Summary(3)], Ct));
    }

    /// <summary>
    /// Regression: a new file (deleted outbox, re-imaged SD card, replaced gateway) started again at seq 1, and the
    /// centre, which de-duplicates on (gateway, seq) and already held 1..10000 from this gateway, discarded it all.
    /// </summary>
    [Fact]
    public async Task Regression_a_new_file_starts_its_sequences_from_the_clock_not_from_1()
    {
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        await using (var outbox = await OpenAsync(logger: loggerFactory.CreateLogger<LiteDbOutbox>()))
        {
            Assert.Equal(B, outbox.GetStats().LastSequence);
            Assert.Equal(B + 1, await outbox.AppendAsync([Summary(1)], Ct));
            Assert.True(B + 1 >= Now.ToUnixTimeMilliseconds() * 1000);
        }

        Assert.Contains(logs.GetSnapshot(), r => r.Level == LogLevel.Information && r.Message.Contains("new file", StringComparison.Ordinal) && r.Message.Contains((B + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        // The file is lost a minute later (re-imaged card): the new one starts above everything the old one sent.
        File.Delete(DbPath);
        File.Delete(LiteDbOutbox.JournalPath(DbPath));
        _time.Advance(TimeSpan.FromMinutes(1));
        await using var replaced = await OpenAsync();
        Assert.Equal(B + 60_000_000 + 1, await replaced.AppendAsync([Summary(2)], Ct));
    }

    [Fact]
    public async Task A_new_file_on_the_system_clock_starts_at_or_above_now_ms_times_1000()
    {
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = _dir.File("clock.db") }, cancellationToken: Ct);
        var first = await outbox.AppendAsync([Summary(1)], Ct);
        Assert.True(first > before, $"first sequence {first} is not above now_ms × 1000 = {before}");
        Assert.True(first < 1L << 53, "the sequence must stay exact in a JSON double");
    }

    [Fact]
    public async Task An_existing_file_continues_from_its_last_sequence_whatever_the_clock_says()
    {
        await using (var outbox = await OpenAsync())
        {
            await outbox.AppendAsync([Summary(1), Summary(2), Summary(3)], Ct);
        }

        _time.Advance(TimeSpan.FromDays(1));
        await using (var later = await OpenAsync())
        {
            Assert.Equal(B + 4, await later.AppendAsync([Summary(4)], Ct));
        }

        // A clock set back does not move an existing file's sequences either.
        _time.AdjustTime(Now.AddDays(-30));
        await using var earlier = await OpenAsync();
        Assert.Equal(B + 5, await earlier.AppendAsync([Summary(5)], Ct));
    }

    [Fact]
    public async Task A_file_with_a_damaged_data_page_is_moved_aside_too()
    {
        await using (var first = await OpenAsync())
        {
            for (var i = 0; i < 20; i++)
            {
                await first.AppendAsync(Enumerable.Range(0, 50).Select(n => Summary(n)).ToArray(), Ct);
            }
        }

        var bytes = await File.ReadAllBytesAsync(DbPath, Ct);
        Assert.True(bytes.Length > 8192 * 8, $"expected a multi-page file, got {bytes.Length} bytes");
        Array.Clear(bytes, 8192 * 3, 8192 * 4);
        await File.WriteAllBytesAsync(DbPath, bytes, Ct);

        await using var outbox = await OpenAsync();
        Assert.NotNull(outbox.MovedAsidePath);
        // Zeroed pages 3..6 hold this file's only segment's index: nothing is readable by id, and the gap event says the
        // loss is not known exactly (the salvage of damaged data pages is in CorruptSalvageTests).
        Assert.Equal(1, outbox.GetStats().Depth);
        var gap = Assert.Single(await ReadAllAsync(outbox));
        Assert.Equal("0", Json(gap).GetProperty("attributes").GetProperty("salvaged").GetString());
        Assert.Equal("false", Json(gap).GetProperty("attributes").GetProperty("lost_exact").GetString());
    }

    [Fact]
    public async Task A_second_process_cannot_open_the_same_outbox()
    {
        await using var outbox = await OpenAsync();
        var ex = await Assert.ThrowsAsync<OutboxStorageException>(() => OpenAsync());
        Assert.Contains(DbPath, ex.Message, StringComparison.Ordinal);
        Assert.Contains("in use", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unwritable_directory_is_an_error_naming_the_path()
    {
        var file = _dir.File("not-a-dir");
        await File.WriteAllTextAsync(file, "x", Ct);
        var path = System.IO.Path.Combine(file, "specific.db");
        var ex = await Assert.ThrowsAsync<OutboxStorageException>(() =>
            LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path }, cancellationToken: Ct));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_disk_fails_the_append_with_the_path_and_loses_nothing_accepted()
    {
        var faults = new DiskFaults();
        await using (var outbox = await OpenAsync(o => new LiteDbOutboxOptions { Path = o.Path, WrapStream = faults.Wrap }))
        {
            outbox.RegisterUplink("mqtt");
            Assert.Equal(B + 3, await outbox.AppendAsync([Summary(1), Summary(2), Event(3, "kept")], Ct));

            faults.Full = true;
            var ex = await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AppendAsync([Summary(4), Summary(5)], Ct));
            Assert.Contains(DbPath, ex.Message, StringComparison.Ordinal);
            Assert.Contains("No space left", ex.Message, StringComparison.Ordinal);
            Assert.True(faults.FailedWrites > 0);
            await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AcknowledgeAsync("mqtt", B + 1, Ct));
            Assert.Equal(B, outbox.GetAcknowledged("mqtt"));

            // Regression: LiteDB's abandoned transaction threw "discarded page must be writable" from its finalizer,
            // which ends the process. Force the finalizers now so the test run would die here if it came back.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();

            // Two failures in a row: the next open waits a second (a full disk reopened on every batch and leaked memory).
            faults.Full = false;
            var waiting = await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AppendAsync([Summary(4), Summary(5)], Ct));
            Assert.Contains("next attempt in 1 s", waiting.Message, StringComparison.Ordinal);
            _time.Advance(TimeSpan.FromSeconds(1));

            // Space is back: the caller retries its batch, which gets the next sequences.
            Assert.Equal(B + 5, await outbox.AppendAsync([Summary(4), Summary(5)], Ct));
            Assert.Equal([1, 2, 3, 4, 5], (await ReadAllAsync(outbox)).Select(e => (int)(e.Sequence - B)));
        }

        await using var reopened = await OpenAsync();
        var entries = await ReadAllAsync(reopened);
        Assert.Equal([B + 1, B + 2, B + 3, B + 4, B + 5], entries.Select(e => e.Sequence));
        Assert.Equal("kept", Json(entries[2]).GetProperty("message").GetString());
        Assert.Null(reopened.MovedAsidePath);
    }

    [Fact]
    public async Task A_spent_budget_condenses_raw_first_keeps_events_and_predictions_and_says_so()
    {
        using var metrics = new MetricCollector<long>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.condensed");
        const long budget = 256 * 1024;
        await using var outbox = await OpenAsync(o => new LiteDbOutboxOptions { Path = o.Path, DiskBudgetBytes = budget, Identity = o.Identity });
        outbox.RegisterUplink("mqtt"); // never acknowledges: the uplink is down for the whole test

        var series = new[] { UplinkBodiesTests.Inlet, UplinkBodiesTests.Outlet, new Core.Samples.SeriesDescriptor("ups1", "load", "%") };
        var pointsPerSeries = new long[series.Length];
        var sums = new double[series.Length];
        int events = 0, predictions = 0;
        var t0 = Now.AddHours(-3).ToUnixTimeMilliseconds();
        var batch = new List<OutboxRecord>();
        for (var r = 0; r < 600; r++)
        {
            var s = r % series.Length;
            var start = t0 + ((r / series.Length) * 10_000L);
            var points = Enumerable.Range(0, 10).Select(i => new RawPoint(start + (i * 1000), 20 + s + (0.1 * ((r + i) % 7)), 0)).ToArray();
            pointsPerSeries[s] += points.Length;
            sums[s] += points.Sum(p => p.Value);
            batch.Add(UplinkBodies.Raw(UplinkBodiesTests.Gw, series[s], points));
            if (r % 10 == 0)
            {
                batch.Add(Event(start, $"event {events++}"));
            }

            if (r % 25 == 0)
            {
                batch.Add(Forecast(start, predictions++));
            }

            if (r % 3 == 2)
            {
                await outbox.AppendAsync(batch, Ct);
                batch.Clear();
            }
        }

        var stats = outbox.GetStats();
        var entries = await ReadAllAsync(outbox);
        Assert.True(stats.Condensed > 0, "nothing was condensed");
        Assert.Equal(0, stats.Dropped);
        Assert.True(stats.EntryBytes <= budget, $"{stats.EntryBytes} bytes held, budget {budget}");
        Assert.Equal(stats.Depth, entries.Count);
        Assert.Equal(stats.Condensed, metrics.GetMeasurementSnapshot().Sum(m => m.Value));

        // Events and predictions: every one of them, in order.
        var userEvents = entries.Where(e => e.Record.Kind == OutboxKind.Event && Json(e).GetProperty("event").GetString() == "alert_raised").ToList();
        Assert.Equal(Enumerable.Range(0, events).Select(i => $"event {i}"), userEvents.Select(e => Json(e).GetProperty("message").GetString()));
        Assert.Equal(Enumerable.Range(0, predictions).Select(i => (double)i), entries.Where(e => e.Record.Kind == OutboxKind.Event && Json(e).GetProperty("event").GetString() == "prediction").Select(e => double.Parse(Json(e).GetProperty("attributes").GetProperty("value").GetString()!, System.Globalization.CultureInfo.InvariantCulture)));

        // The gap events say what happened, and their counts add up to the counter.
        var gaps = entries.Where(e => e.Record.Kind == OutboxKind.Event && Json(e).GetProperty("event").GetString() == "data_gap").Select(Json).ToList();
        Assert.NotEmpty(gaps);
        Assert.All(gaps, g => Assert.Equal("disk_budget", g.GetProperty("attributes").GetProperty("reason").GetString()));
        Assert.Equal(stats.Condensed, gaps.Sum(g => long.Parse(g.GetProperty("attributes").GetProperty("condensed").GetString()!, System.Globalization.CultureInfo.InvariantCulture)));

        // Nothing vanished silently: every point is still raw or counted in a condensed summary, with the same sum.
        for (var s = 0; s < series.Length; s++)
        {
            var key = series[s].Key;
            var condensed = entries.Where(e => e.Record.Kind == OutboxKind.Summary).Select(Json).Where(j => j.GetProperty("series").GetString() == key).ToList();
            Assert.All(condensed, j => Assert.True(j.GetProperty("condensed").GetBoolean()));
            var raw = entries.Where(e => e.Record.Kind == OutboxKind.Raw).Select(Json).Where(j => j.GetProperty("series").GetString() == key).ToList();
            var count = condensed.Sum(j => j.GetProperty("count").GetInt64()) + raw.Sum(j => j.GetProperty("points").GetArrayLength());
            var sum = condensed.Sum(j => j.GetProperty("mean").GetDouble() * j.GetProperty("count").GetInt64())
                + raw.Sum(j => j.GetProperty("points").EnumerateArray().Sum(p => p[1].GetDouble()));
            Assert.Equal(pointsPerSeries[s], count);
            Assert.Equal(sums[s], sum, 6);
        }

        // Condensed summaries keep their place in sequence order among the device's other entries.
        Assert.Equal(entries.Select(e => e.Sequence).Order(), entries.Select(e => e.Sequence));
    }

    [Fact]
    public async Task Regression_a_full_disk_failed_every_append_because_the_budget_ignored_the_free_space()
    {
        // A 512 MB budget on a filesystem with 1 MB free: the outbox filled the disk, then every append (and the deletes
        // that acknowledgements need) failed. Now, near the reserve, old raw data is condensed whenever the files would grow.
        var free = 1L << 20;
        const long reserve = 256 * 1024;
        await using var outbox = await OpenAsync(o => new LiteDbOutboxOptions
        {
            Path = o.Path,
            Identity = o.Identity,
            DiskReserveBytes = reserve,
            FileSystemSpace = () => (Volatile.Read(ref free), 64L << 20),
        });
        outbox.RegisterUplink("mqtt"); // the uplink is down: nothing is acknowledged
        var series = UplinkBodiesTests.Inlet;
        var t0 = Now.AddHours(-8).ToUnixTimeMilliseconds();
        var events = 0;
        long fileBefore = 0;
        for (var r = 0; r < 2500; r++)
        {
            var points = Enumerable.Range(0, 10).Select(i => new RawPoint(t0 + (r * 10_000L) + (i * 1000), 20 + (0.1 * (i % 7)), 0)).ToArray();
            var batch = new List<OutboxRecord> { UplinkBodies.Raw(UplinkBodiesTests.Gw, series, points) };
            if (r % 100 == 0)
            {
                batch.Add(Event(t0 + (r * 10_000L), $"event {events++}"));
            }

            await outbox.AppendAsync(batch, Ct);

            // The disk loses what the outbox's files grew by, as a real one would.
            var file = outbox.GetStats().Bytes;
            Interlocked.Add(ref free, -Math.Max(0, file - fileBefore));
            fileBefore = Math.Max(fileBefore, file);
        }

        var stats = outbox.GetStats();
        var entries = await ReadAllAsync(outbox);
        Assert.True(stats.Condensed > 0, "nothing was condensed although the disk had 1 MB");
        Assert.True(Volatile.Read(ref free) > 0, $"the outbox took the whole disk ({stats.Bytes} bytes of files)");
        Assert.True(stats.EntryBytes < 512 * 1024, $"{stats.EntryBytes} bytes held");
        Assert.Equal(
            Enumerable.Range(0, events).Select(i => $"event {i}"),
            entries.Where(e => e.Record.Kind == OutboxKind.Event && Json(e).GetProperty("event").GetString() == "alert_raised").Select(e => Json(e).GetProperty("message").GetString()));
        Assert.Contains(entries, e => e.Record.Kind == OutboxKind.Event && Json(e).GetProperty("event").GetString() == "data_gap");
    }

    [Fact]
    public async Task When_only_summaries_are_left_the_oldest_go_first_and_events_stay()
    {
        const long budget = 256 * 1024;
        await using var outbox = await OpenAsync(o => new LiteDbOutboxOptions { Path = o.Path, DiskBudgetBytes = budget, Identity = o.Identity });
        outbox.RegisterUplink("kafka");
        var t0 = Now.AddDays(-1).ToUnixTimeMilliseconds();
        var batch = new List<OutboxRecord>();
        for (var i = 0; i < 1500; i++)
        {
            batch.Add(Summary(t0 + (i * 60_000L), n: i));
            if (i % 100 == 0)
            {
                batch.Add(Event(t0 + (i * 60_000L), $"alert {i}"));
            }

            if (batch.Count >= 50)
            {
                await outbox.AppendAsync(batch, Ct);
                batch.Clear();
            }
        }

        await outbox.AppendAsync(batch, Ct);

        var stats = outbox.GetStats();
        var entries = await ReadAllAsync(outbox);
        Assert.True(stats.Dropped > 0);
        Assert.True(stats.EntryBytes <= budget);
        var kept = entries.Where(e => e.Record.Kind == OutboxKind.Summary).Select(e => (int)Json(e).GetProperty("last").GetDouble()).ToList();
        Assert.Equal(Enumerable.Range(1500 - kept.Count, kept.Count), kept); // a contiguous run of the newest
        Assert.Equal(1500 - stats.Dropped, kept.Count);
        Assert.Equal(
            Enumerable.Range(0, 15).Select(i => $"alert {i * 100}"),
            entries.Where(e => e.Record.Kind == OutboxKind.Event && Json(e).GetProperty("event").GetString() == "alert_raised").Select(e => Json(e).GetProperty("message").GetString()));
        var gap = entries.Where(e => e.Record.Kind == OutboxKind.Event).Select(Json).First(j => j.GetProperty("event").GetString() == "data_gap");
        Assert.Equal("outbox", gap.GetProperty("device").GetString());
        Assert.Equal("rack-a01", gap.GetProperty("attributes").GetProperty("devices").GetString());
    }

    /// <summary>
    /// disk_budget rounds within a minute of the last data_gap event share the next one (each event pinned a page of a
    /// small disk for good); meanwhile what they dropped is kept in meta, so a kill does not lose it: the next open
    /// writes the event. Here the clock does not move, so every round after the first is held.
    /// </summary>
    [Fact]
    public async Task Budget_rounds_within_a_minute_share_one_data_gap_event_that_a_kill_does_not_lose()
    {
        const long budget = 256 * 1024;
        var copy = _dir.File("killed.db");
        long dropped;
        await using (var outbox = await OpenAsync(o => new LiteDbOutboxOptions { Path = o.Path, DiskBudgetBytes = budget, Identity = o.Identity }))
        {
            outbox.RegisterUplink("kafka");
            var t0 = Now.AddDays(-1).ToUnixTimeMilliseconds();
            for (var i = 0; i < 3000; i += 50)
            {
                await outbox.AppendAsync(Enumerable.Range(i, 50).Select(n => Summary(t0 + (n * 60_000L), n: n)).ToArray(), Ct);
            }

            dropped = outbox.GetStats().Dropped;
            var events = GapDrops(await ReadAllAsync(outbox));
            Assert.Single(events); // the first round's, at once
            Assert.True(events[0] < dropped, "no round was held after the first");

            // A copy of the files as they are now is what a SIGKILL leaves behind.
            File.Copy(DbPath, copy);
            File.Copy(LiteDbOutbox.JournalPath(DbPath), LiteDbOutbox.JournalPath(copy));
        }

        // Closing wrote the held drops as their event…
        await using (var reopened = await OpenAsync())
        {
            Assert.Equal(dropped, GapDrops(await ReadAllAsync(reopened)).Sum());
        }

        // …and so does opening what the kill left.
        await using var killed = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = copy, Identity = UplinkBodiesTests.Gw }, null, _meters, _time, Ct);
        var gaps = GapDrops(await ReadAllAsync(killed));
        Assert.Equal(2, gaps.Count);
        Assert.Equal(dropped, gaps.Sum());
    }

    private static List<long> GapDrops(IEnumerable<OutboxEntry> entries) =>
        [.. entries.Where(e => e.Record.Kind == OutboxKind.Event).Select(Json)
            .Where(j => j.GetProperty("event").GetString() == "data_gap")
            .Select(j => long.Parse(j.GetProperty("attributes").GetProperty("dropped").GetString()!, System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public async Task Entries_of_an_earlier_run_older_than_the_maximum_age_are_dropped_except_events_and_predictions()
    {
        var options = (LiteDbOutboxOptions o) => new LiteDbOutboxOptions { Path = o.Path, MaxAge = TimeSpan.FromDays(7), Identity = o.Identity };
        var old = Now.AddDays(-8).ToUnixTimeMilliseconds();
        var recent = Now.AddDays(-6).ToUnixTimeMilliseconds();
        await using (var earlier = await OpenAsync(options))
        {
            earlier.RegisterUplink("mqtt");
            await earlier.AppendAsync([Summary(old), Event(old, "old alert"), Forecast(old, 1), Summary(recent), UplinkBodies.Raw(UplinkBodiesTests.Gw, UplinkBodiesTests.Inlet, [new RawPoint(old, 1, 0)])], Ct);
        }

        // Entries of an earlier run are judged by the time they describe against the wall clock read at open.
        await using var outbox = await OpenAsync(options);
        await outbox.RunMaintenanceAsync(Ct);

        var entries = await ReadAllAsync(outbox);
        Assert.Equal([B + 2, B + 3, B + 4, B + 6], entries.Select(e => e.Sequence));
        Assert.Equal(2, outbox.GetStats().Dropped);
        var gap = Json(entries[^1]);
        Assert.Equal("data_gap", gap.GetProperty("event").GetString());
        Assert.Equal("max_age", gap.GetProperty("attributes").GetProperty("reason").GetString());
        Assert.Equal((B + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), gap.GetProperty("attributes").GetProperty("first_seq").GetString());
        Assert.Equal((B + 5).ToString(System.Globalization.CultureInfo.InvariantCulture), gap.GetProperty("attributes").GetProperty("last_seq").GetString());

        // Nothing more to do: no second gap event.
        await outbox.RunMaintenanceAsync(Ct);
        Assert.Equal(4, outbox.GetStats().Depth);
    }

    [Fact]
    public async Task Entries_accepted_in_this_run_are_dropped_once_held_for_the_maximum_age_whatever_time_they_describe()
    {
        await using var outbox = await OpenAsync(o => new LiteDbOutboxOptions { Path = o.Path, MaxAge = TimeSpan.FromDays(7), Identity = o.Identity });
        outbox.RegisterUplink("mqtt");
        await outbox.AppendAsync([Summary(Now.AddDays(-8).ToUnixTimeMilliseconds(), n: 1), Summary(Now.ToUnixTimeMilliseconds(), n: 2)], Ct);
        _time.Advance(TimeSpan.FromDays(3));
        await outbox.AppendAsync([Summary(_time.GetUtcNow().ToUnixTimeMilliseconds(), n: 3)], Ct);

        // Held 3 days and 0 days: nothing goes, not even the entry describing a time 8 days back.
        await outbox.RunMaintenanceAsync(Ct);
        Assert.Equal(0, outbox.GetStats().Dropped);

        _time.Advance(TimeSpan.FromDays(4));
        await outbox.RunMaintenanceAsync(Ct);
        Assert.Equal(2, outbox.GetStats().Dropped);
        Assert.Equal([3], (await ReadAllAsync(outbox)).Where(e => e.Record.Kind == OutboxKind.Summary).Select(e => (int)Json(e).GetProperty("last").GetDouble()));

        _time.Advance(TimeSpan.FromDays(3));
        await outbox.RunMaintenanceAsync(Ct);
        Assert.Equal(3, outbox.GetStats().Dropped);
        Assert.DoesNotContain(await ReadAllAsync(outbox), e => e.Record.Kind == OutboxKind.Summary);
    }

    [Fact]
    public async Task Regression_ntp_sync_after_a_wrong_boot_clock_dropped_the_backlog_as_max_age()
    {
        // A gateway without RTC boots 10 days behind with its uplink down; one second after NTP stepped the clock to the
        // real time, every undelivered entry was dropped as max_age (stamped 10 days "ago"), and the log said "near its
        // disk budget (640 of 536870912 bytes, reason max_age)".
        var clock = new SteppableClock(_time, TimeSpan.FromDays(-10));
        var logs = new FakeLogCollector();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        var options = new LiteDbOutboxOptions { Path = DbPath, MaxAge = TimeSpan.FromDays(7), Identity = UplinkBodiesTests.Gw };
        await using var outbox = await LiteDbOutbox.OpenAsync(options, loggerFactory.CreateLogger<LiteDbOutbox>(), _meters, clock, Ct);
        outbox.RegisterUplink("mqtt");
        for (var i = 0; i < 4; i++)
        {
            await outbox.AppendAsync([Summary(clock.GetUtcNow().ToUnixTimeMilliseconds(), n: i)], Ct);
            _time.Advance(TimeSpan.FromSeconds(10));
        }

        clock.Step(TimeSpan.FromDays(10));
        _time.Advance(TimeSpan.FromSeconds(1));
        await outbox.AppendAsync([Summary(clock.GetUtcNow().ToUnixTimeMilliseconds(), n: 4)], Ct);
        await outbox.RunMaintenanceAsync(Ct);

        Assert.Equal(0, outbox.GetStats().Dropped);
        Assert.Equal(5, outbox.GetStats().Depth);
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Level >= LogLevel.Warning);

        // Held for max_age they do go, and the log names the reason rather than the disk budget.
        _time.Advance(TimeSpan.FromDays(7));
        await outbox.RunMaintenanceAsync(Ct);
        Assert.Equal(5, outbox.GetStats().Dropped);
        var warning = Assert.Single(logs.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains("dropped 5 summary/raw entries held longer than max_age 7d", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("budget", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_the_oldest_age_gauge_jumped_by_a_forward_ntp_step_though_nothing_had_waited_longer()
    {
        // A gateway without RTC boots 5 h behind; the uplink is down for 40 s, then NTP steps the clock 5 h forward. The
        // gauge compared the oldest entry's stamp with the wall clock of the moment and read 5 h: a dashboard alert on a
        // backlog of 40 s.
        var clock = new SteppableClock(_time, TimeSpan.FromHours(-5));
        // max_age 20 min: acceptance marks 1.2 s apart at most, so each append below has its own.
        var options = new LiteDbOutboxOptions { Path = DbPath, MaxAge = TimeSpan.FromMinutes(20), Identity = UplinkBodiesTests.Gw };
        using var oldestAge = new MetricCollector<double>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.oldest_age");
        double Gauge()
        {
            oldestAge.RecordObservableInstruments();
            return oldestAge.GetMeasurementSnapshot().Last(m => Equals(m.Tags["outbox"], "specific.db")).Value;
        }

        await using (var outbox = await LiteDbOutbox.OpenAsync(options, null, _meters, clock, Ct))
        {
            outbox.RegisterUplink("mqtt");
            Assert.Equal(0, Gauge());
            for (var i = 0; i < 4; i++)
            {
                await outbox.AppendAsync([Summary(clock.GetUtcNow().ToUnixTimeMilliseconds(), n: i)], Ct);
                _time.Advance(TimeSpan.FromSeconds(10));
            }

            Assert.Equal(40, Gauge());
            clock.Step(TimeSpan.FromHours(5));
            Assert.InRange(Gauge(), 40, 41);

            // The oldest two delivered: the gauge follows the oldest still held (sequences of a new file start from its clock).
            var first = outbox.GetStats().FirstSequence;
            await outbox.AcknowledgeAsync("mqtt", first + 1, Ct);
            Assert.InRange(Gauge(), 20, 21);
            await outbox.AcknowledgeAsync("mqtt", first + 3, Ct);
            Assert.Equal(0, Gauge());
            await outbox.AppendAsync([Summary(clock.GetUtcNow().ToUnixTimeMilliseconds(), n: 9)], Ct);
            _time.Advance(TimeSpan.FromSeconds(30));
            Assert.InRange(Gauge(), 30, 31);
        }

        // Entries of an earlier run: by the time they describe against the wall clock read at open (all there is).
        _time.Advance(TimeSpan.FromMinutes(1));
        await using var reopened = await LiteDbOutbox.OpenAsync(options, null, _meters, clock, Ct);
        clock.Step(TimeSpan.FromHours(1));
        Assert.Equal(TimeSpan.FromSeconds(90), reopened.OldestHeld()); // (the first instance's gauge is still on the meter)
    }

    [Fact]
    public async Task Counters_survive_a_reopen_and_a_removed_uplink_no_longer_holds_entries_back()
    {
        await using (var outbox = await OpenAsync())
        {
            outbox.RegisterUplink("mqtt");
            outbox.RegisterUplink("kafka");
            await outbox.AppendAsync([Summary(1), Summary(2)], Ct);
            await outbox.AcknowledgeAsync("mqtt", B + 2, Ct);
            Assert.Equal(2, outbox.GetStats().Depth);
        }

        await using var reopened = await OpenAsync();
        Assert.Equal(new Dictionary<string, long> { ["mqtt"] = B + 2, ["kafka"] = B }, reopened.GetStats().UplinkPositions);
        await reopened.RemoveUplinkAsync("kafka", Ct);
        await reopened.AcknowledgeAsync("mqtt", B + 2, Ct); // no change, so nothing to do
        await reopened.AppendAsync([Summary(3)], Ct);
        await reopened.AcknowledgeAsync("mqtt", B + 3, Ct);
        Assert.Equal(0, reopened.GetStats().Depth);
        Assert.Throws<UnknownUplinkException>(() => reopened.GetAcknowledged("kafka"));
    }

    [Fact]
    public async Task Metrics_count_appends_and_report_depth_and_bytes()
    {
        using var appended = new MetricCollector<long>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.appended");
        using var depth = new MetricCollector<long>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.depth");
        using var bytes = new MetricCollector<long>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.bytes");
        await using var outbox = await OpenAsync();
        await outbox.AppendAsync([Summary(1), Summary(2), Summary(3)], Ct);

        Assert.Equal(3, appended.GetMeasurementSnapshot().Where(m => Equals(m.Tags["outbox"], "specific.db")).Sum(m => m.Value));
        depth.RecordObservableInstruments();
        bytes.RecordObservableInstruments();
        Assert.Contains(depth.GetMeasurementSnapshot(), m => Equals(m.Tags["outbox"], "specific.db") && m.Value == 3);
        Assert.Contains(bytes.GetMeasurementSnapshot(), m => Equals(m.Tags["outbox"], "specific.db") && m.Value >= 8192);
    }

    [Fact]
    public async Task Blobs_are_committed_with_the_records_and_their_bytes_counted()
    {
        using var blobBytes = new MetricCollector<long>(_meters, OutboxMetrics.MeterName, "edgetwin.outbox.checkpoint.bytes");
        await using (var outbox = await OpenAsync())
        {
            await outbox.AppendAsync([Summary(1)], [new OutboxBlob("a", new byte[] { 1, 2, 3 }), new OutboxBlob("b", new byte[] { 4 })], Ct);
            await outbox.AppendAsync([], [new OutboxBlob("b", ReadOnlyMemory<byte>.Empty)], Ct); // removes it, with no record
            Assert.Equal(4, blobBytes.GetMeasurementSnapshot().Where(m => Equals(m.Tags["outbox"], "specific.db")).Sum(m => m.Value));
        }

        await using var reopened = await OpenAsync();
        Assert.Equal(new byte[] { 1, 2, 3 }, await reopened.ReadBlobAsync("a", Ct));
        Assert.Null(await reopened.ReadBlobAsync("b", Ct));
        Assert.Equal(1, reopened.GetStats().Depth);
    }

    [Fact]
    public async Task A_full_disk_fails_blobs_and_records_together()
    {
        var faults = new DiskFaults();
        await using (var outbox = await OpenAsync(o => new LiteDbOutboxOptions { Path = o.Path, WrapStream = faults.Wrap }))
        {
            await outbox.AppendAsync([Summary(1)], [new OutboxBlob("a", new byte[] { 1 })], Ct);
            faults.Full = true;
            await Assert.ThrowsAsync<OutboxStorageException>(async () => await outbox.AppendAsync([Summary(2)], [new OutboxBlob("a", new byte[] { 2 })], Ct));
        }

        faults.Full = false;
        await using var reopened = await OpenAsync();
        Assert.Equal(new byte[] { 1 }, await reopened.ReadBlobAsync("a", Ct)); // neither the record nor the blob of the failed commit
        Assert.Equal(1, reopened.GetStats().Depth);
    }

    [Fact]
    public async Task Appends_after_dispose_are_refused_and_pending_ones_are_not_lost_silently()
    {
        var outbox = await OpenAsync();
        var pending = Enumerable.Range(0, 20).Select(i => outbox.AppendAsync([Summary(i)], Ct).AsTask()).ToList();
        await outbox.DisposeAsync();
        foreach (var task in pending)
        {
            // Either stored (and then readable after reopen) or failed loudly; never "succeeded" and gone.
            try
            {
                await task;
            }
            catch (ObjectDisposedException)
            {
            }
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await outbox.AppendAsync([Summary(1)], Ct));
        await using var reopened = await OpenAsync();
        var stored = pending.Count(t => t.IsCompletedSuccessfully);
        Assert.Equal(stored, reopened.GetStats().Depth);
        Assert.Equal(Encoding.UTF8.GetString(Summary(0).Payload.Span), Encoding.UTF8.GetString((await reopened.ReadFromAsync(0, 1, Ct))[0].Record.Payload.Span));
    }
}
