using System.Text.Json;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Outbox.Tests.Summaries;

public sealed class SeriesSummarizerTests
{
    private const long T0 = 1_764_500_040_000; // a multiple of 60 s

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (SeriesRegistry Registry, SeriesId Inlet, SeriesId Outlet) Registry()
    {
        var registry = new SeriesRegistry();
        return (registry, registry.GetOrAdd(UplinkBodiesTests.Inlet), registry.GetOrAdd(UplinkBodiesTests.Outlet));
    }

    private static JsonElement Json(OutboxRecord r) => JsonDocument.Parse(r.Payload).RootElement;

    [Fact]
    public void A_window_closes_when_a_sample_of_the_next_window_arrives()
    {
        var (registry, inlet, _) = Registry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw);
        var output = new List<OutboxRecord>();

        summarizer.Add([new(inlet, T0 + 1_000, 20), new(inlet, T0 + 30_000, 22), new(inlet, T0 + 59_999, 24)], output);
        Assert.Empty(output);
        summarizer.Add([new(inlet, T0 + 60_000, 30)], output);

        var summary = Json(Assert.Single(output));
        Assert.Equal(T0, summary.GetProperty("start_ms").GetInt64());
        Assert.Equal(T0 + 60_000, summary.GetProperty("end_ms").GetInt64());
        Assert.Equal(3, summary.GetProperty("count").GetInt64());
        Assert.Equal(22, summary.GetProperty("mean").GetDouble());
        Assert.Equal(24, summary.GetProperty("last").GetDouble());
        Assert.Equal(Math.Sqrt(8.0 / 3), summary.GetProperty("stddev").GetDouble(), 12);
        Assert.Equal(UplinkBodiesTests.Inlet.Key, summary.GetProperty("series").GetString());
    }

    [Fact]
    public void Regression_a_backward_clock_step_merged_an_hour_of_samples_into_one_window()
    {
        var (registry, inlet, _) = Registry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { Window = TimeSpan.FromSeconds(10), LateGrace = TimeSpan.FromSeconds(2) });
        var output = new List<OutboxRecord>();
        const long Hour = 3_600_000;
        summarizer.Add([new(inlet, T0 + 1_000, 1), new(inlet, T0 + 5_000, 3)], output);

        // NTP steps the clock back an hour: the next samples are stamped an hour earlier.
        summarizer.Add([new(inlet, T0 + 11_000 - Hour, 10)], output);
        summarizer.Add([new(inlet, T0 + 15_000 - Hour, 20)], output);
        summarizer.Flush(T0 + 22_000 - Hour, output);

        Assert.Equal(2, output.Count);
        var before = Json(output[0]);
        Assert.Equal(T0, before.GetProperty("start_ms").GetInt64());
        Assert.Equal(2, before.GetProperty("count").GetInt64());
        var after = Json(output[1]);
        Assert.Equal(T0 + 10_000 - Hour, after.GetProperty("start_ms").GetInt64());
        Assert.Equal(2, after.GetProperty("count").GetInt64());
        Assert.Equal(15, after.GetProperty("mean").GetDouble());
    }

    [Fact]
    public void Flush_closes_windows_only_after_the_late_grace_and_skips_empty_series()
    {
        var (registry, inlet, outlet) = Registry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { Window = TimeSpan.FromSeconds(10), LateGrace = TimeSpan.FromSeconds(2) });
        var output = new List<OutboxRecord>();
        summarizer.Add([new(inlet, T0 + 1_000, 1), new(outlet, T0 + 2_000, 5, SampleQuality.DeviceError)], output);

        summarizer.Flush(T0 + 11_999, output);
        Assert.Empty(output);
        summarizer.Flush(T0 + 12_000, output);
        Assert.Equal(2, output.Count);
        var bad = Json(output.Single(r => r.DeviceId == "pdu-a01-a"));
        Assert.Equal(0, bad.GetProperty("count").GetInt64());
        Assert.Equal(1, bad.GetProperty("bad").GetInt64());

        summarizer.Flush(T0 + 100_000, output);
        Assert.Equal(2, output.Count); // nothing open any more
    }

    [Fact]
    public void Raw_series_report_by_exception_with_deadband_quality_change_and_heartbeat()
    {
        var (registry, inlet, outlet) = Registry();
        var summarizer = new SeriesSummarizer(
            registry,
            UplinkBodiesTests.Gw,
            new SummaryOptions { RawHeartbeat = TimeSpan.FromSeconds(30) },
            d => d.Key == UplinkBodiesTests.Inlet.Key ? new RawPolicy(0.5) : null);
        var output = new List<OutboxRecord>();
        summarizer.Add(
            [
                new(inlet, T0, 20.0), // first: reported
                new(inlet, T0 + 1_000, 20.4), // inside the deadband
                new(inlet, T0 + 2_000, 20.6), // 0.6 from 20.0: reported
                new(inlet, T0 + 3_000, 20.6, SampleQuality.Stale), // quality changed: reported
                new(inlet, T0 + 4_000, 20.7, SampleQuality.Stale), // inside
                new(inlet, T0 + 33_000, 20.7, SampleQuality.Stale), // heartbeat (30 s since last report)
                new(outlet, T0, 1), // not raw: summarised
            ],
            output);
        Assert.Empty(output);
        Assert.Equal(2, summarizer.SuppressedByDeadband);

        summarizer.Flush(T0 + 34_000, output);
        var raw = Json(Assert.Single(output));
        Assert.Equal("raw", raw.GetProperty("type").GetString());
        Assert.Equal(
            [(T0, 20.0, 0), (T0 + 2_000, 20.6, 0), (T0 + 3_000, 20.6, 1), (T0 + 33_000, 20.7, 1)],
            raw.GetProperty("points").EnumerateArray().Select(p => (p[0].GetInt64(), p[1].GetDouble(), p[2].GetInt32())));
    }

    [Fact]
    public void A_retired_series_sends_its_open_window_and_pending_raw_points_then_holds_nothing()
    {
        var (registry, inlet, outlet) = Registry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, null, d => d.Key == UplinkBodiesTests.Outlet.Key ? new RawPolicy(0) : null);
        var output = new List<OutboxRecord>();
        summarizer.Add([new(inlet, T0 + 1_000, 20), new(inlet, T0 + 2_000, 22), new(outlet, T0 + 1_000, 5), new(outlet, T0 + 2_000, 6)], output);
        Assert.Empty(output);

        summarizer.Retire(inlet, output);
        summarizer.Retire(outlet, output);

        Assert.Equal(2, output.Count);
        var summary = Json(output[0]);
        Assert.Equal(("summary", 2L, 21.0, false), (summary.GetProperty("type").GetString(), summary.GetProperty("count").GetInt64(), summary.GetProperty("mean").GetDouble(), summary.TryGetProperty("partial", out var p) && p.GetBoolean()));
        Assert.Equal(2, Json(output[1]).GetProperty("points").GetArrayLength());
        var open = new List<OpenWindow>();
        summarizer.CopyOpenWindows(open);
        Assert.Empty(open);
        summarizer.FlushAll(T0 + 120_000, output);
        Assert.Equal(2, output.Count); // nothing left to send
        summarizer.Retire(inlet, output);
        Assert.Equal(2, output.Count);
    }

    [Fact]
    public void A_full_raw_buffer_is_emitted_without_waiting_for_the_flush()
    {
        var (registry, inlet, _) = Registry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { MaxRawPointsPerRecord = 4 }, _ => new RawPolicy(0));
        var output = new List<OutboxRecord>();
        summarizer.Add(Enumerable.Range(0, 9).Select(i => new Sample(inlet, T0 + i, i)).ToArray(), output);
        Assert.Equal(2, output.Count);
        Assert.All(output, r => Assert.Equal(4, Json(r).GetProperty("points").GetArrayLength()));
        summarizer.FlushAll(T0 + 10, output);
        Assert.Equal(1, Json(output[^1]).GetProperty("points").GetArrayLength());
    }

    /// <summary>
    /// Regression: a clean stop (SIGTERM) flushed the open window half-full and, after the restart, the same window
    /// was summarised again: two summaries for one (series, window) with different seq and nothing to tell the centre
    /// they were halves (audit: crac2/fan_capacity, seq 8199 count 1 mean 71, then seq 9079 count 2 mean 72).
    /// Both halves are now marked partial and merge, count-weighted, into the statistics of the whole window.
    /// </summary>
    [Fact]
    public void Regression_a_window_split_by_a_clean_restart_gives_two_partial_summaries_that_merge_exactly()
    {
        var (registry, inlet, _) = Registry();
        double[] before = [71, 70.5], after = [73, 74, 72.25];
        var output = new List<OutboxRecord>();

        var first = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { StartedAtMs = T0 - 3_600_000 });
        first.Add([new(inlet, T0 + 1_000, before[0]), new(inlet, T0 + 11_000, before[1])], output);
        first.FlushAll(T0 + 20_000, output); // SIGTERM at T0 + 20 s
        var stopped = Json(Assert.Single(output));
        Assert.True(stopped.GetProperty("partial").GetBoolean());

        output.Clear();
        var restarted = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { StartedAtMs = T0 + 25_000 });
        restarted.Add([new(inlet, T0 + 30_000, after[0]), new(inlet, T0 + 40_000, after[1]), new(inlet, T0 + 50_000, after[2]), new(inlet, T0 + 61_000, 80)], output);
        var resumed = Json(Assert.Single(output));
        Assert.True(resumed.GetProperty("partial").GetBoolean());
        Assert.Equal(stopped.GetProperty("start_ms").GetInt64(), resumed.GetProperty("start_ms").GetInt64());

        // Each part says which stretch it saw, so the centre can tell two parts from one part sent twice.
        Assert.Equal((T0 + 1_000, T0 + 11_000), (stopped.GetProperty("first_ms").GetInt64(), stopped.GetProperty("last_ms").GetInt64()));
        Assert.Equal((T0 + 30_000, T0 + 50_000), (resumed.GetProperty("first_ms").GetInt64(), resumed.GetProperty("last_ms").GetInt64()));

        // The merge the Outbox README documents, against the statistics of all five values.
        var all = before.Concat(after).ToArray();
        var (n1, m1, s1) = (stopped.GetProperty("count").GetInt64(), stopped.GetProperty("mean").GetDouble(), stopped.GetProperty("stddev").GetDouble());
        var (n2, m2, s2) = (resumed.GetProperty("count").GetInt64(), resumed.GetProperty("mean").GetDouble(), resumed.GetProperty("stddev").GetDouble());
        var n = n1 + n2;
        var mean = ((n1 * m1) + (n2 * m2)) / n;
        var m2sum = (n1 * s1 * s1) + (n2 * s2 * s2) + ((double)n1 * n2 / n * (m1 - m2) * (m1 - m2));
        Assert.Equal(all.Length, n);
        Assert.Equal(all.Average(), mean, 12);
        Assert.Equal(Math.Sqrt(all.Sum(v => (v - all.Average()) * (v - all.Average())) / all.Length), Math.Sqrt(m2sum / n), 12);
        Assert.Equal(all.Min(), Math.Min(stopped.GetProperty("min").GetDouble(), resumed.GetProperty("min").GetDouble()));
        Assert.Equal(all.Max(), Math.Max(stopped.GetProperty("max").GetDouble(), resumed.GetProperty("max").GetDouble()));

        // The next window was seen whole: not partial, no member at all.
        output.Clear();
        restarted.Flush(T0 + 200_000, output);
        Assert.False(Json(Assert.Single(output)).TryGetProperty("partial", out _));
    }

    [Fact]
    public void A_window_that_ended_before_the_stop_is_complete_and_not_marked_partial()
    {
        var (registry, inlet, _) = Registry();
        var output = new List<OutboxRecord>();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { StartedAtMs = T0 });
        summarizer.Add([new(inlet, T0, 20), new(inlet, T0 + 59_000, 21)], output);
        summarizer.FlushAll(T0 + 60_001, output); // stopped within the late grace, after the window's end
        Assert.False(Json(Assert.Single(output)).TryGetProperty("partial", out _));
    }

    [Fact]
    public void Adding_samples_allocates_nothing_per_sample()
    {
        var (registry, inlet, outlet) = Registry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, rawPolicy: d => d.Metric == "outlet_current" ? new RawPolicy(1000) : null);
        var output = new List<OutboxRecord>(16);
        var samples = new Sample[10_000];
        for (var i = 0; i < samples.Length; i++)
        {
            samples[i] = new Sample(i % 2 == 0 ? inlet : outlet, T0 + 1 + (i % 50_000), i % 97);
        }

        summarizer.Add(samples, output); // warm-up: state arrays, first raw point buffer
        var before = GC.GetAllocatedBytesForCurrentThread();
        summarizer.Add(samples, output);
        summarizer.Add(samples, output);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Empty(output);
        Assert.Equal(30_000, summarizer.SamplesSeen);
    }

    [Fact]
    public void Window_statistics_match_a_direct_computation()
    {
        Prop.ForAll(
            Gen.Choose(-100_000, 100_000).Select(i => i / 7.0).ListOf().Where(l => l.Count > 0).ToArbitrary(),
            (List<double> values) =>
            {
                var acc = default(WindowAccumulator);
                acc.Reset(0, 60_000);
                for (var i = 0; i < values.Count; i++)
                {
                    acc.Add(values[i], i, good: true);
                }

                var mean = values.Average();
                var stddev = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count);
                return acc.Count == values.Count
                    && acc.Min == values.Min()
                    && acc.Max == values.Max()
                    && acc.Last == values[^1]
                    && Math.Abs(acc.Mean - mean) <= 1e-9 * Math.Max(1, Math.Abs(mean))
                    && Math.Abs(acc.StdDev - stddev) <= 1e-6 * Math.Max(1, stddev);
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public async Task Events_and_predictions_go_straight_through_while_samples_wait_for_their_window()
    {
        var (registry, inlet, _) = Registry();
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0 + 10_000));
        await using var outbox = new InMemoryOutbox();
        outbox.RegisterUplink("u");
        using var feeder = new OutboxFeeder(outbox, new SeriesSummarizer(registry, UplinkBodiesTests.Gw), registry, UplinkBodiesTests.Gw, time);

        await feeder.WriteAsync(new[] { new Sample(inlet, T0 + 1_000, 21) }, Ct);
        await feeder.PublishAsync(new EdgeEvent(EdgeEventKind.Anomaly, UplinkBodiesTests.Inlet.Key, time.GetUtcNow(), EventSeverity.Warning, "spike"), Ct);
        await feeder.PublishAsync(new EdgeEvent(EdgeEventKind.Prediction, "room1/cooling_failure", time.GetUtcNow(), EventSeverity.Info, "forecast"), Ct);
        var now = await outbox.ReadAsync("u", 0, 10, Ct);
        Assert.Equal([OutboxKind.Event, OutboxKind.Event], now.Select(e => e.Record.Kind));
        Assert.Equal("prediction", Json(now[1].Record).GetProperty("event").GetString());
        Assert.Equal("Cel", Json(now[0].Record).GetProperty("unit").GetString()); // the event's source named a known series

        time.Advance(TimeSpan.FromSeconds(60));
        await feeder.FlushAsync(all: false, Ct);
        var later = await outbox.ReadAsync("u", 2, 10, Ct);
        Assert.Equal(OutboxKind.Summary, Assert.Single(later).Record.Kind);
    }

    [Fact]
    public async Task A_failed_append_keeps_the_records_for_the_next_one()
    {
        var (registry, inlet, _) = Registry();
        var outbox = new FlakyOutbox();
        using var feeder = new OutboxFeeder(outbox, new SeriesSummarizer(registry, UplinkBodiesTests.Gw), registry, UplinkBodiesTests.Gw);
        outbox.Fail = true;
        await feeder.PublishAsync(new EdgeEvent(EdgeEventKind.DeviceDown, "pdu-a01-a", DateTimeOffset.UnixEpoch, EventSeverity.Critical, "down"), Ct);
        await feeder.WriteAsync(new[] { new Sample(inlet, T0, 1), new Sample(inlet, T0 + 60_000, 2) }, Ct);
        Assert.Equal(2, feeder.Pending);

        outbox.Fail = false;
        await feeder.PublishAsync(new EdgeEvent(EdgeEventKind.DeviceUp, "pdu-a01-a", DateTimeOffset.UnixEpoch, EventSeverity.Info, "up"), Ct);
        Assert.Equal(0, feeder.Pending);
        outbox.Inner.RegisterUplink("u");
        Assert.Equal([OutboxKind.Event, OutboxKind.Summary, OutboxKind.Event], (await outbox.Inner.ReadAsync("u", 0, 10, Ct)).Select(e => e.Record.Kind));
    }

    private sealed class FlakyOutbox : IOutbox
    {
        public InMemoryOutbox Inner { get; } = new();

        public bool Fail { get; set; }

        public ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, CancellationToken cancellationToken) =>
            Fail ? throw new OutboxStorageException("Outbox /test/outbox.db: No space left on device") : Inner.AppendAsync(records, cancellationToken);

        public void RegisterUplink(string uplink) => Inner.RegisterUplink(uplink);

        public ValueTask<IReadOnlyList<OutboxEntry>> ReadAsync(string uplink, long afterSequence, int max, CancellationToken cancellationToken) =>
            Inner.ReadAsync(uplink, afterSequence, max, cancellationToken);

        public long GetAcknowledged(string uplink) => Inner.GetAcknowledged(uplink);

        public ValueTask AcknowledgeAsync(string uplink, long sequence, CancellationToken cancellationToken) => Inner.AcknowledgeAsync(uplink, sequence, cancellationToken);

        public ValueTask WaitForEntriesAsync(long afterSequence, CancellationToken cancellationToken) => Inner.WaitForEntriesAsync(afterSequence, cancellationToken);

        public ValueTask DisposeAsync() => Inner.DisposeAsync();
    }
}
