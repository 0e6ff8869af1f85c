using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Line;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class LineTwinStageTests
{
    private static LineTwinConfig Config()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "src", "EdgeTwin.Twin", "Line", "examples", "line1.yaml");
            if (!File.Exists(p)) continue;
            var d = new ConfigDiagnostics();
            var c = LineTwinConfig.Parse(File.ReadAllText(p), p, d);
            Assert.Empty(d.Items);
            return c!;
        }
        throw new FileNotFoundException("line1.yaml");
    }

    private static LineTwinConfig Parse(string yaml)
    {
        var d = new ConfigDiagnostics();
        var config = LineTwinConfig.Parse(yaml, "site.yaml", d);
        Assert.Empty(d.Items);
        return config!;
    }

    /// <summary>
    /// S1 → B1 → S2, each machine with a state word (devices p1, p2; 0 idle, 1 running, 4 faulted), the given shift starts
    /// and planned stops (in <paramref name="timeZone"/>, default the host's), in a stage that publishes and forecasts hourly.
    /// </summary>
    private static (LineTwinStage Stage, RecordingEventSink Sink, SeriesId S1, SeriesId S2) TwoStationLine(string shiftStarts, string plannedStops = "[]", ILogger<LineTwinStage>? logger = null, string? timeZone = null)
    {
        var zone = timeZone is null ? "" : ", time_zone: " + timeZone;
        var config = Parse($$"""
            line:
              id: l1
              shift: { length: 8h, starts: [{{shiftStarts}}]{{zone}} }
              planned_stops: {{plannedStops}}
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1, signals: { state: { device: p1, metric: state, map: { 0: idle, 1: running, 4: faulted } } } }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], signals: { state: { device: p2, metric: state, map: { 0: idle, 1: running, 4: faulted } } } }
            """);
        var registry = new SeriesRegistry();
        var s1 = registry.GetOrAdd(new SeriesDescriptor("p1", "state", "1", MetricKind.State));
        var s2 = registry.GetOrAdd(new SeriesDescriptor("p2", "state", "1", MetricKind.State));
        var sink = new RecordingEventSink();
        return (new LineTwinStage(config, registry, sink, logger ?? NullLogger<LineTwinStage>.Instance, TimeSpan.FromHours(1), TimeSpan.FromHours(1)), sink, s1, s2);
    }

    /// <summary>The wire form of a local wall-clock time on 2026-11-30: ISO 8601 with the local offset, e.g. <c>2026-11-30T14:00:00+01:00</c>.</summary>
    private static string Wall(int hour, int minute)
    {
        var local = new DateTime(2026, 11, 30, hour, minute, 0, DateTimeKind.Local);
        var offset = TimeZoneInfo.Local.GetUtcOffset(local);
        return local.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + (offset < TimeSpan.Zero ? "-" : "+") + offset.ToString("hh\\:mm", CultureInfo.InvariantCulture);
    }

    /// <summary>Unix milliseconds of a local wall-clock time on 2026-11-30.</summary>
    private static long At(int hour, int minute) => new DateTimeOffset(new DateTime(2026, 11, 30, hour, minute, 0, DateTimeKind.Local)).ToUnixTimeMilliseconds();

    [Fact]
    public async Task Samples_become_oee_bottleneck_and_forecast_in_a_twin_state_event()
    {
        var registry = new SeriesRegistry();
        var state = registry.GetOrAdd(new SeriesDescriptor("plc-m1", "machine_state", "1", MetricKind.State));
        var good = registry.GetOrAdd(new SeriesDescriptor("plc-m1", "good_parts", "1", MetricKind.Counter));
        var green = registry.GetOrAdd(new SeriesDescriptor("m3-green", "lamp", "1", MetricKind.State));
        var red = registry.GetOrAdd(new SeriesDescriptor("m3-red", "lamp", "1", MetricKind.State));
        var amber = registry.GetOrAdd(new SeriesDescriptor("m3-amber", "lamp", "1", MetricKind.State));
        var other = registry.GetOrAdd(new SeriesDescriptor("pdu-1", "current", "A"));
        var sink = new RecordingEventSink();
        var stage = new LineTwinStage(Config(), registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromSeconds(60));
        long t0 = At(7, 0);
        Sample[] batch1 =
        [
            new(state, t0, 1), new(good, t0, 100), new(green, t0, 1), new(other, t0, 12.5),
            new(red, t0 + 5, 0), new(amber, t0 + 5, 0), // S3's stack light: decoded once every wired lamp has reported
            new(state, t0 + 30_000, 4),       // faulted for 30 s: a micro-stop
            new(state, t0 + 40_000, 1, SampleQuality.DeviceError), // bad reading: ignored
        ];
        await stage.ProcessAsync(batch1, CancellationToken.None);
        Assert.Empty(sink.Events);
        Assert.Null(stage.ScenarioBasis);
        await stage.ProcessAsync(new Sample[] { new(state, t0 + 60_000, 1), new(good, t0 + 60_000, 101) }, CancellationToken.None);
        var e = Assert.Single(sink.Events);
        Assert.Equal(EdgeEventKind.Prediction, e.Kind);
        Assert.Equal("line/line1", e.Source);
        Assert.Equal("line1", e.Device); // regression: the uplink filed every line of a site under device "line"
        var a = e.Attributes!;
        double D(string k) => double.Parse(a[k], CultureInfo.InvariantCulture);
        Assert.Equal(1.0, D("availability.S1"), 9);  // the 30 s stop is a micro-stop, inside APT
        Assert.Equal(0.5, D("oee.S1"), 9);           // 1 part × 30 s ideal in 60 s
        Assert.Equal("running", a["state.S3"]);
        Assert.Equal("unknown", a["state.S2"]);
        Assert.True(D("forecast.p5") <= D("forecast.end_of_shift") && D("forecast.end_of_shift") <= D("forecast.p95"));
        Assert.True(D("forecast.end_of_shift") > 100);

        // What-ifs asked from another thread start from the published state: an hour into the 06:00 shift.
        var basis = stage.ScenarioBasis;
        Assert.NotNull(basis);
        Assert.Equal("line1", basis.LineId);
        Assert.Equal(3660, basis.Now.ElapsedSeconds, 6);
        Assert.Equal(8 * 3600 - 3660, basis.RemainingSeconds, 6);
        Assert.Same(stage.LearnedLine, basis.Line);
        Assert.Equal(12.5, basis.MarginPerUnit);
        Assert.Equal(4, basis.Now.Snapshot!.StationDown.Count);
        Assert.True(basis.Scenarios(10).MachineDown(basis.Now, "S3", 40 * 60).LostOutput.Mean > 0);
        // The calendar's 10:00 break is in the 06:00 shift's forecast and what-ifs.
        Assert.Equal([new PlannedWindow(-1, 4 * 3600, 4 * 3600 + 900, "break")], basis.PlannedStops);
        Assert.Equal(basis.PlannedStops, basis.Scenarios(10).PlannedStops);
    }

    /// <summary>
    /// Plant manager: S2's profile has no reject counter (it counts every part it makes), and the twin published its
    /// quality as 1.00 — as if it made no bad parts — and the line's (S2 is the output station) too. Its rejects are not
    /// measured: quality and rejects are left out, `quality.no_data` and `quality.no_reject_counter` name it, performance
    /// and OEE (= A × P) stay, the summary says so. S1, with its reject counter, keeps its quality.
    /// </summary>
    [Fact]
    public async Task Regression_a_station_without_a_reject_counter_showed_quality_1()
    {
        var config = Parse("""
            line:
              id: l1
              shift: { length: 8h, starts: ["06:00"] }
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1, signals: { state: { device: p1, metric: state, map: { 1: running } }, good: { device: p1, metric: good }, reject: { device: p1, metric: reject } } }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], signals: { state: { device: p2, metric: state, map: { 1: running } }, good: { device: p2, metric: parts } } }
            """);
        var registry = new SeriesRegistry();
        var s1 = registry.GetOrAdd(new SeriesDescriptor("p1", "state", "1", MetricKind.State));
        var g1 = registry.GetOrAdd(new SeriesDescriptor("p1", "good", "1", MetricKind.Counter));
        var r1 = registry.GetOrAdd(new SeriesDescriptor("p1", "reject", "1", MetricKind.Counter));
        var s2 = registry.GetOrAdd(new SeriesDescriptor("p2", "state", "1", MetricKind.State));
        var p2 = registry.GetOrAdd(new SeriesDescriptor("p2", "parts", "1", MetricKind.Counter));
        var sink = new RecordingEventSink();
        var stage = new LineTwinStage(config, registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromSeconds(60));
        for (int m = 0; m <= 10; m++)
        {
            long t = At(7, m);
            await stage.ProcessAsync(new Sample[] { new(s1, t, 1), new(g1, t, 2 * m), new(r1, t, m / 5), new(s2, t, 1), new(p2, t, 2 * m) }, CancellationToken.None);
        }

        var e = sink.Events.Last();
        var a = e.Attributes!;
        Assert.False(a.ContainsKey("quality.S2"), $"quality.S2 = {a.GetValueOrDefault("quality.S2")} without a reject counter");
        Assert.False(a.ContainsKey("rejects.S2"));
        Assert.False(a.ContainsKey("quality.line"));
        Assert.False(a.ContainsKey("rejects"));
        Assert.Equal("S2", a["quality.no_data"]);
        Assert.Equal("S2", a["quality.no_reject_counter"]);
        double D(string k) => double.Parse(a[k], CultureInfo.InvariantCulture);
        // 20 parts × 30 s in 600 s running: A 1, P 1, OEE = A × P = 1 (no quality term).
        Assert.Equal(1.0, D("performance.S2"), 9);
        Assert.Equal(D("availability.S2") * D("performance.S2"), D("oee.S2"), 9);
        Assert.True(a.ContainsKey("performance.line") && a.ContainsKey("oee.line"));
        Assert.Equal(20.0 / 22, D("quality.S1"), 9);
        Assert.Contains("no reject counter at S2 (quality not measured, OEE = A × P)", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("no reject counts from", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Consumer audit F7: the line twin's predictions had neither <c>model</c> nor a version in 70+ attributes, while the
    /// thermal twin had <c>model</c> only and anomalies used <c>version</c>; every model's events now carry
    /// <c>model</c> and <c>model_version</c>.
    /// </summary>
    [Fact]
    public async Task Regression_line_predictions_carried_no_model_or_model_version()
    {
        var registry = new SeriesRegistry();
        var state = registry.GetOrAdd(new SeriesDescriptor("plc-m1", "machine_state", "1", MetricKind.State));
        var sink = new RecordingEventSink();
        var stage = new LineTwinStage(Config(), registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromSeconds(60));
        long t0 = At(7, 0);
        await stage.ProcessAsync(new Sample[] { new(state, t0, 1) }, CancellationToken.None);
        await stage.ProcessAsync(new Sample[] { new(state, t0 + 60_000, 1) }, CancellationToken.None);

        var a = Assert.Single(sink.Events).Attributes!;
        Assert.Equal("line", a["model"]);
        Assert.Equal(LineTwinStage.ModelVersion, a["model_version"]);
        Assert.Equal("1.0", a["model_version"]);
        Assert.False(a.ContainsKey("version"), "one name for a model's version: model_version");
    }

    [Fact]
    public async Task Regression_a_silent_output_station_made_the_line_oee_0_with_the_whole_window_booked_as_speed_loss()
    {
        // S1 → B1 → S2 with state words and good counters; S2, the output station, never reports (its PLC unreachable).
        // Before: oee.S2 0, availability.S2 0, quality.S2 0, oee.line 0, quality.line 0 and an hour of "speed loss".
        var config = Parse("""
            line:
              id: l1
              shift: { length: 8h, starts: ["06:00"] }
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1, signals: { state: { device: p1, metric: state, map: { 1: running } }, good: { device: p1, metric: good } } }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], signals: { state: { device: p2, metric: state, map: { 1: running } }, good: { device: p2, metric: good } } }
            """);
        var registry = new SeriesRegistry();
        var state = registry.GetOrAdd(new SeriesDescriptor("p1", "state", "1", MetricKind.State));
        var good = registry.GetOrAdd(new SeriesDescriptor("p1", "good", "1", MetricKind.Counter));
        var sink = new RecordingEventSink();
        var logger = new FakeLogger<LineTwinStage>();
        var stage = new LineTwinStage(config, registry, sink, logger, TimeSpan.FromMinutes(60), TimeSpan.FromHours(1));
        long t0 = At(7, 0);
        var samples = Enumerable.Range(0, 61).SelectMany(m => new Sample[] { new(state, t0 + m * 60_000L, 1), new(good, t0 + m * 60_000L, 2 * m) }).ToArray();
        await stage.ProcessAsync(samples, CancellationToken.None);

        var e = Assert.Single(sink.Events);
        var a = e.Attributes!;
        Assert.Equal("1", a["oee.S1"]);
        foreach (var key in new[] { "oee.S2", "availability.S2", "performance.S2", "quality.S2", "oee.line", "performance.line", "quality.line", "loss.speed_s", "loss.rejects_s" })
            Assert.False(a.ContainsKey(key), $"{key} = {a.GetValueOrDefault(key)}: a figure without data was published");
        Assert.Equal("S2", a["no_data"]);
        Assert.Equal("output station S2 not reporting", a["line.no_data"]);
        Assert.Contains("OEE no data (output station S2 not reporting)", e.Message, StringComparison.Ordinal);
        Assert.Contains("no data from S2", e.Message, StringComparison.Ordinal);
        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Equal("line l1: station S2 has not reported since the agent started: its OEE figures are no data (the line's output station: the line's OEE is no data too)", warning.Message);
    }

    [Fact]
    public async Task Regression_the_shift_report_claimed_the_whole_shift_but_covered_only_what_the_gateway_saw()
    {
        // The agent starts at 21:47 in the 14:00–22:00 shift; the report at 22:00 covered 13 minutes and did not say so.
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\", \"22:00\"");
        long t0 = At(21, 47);
        var minutes = Enumerable.Range(0, 15).SelectMany(m => new Sample[] { new(s1, t0 + m * 60_000L, 1), new(s2, t0 + m * 60_000L, 1) }).ToArray();
        await stage.ProcessAsync(minutes, CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift");
        var a = report.Attributes!;
        Assert.Equal((Wall(21, 47), "780", "28800"), (a["books_from"], a["covered_s"], a["shift_s"]));
        Assert.Contains("(books from 21:47, 13 of 480 min of the shift)", report.Message, StringComparison.Ordinal);

        // The new shift's books start at its start: they cover it from 22:00, and the live state says how far.
        var now = stage.State(t0 + 14 * 60_000L, replications: 2);
        Assert.Equal((Wall(22, 0), Wall(22, 0), "60"), (now["shift.start"], now["books_from"], now["covered_s"]));
    }

    /// <summary>
    /// Audit: a machine whose signals went missing for 10 minutes had that time taken out of its planned busy time (right:
    /// it is unknown), but no message said so: availability 1.00 read as "ran all along", and without the planned busy
    /// time nobody could check that the losses add up to the lost time.
    /// </summary>
    [Fact]
    public async Task Regression_unknown_time_of_a_machine_without_readings_was_in_no_twin_message()
    {
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\"");
        long t0 = At(7, 0);
        // Both read every minute 07:00–08:00, but S2 not from 07:11 to 07:19: unknown from its last reading, 07:10–07:20.
        var samples = Enumerable.Range(0, 61).SelectMany(m => m is > 10 and < 20
            ? new Sample[] { new(s1, t0 + m * 60_000L, 1) }
            : new Sample[] { new(s1, t0 + m * 60_000L, 1), new(s2, t0 + m * 60_000L, 1) }).ToArray();
        await stage.ProcessAsync(samples, CancellationToken.None);

        var a = stage.State(At(8, 0), replications: 2);
        Assert.Equal(("600", "3000"), (a["unknown_s.S2"], a["planned_busy_s.S2"]));
        Assert.Equal(("0", "3600"), (a["unknown_s.S1"], a["planned_busy_s.S1"]));
        Assert.True(a.ContainsKey("unknown_s.line") && a.ContainsKey("planned_busy_s.line"));
        var e = sink.Events.Last(e => e.Source == "line/l1");
        Assert.Contains("no readings: S2 10 min", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Audit (DST): on the night the clocks go back (Europe/Berlin, 25 Oct 2026, 03:00 CEST → 02:00 CET) the 22:00–06:00
    /// shift lasts 9 hours. The twin took the shift as 8 real hours from its start: the 04:00 break was booked at 03:00 CET,
    /// the hour 05:00–06:00 as off-shift (planned: S1's 30-min fault at 05:10 was no loss, availability 1), and the report
    /// said shift_s 28800 with 32400 s covered; the live forecast at 01:00 saw 5 h left, not 6.
    /// </summary>
    [Fact]
    public async Task Regression_the_night_shift_when_the_clocks_go_back_lost_its_last_hour_and_moved_its_break()
    {
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\", \"22:00\"", "[{ start: \"04:00\", duration: 15m, reason: break }]", timeZone: "Europe/Berlin");
        long start = new DateTimeOffset(2026, 10, 24, 22, 0, 0, TimeSpan.FromHours(2)).ToUnixTimeMilliseconds();
        long breakAt = new DateTimeOffset(2026, 10, 25, 4, 0, 0, TimeSpan.FromHours(1)).ToUnixTimeMilliseconds();
        long faultAt = new DateTimeOffset(2026, 10, 25, 5, 10, 0, TimeSpan.FromHours(1)).ToUnixTimeMilliseconds();
        // Polled every minute for 9 h + 1 min: S1 idle through the break and faulted 05:10–05:40, running otherwise.
        var samples = Enumerable.Range(0, 9 * 60 + 1).SelectMany(m =>
        {
            long t = start + m * 60_000L;
            double state = t >= breakAt && t < breakAt + 15 * 60_000L ? 0 : t >= faultAt && t < faultAt + 30 * 60_000L ? 4 : 1;
            return new Sample[] { new(s1, t, state), new(s2, t, 1) };
        }).ToArray();

        await stage.ProcessAsync(samples.AsMemory(0, 3 * 60 * 2), CancellationToken.None); // to 01:00 CEST
        var live = stage.State(start + 3 * 3600_000L - 60_000, replications: 2);
        Assert.Equal(6 * 3600 + 60, stage.ScenarioBasis!.RemainingSeconds, 6); // 00:59 CEST to 06:00 CET
        Assert.Equal("32400", live["shift_s"]);
        await stage.ProcessAsync(samples.AsMemory(3 * 60 * 2), CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
        Assert.Equal(("2026-10-24T22:00:00+02:00", "2026-10-25T06:00:00+01:00"), (report["shift.start"], report["shift.end"]));
        Assert.Equal(("32400", "32400"), (report["covered_s"], report["shift_s"]));
        // 9 h less the break planned; the 30-min fault is a breakdown, the idle break is not a loss.
        Assert.Equal((8 * 3600 + 45 * 60 - 1800) / (8 * 3600 + 45 * 60.0), double.Parse(report["availability.S1"], CultureInfo.InvariantCulture), 9);
    }

    /// <summary>
    /// Plant manager, Europe/Berlin: a planned stop next to the hour the clocks skip or repeat. Its end was its wall-clock
    /// end taken to an instant, so the night the clocks go back a 30-min break at 01:45 ran to the second 02:15 (90 min:
    /// a 30-min fault at the first 02:15 was booked as planned), and the night they go forward a break at 02:30 (read as
    /// 03:30 CEST, 4 h 30 min into the shift) ended at 03:00 CEST, before it began, and vanished (S1 idle in it was a loss).
    /// A stop lasts its duration in real time.
    /// </summary>
    [Fact]
    public async Task Regression_a_break_next_to_the_hour_the_clocks_skip_or_repeat_vanished_or_lasted_an_hour_longer()
    {
        // Fall back, 2026-10-25 03:00 CEST → 02:00 CET: the 22:00 shift is 9 h; S1 idle in its break 01:45–02:15 CEST and
        // faulted 02:15–02:45 CEST (the first pass of the hour).
        {
            var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\", \"22:00\"", "[{ start: \"01:45\", duration: 30m, reason: break }]", timeZone: "Europe/Berlin");
            long start = new DateTimeOffset(2026, 10, 24, 22, 0, 0, TimeSpan.FromHours(2)).ToUnixTimeMilliseconds();
            long breakAt = new DateTimeOffset(2026, 10, 25, 1, 45, 0, TimeSpan.FromHours(2)).ToUnixTimeMilliseconds();
            await stage.ProcessAsync(States(s1, s2, start, 9 * 60 + 1, m => m < breakAt ? 1 : m < breakAt + 1_800_000 ? 0 : m < breakAt + 3_600_000 ? 4 : 1), CancellationToken.None);

            var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
            Assert.Equal(("32400", "32400"), (report["covered_s"], report["shift_s"]));
            // 9 h less the 30-min break planned; the fault is a 30-min breakdown (it read 1.00: in a 90-min break).
            Assert.Equal((30600 - 1800) / 30600.0, double.Parse(report["availability.S1"], CultureInfo.InvariantCulture), 9);
        }

        // Spring forward, 2026-03-29 02:00 CET → 03:00 CEST: the 22:00 shift is 7 h; the 02:30 break is 03:30–04:00 CEST,
        // S1 idle in it.
        {
            var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\", \"22:00\"", "[{ start: \"02:30\", duration: 30m, reason: break }]", timeZone: "Europe/Berlin");
            long start = new DateTimeOffset(2026, 3, 28, 22, 0, 0, TimeSpan.FromHours(1)).ToUnixTimeMilliseconds();
            long breakAt = new DateTimeOffset(2026, 3, 29, 3, 30, 0, TimeSpan.FromHours(2)).ToUnixTimeMilliseconds();
            await stage.ProcessAsync(States(s1, s2, start, 7 * 60 + 1, m => m >= breakAt && m < breakAt + 1_800_000 ? 0 : 1), CancellationToken.None);

            var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
            Assert.Equal(("25200", "25200"), (report["covered_s"], report["shift_s"]));
            // The break is planned: nothing lost (it read 0.93, the idle half hour as waiting).
            Assert.Equal(1.0, double.Parse(report["availability.S1"], CultureInfo.InvariantCulture), 9);
        }
    }

    /// <summary>
    /// Site engineer, Europe/Berlin, shifts at 02:30, 10:30 and 18:30: the shift in progress was found by the wall clock,
    /// the shift's start instant by <see cref="LineTwinConfig.Instant"/>. The night the clocks go back the 02:30 shift
    /// began at the first 02:30 (its instant is the second, an hour later): the 18:30 shift was reported an hour early, the
    /// clock's return to 02:00 took the books back to it and the second 02:30 reported it again. The night they go forward
    /// it began at 03:00 CEST, half an hour before its instant (03:30 CEST), and the report showed its end as 02:30+01:00,
    /// a time no clock at the site showed.
    /// </summary>
    [Fact]
    public async Task Regression_a_shift_starting_in_the_hour_the_clocks_skip_or_repeat_began_early_and_was_reported_twice()
    {
        const string starts = "\"02:30\", \"10:30\", \"18:30\"";
        {
            var (stage, sink, s1, s2) = TwoStationLine(starts, timeZone: "Europe/Berlin");
            long start = new DateTimeOffset(2026, 10, 24, 18, 30, 0, TimeSpan.FromHours(2)).ToUnixTimeMilliseconds();
            await stage.ProcessAsync(States(s1, s2, start, 8 * 60 + 11, _ => 1), CancellationToken.None); // to the first 02:40
            var live = stage.State(start + 8 * 3600_000L + 10 * 60_000, replications: 2);
            Assert.Equal(("2026-10-24T18:30:00+02:00", "2026-10-25T02:30:00+01:00"), (live["shift.start"], live["shift.end"]));
            Assert.Equal("29400", live["covered_s"]);
            Assert.DoesNotContain(sink.Events, e => e.Source == "line/l1/shift");
            await stage.ProcessAsync(States(s1, s2, start + (8 * 60 + 11) * 60_000L, 51, _ => 1), CancellationToken.None); // to 02:31 CET

            var ended = Assert.Single(sink.Events, e => e.Source == "line/l1/shift");
            var report = ended.Attributes!;
            Assert.Equal(("2026-10-24T18:30:00+02:00", "2026-10-25T02:30:00+01:00"), (report["shift.start"], report["shift.end"]));
            Assert.Equal(("32400", "32400"), (report["covered_s"], report["shift_s"]));
            // The summary says which 02:30 (the clocks showed it twice that night).
            Assert.StartsWith("shift 18:30–02:30+01:00 ended: ", ended.Message, StringComparison.Ordinal);
        }
        {
            var (stage, sink, s1, s2) = TwoStationLine(starts, timeZone: "Europe/Berlin");
            long start = new DateTimeOffset(2026, 3, 28, 18, 30, 0, TimeSpan.FromHours(1)).ToUnixTimeMilliseconds();
            await stage.ProcessAsync(States(s1, s2, start, 7 * 60 + 41, _ => 1), CancellationToken.None); // to 03:10 CEST
            Assert.DoesNotContain(sink.Events, e => e.Source == "line/l1/shift");
            var live = stage.State(start + 7 * 3600_000L + 40 * 60_000, replications: 2);
            Assert.Equal(("2026-03-28T18:30:00+01:00", "2026-03-29T03:30:00+02:00"), (live["shift.start"], live["shift.end"]));
            await stage.ProcessAsync(States(s1, s2, start + (7 * 60 + 41) * 60_000L, 21, _ => 1), CancellationToken.None); // to 03:31 CEST

            var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
            Assert.Equal(("2026-03-28T18:30:00+01:00", "2026-03-29T03:30:00+02:00"), (report["shift.start"], report["shift.end"]));
            Assert.Equal(("28800", "28800"), (report["covered_s"], report["shift_s"]));
            Assert.Equal(1.0, double.Parse(report["availability.S1"], CultureInfo.InvariantCulture), 9);
        }
    }

    /// <summary>Both machines polled every minute from <paramref name="from"/>; S1 in the state <paramref name="s1State"/> gives for the time, S2 running.</summary>
    private static Sample[] States(SeriesId s1, SeriesId s2, long from, int minutes, Func<long, double> s1State) =>
        [.. Enumerable.Range(0, minutes).SelectMany(m => new Sample[] { new(s1, from + m * 60_000L, s1State(from + m * 60_000L)), new(s2, from + m * 60_000L, 1) })];

    [Fact]
    public async Task Regression_a_gateway_kept_on_utc_ran_the_plants_shifts_on_utc()
    {
        // The plant in Chicago starts at 06:00 local; the gateway's clock and zone are UTC, as many images ship. Before,
        // the calendar was the host's zone only: the 06:00 shift ran 06:00-14:00 UTC (00:00-08:00 in the plant).
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\", \"22:00\"", timeZone: "America/Chicago");
        long start = new DateTimeOffset(2026, 1, 15, 6, 0, 0, TimeSpan.FromHours(-6)).ToUnixTimeMilliseconds();
        await stage.ProcessAsync(Minutes(s1, s2, start, 8 * 60 + 2), CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
        Assert.Equal(("2026-01-15T06:00:00-06:00", "2026-01-15T14:00:00-06:00"), (report["shift.start"], report["shift.end"]));
        Assert.Equal(("28800", "28800"), (report["covered_s"], report["shift_s"]));
    }

    /// <summary>
    /// Both machines polled every minute from <paramref name="from"/> for <paramref name="minutes"/> minutes, stamped by a
    /// wall clock; S1 faulted from <paramref name="faultFrom"/> minutes on, running before, S2 running.
    /// </summary>
    private static Sample[] Minutes(SeriesId s1, SeriesId s2, long from, int minutes, int faultFrom = int.MaxValue) =>
        [.. Enumerable.Range(0, minutes).SelectMany(m => new Sample[] { new(s1, from + m * 60_000L, m >= faultFrom ? 4 : 1), new(s2, from + m * 60_000L, 1) })];

    [Fact]
    public async Task Regression_a_backward_clock_step_froze_the_line_oee_books_for_its_size()
    {
        // A gateway that booted an hour ahead, then synced at 08:29: the readings after the step are stamped from 07:31, an
        // hour before the last ones. Before, the planned-stop calendar and the OEE books dropped every reading older than
        // the last one: S1's fault at 07:35 was not booked and the books stood still for an hour. The times read so far
        // move back with the clock (08:00–08:29 ran 07:02–07:31) and the books go on.
        var logger = new FakeLogger<LineTwinStage>();
        var (stage, _, s1, s2) = TwoStationLine("\"06:00\"", logger: logger);
        await stage.ProcessAsync(Minutes(s1, s2, At(8, 0), 30), CancellationToken.None);
        await stage.ProcessAsync(Minutes(s1, s2, At(7, 31), 25, faultFrom: 4), CancellationToken.None);

        var a = stage.State(At(7, 55), replications: 2);
        Assert.Equal("faulted", a["state.S1"]);
        // Running 07:02–07:35 (33 min), faulted 07:35–07:55 (20 min).
        Assert.Equal(1980.0 / 3180, double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal(1.0, double.Parse(a["availability.S2"], CultureInfo.InvariantCulture), 9);
        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.StartsWith("Line twin l1: the wall clock stepped back 00:58:00", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_across_a_shift_start_failed_every_batch_of_the_line_twin()
    {
        // The clock steps back from 14:29 to 13:31, before the 14:00 shift's start. Before, every batch threw (a report of
        // the 14:00 shift ending at 06:00: Math.Clamp with its minimum above its maximum) until the clock passed 14:00 again.
        // The books go on under the 06:00 shift the clock says now; no report of a shift that did not end.
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\"");
        await stage.ProcessAsync(Minutes(s1, s2, At(14, 5), 25), CancellationToken.None);
        await stage.ProcessAsync(Minutes(s1, s2, At(13, 31), 25, faultFrom: 9), CancellationToken.None);

        Assert.DoesNotContain(sink.Events, e => e.Source == "line/l1/shift");
        var a = stage.State(At(13, 55), replications: 2);
        Assert.Equal((Wall(6, 0), "faulted"), (a["shift.start"], a["state.S1"]));
        // Running 13:07–13:40 (14:05–14:29 moved back 58 min, then 13:31–13:40), faulted 13:40–13:55.
        Assert.Equal(1980.0 / 2880, double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal((Wall(13, 7), "2880"), (a["books_from"], a["covered_s"]));
    }

    private const string BreakAt1320 = "[{ start: \"13:20\", duration: 20m, reason: break }]";

    /// <summary>
    /// Both machines polled every minute from <paramref name="from"/> for <paramref name="minutes"/> minutes; S1 in
    /// <paramref name="s1State"/> (0 idle, 1 running, 4 faulted) for its minute index, S2 running.
    /// </summary>
    private static Sample[] Minutes(SeriesId s1, SeriesId s2, long from, int minutes, Func<int, int> s1State) =>
        [.. Enumerable.Range(0, minutes).SelectMany(m => new Sample[] { new(s1, from + m * 60_000L, s1State(m)), new(s2, from + m * 60_000L, 1) })];

    /// <summary>
    /// Shifts at 06:00 and 14:00, a 13:20–13:40 break (in the 06:00 shift). Both machines run 14:05–14:29 on a clock
    /// 78 min ahead; NTP steps it back and the readings go on from 13:11 (14:05–14:29 move back to 12:47–13:11). S1 stands
    /// idle 13:15–13:47, across the whole break, and runs again from 13:47. Read up to <paramref name="until"/> (minutes
    /// after 13:11, at most 45: 13:55).
    /// </summary>
    private static async Task<(LineTwinStage Stage, RecordingEventSink Sink, SeriesId S1, SeriesId S2)> StepBackAcrossTheShiftStartIntoABreakShift(int until)
    {
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\"", BreakAt1320);
        await stage.ProcessAsync(Minutes(s1, s2, At(14, 5), 25), CancellationToken.None);
        await stage.ProcessAsync(Minutes(s1, s2, At(13, 11), until, m => m is >= 4 and < 36 ? 0 : 1), CancellationToken.None);
        return (stage, sink, s1, s2);
    }

    [Fact]
    public async Task A_backward_clock_step_across_a_shift_start_books_the_planned_stops_of_the_shift_the_clock_says_now()
    {
        // Up to 13:30: S1 idle in the 06:00 shift's break is a planned stop, not waiting.
        var (stage, _, _, _) = await StepBackAcrossTheShiftStartIntoABreakShift(until: 20);
        var inBreak = stage.State(At(13, 30), replications: 2);
        Assert.Equal((Wall(6, 0), "planned_stop", "running"), (inBreak["shift.start"], inBreak["state.S1"], inBreak["state.S2"]));
        // Running 12:47–13:15 (28 min), idle 13:15–13:20 (5 min); 13:20–13:30 is planned: 1680 s of 1980 s.
        Assert.Equal(1680.0 / 1980, double.Parse(inBreak["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal("300", inBreak["loss.waiting_s"]); // S1 is the line's constraint (the first of the equal stages)
        // The forecast and the what-ifs of the rest of the shift have the 06:00 shift's break too: 7 h 20 min into it.
        Assert.Equal([new PlannedWindow(-1, 7 * 3600 + 20 * 60, 7 * 3600 + 40 * 60, "break")], stage.ScenarioBasis!.PlannedStops);

        (stage, _, _, _) = await StepBackAcrossTheShiftStartIntoABreakShift(until: 45);
        var a = stage.State(At(13, 55), replications: 2);
        Assert.Equal((Wall(6, 0), "running"), (a["shift.start"], a["state.S1"]));
        // Outside the break S1's time is booked as before the step: running 12:47–13:15 and 13:47–13:55 (36 min), idle
        // 13:15–13:20 and 13:40–13:47 (12 min, waiting); the break's 20 min are out of the planned busy time.
        Assert.Equal(2160.0 / 2880, double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal(1.0, double.Parse(a["availability.S2"], CultureInfo.InvariantCulture), 9);
        Assert.Equal(("720", "0", "0"), (a["loss.waiting_s"], a["loss.micro_stops_s"], a["loss.breakdowns_s"]));
        Assert.Equal((Wall(12, 47), "4080"), (a["books_from"], a["covered_s"]));
    }

    [Fact]
    public async Task After_a_backward_clock_step_into_the_earlier_shift_the_next_shift_start_reports_it_once_and_books_nothing_twice()
    {
        var (stage, sink, s1, s2) = await StepBackAcrossTheShiftStartIntoABreakShift(until: 45);
        // The clock passes 14:00 again: both machines run 13:56–14:10.
        await stage.ProcessAsync(Minutes(s1, s2, At(13, 56), 15), CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
        Assert.Equal((Wall(6, 0), Wall(14, 0)), (report["shift.start"], report["shift.end"]));
        // The 06:00 shift's books, its break once: running 12:47–13:15 and 13:47–14:00 (41 min), waiting 12 min.
        Assert.Equal(2460.0 / 3180, double.Parse(report["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal(1.0, double.Parse(report["availability.S2"], CultureInfo.InvariantCulture), 9);
        Assert.Equal(("720", "0"), (report["loss.waiting_s"], report["loss.micro_stops_s"]));
        Assert.Equal((Wall(12, 47), "4380"), (report["books_from"], report["covered_s"]));

        // The 14:00 shift's books start at 14:00 with nothing of the 06:00 shift's, and without its break.
        var a = stage.State(At(14, 10), replications: 2);
        Assert.Equal((Wall(14, 0), Wall(14, 0), "600"), (a["shift.start"], a["books_from"], a["covered_s"]));
        Assert.Equal((1.0, 1.0), (double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), double.Parse(a["availability.S2"], CultureInfo.InvariantCulture)));
        Assert.Equal(("0", "0"), (a["loss.waiting_s"], a["loss.micro_stops_s"]));
        Assert.Empty(stage.ScenarioBasis!.PlannedStops);
    }

    [Fact]
    public async Task A_forward_clock_step_across_a_shift_start_books_the_planned_stops_of_the_new_shift()
    {
        // Breaks at 13:20 (06:00 shift) and 14:30 (14:00 shift). Both machines run 13:00–13:10; the clock jumps 70 min
        // ahead and the readings go on from 14:20: S1 idle 14:25–14:55, across the 14:30–14:50 break.
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\"", "[{ start: \"13:20\", duration: 20m, reason: break }, { start: \"14:30\", duration: 20m, reason: break }]");
        await stage.ProcessAsync(Minutes(s1, s2, At(13, 0), 11), CancellationToken.None);
        await stage.ProcessAsync(Minutes(s1, s2, At(14, 20), 21, m => m is >= 5 and < 35 ? 0 : 1), CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
        Assert.Equal((Wall(6, 0), Wall(14, 0), "1"), (report["shift.start"], report["shift.end"], report["availability.S1"]));
        var inBreak = stage.State(At(14, 40), replications: 2);
        Assert.Equal((Wall(14, 0), "planned_stop"), (inBreak["shift.start"], inBreak["state.S1"]));
        Assert.Equal([new PlannedWindow(-1, 1800, 3000, "break")], stage.ScenarioBasis!.PlannedStops);

        await stage.ProcessAsync(Minutes(s1, s2, At(14, 41), 20, m => m < 14 ? 0 : 1), CancellationToken.None);
        var a = stage.State(At(15, 0), replications: 2);
        // 14:00–14:20 was not seen (unknown, out of the planned busy time); running 14:20–14:25 and 14:55–15:00, idle
        // 14:25–14:30 and 14:50–14:55 (waiting), the break planned: 600 s of 1200 s.
        Assert.Equal(600.0 / 1200, double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal(("600", "0"), (a["loss.waiting_s"], a["loss.micro_stops_s"]));
        // Nothing was read around 14:00 (the clock jumped over it): the books start at the first reading after it.
        Assert.Equal((Wall(14, 20), "2400"), (a["books_from"], a["covered_s"]));
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_past_the_earlier_shifts_break_split_a_fault_into_a_micro_stop()
    {
        // Shifts at 06:00 and 14:00, a 13:20–13:40 break. Both machines run 14:05–14:29 on a clock 39 min ahead, S1 faulted
        // from 14:28; the clock steps back to 13:50 (14:05–14:29 move back to 13:26–13:50) and S1 stays faulted until 13:52.
        // Before, the calendar took the 06:00 shift's stops from its start and replayed the 13:20 break, over before the
        // books' last time, as a stop of no length at 13:50: the fault 13:49–13:52 was booked as a 1-min micro-stop (inside
        // the actual production time) and a 2-min breakdown.
        var (stage, _, s1, s2) = TwoStationLine("\"06:00\", \"14:00\"", BreakAt1320);
        await stage.ProcessAsync(Minutes(s1, s2, At(14, 5), 25, m => m >= 23 ? 4 : 1), CancellationToken.None);
        await stage.ProcessAsync(Minutes(s1, s2, At(13, 50), 10, m => m < 2 ? 4 : 1), CancellationToken.None);

        var a = stage.State(At(13, 59), replications: 2);
        Assert.Equal(Wall(6, 0), a["shift.start"]);
        // Running 13:26–13:49 and 13:52–13:59 (30 min), one 3-min breakdown.
        Assert.Equal(("180", "0"), (a["loss.breakdowns_s"], a["loss.micro_stops_s"]));
        Assert.Equal(1800.0 / 1980, double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), 9);
    }

    [Fact]
    public async Task Regression_a_reading_from_just_before_the_shift_start_after_one_past_it_replaced_the_shift_report_with_an_empty_one()
    {
        // Two PLCs polled side by side: p2's reading of 14:00:05 is in the batch before p1's of 13:59:58 (poll jitter, not a
        // clock step). Before, the older reading took the books back to the 06:00 shift and the next one rolled it over
        // again: its report, re-made from books restarted at 14:00, replaced the real one (no availability, nothing covered).
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\", \"14:00\"");
        await stage.ProcessAsync(Minutes(s1, s2, At(13, 0), 60, m => m >= 50 ? 0 : 1), CancellationToken.None);
        long t = At(14, 0);
        await stage.ProcessAsync(new Sample[] { new(s2, t + 5_000, 1), new(s1, t - 2_000, 0), new(s1, t + 60_000, 1), new(s2, t + 60_000, 1) }, CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift").Attributes!;
        // Running 13:00–13:50, idle 13:50–14:00 (the reading of 13:59:58 says idle still).
        Assert.Equal(3000.0 / 3600, double.Parse(report["availability.S1"], CultureInfo.InvariantCulture), 9);
        Assert.Equal((Wall(13, 0), "3600"), (report["books_from"], report["covered_s"]));
        var a = stage.State(t + 60_000, replications: 2);
        Assert.Equal((Wall(14, 0), Wall(14, 0), "60"), (a["shift.start"], a["books_from"], a["covered_s"]));
    }

    [Fact]
    public async Task Regression_a_line_oee_above_1_was_published_right_after_the_shift_started()
    {
        // The output station empties its buffer in the first minute: 6 parts in 60 s against a 30 s ideal cycle.
        var config = Parse("""
            line:
              id: l1
              shift: { length: 8h, starts: ["06:00"] }
              buffers: [{ id: B1, capacity: 10 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1, signals: { state: { device: p1, metric: state, map: { 1: running } } } }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], signals: { state: { device: p2, metric: state, map: { 1: running } }, good: { device: p2, metric: good } } }
            """);
        var registry = new SeriesRegistry();
        var st1 = registry.GetOrAdd(new SeriesDescriptor("p1", "state", "1", MetricKind.State));
        var st2 = registry.GetOrAdd(new SeriesDescriptor("p2", "state", "1", MetricKind.State));
        var good = registry.GetOrAdd(new SeriesDescriptor("p2", "good", "1", MetricKind.Counter));
        var sink = new RecordingEventSink();
        var stage = new LineTwinStage(config, registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(1), TimeSpan.FromHours(1));
        long t0 = At(6, 0);
        await stage.ProcessAsync(new Sample[] { new(st1, t0, 1), new(st2, t0, 1), new(good, t0, 100), new(st1, t0 + 60_000, 1), new(st2, t0 + 60_000, 1), new(good, t0 + 60_000, 106) }, CancellationToken.None);

        var e = Assert.Single(sink.Events);
        Assert.False(e.Attributes!.ContainsKey("oee.line"), e.Message);
        Assert.False(e.Attributes.ContainsKey("performance.line"), e.Message);
        Assert.StartsWith("performance 3.00 > 1", e.Attributes["line.no_data"], StringComparison.Ordinal);
        Assert.Contains("OEE no data (performance 3.00 > 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_planned_stop_of_the_calendar_is_planned_time_in_the_books_whatever_the_machine_reports()
    {
        var (stage, sink, s1, s2) = TwoStationLine("\"06:00\"", "[{ start: \"07:00\", duration: 15m, reason: break }]");

        // Polled every minute: S1 goes idle at 06:55 and stays idle into and past the break until 07:20; S2 runs through
        // it (it works, so its time is busy time).
        Sample[] Minutes(int from, int to) => [.. Enumerable.Range(from, to - from).SelectMany(m => new Sample[]
        {
            new(s1, At(6, 30) + m * 60_000L, m is >= 25 and < 50 ? 0 : 1),
            new(s2, At(6, 30) + m * 60_000L, 1),
        })];
        await stage.ProcessAsync(Minutes(0, 40), CancellationToken.None);
        var inBreak = stage.State(At(7, 10), replications: 2);
        Assert.Equal(("planned_stop", "running"), (inBreak["state.S1"], inBreak["state.S2"]));

        await stage.ProcessAsync(Minutes(40, 61), CancellationToken.None);
        var e = Assert.Single(sink.Events);
        double D(string k) => double.Parse(e.Attributes![k], CultureInfo.InvariantCulture);
        // S1: running 25 + 10 min, idle 5 min before and 5 min after the break, the break itself planned: 2100 s / 2700 s.
        Assert.Equal(2100.0 / 2700, D("availability.S1"), 9);
        Assert.Equal(1.0, D("availability.S2"), 9);
        Assert.Equal("running", e.Attributes!["state.S1"]);
    }

    [Fact]
    public async Task A_measured_buffer_level_starts_the_forecast_and_a_stale_one_is_assumed_half_full()
    {
        const string yaml = """
            line:
              id: l1
              shift: { length: 8h, starts: ["06:00"] }
              buffers:
                - { id: B1, capacity: 40, level: { device: conveyor1, metric: parts } }
                - { id: B2, capacity: 10 }
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1, signals: { state: { device: p1, metric: state, map: { 0: idle, 1: running } } } }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], output: B2 }
                - { id: S3, ideal_cycle_time: 30s, inputs: [B2] }
            """;
        var config = Parse(yaml);
        Assert.Equal(("conveyor1", "parts"), (config.BufferLevels["B1"].Device, config.BufferLevels["B1"].Metric));
        var registry = new SeriesRegistry();
        var state = registry.GetOrAdd(new SeriesDescriptor("p1", "state", "1", MetricKind.State));
        var level = registry.GetOrAdd(new SeriesDescriptor("conveyor1", "parts", "1"));
        var sink = new RecordingEventSink();
        var stage = new LineTwinStage(config, registry, sink, NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(1));
        long t0 = At(7, 0);

        await stage.ProcessAsync(new Sample[] { new(state, t0, 1), new(level, t0 + 1000, 37.2), new(state, t0 + 60_000, 1) }, CancellationToken.None);

        var a = Assert.Single(sink.Events).Attributes!;
        Assert.Equal(("37", "measured", "5", "assumed"), (a["buffer_level.B1"], a["buffer_level_source.B1"], a["buffer_level.B2"], a["buffer_level_source.B2"]));
        Assert.Equal([37, 5], stage.ScenarioBasis!.Now.Snapshot!.BufferLevels);

        // Ten minutes without a level reading: B1 is assumed half full again.
        var later = stage.State(t0 + 11 * 60_000, replications: 2);
        Assert.Equal(("20", "assumed"), (later["buffer_level.B1"], later["buffer_level_source.B1"]));
    }

    /// <summary>
    /// A buffer without a level reading is counted from its neighbours' part counters once a starved or blocked station
    /// anchors it (published <c>counted</c>, the forecast and what-ifs start from it); a counter that goes back is a
    /// reset: the buffer is assumed half full again, and a warning says why and until when.
    /// </summary>
    [Fact]
    public async Task A_buffer_without_a_level_reading_is_counted_from_the_part_counters_and_assumed_again_after_a_counter_reset()
    {
        var config = Parse("""
            line:
              id: l1
              shift: { length: 8h, starts: ["06:00"] }
              buffers: [{ id: B1, capacity: 20 }]
              stations:
                - { id: S1, ideal_cycle_time: 30s, output: B1, signals: { state: { device: p1, metric: state, map: { 1: running, 2: blocked } }, good: { device: p1, metric: good } } }
                - { id: S2, ideal_cycle_time: 30s, inputs: [B1], signals: { state: { device: p2, metric: state, map: { 1: running, 3: starved } }, good: { device: p2, metric: good } } }
            """);
        var registry = new SeriesRegistry();
        var s1 = registry.GetOrAdd(new SeriesDescriptor("p1", "state", "1", MetricKind.State));
        var g1 = registry.GetOrAdd(new SeriesDescriptor("p1", "good", "1", MetricKind.Counter));
        var s2 = registry.GetOrAdd(new SeriesDescriptor("p2", "state", "1", MetricKind.State));
        var g2 = registry.GetOrAdd(new SeriesDescriptor("p2", "good", "1", MetricKind.Counter));
        var sink = new RecordingEventSink();
        var logger = new FakeLogger<LineTwinStage>();
        var stage = new LineTwinStage(config, registry, sink, logger, TimeSpan.FromMinutes(1));
        long t0 = At(7, 0);

        // Not anchored yet: assumed half full, as before.
        await stage.ProcessAsync(new Sample[] { new(s1, t0, 1), new(g1, t0, 100), new(s2, t0, 1), new(g2, t0, 50) }, CancellationToken.None);
        var first = stage.State(t0 + 1000, 2);
        Assert.Equal(("10", "assumed"), (first["buffer_level.B1"], first["buffer_level_source.B1"]));

        // S2 starved: B1 is empty. Then S1 makes 6 parts, S2 takes them and counts 3 (and works on the 4th).
        await stage.ProcessAsync(new Sample[]
        {
            new(s2, t0 + 10_000, 3), new(g1, t0 + 40_000, 106), new(s2, t0 + 40_000, 1), new(g2, t0 + 59_000, 53), new(s1, t0 + 60_000, 1),
        }, CancellationToken.None);
        var a = Assert.Single(sink.Events).Attributes!;
        Assert.Equal(("2", "counted"), (a["buffer_level.B1"], a["buffer_level_source.B1"]));
        Assert.Equal([2], stage.ScenarioBasis!.Now.Snapshot!.BufferLevels);

        // S1's PLC counter restarts from 0: the count is unknown, B1 is assumed half full and the journal says why.
        await stage.ProcessAsync(new Sample[] { new(g1, t0 + 62_000, 1), new(g2, t0 + 62_000, 53) }, CancellationToken.None);
        var reset = stage.State(t0 + 63_000, 2);
        Assert.Equal(("10", "assumed"), (reset["buffer_level.B1"], reset["buffer_level_source.B1"]));
        var warning = Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Equal("line l1: buffer B1's counted level is unknown: S1's good counter went back (a reset); the forecast assumes it half full until S2 starved or S1 blocked", warning.Message);

        // S1 blocked: B1 is full, counted again.
        await stage.ProcessAsync(new Sample[] { new(s1, t0 + 70_000, 2), new(g1, t0 + 70_000, 1), new(g2, t0 + 70_000, 53) }, CancellationToken.None);
        var full = stage.State(t0 + 71_000, 2);
        Assert.Equal(("20", "counted"), (full["buffer_level.B1"], full["buffer_level_source.B1"]));

        // A restart: the books go on, the count does not (parts moved while the agent was down, a counter may have reset
        // with it): assumed until the next anchor.
        var restarted = new LineTwinStage(config, registry, new RecordingEventSink(), NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(1));
        Assert.True(restarted.RestoreState(stage.SaveState(t0 + 71_000), t0 + 100_000).Books);
        await restarted.ProcessAsync(new Sample[] { new(s1, t0 + 100_000, 2), new(g1, t0 + 100_000, 1), new(s2, t0 + 100_000, 1), new(g2, t0 + 100_000, 53) }, CancellationToken.None);
        var afterRestart = restarted.State(t0 + 101_000, 2);
        Assert.Equal(("20", "counted"), (afterRestart["buffer_level.B1"], afterRestart["buffer_level_source.B1"])); // S1 still blocked: anchored again
        var unanchored = new LineTwinStage(config, registry, new RecordingEventSink(), NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(1));
        unanchored.RestoreState(stage.SaveState(t0 + 71_000), t0 + 100_000);
        await unanchored.ProcessAsync(new Sample[] { new(s1, t0 + 100_000, 1), new(g1, t0 + 100_000, 1), new(s2, t0 + 100_000, 1), new(g2, t0 + 100_000, 53) }, CancellationToken.None);
        Assert.Equal("assumed", unanchored.State(t0 + 101_000, 2)["buffer_level_source.B1"]);

        // Counters silent for over 5 minutes: the count is not used (the parts moving now are not seen).
        var stale = stage.State(t0 + 70_000 + 6 * 60_000, 2);
        Assert.Equal("assumed", stale["buffer_level_source.B1"]);
    }

    [Fact]
    public async Task Each_shift_ends_with_its_final_books_and_the_time_between_shifts_is_not_a_loss()
    {
        // Two 8 h shifts a day: nothing is planned from 22:00 to 06:00, when the machine stands idle.
        var (stage, sink, s1, _) = TwoStationLine("\"06:00\", \"14:00\"");
        long t0 = At(20, 0);

        // Polled every minute from 20:00 to 06:05: running until 22:00, idle through the night and until 06:03.
        var minutes = Enumerable.Range(0, 10 * 60 + 6).Select(m => new Sample(s1, t0 + m * 60_000L, m is >= 120 and < 603 ? 0 : 1)).ToArray();
        await stage.ProcessAsync(minutes, CancellationToken.None);

        var report = Assert.Single(sink.Events, e => e.Source == "line/l1/shift");
        Assert.Equal("l1", report.Device);
        var a = report.Attributes!;
        // Regression: the boundaries were local times without an offset ("2026-11-30T14:00:00"): not an instant for the centre.
        Assert.Equal(("shift", Wall(14, 0), Wall(22, 0)), (a["report"], a["shift.start"], a["shift.end"]));
        Assert.Equal(At(22, 0), DateTimeOffset.Parse(a["shift.end"], CultureInfo.InvariantCulture).ToUnixTimeMilliseconds());
        Assert.Matches(@"^2026-11-30T14:00:00[+-]\d\d:\d\d$", a["shift.start"]);
        Assert.Equal(1.0, double.Parse(a["availability.S1"], CultureInfo.InvariantCulture), 9); // 2 h running; the night is planned, not waiting
        Assert.Equal(At(22, 0), report.Time.ToUnixTimeMilliseconds());
        Assert.StartsWith("shift 14:00–22:00 ended: line l1: OEE ", report.Message, StringComparison.Ordinal);

        // The new shift's books start at 06:00 with what the machine says: idle for 3 of its first 5 minutes.
        Assert.Equal(120.0 / 300, double.Parse(stage.State(t0 + 605 * 60_000L, replications: 2)["availability.S1"], CultureInfo.InvariantCulture), 9);
    }

    [Fact]
    public async Task A_fault_across_a_break_and_a_shift_change_is_one_breakdown_to_the_failure_learner()
    {
        var (stage, _, s1, _) = TwoStationLine("\"06:00\", \"14:00\", \"22:00\"", "[{ start: \"13:40\", duration: 10m, reason: break }]");
        long t0 = At(13, 0);

        // Faulted from 13:30 to 14:30, through the 13:40 break and the 14:00 shift change; polled every minute.
        var minutes = Enumerable.Range(0, 91).Select(m => new Sample(s1, t0 + m * 60_000L, m is >= 30 and < 90 ? 4 : 1)).ToArray();
        await stage.ProcessAsync(minutes, CancellationToken.None);

        var figures = stage.Learned(0, t0 + 90 * 60_000L);
        Assert.Equal(1, figures.Breakdowns);
    }
}

