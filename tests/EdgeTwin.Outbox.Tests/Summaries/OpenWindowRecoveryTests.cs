using System.Text.Json;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox.Summaries;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using EdgeTwin.Tests.Shared;

namespace EdgeTwin.Outbox.Tests.Summaries;

/// <summary>
/// Open windows over a crash, on the real LiteDB outbox: a "crash" closes the store without the feeder's final flush,
/// which is what the files look like after a SIGKILL or a power cut (every commit is fsynced, nothing else is written).
/// </summary>
public sealed class OpenWindowRecoveryTests : IDisposable
{
    private const long T0 = 1_764_500_040_000; // a window boundary (60 s windows)
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _dir.Dispose();

    private sealed class Run : IAsyncDisposable
    {
        public required LiteDbOutbox Outbox { get; init; }

        public required OutboxFeeder Feeder { get; init; }

        public required SeriesRegistry Registry { get; init; }

        public required FakeLogger<OutboxFeeder> Log { get; init; }

        public SeriesId Id(string device) => Registry.GetOrAdd(new SeriesDescriptor(device, "inlet_temperature", "Cel", Role: "rack.inlet_temperature"));

        public ValueTask WriteAsync(string device, long timeMs, double value) =>
            Feeder.WriteAsync(new[] { new Sample(Id(device), timeMs, value) }, Ct);

        /// <summary>What a SIGKILL leaves: the committed files, no final flush.</summary>
        public async ValueTask DisposeAsync()
        {
            Feeder.Dispose();
            await Outbox.DisposeAsync();
        }
    }

    private async Task<Run> StartAsync(TimeSpan? checkpointInterval, bool recover = true)
    {
        var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = _dir.File("outbox.db"), Identity = UplinkBodiesTests.Gw }, time: _time, cancellationToken: Ct);
        outbox.RegisterUplink("u");
        var registry = new SeriesRegistry();
        var log = new FakeLogger<OutboxFeeder>();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { StartedAtMs = _time.GetUtcNow().ToUnixTimeMilliseconds() });
        var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, _time, log, checkpointInterval: checkpointInterval);
        if (recover)
        {
            await feeder.RecoverAsync(Ct);
        }

        return new Run { Outbox = outbox, Feeder = feeder, Registry = registry, Log = log };
    }

    private void At(long ms) => _time.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds(ms));

    private static async Task<List<JsonElement>> BodiesAsync(LiteDbOutbox outbox)
    {
        var entries = await outbox.ReadAsync("u", 0, 10_000, Ct);
        return entries.Select(e => JsonDocument.Parse(e.Record.Payload).RootElement).ToList();
    }

    private static IEnumerable<JsonElement> Summaries(IEnumerable<JsonElement> bodies, string device) =>
        bodies.Where(b => b.GetProperty("type").GetString() == "summary" && b.GetProperty("device").GetString() == device);

    private static IEnumerable<JsonElement> Gaps(IEnumerable<JsonElement> bodies) =>
        bodies.Where(b => b.GetProperty("type").GetString() == "event" && b.GetProperty("event").GetString() == "data_gap");

    [Fact]
    public async Task Regression_a_crash_lost_every_open_window_and_no_event_said_so()
    {
        await using (var first = await StartAsync(Interval))
        {
            for (var s = 1; s <= 20; s++)
            {
                At(T0 + (s * 1000));
                await first.WriteAsync("rack-a01", T0 + (s * 1000), s);
                await first.WriteAsync("rack-a02", T0 + (s * 1000), 100 + s);
            }

            await first.Feeder.FlushAsync(all: false, Ct); // the checkpoint: 20 samples of each series
            for (var s = 21; s <= 30; s++)
            {
                At(T0 + (s * 1000));
                await first.WriteAsync("rack-a01", T0 + (s * 1000), s); // after the checkpoint: lost with the crash
            }
        }

        At(T0 + 95_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);

        var a01 = Assert.Single(Summaries(bodies, "rack-a01"));
        Assert.True(a01.GetProperty("partial").GetBoolean());
        Assert.Equal(T0, a01.GetProperty("start_ms").GetInt64());
        Assert.Equal(20, a01.GetProperty("count").GetInt64());
        Assert.Equal(10.5, a01.GetProperty("mean").GetDouble());
        Assert.Equal(20, a01.GetProperty("last").GetDouble());
        Assert.Equal((T0 + 1_000, T0 + 20_000), (a01.GetProperty("first_ms").GetInt64(), a01.GetProperty("last_ms").GetInt64())); // the stretch this part saw
        Assert.Equal("rack.inlet_temperature", a01.GetProperty("role").GetString()); // the descriptor came from the stored catalog
        var a02 = Assert.Single(Summaries(bodies, "rack-a02"));
        Assert.Equal(20, a02.GetProperty("count").GetInt64());
        Assert.Equal(120, a02.GetProperty("max").GetDouble());

        var gap = Assert.Single(Gaps(bodies));
        Assert.Equal((T0 + 20_000, T0 + 95_000), (gap.GetProperty("start_ms").GetInt64(), gap.GetProperty("end_ms").GetInt64())); // the span itself
        var attributes = gap.GetProperty("attributes");
        Assert.Equal("unclean_stop", attributes.GetProperty("reason").GetString());
        Assert.Equal((T0 + 20_000).ToString(System.Globalization.CultureInfo.InvariantCulture), attributes.GetProperty("from_ms").GetString());
        Assert.Equal((T0 + 95_000).ToString(System.Globalization.CultureInfo.InvariantCulture), attributes.GetProperty("to_ms").GetString());
        Assert.Equal("2", attributes.GetProperty("windows_recovered").GetString());
        Assert.Contains("last checkpoint at 2025-11-30T10:54:20.000Z", gap.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains(second.Log.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning && r.Message.Contains("did not stop cleanly", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_stopped_the_open_window_checkpoints()
    {
        // The checkpoint interval was a wall-clock difference: after NTP stepped the clock back an hour, no checkpoint
        // was taken for an hour, and a crash then lost everything summarised since the step.
        var clock = new SteppableClock(_time);
        var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = _dir.File("outbox.db"), Identity = UplinkBodiesTests.Gw }, time: clock, cancellationToken: Ct);
        outbox.RegisterUplink("u");
        var registry = new SeriesRegistry();
        var summarizer = new SeriesSummarizer(registry, UplinkBodiesTests.Gw, new SummaryOptions { StartedAtMs = clock.GetUtcNow().ToUnixTimeMilliseconds() });
        var feeder = new OutboxFeeder(outbox, summarizer, registry, UplinkBodiesTests.Gw, clock, new FakeLogger<OutboxFeeder>(), checkpointInterval: Interval);
        await feeder.RecoverAsync(Ct);
        await using (var first = new Run { Outbox = outbox, Feeder = feeder, Registry = registry, Log = new FakeLogger<OutboxFeeder>() })
        {
            At(T0 + 1_000);
            await first.WriteAsync("rack-a01", clock.GetUtcNow().ToUnixTimeMilliseconds(), 1);
            await first.Feeder.FlushAsync(all: false, Ct);
            clock.Step(TimeSpan.FromHours(-1));
            for (var s = 2; s <= 20; s++)
            {
                At(T0 + (s * 1000));
                await first.WriteAsync("rack-a01", clock.GetUtcNow().ToUnixTimeMilliseconds(), s);
            }

            await first.Feeder.FlushAsync(all: false, Ct); // 19 s after the last checkpoint on the monotonic clock: one is due
        }

        At(T0 + 95_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);
        var recovered = Assert.Single(Summaries(bodies, "rack-a01"), b => b.TryGetProperty("partial", out var p) && p.GetBoolean() && b.GetProperty("count").GetInt64() == 19);
        Assert.Equal(T0 - 3_600_000, recovered.GetProperty("start_ms").GetInt64());
    }

    [Fact]
    public async Task A_window_closed_after_the_checkpoint_is_not_sent_again()
    {
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 20_000);
            await first.WriteAsync("rack-a01", T0 + 10_000, 1);
            await first.WriteAsync("rack-a02", T0 + 10_000, 2);
            await first.Feeder.FlushAsync(all: false, Ct); // checkpoint: both windows open

            At(T0 + 61_000);
            await first.WriteAsync("rack-a01", T0 + 61_000, 3); // closes rack-a01's first window
            await first.Feeder.DrainAsync(Ct); // its summary is durable, and with it the record that it closed
        }

        At(T0 + 70_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);

        var a01 = Assert.Single(Summaries(bodies, "rack-a01")); // the closed one, once; the new window's 1 s was lost
        Assert.False(a01.TryGetProperty("partial", out _));
        Assert.Equal(1, a01.GetProperty("count").GetInt64());
        var a02 = Assert.Single(Summaries(bodies, "rack-a02"));
        Assert.True(a02.GetProperty("partial").GetBoolean());
        Assert.Equal("1", Assert.Single(Gaps(bodies)).GetProperty("attributes").GetProperty("windows_recovered").GetString());
    }

    [Fact]
    public async Task Regression_data_gap_after_sigkill_named_windows_that_were_delivered()
    {
        // The audit's case: every window open at the checkpoint closed (and went out complete) before the SIGKILL; the
        // gap said "no samples were summarised" from the checkpoint on, so a consumer threw those windows away.
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 20_000);
            await first.WriteAsync("rack-a01", T0 + 10_000, 1);
            await first.WriteAsync("rack-a02", T0 + 10_000, 2);
            await first.Feeder.FlushAsync(all: false, Ct); // checkpoint at T0+20 s: both windows [T0, T0+60 s) open

            At(T0 + 50_000);
            await first.WriteAsync("rack-a01", T0 + 50_000, 3); // after the checkpoint, in the same windows
            await first.WriteAsync("rack-a02", T0 + 50_000, 4);
            At(T0 + 66_000);
            await first.WriteAsync("rack-a01", T0 + 66_000, 5); // the next window opens; the first ones close
            await first.WriteAsync("rack-a02", T0 + 66_000, 6);
            await first.Feeder.DrainAsync(Ct); // both closed windows durable, with the record that they closed; no new checkpoint
        }

        At(T0 + 70_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);

        foreach (var device in new[] { "rack-a01", "rack-a02" })
        {
            var complete = Summaries(bodies, device).Single(b => b.GetProperty("start_ms").GetInt64() == T0);
            Assert.False(complete.TryGetProperty("partial", out _));
            Assert.Equal(2, complete.GetProperty("count").GetInt64()); // the sample after the checkpoint is in it
        }

        var gap = Assert.Single(Gaps(bodies));
        var attributes = gap.GetProperty("attributes");
        var message = gap.GetProperty("message").GetString()!;
        Assert.DoesNotContain("no samples were summarised", message, StringComparison.Ordinal);
        Assert.Contains("may be missing", message, StringComparison.Ordinal);
        Assert.Contains("A summary received for this span is good", message, StringComparison.Ordinal);
        var checkpointMs = long.Parse(attributes.GetProperty("from_ms").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        var closed = int.Parse(attributes.GetProperty("windows_closed_after_checkpoint").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(2, closed);
        Assert.Equal("0", attributes.GetProperty("windows_recovered").GetString());
        Assert.Equal((T0 + 20_000).ToString(System.Globalization.CultureInfo.InvariantCulture), attributes.GetProperty("from_ms").GetString());
        Assert.Equal((T0 + 60_000).ToString(System.Globalization.CultureInfo.InvariantCulture), attributes.GetProperty("closed_windows_end_ms").GetString());
        Assert.Contains($"{closed} windows open at the checkpoint closed before the stop and went out complete (ending by 2025-11-30T10:55:00.000Z)", message, StringComparison.Ordinal);
        Assert.True(checkpointMs < T0 + 60_000);
        Assert.Contains(second.Log.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning && r.Message.Contains("went out complete", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_clean_stop_recovers_nothing_and_reports_no_gap()
    {
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 20_000);
            await first.WriteAsync("rack-a01", T0 + 10_000, 1);
            await first.Feeder.FlushAsync(all: false, Ct);
            await first.Feeder.FlushAsync(all: true, Ct); // stop: the window goes out partial, the checkpoint says clean
        }

        At(T0 + 30_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);
        Assert.Single(Summaries(bodies, "rack-a01"));
        Assert.Empty(Gaps(bodies));
        Assert.DoesNotContain(second.Log.Collector.GetSnapshot(), r => r.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task A_crash_before_the_first_checkpoint_is_reported_from_the_start()
    {
        At(T0 + 5_000);
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 8_000);
            await first.WriteAsync("rack-a01", T0 + 6_000, 1);
        }

        At(T0 + 40_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);
        Assert.Empty(Summaries(bodies, "rack-a01"));
        var attributes = Assert.Single(Gaps(bodies)).GetProperty("attributes");
        Assert.Equal((T0 + 5_000).ToString(System.Globalization.CultureInfo.InvariantCulture), attributes.GetProperty("from_ms").GetString());
        Assert.Equal("0", attributes.GetProperty("windows_recovered").GetString());
    }

    [Fact]
    public async Task A_restart_recovers_once_even_when_it_crashes_again()
    {
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 20_000);
            await first.WriteAsync("rack-a01", T0 + 10_000, 1);
            await first.Feeder.FlushAsync(all: false, Ct);
        }

        At(T0 + 25_000);
        await using (await StartAsync(Interval))
        {
            // crashes at once, before any checkpoint of its own
        }

        At(T0 + 30_000);
        await using var third = await StartAsync(Interval);
        var bodies = await BodiesAsync(third.Outbox);
        Assert.Single(Summaries(bodies, "rack-a01"));
        Assert.Equal(2, Gaps(bodies).Count()); // from the first run's checkpoint, then from the second run's start
    }

    [Fact]
    public async Task An_unreadable_checkpoint_is_logged_and_replaced_and_the_agent_goes_on()
    {
        await using (var first = await StartAsync(Interval))
        {
            await first.Outbox.AppendAsync([], [new OutboxBlob(OpenWindowCheckpoint.WindowsBlob, "ETSWIN1\ngarbage"u8.ToArray())], Ct);
        }

        await using var second = await StartAsync(Interval);
        var error = Assert.Single(second.Log.Collector.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("cannot be read", error.Message, StringComparison.Ordinal);
        Assert.Contains(OpenWindowCheckpoint.WindowsBlob, error.Message, StringComparison.Ordinal);
        Assert.Contains(_dir.File("outbox.db"), error.Message, StringComparison.Ordinal);

        var replaced = await second.Outbox.ReadBlobAsync(OpenWindowCheckpoint.WindowsBlob, Ct);
        Assert.False(OpenWindowCheckpoint.DecodeWindows(replaced!).Clean);

        // The centre hears of it too, without a span: whether the previous run stopped cleanly is unknown.
        var gap = Assert.Single(Gaps(await BodiesAsync(second.Outbox)));
        var attributes = gap.GetProperty("attributes");
        Assert.Equal("checkpoint_unreadable", attributes.GetProperty("reason").GetString());
        Assert.False(attributes.TryGetProperty("from_ms", out _));
        Assert.Contains(OpenWindowCheckpoint.WindowsBlob, attributes.GetProperty("checkpoint_error").GetString(), StringComparison.Ordinal);
        Assert.Contains(_dir.File("outbox.db"), gap.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(gap.GetProperty("start_ms").GetInt64(), gap.GetProperty("end_ms").GetInt64());

        At(T0 + 20_000);
        await second.WriteAsync("rack-a01", T0 + 10_000, 1);
        await second.Feeder.FlushAsync(all: true, Ct);
        Assert.Single(Summaries(await BodiesAsync(second.Outbox), "rack-a01"));
    }

    [Fact]
    public async Task Regression_a_damaged_catalog_after_a_crash_left_only_an_error_in_the_log_and_no_data_gap()
    {
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 20_000);
            await first.WriteAsync("rack-a01", T0 + 10_000, 1);
            await first.WriteAsync("rack-a02", T0 + 10_000, 2);
            await first.Feeder.FlushAsync(all: false, Ct); // the checkpoint: two open windows
            await first.Outbox.AppendAsync([], [new OutboxBlob(OpenWindowCheckpoint.CatalogBlob, "ETSCAT9 damaged"u8.ToArray())], Ct);
        }

        At(T0 + 50_000);
        await using var second = await StartAsync(Interval);
        var bodies = await BodiesAsync(second.Outbox);
        Assert.Empty(Summaries(bodies, "rack-a01")); // nothing half-recovered
        var gap = Assert.Single(Gaps(bodies));
        Assert.Equal((T0 + 20_000, T0 + 50_000), (gap.GetProperty("start_ms").GetInt64(), gap.GetProperty("end_ms").GetInt64()));
        var attributes = gap.GetProperty("attributes");
        Assert.Equal("unclean_stop", attributes.GetProperty("reason").GetString());
        Assert.Equal("0", attributes.GetProperty("windows_recovered").GetString());
        Assert.Contains(OpenWindowCheckpoint.CatalogBlob, attributes.GetProperty("checkpoint_error").GetString(), StringComparison.Ordinal);
        Assert.Contains("the 2 windows open at the checkpoint could not be recovered", gap.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Single(second.Log.Collector.GetSnapshot(), r => r.Level == LogLevel.Error && r.Message.Contains(OpenWindowCheckpoint.CatalogBlob, StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_checkpoints_off_an_earlier_runs_windows_are_still_sent_and_then_forgotten()
    {
        await using (var first = await StartAsync(Interval))
        {
            At(T0 + 20_000);
            await first.WriteAsync("rack-a01", T0 + 10_000, 1);
            await first.Feeder.FlushAsync(all: false, Ct);
        }

        await using (var off = await StartAsync(checkpointInterval: null))
        {
            Assert.False(off.Feeder.Checkpointing);
            Assert.Null(await off.Outbox.ReadBlobAsync(OpenWindowCheckpoint.WindowsBlob, Ct));
        }

        await using var third = await StartAsync(checkpointInterval: null);
        var bodies = await BodiesAsync(third.Outbox);
        Assert.Single(Summaries(bodies, "rack-a01"));
        Assert.Single(Gaps(bodies)); // the second run, with checkpoints off, leaves nothing to report
    }

    /// <summary>
    /// Whatever happens before the crash: no sample is counted twice (the centre would over-count), and every sample
    /// accepted before the last committed checkpoint is in some summary (the loss is bounded by the interval).
    /// </summary>
    [Fact]
    public void After_any_crash_no_sample_is_counted_twice_and_none_before_the_last_checkpoint_is_lost()
    {
        // Steps: 0 = a sample of series 0, 1 = a sample of series 1, 2 = a flush tick, 3 = a drain; each after 0-25 s.
        var step = Gen.Zip(Gen.Choose(0, 3), Gen.Choose(0, 25));
        Prop.ForAll(
            step.ListOf().Where(l => l.Count is > 0 and < 40).ToArbitrary(),
            (List<(int Kind, int Seconds)> steps) => CrashCaseAsync(steps).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(40));
    }

    private async Task<bool> CrashCaseAsync(List<(int Kind, int Seconds)> steps)
    {
        foreach (var file in Directory.GetFiles(_dir.Path))
        {
            File.Delete(file);
        }

        // Each case starts on a later window boundary: the clock of a FakeTimeProvider never goes back.
        var now = ((_time.GetUtcNow().ToUnixTimeMilliseconds() / 60_000) + 2) * 60_000;
        At(now);
        var fed = new Dictionary<(string, long), long>();
        var atCheckpoint = new Dictionary<(string, long), long>();
        await using (var run = await StartAsync(Interval))
        {
            foreach (var (kind, seconds) in steps)
            {
                now += seconds * 1000L;
                At(now);
                switch (kind)
                {
                    case 0 or 1:
                        var device = kind == 0 ? "rack-a01" : "rack-a02";
                        await run.WriteAsync(device, now, seconds);
                        var key = (device, now - (now % 60_000));
                        fed[key] = fed.GetValueOrDefault(key) + 1;
                        break;
                    case 2:
                        var before = await run.Outbox.ReadBlobAsync(OpenWindowCheckpoint.WindowsBlob, Ct);
                        await run.Feeder.FlushAsync(all: false, Ct);
                        var after = await run.Outbox.ReadBlobAsync(OpenWindowCheckpoint.WindowsBlob, Ct);
                        if (!after.AsSpan().SequenceEqual(before))
                        {
                            atCheckpoint = new Dictionary<(string, long), long>(fed); // a checkpoint of the state as it is now
                        }

                        break;
                    default:
                        await run.Feeder.DrainAsync(Ct);
                        break;
                }
            }
        }

        At(now + 1000);
        await using var restarted = await StartAsync(Interval);
        var sent = new Dictionary<(string, long), long>();
        foreach (var body in (await BodiesAsync(restarted.Outbox)).Where(b => b.GetProperty("type").GetString() == "summary"))
        {
            var key = (body.GetProperty("device").GetString()!, body.GetProperty("start_ms").GetInt64());
            sent[key] = sent.GetValueOrDefault(key) + body.GetProperty("count").GetInt64();
        }

        var noneTwice = sent.All(s => s.Value <= fed.GetValueOrDefault(s.Key));
        var noneBeforeCheckpointLost = atCheckpoint.All(c => sent.GetValueOrDefault(c.Key) >= c.Value);
        return noneTwice && noneBeforeCheckpointLost;
    }

}
