using System.Globalization;
using System.Security.Cryptography;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Line;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>
/// The line twin over a restart: a stage restored from a saved state goes on exactly as one that never stopped (same
/// events, same state), what no longer fits the configuration starts afresh and says why, a damaged file is refused.
/// </summary>
public sealed class LineTwinStateTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-linestate-");

    public void Dispose() => _dir.Delete(recursive: true);

    // Two members (one adapting its standardisation), hedge mix, online steps and an equal-error decision: every kind of
    // learned quality state there is.
    private string WriteModel(double weight = 1.5)
    {
        var json = string.Create(CultureInfo.InvariantCulture, $$$"""
            {"format":"edgetwin-online-logistic/2","input_width":2,"clip":5,"learning_rate":0.01,"l2":0.0001,"weight_fail":3,"weight_pass":0.6,
             "members":[{"alpha":0,"columns":[0,1],"mean":[80,5],"var":[25,0.04],"weights":[{{{weight}}},-0.3],"bias":-1.5},
                        {"alpha":0.05,"columns":[0],"mean":[80],"var":[25],"weights":[1.1],"bias":-1.2}],
             "mix":{"mode":"hedge","eta":0.5,"discount":0.99},
             "decision":{"mode":"eer","window_pass":50,"window_fail":10,"min_fails":3,"prior":0.1,"prior_alpha":0.01}}
            """);
        var path = Path.Combine(_dir.FullName, "q.json");
        File.WriteAllText(path, json);
        return path;
    }

    private string Yaml(string s2CycleTime = "32s", string plannedStops = """[{ start: "10:00", duration: 15m, reason: break }]""") => $$"""
        line:
          id: r1
          micro_stop: 2m
          margin_per_unit: 10
          shift: { length: 8h, starts: ["06:00", "14:00", "22:00"] }
          planned_stops: {{plannedStops}}
          buffers:
            - { id: B1, capacity: 10, level: { device: b1, metric: level } }
          stations:
            - id: S1
              ideal_cycle_time: 30s
              mtbf: 2h
              mttr: 10m
              output: B1
              signals:
                state: { device: p1, metric: state, map: { 0: idle, 1: running, 4: faulted } }
                good: { device: p1, metric: good }
                reject: { device: p1, metric: reject }
              quality:
                model: {{WriteModel()}}
                window: 20
                inspection_delay_parts: 3
                inputs: [{ device: p1, metric: temp }, { device: p1, metric: pressure }]
            - id: S2
              ideal_cycle_time: {{s2CycleTime}}
              inputs: [B1]
              signals:
                stack_light: { red: s2-red, amber: s2-amber, green: s2-green }
                good: { device: p2, metric: good }
        """;

    private sealed class Site
    {
        public required LineTwinStage Stage { get; init; }

        public required RecordingEventSink Sink { get; init; }

        public required SeriesRegistry Registry { get; init; }
    }

    private Site NewSite(string? yaml = null)
    {
        var d = new ConfigDiagnostics();
        var config = LineTwinConfig.Parse(yaml ?? Yaml(), Path.Combine(_dir.FullName, "site.yaml"), d);
        Assert.Empty(d.Items);
        var registry = new SeriesRegistry();
        foreach (var (device, metric) in Series)
            registry.GetOrAdd(new SeriesDescriptor(device, metric, "1", metric is "good" or "reject" ? MetricKind.Counter : MetricKind.State));
        var sink = new RecordingEventSink();
        var stage = new LineTwinStage(config!, registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(5));
        return new Site { Stage = stage, Sink = sink, Registry = registry };
    }

    private static readonly (string Device, string Metric)[] Series =
    [
        ("p1", "state"), ("p1", "good"), ("p1", "reject"), ("p1", "temp"), ("p1", "pressure"),
        ("s2-red", "lamp"), ("s2-amber", "lamp"), ("s2-green", "lamp"), ("p2", "good"), ("b1", "level"),
    ];

    private static long At(int hour, int minute, int second = 0) =>
        new DateTimeOffset(new DateTime(2026, 11, 30, hour, minute, second, DateTimeKind.Local)).ToUnixTimeMilliseconds();

    /// <summary>
    /// A line from 07:00 to 15:30 (through the 10:00 break and the 14:00 shift change), one batch per 10 s: S1's state
    /// word (a Markov chain with faults of 1–15 min), its part counters (rejects more likely when the process runs hot),
    /// its process values; S2's stack light and counter; the buffer level. Seeded: the same batches on every call.
    /// </summary>
    private static List<Sample[]> Batches(int seed = 7)
    {
        var rng = new Random(seed);
        var batches = new List<Sample[]>();
        double s1 = 1, s2 = 1, temp = 80;
        ulong good1 = 4_000_000_000, reject1 = 17, good2 = 500; // S1's good counter wraps at 2^32 during the run
        int faultLeft = 0, s2FaultLeft = 0;
        for (long t = At(7, 0); t <= At(15, 30); t += 10_000)
        {
            if (faultLeft > 0 && --faultLeft == 0) s1 = 1;
            else if (faultLeft == 0 && rng.NextDouble() < 0.004) (s1, faultLeft) = (4, rng.Next(6, 90));
            else if (faultLeft == 0 && rng.NextDouble() < 0.01) s1 = s1 == 0 ? 1 : 0;
            if (s2FaultLeft > 0 && --s2FaultLeft == 0) s2 = 1;
            else if (s2FaultLeft == 0 && rng.NextDouble() < 0.003) (s2, s2FaultLeft) = (4, rng.Next(6, 60));
            temp += (80 - temp) * 0.02 + rng.NextDouble() - 0.5;
            if (s1 == 1 && rng.NextDouble() < 1 / 3.0)
            {
                if (rng.NextDouble() < 0.05 + Math.Max(0, temp - 82) * 0.1) reject1++;
                else good1 = (good1 + 1) % (1UL << 32);
            }

            if (s2 == 1 && rng.NextDouble() < 0.28) good2++; // about 90 % of S2's ideal rate
            var batch = new List<Sample>
            {
                new(new SeriesId(0), t, s1), new(new SeriesId(1), t, good1), new(new SeriesId(2), t, reject1),
                new(new SeriesId(3), t, temp), new(new SeriesId(4), t, 5 + (rng.NextDouble() * 0.4)),
                new(new SeriesId(5), t + 3, s2 == 4 ? 1 : 0), new(new SeriesId(6), t + 3, 0), new(new SeriesId(7), t + 3, s2 == 1 ? 1 : 0),
                new(new SeriesId(8), t + 5, good2), new(new SeriesId(9), t + 5, rng.Next(0, 11)),
            };
            batches.Add([.. batch]);
        }

        return batches;
    }

    private static async Task Feed(LineTwinStage stage, IEnumerable<Sample[]> batches)
    {
        foreach (var b in batches) await stage.ProcessAsync(b, CancellationToken.None);
    }

    private static int IndexAt(List<Sample[]> batches, long ms) => batches.FindIndex(b => b[0].TimestampUnixMs >= ms);

    private static string Describe(EdgeEvent e) =>
        $"{e.Source} {e.Time:O} {e.Severity} {e.Message} | " + string.Join(';', e.Attributes!.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + kv.Value));

    // The state file with its saved-at instant set to 0, to compare two stages' states.
    private static byte[] WithoutSavedAt(byte[] file)
    {
        var copy = (byte[])file.Clone();
        Array.Clear(copy, "EDGETWIN-LINE-STATE\n".Length + 4, 8);
        Array.Clear(copy, copy.Length - 32, 32);
        return copy;
    }

    [Theory]
    [InlineData(7, 40, 0)]    // mid-morning, S1 possibly in a fault
    [InlineData(9, 58, 0)]    // just before the planned break
    [InlineData(10, 5, 0)]    // inside the break
    [InlineData(12, 0, 18)]   // down 3 minutes (18 batches): the counters' parts of the gap are counted after it
    [InlineData(13, 50, 90)]  // down over the shift change: the 06:00 shift's report comes after the restart
    public async Task Regression_a_restart_mid_shift_restarted_the_OEE_books_and_the_learning_from_zero(int hour, int minute, int gapBatches)
    {
        var batches = Batches();
        int split = IndexAt(batches, At(hour, minute));
        // What the sensors gave while the agent was down reaches neither stage: the unbroken one sees the same gap.
        var seen = batches.Take(split).Concat(batches.Skip(split + gapBatches)).ToList();

        var unbroken = NewSite();
        await Feed(unbroken.Stage, seen);

        var before = NewSite();
        await Feed(before.Stage, seen.Take(split));
        var saved = before.Stage.SaveState(seen[split - 1][^1].TimestampUnixMs);
        var after = NewSite();
        var restore = after.Stage.RestoreState(saved, seen[split][0].TimestampUnixMs);
        Assert.True(restore.Books, restore.BooksNotRestored);
        Assert.Equal(["S1", "S1 (quality)", "S2"], restore.Learned);
        Assert.Empty(restore.NotRestored);
        await Feed(after.Stage, seen.Skip(split));

        // Every event after the restart, and the whole state at the end, as if the agent had never stopped.
        var expected = unbroken.Sink.Events.Skip(before.Sink.Events.Count).Select(Describe).ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, after.Sink.Events.Select(Describe).ToList());
        long end = seen[^1][^1].TimestampUnixMs;
        Assert.Equal(WithoutSavedAt(unbroken.Stage.SaveState(end)), WithoutSavedAt(after.Stage.SaveState(end)));
        if (hour == 13)
        {
            Assert.Contains(after.Sink.Events, e => e.Source == "line/r1/shift");
        }
    }

    [Fact]
    public async Task Without_the_state_a_restart_would_lose_the_shifts_books_and_learning()
    {
        // The contrast that makes the regression above mean something: a fresh stage after the split differs.
        var batches = Batches().Take(IndexAt(Batches(), At(13, 0))).ToList(); // inside the 06:00 shift
        int split = IndexAt(batches, At(12, 0));
        var unbroken = NewSite();
        await Feed(unbroken.Stage, batches);
        var fresh = NewSite();
        await Feed(fresh.Stage, batches.Skip(split));
        long end = batches[^1][^1].TimestampUnixMs;
        var a = unbroken.Stage.State(end);
        var b = fresh.Stage.State(end);
        Assert.NotEqual(a["learned.mttr_s.S1"], b["learned.mttr_s.S1"]);
        Assert.NotEqual(a["books_from"], b["books_from"]);
        Assert.NotEqual(a["good"], b["good"]);
        Assert.NotEqual(unbroken.Stage.Quality(0)!.TotalParts, fresh.Stage.Quality(0)!.TotalParts);
    }

    [Fact]
    public async Task Parts_made_while_the_agent_was_down_are_counted_by_the_first_reading_after_it()
    {
        var batches = Batches();
        int split = IndexAt(batches, At(8, 0));
        var before = NewSite();
        await Feed(before.Stage, batches.Take(split));
        long stop = batches[split - 1][0].TimestampUnixMs;
        var goodBefore = long.Parse(before.Stage.State(stop)["good"], CultureInfo.InvariantCulture);
        var after = NewSite();
        after.Stage.RestoreState(before.Stage.SaveState(stop), stop + 30_000);

        // Back 60 s later: S2's counter moved by 5 while nobody watched.
        var s2Good = batches[split - 1].Single(s => s.Series.Value == 8).Value;
        long back = stop + 60_000;
        await after.Stage.ProcessAsync(new Sample[] { new(new SeriesId(8), back, s2Good + 5) }, CancellationToken.None);
        Assert.Equal(goodBefore + 5, long.Parse(after.Stage.State(back)["good"], CultureInfo.InvariantCulture));
        Assert.Equal(before.Stage.State(stop)["books_from"], after.Stage.State(back)["books_from"]);
    }

    /// <summary>
    /// What a batch of scrap may book (the good parts counted since the reject counter last moved) is in the saved books
    /// like every field of the trackers: the run's scrap entered on the HMI just after a restart counts as it would have
    /// without the restart, not dropped as a glitch (3× the ideal rate over the last minute allows 9 parts here).
    /// </summary>
    [Fact]
    public async Task A_batch_of_scrap_booked_just_after_a_restart_counts_against_the_parts_made_before_it()
    {
        var before = NewSite();
        long ms = At(7, 0);
        for (var i = 0; i <= 120; i++)
        {
            // An hour's run of S1, a part per ideal cycle (30 s), its reject counter read and untouched.
            ms = At(7, 0) + (i * 30_000L);
            await before.Stage.ProcessAsync(new Sample[] { new(new SeriesId(0), ms, 1), new(new SeriesId(1), ms, i), new(new SeriesId(2), ms, 0) }, CancellationToken.None);
        }

        var after = NewSite();
        var restore = after.Stage.RestoreState(before.Stage.SaveState(ms), ms + 10_000);
        Assert.True(restore.Books, restore.BooksNotRestored);
        ms += 30_000;
        await after.Stage.ProcessAsync(new Sample[] { new(new SeriesId(0), ms, 1), new(new SeriesId(1), ms, 120), new(new SeriesId(2), ms, 40) }, CancellationToken.None);
        var state = after.Stage.State(ms);
        Assert.Equal("40", state["rejects.S1"]);
        Assert.Equal(120.0 / 160, D(state, "quality.S1"), 9);
    }

    [Fact]
    public async Task A_station_whose_configuration_changed_learns_anew_and_the_books_start_afresh_the_rest_goes_on()
    {
        var batches = Batches();
        var before = NewSite();
        await Feed(before.Stage, batches.Take(IndexAt(batches, At(11, 0))));
        var saved = before.Stage.SaveState(At(11, 0));

        var after = NewSite(Yaml(s2CycleTime: "40s"));
        var restore = after.Stage.RestoreState(saved, At(11, 1));
        Assert.False(restore.Books);
        Assert.Equal("cycle_times_or_micro_stop changed in the configuration", restore.BooksNotRestored);
        Assert.Equal(["S1", "S1 (quality)"], restore.Learned);
        Assert.Contains("S2: figures changed in the configuration (cycle time, MTBF, MTTR, CV or micro_stop): learned anew from the configured figures", restore.NotRestored);
        // S1's learning is there; S2 is at its configured figures.
        Assert.Equal(before.Stage.Learned(0, At(11, 0)), after.Stage.Learned(0, At(11, 0)));
        Assert.Equal(40, after.Stage.Learned(1, At(11, 0)).CycleSeconds, 9);
        Assert.Equal(before.Stage.Quality(0)!.TotalParts, after.Stage.Quality(0)!.TotalParts);

        // A planned stop added: only the books depend on the calendar.
        var calendar = NewSite(Yaml(plannedStops: """[{ start: "10:00", duration: 15m, reason: break }, { start: "12:00", duration: 30m, reason: lunch }]"""));
        restore = calendar.Stage.RestoreState(saved, At(11, 1));
        Assert.False(restore.Books);
        Assert.Equal("planned_stops changed in the configuration", restore.BooksNotRestored);
        Assert.Equal(["S1", "S1 (quality)", "S2"], restore.Learned);

        // A stop's reason is a label: renaming it keeps the books.
        var renamed = NewSite(Yaml(plannedStops: """[{ start: "10:00", duration: 15m, reason: coffee }]"""));
        Assert.True(renamed.Stage.RestoreState(saved, At(11, 1)).Books);
    }

    [Fact]
    public async Task A_new_quality_model_file_starts_from_its_base_not_from_what_the_old_one_learned()
    {
        var batches = Batches();
        var before = NewSite();
        await Feed(before.Stage, batches.Take(IndexAt(batches, At(9, 0))));
        var saved = before.Stage.SaveState(At(9, 0));

        var yaml = Yaml();
        WriteModel(weight: 1.7); // deployed over the old file before the restart
        var after = NewSite(yaml);
        var restore = after.Stage.RestoreState(saved, At(9, 1));
        Assert.True(restore.Books);
        Assert.Equal(["S1", "S2"], restore.Learned);
        Assert.Contains("S1 (quality): model_file changed in the configuration: starts from the base model", restore.NotRestored);
        Assert.Equal(0, after.Stage.Quality(0)!.TotalParts);
    }

    [Fact]
    public async Task Books_older_than_a_shift_start_afresh_what_was_learned_is_kept()
    {
        var batches = Batches();
        var before = NewSite();
        await Feed(before.Stage, batches.Take(IndexAt(batches, At(9, 0))));
        var saved = before.Stage.SaveState(At(9, 0));
        var after = NewSite();
        var restore = after.Stage.RestoreState(saved, At(9, 0) + TimeSpan.FromHours(30).Ticks / TimeSpan.TicksPerMillisecond);
        Assert.False(restore.Books);
        Assert.Contains("longer than a shift", restore.BooksNotRestored, StringComparison.Ordinal);
        Assert.Equal(["S1", "S1 (quality)", "S2"], restore.Learned);

        restore = NewSite().Stage.RestoreState(saved, At(8, 0));
        Assert.False(restore.Books);
        Assert.Contains("in the future (the clock was changed)", restore.BooksNotRestored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_damaged_file_is_refused_and_changes_nothing()
    {
        var batches = Batches();
        var before = NewSite();
        await Feed(before.Stage, batches.Take(300));
        var saved = before.Stage.SaveState(At(8, 0));
        var after = NewSite();
        var fresh = after.Stage.SaveState(At(8, 0));

        var flipped = (byte[])saved.Clone();
        flipped[saved.Length / 2] ^= 0x10;
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => after.Stage.RestoreState(flipped, At(8, 1))).Message, StringComparison.Ordinal);
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => after.Stage.RestoreState(saved[..^100], At(8, 1))).Message, StringComparison.Ordinal);
        Assert.Contains("not a line twin state file", Assert.Throws<InvalidDataException>(() => after.Stage.RestoreState("{}"u8.ToArray(), At(8, 1))).Message, StringComparison.Ordinal);
        Assert.Equal("empty (0 bytes)", Assert.Throws<InvalidDataException>(() => after.Stage.RestoreState([], At(8, 1))).Message);
        Assert.Equal(fresh, after.Stage.SaveState(At(8, 0)));

        // Another line's file, or one from a build whose line twin keeps other state: nothing taken, said why.
        var other = NewSite(Yaml().Replace("id: r1", "id: r2", StringComparison.Ordinal));
        var restore = other.Stage.RestoreState(saved, At(8, 1));
        Assert.Empty(restore.Learned);
        Assert.Contains("saved for line 'r1', this is line 'r2'", restore.NotRestored.Single(), StringComparison.Ordinal);
        // A build that saves the books' classes differently costs the books only, not what the stations learned.
        var foreign = (byte[])saved.Clone();
        var books = "EDGETWIN-LINE-STATE\n".Length + 4 + 8 + 3; // the books' layout fingerprint (after version, saved-at, "r1")
        foreign[books] ^= 1;
        BitConverter.GetBytes(int.MaxValue).CopyTo(foreign, books + 32 + 4); // and a description this build cannot read
        SHA256.HashData(foreign.AsSpan(0, foreign.Length - 32)).CopyTo(foreign, foreign.Length - 32);
        var next = NewSite();
        restore = next.Stage.RestoreState(foreign, At(8, 1));
        Assert.False(restore.Books);
        Assert.Equal("kept by an agent build that saves the books differently", restore.BooksNotRestored);
        Assert.Equal(["S1", "S1 (quality)", "S2"], restore.Learned);
        Assert.Equal(fresh, after.Stage.SaveState(At(8, 0)));
    }

    private static double D(IReadOnlyDictionary<string, string> a, string key) => double.Parse(a[key], CultureInfo.InvariantCulture);

    [Fact]
    public async Task Regression_after_an_outage_longer_than_the_hold_its_parts_were_credited_to_the_known_time()
    {
        // Down 09:00–09:30 (the hold is 5 min). Before: performance above 1, the learned cycle a fraction of the truth,
        // the quality model fed the outage's parts with stale inputs.
        var batches = Batches();
        int stop = IndexAt(batches, At(9, 0)), back = IndexAt(batches, At(9, 30)), end = IndexAt(batches, At(12, 0));
        var truth = NewSite();
        await Feed(truth.Stage, batches.Take(end));
        var before = NewSite();
        await Feed(before.Stage, batches.Take(stop));
        var after = NewSite();
        Assert.True(after.Stage.RestoreState(before.Stage.SaveState(At(9, 0)), At(9, 30)).Books);
        await Feed(after.Stage, batches.Skip(back).Take(end - back));

        long now = batches[end - 1][^1].TimestampUnixMs;
        var t = truth.Stage.State(now);
        var a = after.Stage.State(now);
        foreach (var station in new[] { "S1", "S2" })
        {
            Assert.True(D(a, "performance." + station) <= 1.0, $"{station}: performance {a["performance." + station]} (truth {t["performance." + station]})");
            Assert.Equal(D(t, "performance." + station), D(a, "performance." + station), 0.03);
            Assert.Equal(D(t, "learned.cycle_s." + station), D(a, "learned.cycle_s." + station), D(t, "learned.cycle_s." + station) * 0.05);
        }

        // The output's parts of the outage: not in the books, but in the shift's output, so seen + unseen = truth.
        var unseen = long.Parse(a["good_unseen"], CultureInfo.InvariantCulture);
        Assert.True(unseen > 0);
        Assert.Equal(long.Parse(t["good"], CultureInfo.InvariantCulture), long.Parse(a["good"], CultureInfo.InvariantCulture) + unseen);
        Assert.False(a.ContainsKey("line.no_data"), a.GetValueOrDefault("line.no_data"));
        // The quality model learned only parts it saw the process values of.
        Assert.True(after.Stage.Quality(0)!.TotalParts < truth.Stage.Quality(0)!.TotalParts);
    }

    [Fact]
    public async Task Regression_down_across_the_shift_change_the_new_shift_claimed_to_be_covered_and_the_old_one_lost_its_oee()
    {
        var batches = Batches();
        int stop = IndexAt(batches, At(13, 30)), back = IndexAt(batches, At(15, 10));
        var before = NewSite();
        await Feed(before.Stage, batches.Take(stop));
        var after = NewSite();
        Assert.True(after.Stage.RestoreState(before.Stage.SaveState(At(13, 30)), At(15, 10)).Books);
        await Feed(after.Stage, batches.Skip(back));

        // The 06:00 shift's report: the gateway saw 7.5 h of it, so it has its figures.
        var report = Assert.Single(after.Sink.Events, e => e.Source == "line/r1/shift").Attributes!;
        Assert.False(report.ContainsKey("line.no_data"), report.GetValueOrDefault("line.no_data"));
        Assert.False(report.ContainsKey("no_data"), report.GetValueOrDefault("no_data"));
        Assert.True(D(report, "oee.line") is > 0 and <= 1);

        // The 14:00 shift's books begin when the gateway saw it again, with no part of the outage in them.
        var state = after.Stage.State(batches[^1][^1].TimestampUnixMs);
        Assert.StartsWith(Wall(15, 10), state["books_from"], StringComparison.Ordinal);
        Assert.False(state.ContainsKey("good_unseen"));
        Assert.True(D(state, "performance.S1") <= 1.0, state["performance.S1"]);
        Assert.True(D(state, "oee.S2") <= 1.0, state["oee.S2"]);
    }

    private static string Wall(int hour, int minute) =>
        new DateTime(2026, 11, 30, hour, minute, 0, DateTimeKind.Local).ToString("yyyy-MM-dd'T'HH:mm", CultureInfo.InvariantCulture);

    [Fact]
    public async Task Regression_the_first_state_after_a_restore_went_out_before_the_stations_were_read()
    {
        var batches = Batches();
        int split = IndexAt(batches, At(10, 30));
        var before = NewSite();
        await Feed(before.Stage, batches.Take(split));
        var last = before.Sink.Events.Last(e => e.Source == "line/r1").Attributes!;
        var after = NewSite();
        Assert.True(after.Stage.RestoreState(before.Stage.SaveState(batches[split - 1][^1].TimestampUnixMs), At(10, 36)).Books);

        // Six minutes later, S1's PLC answers first: no state yet (S2 would read as silent, the output's count stale).
        long t = At(10, 36);
        var s1Only = batches[split + 36].Where(x => x.Series.Value <= 4).Select(x => x with { TimestampUnixMs = t }).ToArray();
        await after.Stage.ProcessAsync(s1Only, CancellationToken.None);
        Assert.Empty(after.Sink.Events);
        // Then S2's lamps and counter: the state goes out, S2 not silent, its count not behind the last one published.
        var s2 = batches[split + 36].Where(x => x.Series.Value > 4).Select(x => x with { TimestampUnixMs = t + 2_000 }).ToArray();
        await after.Stage.ProcessAsync(s2, CancellationToken.None);
        var first = Assert.Single(after.Sink.Events).Attributes!;
        Assert.False(first.ContainsKey("no_data"), first.GetValueOrDefault("no_data"));
        Assert.True(long.Parse(first["good"], CultureInfo.InvariantCulture) >= long.Parse(last["good"], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Mutated_line_state_files_only_throw_the_documented_exception()
    {
        // The bytes behind the checksum (re-computed for each mutant, as a bug in another build would leave them): only
        // InvalidDataException escapes RestoreState (the stage then starts afresh), nothing allocates past a bound.
        var batches = Batches();
        var site = NewSite();
        var split = IndexAt(batches, At(9, 58));
        await Feed(site.Stage, batches.Take(split));
        var saved = site.Stage.SaveState(batches[split - 1][^1].TimestampUnixMs);
        var now = batches[split][0].TimestampUnixMs;
        var target = NewSite().Stage;
        var report = EdgeTwin.Tests.Shared.MutationFuzzer.Run("line state", [saved[..^32]], EdgeTwin.Tests.Shared.MutationFuzzer.Iterations(20_000), 91, body =>
        {
            var restore = target.RestoreState([.. body, .. SHA256.HashData(body)], now);
            return restore.Books;
        }, ex => ex is InvalidDataException, maxAllocatedBytes: 64 * 1024 * 1024, hangLimit: TimeSpan.FromSeconds(30));
        TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
    }

    [Fact]
    public async Task Regression_a_damaged_save_time_overflowed_TimeSpan_past_RestoreState()
    {
        // Found by the line state fuzzer: a real state whose save time reads 35 A9 E3 2B A2 01 84 00 (little-endian, about
        // a million years ahead), behind a valid checksum. The "saved in the future" message threw ArgumentOutOfRangeException
        // from TimeSpan.FromMilliseconds, which the stage's callers do not catch.
        var batches = Batches();
        var before = NewSite();
        var split = IndexAt(batches, At(9, 58));
        await Feed(before.Stage, batches.Take(split));
        var body = before.Stage.SaveState(batches[split - 1][^1].TimestampUnixMs)[..^32];
        byte[] damagedTime = [0x35, 0xA9, 0xE3, 0x2B, 0xA2, 0x01, 0x84, 0x00];
        damagedTime.CopyTo(body, LineTwinStage.StateFileMagic.Length + 4);

        var ex = Assert.Throws<InvalidDataException>(() => NewSite().Stage.RestoreState([.. body, .. SHA256.HashData(body)], batches[split][0].TimestampUnixMs));

        Assert.Contains("not a time", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_saved_fingerprint_naming_a_part_twice_threw_ArgumentException_past_RestoreState()
    {
        // Found by the line state fuzzer (a block of the file repeated): the saved quality fingerprint
        // "model_file=…;inputs=2;window=…" read back as "…;inputs=2;inputs=…". Telling which parts changed built a
        // dictionary of the saved parts and threw on the duplicate; now the station's quality model is not restored
        // and the reason names what differs.
        var batches = Batches();
        var before = NewSite();
        var split = IndexAt(batches, At(9, 58));
        await Feed(before.Stage, batches.Take(split));
        var body = before.Stage.SaveState(batches[split - 1][^1].TimestampUnixMs)[..^32];
        var at = body.AsSpan().IndexOf(";window="u8);
        Assert.True(at > 0, "the quality fingerprint is in the file");
        ";inputs="u8.CopyTo(body.AsSpan(at));

        var restore = NewSite().Stage.RestoreState([.. body, .. SHA256.HashData(body)], batches[split][0].TimestampUnixMs);

        Assert.Contains(restore.NotRestored, n => n.Contains("(quality)", StringComparison.Ordinal) && n.Contains("inputs", StringComparison.Ordinal) && n.Contains("changed in the configuration", StringComparison.Ordinal));
    }
}
