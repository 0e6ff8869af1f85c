using System.Collections.Concurrent;
using System.Globalization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Deployment;
using EdgeTwin.Tests.Shared;
using EdgeTwin.Twin.Anomaly;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// The anomaly stage keeps what its detectors learned over a restart (<c>anomaly-state.bin</c>): the restarted stage must
/// score and alert exactly as a stage that never stopped, and a corrupt, stale or unwritable state file must cost only
/// the learning, never detection.
/// </summary>
public sealed class AnomalyStateTests : IDisposable
{
    private const long Minute = 60_000;
    private static readonly string[] Metrics = ["inlet_temperature", "outlet_temperature", "power"];
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-anomaly-state-");
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 3, 2, 0, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string StatePath => Path.Combine(_dir.FullName, AnomalyStateFile.FileName);

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>Three rack series, one sample a minute: daily swing and noise; from <paramref name="shiftFrom"/> the power steps up by a third.</summary>
    private static double Value(int series, int i, int shiftFrom, double step = 1.4)
    {
        var noise = ((((i * 7919) + (series * 104729)) % 1000) / 1000.0) - 0.5;
        var daily = Math.Sin(2 * Math.PI * i / 1440.0);
        return series switch
        {
            0 => 22 + daily + (0.2 * noise),
            1 => 34 + (2 * daily) + (0.3 * noise),
            _ => 4.0 + (0.5 * daily) + (0.05 * noise) + (i >= shiftFrom ? step : 0),
        };
    }

    private sealed class Stage : IAsyncDisposable
    {
        private bool _disposed;

        public required AnomalyStage Anomaly { get; init; }

        public required AgentRuntime Runtime { get; init; }

        public required EventHub Hub { get; init; }

        public required ConcurrentQueue<EdgeEvent> Events { get; init; }

        public required ConcurrentQueue<(LogLevel Level, string Message)> Logs { get; init; }

        public SeriesId Id(int series) => Runtime.Registry.GetOrAdd(new SeriesDescriptor("rack-1", Metrics[series], series == 2 ? "kW" : "Cel"));

        public async ValueTask DisposeAsync()
        {
            if (!_disposed)
            {
                _disposed = true;
                Anomaly.Dispose();
                await Hub.DisposeAsync();
            }
        }
    }

    private Stage Start(string? statePath, AnomalyConfig? config = null, TimeProvider? time = null)
    {
        var parsed = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n", "site.yaml");
        Assert.True(parsed.IsValid, string.Join(Environment.NewLine, parsed.Problems));
        var runtime = new AgentRuntime(parsed.Config!, new SeriesRegistry(), time ?? _clock);
        var events = new ConcurrentQueue<EdgeEvent>();
        var hub = new EventHub().AddStage(new DelegateEventStage("test", (e, _) =>
        {
            events.Enqueue(e);
            return ValueTask.CompletedTask;
        }));
        hub.Start();
        runtime.Events = hub;
        var logs = new ConcurrentQueue<(LogLevel, string)>();
        var stage = new AnomalyStage(runtime, config ?? AnomalyConfig.Default, new ListLogger<AnomalyStage>(logs), stateLocation: new AnomalyStateLocation(statePath));
        return new Stage { Anomaly = stage, Runtime = runtime, Hub = hub, Events = events, Logs = logs };
    }

    /// <summary>Feeds samples <paramref name="from"/>..<paramref name="to"/> (one batch per minute); returns the scores by sample and series.</summary>
    private async Task<double[,]> FeedAsync(Stage stage, int from, int to, int shiftFrom, double step = 1.4)
    {
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var ids = Enumerable.Range(0, 3).Select(stage.Id).ToArray();
        var scores = new double[to - from, 3];
        var batch = new Sample[3];
        for (var i = from; i < to; i++)
        {
            for (var s = 0; s < 3; s++)
            {
                batch[s] = new Sample(ids[s], t0 + (i * Minute) + s, Value(s, i, shiftFrom, step));
            }

            await stage.Anomaly.ProcessAsync(batch, Ct);
            for (var s = 0; s < 3; s++)
            {
                scores[i - from, s] = stage.Anomaly.LastScore(ids[s]);
            }
        }

        return scores;
    }

    private static async Task DrainAsync(Stage stage) => await Task.Delay(200, Ct);

    /// <summary>
    /// With the default threshold, and with a low one and long episodes, so that scores above the threshold come while
    /// an episode saved open is still open (a restart that forgot it would announce it again).
    /// </summary>
    [Theory]
    [InlineData(0.4, 30)]
    [InlineData(0.1, 2000)]
    public async Task Regression_every_restart_sent_every_series_back_through_warm_up_and_announced_its_open_episode_again(double threshold, int quietSamples)
    {
        // The power steps up 20 samples before the stop: its episode is open when the agent stops (with long episodes,
        // since an earlier alarm).
        const int Stop = 3000, End = 3600, Shift = Stop - 20;
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var config = AnomalyConfig.Default with { QuietSamplesToClose = quietSamples, Defaults = AnomalyDetectorOptions.Default with { Threshold = threshold } };
        await using var unbroken = Start(statePath: null, config);
        var expected = await FeedAsync(unbroken, 0, End, Shift);
        await DrainAsync(unbroken);
        Assert.Contains(unbroken.Events, e => e.Source == "rack-1/power" && (e.Time.ToUnixTimeMilliseconds() - t0) / Minute < Stop);

        await using (var before = Start(StatePath, config))
        {
            await FeedAsync(before, 0, Stop, Shift);
            await before.Anomaly.FlushAsync(Ct);
            await DrainAsync(before);
            Assert.Equal(Describe(unbroken.Events.Where(e => e.Time.ToUnixTimeMilliseconds() < t0 + (Stop * Minute))), Describe(before.Events));
            Assert.Contains(before.Logs, l => l.Message.Contains($"3 series' learned state saved to {StatePath}", StringComparison.Ordinal));
        }

        var saved = AnomalyStateFile.Load(StatePath)!.Series["rack-1/power"];
        Assert.True(saved.EpisodeOpen, "the power step's episode is open at the stop");

        await using var after = Start(StatePath, config);
        Assert.Contains(after.Logs, l => l.Level == LogLevel.Information && l.Message.Contains($"3 series' learned state read from {StatePath}", StringComparison.Ordinal));
        var actual = await FeedAsync(after, Stop, End, Shift);
        await DrainAsync(after);
        for (var i = 0; i < End - Stop; i++)
        {
            for (var s = 0; s < 3; s++)
            {
                Assert.True(expected[Stop + i, s] == actual[i, s], $"{Metrics[s]} sample {Stop + i}: restarted {actual[i, s]:R}, never stopped {expected[Stop + i, s]:R}");
            }
        }

        Assert.Equal(End, after.Anomaly.SamplesSeen(after.Id(0)));

        // The same alerts as the agent that never stopped: the open episode goes on, and no warm-up wave.
        Assert.Equal(Describe(unbroken.Events.Where(e => e.Time.ToUnixTimeMilliseconds() >= t0 + (Stop * Minute))), Describe(after.Events));
    }

    private static List<string> Describe(IEnumerable<EdgeEvent> events) => [.. events.Select(e => $"{e.Source} {e.Time:O} {e.Attributes!["score"]}")];

    /// <summary>
    /// A restart is a gap in the data like a device that was offline: the first readings after it are judged against the
    /// last ones before it, so a change that happened while the agent was down (the power doubled) is reported, not
    /// hidden by the restart, and series that did not move stay quiet.
    /// </summary>
    [Fact]
    public async Task Samples_of_series_past_max_series_are_counted_as_uncovered_not_silently_skipped()
    {
        // Device caps bound the registry, but the anomaly stage has its own array of max_series: a series past it must
        // neither index out of range nor vanish without a count.
        long uncovered = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == AnomalyStage.MeterName && instrument.Name == "edgetwin.twin.anomaly.uncovered")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref uncovered, v));
        listener.Start();
        await using var stage = Start(statePath: null, AnomalyConfig.Default with { MaxSeries = 2 });
        var ids = Enumerable.Range(0, 3).Select(stage.Id).ToArray();
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        for (var i = 0; i < 5; i++)
        {
            await stage.Anomaly.ProcessAsync(ids.Select(id => new Sample(id, t0 + (i * Minute), 20 + id.Value)).ToArray(), Ct);
        }

        Assert.Equal(5, stage.Anomaly.SamplesSeen(ids[0]));
        Assert.Equal(0, stage.Anomaly.SamplesSeen(ids[2]));
        Assert.Equal(5, Interlocked.Read(ref uncovered));
        Assert.Single(stage.Logs, l => l.Level == LogLevel.Warning && l.Message.Contains("raise twin.anomaly.max_series", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_retired_series_gives_its_detector_back_so_a_new_row_is_scored_under_max_series()
    {
        // Before: max_series bounded the series *ids*; a table whose rows come and go hands out new ids forever, so after
        // enough churn no new row was scored at all.
        await using var stage = Start(statePath: null, AnomalyConfig.Default with { MaxSeries = 2 });
        var ids = Enumerable.Range(0, 3).Select(stage.Id).ToArray();
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        for (var i = 0; i < 5; i++)
        {
            await stage.Anomaly.ProcessAsync(ids.Select(id => new Sample(id, t0 + (i * Minute), 20 + id.Value)).ToArray(), Ct);
        }

        Assert.Equal((5L, 0L), (stage.Anomaly.SamplesSeen(ids[0]), stage.Anomaly.SamplesSeen(ids[2])));
        stage.Runtime.Registry.Retire(ids[0]);
        for (var i = 5; i < 10; i++)
        {
            await stage.Anomaly.ProcessAsync(ids.Skip(1).Select(id => new Sample(id, t0 + (i * Minute), 20 + id.Value)).ToArray(), Ct);
        }

        Assert.Equal((0L, 10L, 5L), (stage.Anomaly.SamplesSeen(ids[0]), stage.Anomaly.SamplesSeen(ids[1]), stage.Anomaly.SamplesSeen(ids[2])));

        // Ids past any preallocated size are scored too: only the number of detectors is capped.
        await using var wide = Start(statePath: null);
        for (var n = 0; n < 3000; n++)
        {
            wide.Runtime.Registry.GetOrAdd(new SeriesDescriptor("sw", "rx", "B/s", Tags: [new("if", n.ToString(CultureInfo.InvariantCulture))]));
        }

        var last = new SeriesId(wide.Runtime.Registry.Count - 1);
        await wide.Anomaly.ProcessAsync(new[] { new Sample(last, t0, 1) }, Ct);
        Assert.Equal(1, wide.Anomaly.SamplesSeen(last));
    }

    [Fact]
    public async Task A_change_while_the_agent_was_down_is_reported_after_the_restart_and_nothing_else()
    {
        const int Stop = 3000, Resume = 3060;
        await using (var before = Start(StatePath))
        {
            await FeedAsync(before, 0, Stop, int.MaxValue);
            await before.Anomaly.FlushAsync(Ct);
        }

        await using var after = Start(StatePath);
        await FeedAsync(after, Resume, Resume + 60, shiftFrom: Stop + 30, step: 4.0);
        await DrainAsync(after);
        var t0 = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var e = Assert.Single(after.Events);
        Assert.Equal("rack-1/power", e.Source);
        Assert.InRange((e.Time.ToUnixTimeMilliseconds() - t0) / Minute, Resume, Resume + 10);
    }

    [Fact]
    public async Task A_corrupt_state_file_is_set_aside_named_in_a_warning_and_the_next_checkpoint_writes_a_good_one()
    {
        await using (var before = Start(StatePath))
        {
            await FeedAsync(before, 0, 500, int.MaxValue);
            await before.Anomaly.FlushAsync(Ct);
        }

        var bytes = await File.ReadAllBytesAsync(StatePath, Ct);
        bytes[bytes.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(StatePath, bytes, Ct);

        await using var after = Start(StatePath);
        var warning = Assert.Single(after.Logs, l => l.Level == LogLevel.Warning);
        Assert.Contains($"{StatePath} is corrupt (checksum mismatch", warning.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(StatePath + ".corrupt"));
        Assert.False(File.Exists(StatePath));

        // Detection goes on from scratch, and the next checkpoint (an hour later) writes a state that reads back.
        await FeedAsync(after, 500, 600, int.MaxValue);
        Assert.Equal(100, after.Anomaly.SamplesSeen(after.Id(1)));
        _clock.Advance(TimeSpan.FromMinutes(61));
        await FeedAsync(after, 600, 601, int.MaxValue);
        await after.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        var saved = AnomalyStateFile.Load(StatePath)!;
        Assert.Equal(3, saved.Series.Count);
        Assert.True(saved.LayoutMatches);
    }

    /// <summary>
    /// <c>anomaly-state.bin</c> as the build of 9672e6b (main, 2 Dec 2026) wrote it on the simulator, cut to three crac1
    /// series (checksum recomputed): its detectors have another field layout (5d3b17131ee3) than this build's.
    /// </summary>
    private static byte[] OldBuildFixture() =>
        File.ReadAllBytes(Path.Combine(Tool.RepoRoot(), "tests", "EdgeTwin.IntegrationTests", "Twin", "Fixtures", "anomaly-state-9672e6b.bin"));

    private const string OldBuildLayout = "5d3b17131ee3";

    [Fact]
    public async Task Regression_an_upgrade_wrote_over_the_detector_state_the_previous_build_had_learned()
    {
        // Measured: the new build logged "written by a build whose detectors differ: every series learns anew" and its
        // first checkpoint wrote over the old build's 343 series; the rollback the next morning found the new build's
        // file, learned anew too and wrote over that. Now the other build's file is kept, byte for byte, beside it.
        var old = OldBuildFixture();
        Assert.NotEqual(OldBuildLayout, AnomalyStateFile.OwnLayoutTag);
        await File.WriteAllBytesAsync(StatePath, old, Ct);
        var aside = AnomalyStateFile.KeptAsidePath(StatePath, OldBuildLayout);

        await using (var upgraded = Start(StatePath))
        {
            var warnings = upgraded.Logs.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToList();
            Assert.Contains(warnings, m => m.Contains($"{StatePath} was written by another build (detector layout {OldBuildLayout}; this build's is {AnomalyStateFile.OwnLayoutTag}): its 3 series are kept unchanged as {aside}", StringComparison.Ordinal));
            Assert.Contains(warnings, m => m.Contains("every series learns anew", StringComparison.Ordinal));
            Assert.DoesNotContain(upgraded.Logs, l => l.Message.Contains("corrupt", StringComparison.Ordinal));
            await FeedAsync(upgraded, 0, 200, int.MaxValue);
            Assert.Equal(200, upgraded.Anomaly.SamplesSeen(upgraded.Id(0)));
            await upgraded.Anomaly.FlushAsync(Ct);
        }

        Assert.Equal(old, await File.ReadAllBytesAsync(aside, Ct));
        var written = AnomalyStateFile.Load(StatePath)!;
        Assert.True(written.LayoutMatches);
        Assert.Equal(3, written.Series.Count);
    }

    [Fact]
    public async Task Regression_a_rollback_and_a_new_upgrade_each_learned_anew_instead_of_going_on_from_their_own_state()
    {
        // This build ran, then a build of another layout (here: the 9672e6b fixture) ran over the same directory and
        // this build's file was kept aside for it. Starting this build again takes its own file back.
        await using (var first = Start(StatePath))
        {
            await FeedAsync(first, 0, 300, int.MaxValue);
            await first.Anomaly.FlushAsync(Ct);
        }

        var own = AnomalyStateFile.KeptAsidePath(StatePath, AnomalyStateFile.OwnLayoutTag);
        File.Move(StatePath, own);
        var old = OldBuildFixture();
        await File.WriteAllBytesAsync(StatePath, old, Ct);

        await using var again = Start(StatePath);
        Assert.Contains(again.Logs, l => l.Message.Contains($"{own}, which this build's detectors wrote before another build ran, is taken back as {StatePath}", StringComparison.Ordinal));
        Assert.Contains(again.Logs, l => l.Message.Contains($"3 series' learned state read from {StatePath}", StringComparison.Ordinal));
        Assert.DoesNotContain(again.Logs, l => l.Message.Contains("learns anew", StringComparison.Ordinal));
        Assert.False(File.Exists(own));
        Assert.Equal(old, await File.ReadAllBytesAsync(AnomalyStateFile.KeptAsidePath(StatePath, OldBuildLayout), Ct));
        await FeedAsync(again, 300, 320, int.MaxValue);
        Assert.Equal(320, again.Anomaly.SamplesSeen(again.Id(0)));
    }

    /// <summary>
    /// This build's file as the build before a field was added to the detector would have written it: the detector's
    /// last field (a scalar) gone from the layout description and from every series' bytes, another fingerprint.
    /// </summary>
    private static (byte[] File, string Tag, string Field) AsWrittenByABuildWithoutTheLastDetectorField(byte[] file)
    {
        using var r = new BinaryReader(new MemoryStream(file[..^32]), System.Text.Encoding.UTF8);
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms, System.Text.Encoding.UTF8);
        w.Write(r.ReadBytes(4));
        Assert.Equal(2, r.ReadUInt16());
        w.Write((ushort)2);
        r.ReadBytes(32);
        var fingerprint = System.Security.Cryptography.SHA256.HashData("the build before"u8);
        w.Write(fingerprint);
        w.Write(r.ReadInt64());
        var count = r.ReadInt32();
        w.Write(count);
        Assert.Equal(1, r.ReadInt32());
        w.Write(1);
        r.ReadBytes(32);
        w.Write(fingerprint);

        // The description: i32 types; each name, kind, scalar code, size, element, i32 fields, each (name, type name).
        using var d = new BinaryReader(new MemoryStream(r.ReadBytes(r.ReadInt32())), System.Text.Encoding.UTF8);
        var types = Enumerable.Range(0, d.ReadInt32()).Select(_ => (Name: d.ReadString(), Kind: d.ReadByte(), Code: d.ReadByte(), Size: d.ReadByte(), Element: d.ReadString(),
            Fields: Enumerable.Range(0, d.ReadInt32()).Select(_ => (Name: d.ReadString(), Type: d.ReadString())).ToList())).ToList();
        var root = types.Single(t => t.Name == typeof(StreamingAnomalyDetector).FullName);
        var last = root.Fields[^1];
        var size = types.Single(t => t.Name == last.Type) is { Kind: 0 } scalar ? scalar.Size : throw new InvalidOperationException($"{last.Name} is not a scalar");
        root.Fields.RemoveAt(root.Fields.Count - 1);
        var description = new MemoryStream();
        using (var dw = new BinaryWriter(description, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            dw.Write(types.Count);
            foreach (var t in types)
            {
                dw.Write(t.Name);
                dw.Write(t.Kind);
                dw.Write(t.Code);
                dw.Write(t.Size);
                dw.Write(t.Element);
                dw.Write(t.Fields.Count);
                foreach (var f in t.Fields)
                {
                    dw.Write(f.Name);
                    dw.Write(f.Type);
                }
            }
        }

        w.Write((int)description.Length);
        w.Write(description.ToArray());
        for (var i = 0; i < count; i++)
        {
            w.Write(r.ReadString());
            w.Write(r.ReadInt64());
            w.Write(r.ReadUInt64());
            w.Write(r.ReadBoolean());
            w.Write(r.ReadInt32());
            w.Write(r.ReadInt32());
            var detector = r.ReadBytes(r.ReadInt32());
            w.Write(detector.Length - size);
            w.Write(detector[..^size]);
        }

        w.Flush();
        var body = ms.ToArray();
        return ([.. body, .. System.Security.Cryptography.SHA256.HashData(body)], AnomalyStateFile.LayoutTagOf(fingerprint), last.Name);
    }

    [Fact]
    public async Task Regression_an_upgrade_that_added_one_detector_field_threw_away_every_series_learned_state()
    {
        // Measured: PartCounter._lastChangeMs, StationQuality._xMs, OeeTracker._goodSinceRejectMoved — each upgrade that
        // added one field changed the layout fingerprint, so every series' state was kept aside and every detector went
        // back through warm-up. Now the state of a build that only lacked a field is taken over, the field starting as
        // in a new detector; a copy stays for that build.
        await using (var first = Start(StatePath))
        {
            await FeedAsync(first, 0, 300, int.MaxValue);
            await first.Anomaly.FlushAsync(Ct);
        }

        var (previous, tag, field) = AsWrittenByABuildWithoutTheLastDetectorField(await File.ReadAllBytesAsync(StatePath, Ct));
        await File.WriteAllBytesAsync(StatePath, previous, Ct);
        var aside = AnomalyStateFile.KeptAsidePath(StatePath, tag);

        await using (var upgraded = Start(StatePath))
        {
            Assert.Contains(upgraded.Logs, l => l.Level == LogLevel.Information
                && l.Message.Contains($"{StatePath} was written by another build (detector layout {tag}; this build's is {AnomalyStateFile.OwnLayoutTag}) whose detectors differ only by fields: taken over", StringComparison.Ordinal)
                && l.Message.Contains($"(StreamingAnomalyDetector: new {field})", StringComparison.Ordinal)
                && l.Message.Contains($"a copy is kept as {aside}", StringComparison.Ordinal));
            Assert.Contains(upgraded.Logs, l => l.Message.Contains($"3 series' learned state read from {StatePath}", StringComparison.Ordinal));
            Assert.DoesNotContain(upgraded.Logs, l => l.Message.Contains("learns anew", StringComparison.Ordinal) || l.Level >= LogLevel.Warning);
            await FeedAsync(upgraded, 300, 320, int.MaxValue);
            for (var s = 0; s < 3; s++)
            {
                Assert.Equal(320, upgraded.Anomaly.SamplesSeen(upgraded.Id(s))); // went on: no warm-up
            }

            await upgraded.Anomaly.FlushAsync(Ct);
        }

        Assert.Equal(previous, await File.ReadAllBytesAsync(aside, Ct));
        var written = AnomalyStateFile.Load(StatePath)!;
        Assert.True(written.LayoutMatches);
        Assert.Empty(written.OtherLayouts);
        Assert.Equal(3, written.Series.Count);
    }

    [Fact]
    public async Task A_series_not_back_since_an_upgrade_keeps_its_layout_through_the_checkpoints_and_is_read_when_it_returns()
    {
        await using (var first = Start(StatePath))
        {
            await FeedAsync(first, 0, 300, int.MaxValue);
            await first.Anomaly.FlushAsync(Ct);
        }

        var (previous, tag, _) = AsWrittenByABuildWithoutTheLastDetectorField(await File.ReadAllBytesAsync(StatePath, Ct));
        await File.WriteAllBytesAsync(StatePath, previous, Ct);

        // A run in which no series came back: its checkpoint carries their bytes with the previous build's layout.
        await using (var quiet = Start(StatePath))
        {
            await quiet.Anomaly.FlushAsync(Ct);
        }

        var carried = AnomalyStateFile.Load(StatePath)!;
        Assert.True(carried.LayoutMatches);
        Assert.Equal(tag, AnomalyStateFile.LayoutTagOf(Assert.Single(carried.OtherLayouts).Fingerprint));
        Assert.All(carried.Series.Values, s => Assert.NotNull(s.Layout));

        await using var back = Start(StatePath);
        await FeedAsync(back, 300, 310, int.MaxValue);
        Assert.Equal(310, back.Anomaly.SamplesSeen(back.Id(0)));
        Assert.DoesNotContain(back.Logs, l => l.Message.Contains("learns anew", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Regression_a_state_file_of_a_newer_format_was_called_corrupt()
    {
        // A later build that changes the file's format (version 3, and a checksum this build cannot check) wrote it:
        // before, "is corrupt (format version 3 …)" and .corrupt; now it is kept for that build under its layout, untouched.
        var newer = OldBuildFixture();
        newer[4] = 3;
        newer[^1] ^= 0xFF;
        await File.WriteAllBytesAsync(StatePath, newer, Ct);

        await using var stage = Start(StatePath);
        var aside = AnomalyStateFile.KeptAsidePath(StatePath, OldBuildLayout);
        Assert.Contains(stage.Logs, l => l.Level == LogLevel.Warning
            && l.Message.Contains($"{StatePath} was written by another build (detector layout {OldBuildLayout}, file format 3 (this build reads 1 and 2);", StringComparison.Ordinal)
            && l.Message.Contains($"kept unchanged as {aside}", StringComparison.Ordinal));
        Assert.DoesNotContain(stage.Logs, l => l.Message.Contains("corrupt", StringComparison.Ordinal));
        Assert.False(File.Exists(StatePath + ".corrupt"));
        Assert.Equal(newer, await File.ReadAllBytesAsync(aside, Ct));
        await FeedAsync(stage, 0, 20, int.MaxValue);
        Assert.Equal(20, stage.Anomaly.SamplesSeen(stage.Id(0)));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("not ours")]
    [InlineData("empty")]
    public async Task Every_kind_of_bad_state_file_is_reported_with_its_path_and_detection_goes_on(string damage)
    {
        await using (var before = Start(StatePath))
        {
            await FeedAsync(before, 0, 300, int.MaxValue);
            await before.Anomaly.FlushAsync(Ct);
        }

        var bytes = await File.ReadAllBytesAsync(StatePath, Ct);
        await File.WriteAllBytesAsync(StatePath, damage switch
        {
            "truncated" => bytes[..(bytes.Length - 100)],
            "not ours" => "{\"zones\": {}}"u8.ToArray(),
            _ => [],
        }, Ct);

        await using var after = Start(StatePath);
        var warning = Assert.Single(after.Logs, l => l.Level == LogLevel.Warning);
        Assert.Contains(StatePath, warning.Message, StringComparison.Ordinal);
        Assert.Contains(damage switch { "truncated" => "checksum mismatch", "empty" => "empty (0 bytes)", _ => "not an EdgeTwin anomaly state file" }, warning.Message, StringComparison.Ordinal);
        await FeedAsync(after, 300, 320, int.MaxValue);
        Assert.Equal(20, after.Anomaly.SamplesSeen(after.Id(0)));
    }

    [Fact]
    public async Task Regression_a_state_file_named_like_the_outbox_was_set_aside_and_written_over()
    {
        // twin.anomaly.state.file: outbox.db used to move the open outbox to .corrupt and write the detectors over it.
        var outbox = Path.Combine(_dir.FullName, "outbox.db");
        await File.WriteAllTextAsync(outbox, "LiteDB", Ct);
        await using (var stage = Start(outbox))
        {
            var error = Assert.Single(stage.Logs, l => l.Level == LogLevel.Error);
            Assert.Contains($"twin.anomaly.state: {outbox} is not an anomaly state file", error.Message, StringComparison.Ordinal);
            await FeedAsync(stage, 0, 200, int.MaxValue);
            await stage.Anomaly.FlushAsync(Ct);
            Assert.Equal(200, stage.Anomaly.SamplesSeen(stage.Id(0))); // detection goes on
        }

        Assert.Equal("LiteDB", await File.ReadAllTextAsync(outbox, Ct));
        Assert.Empty(_dir.GetFiles("outbox.db.corrupt*"));
    }

    [Fact]
    public async Task A_series_whose_options_changed_learns_anew_while_the_others_continue()
    {
        await using (var before = Start(StatePath))
        {
            await FeedAsync(before, 0, 400, int.MaxValue);
            await before.Anomaly.FlushAsync(Ct);
        }

        var changed = AnomalyConfig.Default with
        {
            Overrides = [new AnomalyOverride("rack-1/power", AnomalyDetectorOptions.Default with { WarmUpSamples = 300 })],
        };
        await using var after = Start(StatePath, changed);
        await FeedAsync(after, 400, 450, int.MaxValue);
        Assert.Equal(450, after.Anomaly.SamplesSeen(after.Id(0)));
        Assert.Equal(450, after.Anomaly.SamplesSeen(after.Id(1)));
        Assert.Equal(50, after.Anomaly.SamplesSeen(after.Id(2)));

        // Changing only the alarm threshold keeps what was learned.
        await after.Anomaly.FlushAsync(Ct);
        await after.DisposeAsync();
        await using var threshold = Start(StatePath, AnomalyConfig.Default with { Defaults = AnomalyDetectorOptions.Default with { Threshold = 0.7 } });
        await FeedAsync(threshold, 450, 460, int.MaxValue);
        Assert.Equal(460, threshold.Anomaly.SamplesSeen(threshold.Id(0)));
    }

    [Fact]
    public async Task State_older_than_max_age_is_not_restored()
    {
        await using (var before = Start(StatePath))
        {
            await FeedAsync(before, 0, 300, int.MaxValue);
            await before.Anomaly.FlushAsync(Ct);
        }

        _clock.Advance(TimeSpan.FromDays(8));
        await using var after = Start(StatePath);
        Assert.Contains(after.Logs, l => l.Message.Contains("0 series' learned state read", StringComparison.Ordinal) && l.Message.Contains("3 older than max_age 7d dropped", StringComparison.Ordinal));
        await FeedAsync(after, 300, 310, int.MaxValue);
        Assert.Equal(10, after.Anomaly.SamplesSeen(after.Id(0)));
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_of_a_day_held_the_anomaly_checkpoints_for_a_day()
    {
        // A gateway that booted a day ahead, then synced: with the schedule on the wall clock ("now >= next checkpoint")
        // no checkpoint came for a day, and a power cut in it lost a day of learning. The schedule runs on the monotonic
        // clock; the saved-at stamp stays on the wall clock (state.max_age compares it with the next start's).
        var clock = new SteppableClock(_clock);
        await using var stage = Start(StatePath, time: clock);
        await FeedAsync(stage, 0, 200, int.MaxValue);
        _clock.Advance(TimeSpan.FromMinutes(61));
        await FeedAsync(stage, 200, 201, int.MaxValue);
        await stage.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        Assert.True(File.Exists(StatePath));
        File.Delete(StatePath);

        clock.Step(TimeSpan.FromDays(-1));
        _clock.Advance(TimeSpan.FromMinutes(61));
        await FeedAsync(stage, 201, 202, int.MaxValue);
        await stage.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        Assert.True(File.Exists(StatePath), "no checkpoint an hour after a step back of a day");
        Assert.Equal(clock.GetUtcNow().ToUnixTimeMilliseconds(), AnomalyStateFile.Load(StatePath)!.SavedAtUnixMs);
    }

    [Fact]
    public async Task A_failed_checkpoint_is_logged_keeps_the_last_good_file_and_the_next_one_succeeds()
    {
        await using var stage = Start(StatePath);
        await FeedAsync(stage, 0, 200, int.MaxValue);
        _clock.Advance(TimeSpan.FromMinutes(61));
        await FeedAsync(stage, 200, 201, int.MaxValue);
        await stage.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        var good = await File.ReadAllBytesAsync(StatePath, Ct);

        // The temp file's name taken by a directory: the write fails as a full disk or a read-only mount would.
        Directory.CreateDirectory(StatePath + ".tmp");
        _clock.Advance(TimeSpan.FromMinutes(61));
        await FeedAsync(stage, 201, 300, int.MaxValue);
        await stage.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        var warning = Assert.Single(stage.Logs, l => l.Level == LogLevel.Warning);
        Assert.Contains($"cannot write {StatePath}", warning.Message, StringComparison.Ordinal);
        Assert.Contains("the last good checkpoint stays", warning.Message, StringComparison.Ordinal);
        Assert.Equal(good, await File.ReadAllBytesAsync(StatePath, Ct));

        Directory.Delete(StatePath + ".tmp");
        await stage.Anomaly.FlushAsync(Ct);
        var saved = AnomalyStateFile.Load(StatePath)!.Series["rack-1/inlet_temperature"];
        Assert.Equal(300, AnomalyStateFile.Detector(saved.Detector, AnomalyDetectorOptions.Default).Count);
    }

    [Fact]
    public async Task Regression_a_read_only_state_directory_logged_a_warning_at_every_anomaly_checkpoint()
    {
        // checkpoint_interval 10s on storage that stays unwritable: one warning per checkpoint, 360 an hour, into the
        // journal on the same flash. Now the first (with its stack), a summary every 5 min and one line at recovery.
        var config = AnomalyConfig.Default with { State = AnomalyStateConfig.Default with { CheckpointInterval = TimeSpan.FromSeconds(10) } };
        await using var stage = Start(StatePath, config);
        await FeedAsync(stage, 0, 1, int.MaxValue);
        Directory.CreateDirectory(StatePath + ".tmp"); // the temp file's name taken: every write fails, as on a read-only mount
        for (var i = 1; i <= 360; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(10));
            await FeedAsync(stage, i, i + 1, int.MaxValue);
            await stage.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        }

        var warnings = stage.Logs.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToList();
        Assert.Contains($"cannot write {StatePath}", warnings[0], StringComparison.Ordinal);
        Assert.Equal(12, warnings.Count); // the first and 11 summaries (at 5, 10, …, 55 min)
        Assert.All(warnings.Skip(1), w => Assert.Contains($"{StatePath} still cannot be written", w, StringComparison.Ordinal));
        Assert.Contains("since 2026-03-02T00:00:10.0000000+00:00: 331 checkpoints failed", warnings[^1], StringComparison.Ordinal);

        Directory.Delete(StatePath + ".tmp");
        _clock.Advance(TimeSpan.FromSeconds(10));
        await FeedAsync(stage, 361, 362, int.MaxValue);
        await stage.Anomaly.PendingCheckpoint.WaitAsync(Ct);
        Assert.Single(stage.Logs, l => l.Message.Contains($"{StatePath} written again after 1h 0m of failing checkpoints (360 failed)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_agent_keeps_its_anomaly_state_next_to_the_outbox_and_the_state_section_is_checked()
    {
        var problems = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\ntwin:\n  anomaly:\n    state:\n      checkpoint_interval: 1s\n      max_age: soon\n      fille: x\n      file: ''\n", "site.yaml",
            new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) }).Problems;
        Assert.Contains(problems, p => p.Path == "twin.anomaly.state.checkpoint_interval" && p.Line == 6 && p.Message.Contains("at least 10s", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Path == "twin.anomaly.state.max_age" && p.Line == 7);
        Assert.Contains(problems, p => p.Path.EndsWith("fille", StringComparison.Ordinal) && p.Line == 8);
        Assert.Contains(problems, p => p.Path == "twin.anomaly.state.file" && p.Line == 9 && p.Message.Contains("must name a file", StringComparison.Ordinal));
        var weekly = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\ntwin:\n  anomaly:\n    state: { checkpoint_interval: 2d }\n", "site.yaml",
            new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) }).Problems;
        Assert.Contains(weekly, p => p.Path == "twin.anomaly.state.checkpoint_interval" && p.Message.Contains("at most 1d", StringComparison.Ordinal));

        var services = new ServiceCollection();
        var site = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n", "site.yaml").Config!;
        services.AddSingleton(site);
        services.AddSingleton(new EdgeTwin.Agent.StoreAndForward.StoreAndForwardOptions { OutboxPath = Path.Combine(_dir.FullName, "outbox.db") });
        services.AddTwinModels();
        await using var provider = services.BuildServiceProvider();
        Assert.Equal(StatePath, provider.GetRequiredService<AnomalyStateLocation>().Path);

        // A relative file is taken from the outbox's directory (the config's, /etc/edgetwin, is read-only under the unit),
        // and a directory gets the file inside.
        Directory.CreateDirectory(Path.Combine(_dir.FullName, "learned"));
        foreach (var (file, expected) in new[] { ("learned", Path.Combine(_dir.FullName, "learned", AnomalyStateFile.FileName)), ("learned/a.bin", Path.Combine(_dir.FullName, "learned", "a.bin")) })
        {
            var custom = new ServiceCollection().AddSingleton(site).AddTwinModels(AnomalyConfig.Default with { State = AnomalyStateConfig.Default with { File = file } });
            custom.AddSingleton(new EdgeTwin.Agent.StoreAndForward.StoreAndForwardOptions { OutboxPath = Path.Combine(_dir.FullName, "outbox.db") });
            await using var customProvider = custom.BuildServiceProvider();
            Assert.Equal(expected, customProvider.GetRequiredService<AnomalyStateLocation>().Path);
        }

        var off = new ServiceCollection().AddSingleton(site).AddTwinModels(AnomalyConfig.Default with { State = AnomalyStateConfig.Default with { Enabled = false } });
        off.AddSingleton(new EdgeTwin.Agent.StoreAndForward.StoreAndForwardOptions { OutboxPath = Path.Combine(_dir.FullName, "outbox.db") });
        await using var offProvider = off.BuildServiceProvider();
        Assert.Null(offProvider.GetRequiredService<AnomalyStateLocation>().Path);
    }

    [Fact]
    public void Regression_a_state_file_on_the_outbox_journal_or_the_other_stages_state_passed_check()
    {
        // The agent refuses such a file at start and keeps no state that run; check said OK. Outbox: the default
        // /var/lib/edgetwin/outbox.db, a relative file is taken from its directory.
        static List<string> Check(string sections) => [.. SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n" + sections, "site.yaml",
            new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) }).Problems.Select(p => p.ToString())];
        const string Line = "line:\n  id: line1\n  buffers: [{ id: B1, capacity: 10 }]\n  stations:\n    - { id: S1, ideal_cycle_time: 30s, output: B1 }\n    - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }\n";

        Assert.Equal(
            ["site.yaml:5:20: twin.anomaly.state.file: twin.anomaly.state.file resolves to /var/lib/edgetwin/outbox-log.db, the outbox's journal: name a file of its own (default anomaly-state.bin next to the outbox)"],
            Check("twin:\n  anomaly:\n    state: { file: outbox-log.db }\n"));

        // Two stages on one file: said at the second, naming the first.
        Assert.Equal(
            ["site.yaml:10:35: twin.anomaly.state.file: twin.anomaly.state.file resolves to /var/lib/edgetwin/learned.bin, the file line.state.file names too: name a file of its own (default anomaly-state.bin next to the outbox)"],
            Check(Line + "  state: { file: learned.bin }\ntwin: { anomaly: { state: { file: /var/lib/edgetwin/learned.bin } } }\n"));

        // The anomaly state's default, with no twin section at all.
        Assert.Equal(
            ["site.yaml:9:18: line.state.file: line.state.file resolves to /var/lib/edgetwin/anomaly-state.bin, where twin.anomaly.state keeps its state by default: name a file of its own (default line-state.bin next to the outbox)"],
            Check(Line + "  state: { file: anomaly-state.bin }\n"));

        // A directory gets each stage's own file inside.
        Assert.Empty(Check(Line + "  state: { file: ./ }\ntwin: { anomaly: { state: { file: ./ } } }\n"));
    }

    [Fact]
    public void Regression_a_state_file_or_the_outbox_on_the_alert_store_or_a_stage_s_fixed_state_passed_check()
    {
        // The alert store, the thermal twin's and the maintenance stage's state have fixed names no key moves; a learning
        // stage's file or the outbox named like one of them would have had two writers, and check said OK.
        static List<string> Check(string sections) => [.. SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n" + sections, "site.yaml",
            new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) }).Problems.Select(p => p.ToString())];

        Assert.Equal(
            ["site.yaml:5:20: twin.anomaly.state.file: twin.anomaly.state.file resolves to /var/lib/edgetwin/alerts.db, where alerts keeps its state: name a file of its own (default anomaly-state.bin next to the outbox)"],
            Check("twin:\n  anomaly:\n    state: { file: alerts.db }\n"));
        Assert.Equal(
            ["site.yaml:5:20: twin.anomaly.state.file: twin.anomaly.state.file resolves to /var/lib/edgetwin/thermal-twin.json, where thermal_twin keeps its state: name a file of its own (default anomaly-state.bin next to the outbox)"],
            Check("twin:\n  anomaly:\n    state: { file: thermal-twin.json }\n"));
        Assert.Equal(
            ["site.yaml:5:20: twin.anomaly.state.file: twin.anomaly.state.file resolves to /var/lib/edgetwin/maintenance-state.json, where models.maintenance keeps its state: name a file of its own (default anomaly-state.bin next to the outbox)"],
            Check("twin:\n  anomaly:\n    state: { file: /var/lib/edgetwin/maintenance-state.json }\n"));

        // alerts.state_directory moves the store: the clash follows it, and the outbox's own directory is free again.
        Assert.Equal(
            ["site.yaml:3:17: outbox.path: the outbox would be /srv/alerts/alerts.db, the file alerts keeps its state in: name the outbox otherwise"],
            Check("outbox: { path: /srv/alerts/alerts.db }\nalerts: { state_directory: /srv/alerts }\n"));
        Assert.Empty(Check("alerts: { state_directory: /srv/alerts }\ntwin: { anomaly: { state: { file: alerts.db } } }\n"));
        Assert.Equal(
            ["site.yaml:3:17: outbox.path: the outbox would be /var/lib/edgetwin/alerts.db, the file alerts keeps its state in: name the outbox otherwise"],
            Check("outbox: { path: /var/lib/edgetwin/alerts.db }\n"));
    }

    [Fact]
    public void A_state_file_is_not_written_when_it_would_eat_into_the_outbox_reserve()
    {
        const long MiB = 1 << 20;
        Assert.Null(AtomicStateFile.NoRoom(available: 900 * MiB, total: 4096 * MiB, size: 8 * MiB));
        var reason = AtomicStateFile.NoRoom(available: 130 * MiB, total: 4096 * MiB, size: 8 * MiB);
        Assert.Equal("not written to keep room for the outbox: 133120 KiB free, the file needs 8192 KiB and at least 131072 KiB must stay free (half the free space, and never less than twice the outbox's reserve)", reason);
        Assert.NotNull(AtomicStateFile.NoRoom(available: 900 * MiB, total: 4096 * MiB, size: 500 * MiB));

        // The audit's 1.7 MB filesystem: a 732 KiB state file with 1 MiB free would have left the outbox's last flush without room.
        Assert.NotNull(AtomicStateFile.NoRoom(available: 1 * MiB, total: 1700 * 1024, size: 732 * 1024));
    }

    [Fact]
    public async Task Regression_a_damaged_save_time_behind_a_valid_checksum_overflowed_TimeSpan_in_the_stage()
    {
        // A save time of -10^15 ms: the stage computed its age as TimeSpan.FromMilliseconds(now - savedAt), which throws
        // ArgumentOutOfRangeException past the stage. Load now names it as damage, which sets the file aside.
        Directory.CreateDirectory(_dir.FullName);
        await using (var file = File.Create(StatePath))
        {
            await AnomalyStateFile.WriteAsync(file, -1_000_000_000_000_000, [], TestContext.Current.CancellationToken);
        }

        var ex = Assert.Throws<InvalidDataException>(() => AnomalyStateFile.Load(StatePath));

        Assert.Equal("saved at -1000000000000000 ms since 1970, not a time", ex.Message);
    }
}
