using System.Collections.Concurrent;
using System.Globalization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Line;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Tests.Shared;
using EdgeTwin.Twin.Line;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary>
/// The agent's side of the line twin's state (<c>line.state</c>): a real file next to the outbox, checkpoints on the
/// clock, the save at stop, a corrupt or unwritable file, the config keys.
/// </summary>
public sealed class LineStateStageTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-linestatestage-");
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 30, 7, 0, 0, TimeSpan.Zero));
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();

    public void Dispose() => _dir.Delete(recursive: true);

    private string StatePath => Path.Combine(_dir.FullName, LineStateStage.FileName);

    private const string Yaml = """
        line:
          id: l1
          shift: { length: 8h, starts: ["06:00", "14:00", "22:00"] }
          buffers: [{ id: B1, capacity: 10 }]
          stations:
            - { id: S1, ideal_cycle_time: 30s, mtbf: 2h, mttr: 10m, output: B1, signals: { state: { device: p1, metric: state, map: { 0: idle, 1: running, 4: faulted } }, good: { device: p1, metric: good } } }
            - { id: S2, ideal_cycle_time: 30s, inputs: [B1], signals: { state: { device: p2, metric: state, map: { 0: idle, 1: running, 4: faulted } }, good: { device: p2, metric: good } } }
        """;

    private static LineTwinConfig Config(string yaml = Yaml)
    {
        var d = new ConfigDiagnostics();
        var config = LineTwinConfig.Parse(yaml, "site.yaml", d);
        Assert.Empty(d.Items);
        return config!;
    }

    private static SeriesRegistry Registry()
    {
        var registry = new SeriesRegistry();
        foreach (var device in new[] { "p1", "p2" })
        {
            registry.GetOrAdd(new SeriesDescriptor(device, "state", "1", MetricKind.State));
            registry.GetOrAdd(new SeriesDescriptor(device, "good", "1", MetricKind.Counter));
        }

        return registry;
    }

    private (LineStateStage Stage, LineTwinStage Line) NewStage(string? path = null, TimeProvider? time = null, string yaml = Yaml)
    {
        var line = new LineTwinStage(Config(yaml), Registry(), new NullSink(), NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(1));
        return (new LineStateStage(line, "l1", path ?? StatePath, TimeSpan.FromMinutes(1), time ?? _clock, new ListLogger<LineStateStage>(_logs)), line);
    }

    private sealed class NullSink : IEventSink
    {
        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    // Ten seconds of both machines running, one part each, at the fake clock's time; the clock moves on.
    private async Task RunFor(LineStateStage stage, TimeSpan span, ulong[] counters)
    {
        for (var end = _clock.GetUtcNow() + span; _clock.GetUtcNow() < end; _clock.Advance(TimeSpan.FromSeconds(10)))
        {
            long t = _clock.GetUtcNow().ToUnixTimeMilliseconds();
            counters[0] += 1;
            counters[1] += 1;
            await stage.ProcessAsync(new Sample[] { new(new SeriesId(0), t, 1), new(new SeriesId(1), t, counters[0]), new(new SeriesId(2), t, 1), new(new SeriesId(3), t, counters[1]) }, CancellationToken.None);

            // A checkpoint's write runs in the background and reads the clock when it fails or succeeds: the fake clock
            // must not move 10 s a step under it (a real write takes milliseconds). Without this, on a loaded CI machine
            // the outage read "58m 0s" instead of "59m 0s".
            await stage.PendingWrite;
        }
    }

    private long Good(LineTwinStage line) => long.Parse(line.State(_clock.GetUtcNow().ToUnixTimeMilliseconds())["good"], CultureInfo.InvariantCulture);

    [Fact]
    public async Task Checkpoints_on_the_clock_and_the_save_at_stop_let_the_next_start_go_on()
    {
        var counters = new ulong[] { 1000, 2000 };
        var (stage, line) = NewStage();
        Assert.Contains(_logs, l => l.Message.Contains("no saved state at", StringComparison.Ordinal));
        await RunFor(stage, TimeSpan.FromSeconds(50), counters);
        Assert.False(File.Exists(StatePath)); // the first checkpoint is a minute after the start
        await RunFor(stage, TimeSpan.FromSeconds(20), counters);
        await stage.PendingWrite;
        Assert.True(File.Exists(StatePath));
        var checkpoint = File.ReadAllBytes(StatePath);

        await RunFor(stage, TimeSpan.FromSeconds(30), counters);
        await stage.FlushAsync(CancellationToken.None);
        Assert.NotEqual(checkpoint, File.ReadAllBytes(StatePath));
        Assert.Contains(_logs, l => l.Level == LogLevel.Information && l.Message.Contains("state saved to " + StatePath, StringComparison.Ordinal));
        var good = Good(line);
        Assert.True(good >= 9, $"good {good}");

        // The next start (30 s later; three parts made meanwhile) goes on: the books and their parts.
        _clock.Advance(TimeSpan.FromSeconds(30));
        counters[1] += 3;
        var (next, nextLine) = NewStage();
        Assert.Contains(_logs, l => l.Message.Contains("state read from " + StatePath, StringComparison.Ordinal) && l.Message.Contains("the shift's books go on from it", StringComparison.Ordinal) && l.Message.Contains("learned figures kept for S1, S2", StringComparison.Ordinal));
        await RunFor(next, TimeSpan.FromSeconds(10), counters);
        Assert.Equal(good + 3 + 1, Good(nextLine));
    }

    [Fact]
    public async Task Regression_a_backward_clock_step_of_a_day_held_the_line_checkpoints_for_a_day()
    {
        // A gateway that booted a day ahead, then synced: with the schedule on the wall clock ("now >= next checkpoint")
        // no checkpoint came for a day, and a power cut in it lost a day of the line's books and learning. The samples
        // are stamped with the stepped wall clock, as the pollers stamp them.
        var clock = new SteppableClock(_clock);
        var (stage, line) = NewStage(time: clock);
        var counters = new ulong[] { 1000, 2000 };
        async Task Run(int seconds)
        {
            for (var s = 0; s < seconds; s += 10, _clock.Advance(TimeSpan.FromSeconds(10)))
            {
                long t = clock.GetUtcNow().ToUnixTimeMilliseconds();
                counters[0] += 1;
                counters[1] += 1;
                await stage.ProcessAsync(new Sample[] { new(new SeriesId(0), t, 1), new(new SeriesId(1), t, counters[0]), new(new SeriesId(2), t, 1), new(new SeriesId(3), t, counters[1]) }, CancellationToken.None);
            }
        }

        await Run(70);
        await stage.PendingWrite;
        Assert.True(File.Exists(StatePath));
        File.Delete(StatePath);

        clock.Step(TimeSpan.FromDays(-1));
        await Run(70);
        await stage.PendingWrite;
        Assert.True(File.Exists(StatePath), "no checkpoint a minute after a step back of a day");
        Assert.True(long.Parse(line.State(clock.GetUtcNow().ToUnixTimeMilliseconds())["good"], CultureInfo.InvariantCulture) >= 12);
    }

    [Fact]
    public async Task Regression_a_line_state_of_another_format_was_written_over_by_the_first_checkpoint()
    {
        // A rollback over a newer build's line-state.bin (format 4 here): this build cannot take it ("everything starts
        // afresh", as before) but no longer writes over it without keeping it: the newer build's books and learning stay.
        var counters = new ulong[] { 1000, 2000 };
        var (stage, _) = NewStage();
        await RunFor(stage, TimeSpan.FromSeconds(30), counters);
        await stage.FlushAsync(CancellationToken.None);
        var bytes = File.ReadAllBytes(StatePath);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan("EDGETWIN-LINE-STATE\n"u8.Length), 4);
        System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).CopyTo(bytes.AsSpan(bytes.Length - 32));
        File.WriteAllBytes(StatePath, bytes);

        _logs.Clear();
        var (next, _) = NewStage();
        var kept = StatePath + ".other-build";
        Assert.Contains(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains($"line l1: {StatePath} was written by another agent build", StringComparison.Ordinal) && l.Message.Contains("a copy is kept as " + kept, StringComparison.Ordinal));
        Assert.Contains(_logs, l => l.Message.Contains("written in format 4, this agent reads formats 2 and 3", StringComparison.Ordinal));
        await RunFor(next, TimeSpan.FromSeconds(10), counters);
        await next.FlushAsync(CancellationToken.None);
        Assert.Equal(bytes, File.ReadAllBytes(kept));
        Assert.NotEqual(bytes, File.ReadAllBytes(StatePath));

        // This build's own file, read again, raises nothing of the kind.
        _logs.Clear();
        NewStage();
        Assert.DoesNotContain(_logs, l => l.Message.Contains("another agent build", StringComparison.Ordinal));
    }

    // A FieldStateCodec layout description: i32 types; each name, kind (0 scalar, 1 string, 2 array, 3 list, 4 struct,
    // 5 object), scalar code, size, element type, i32 fields, each (name, type name).
    private sealed record Described(string Name, byte Kind, byte Code, byte Size, string Element, List<(string Name, string Type)> Fields);

    private static List<Described> ParseDescription(byte[] bytes)
    {
        using var d = new BinaryReader(new MemoryStream(bytes));
        return [.. Enumerable.Range(0, d.ReadInt32()).Select(_ => new Described(d.ReadString(), d.ReadByte(), d.ReadByte(), d.ReadByte(), d.ReadString(),
            [.. Enumerable.Range(0, d.ReadInt32()).Select(_ => (d.ReadString(), d.ReadString()))]))];
    }

    private static byte[] DescriptionBytes(List<Described> types)
    {
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write(types.Count);
            foreach (var t in types)
            {
                w.Write(t.Name);
                w.Write(t.Kind);
                w.Write(t.Code);
                w.Write(t.Size);
                w.Write(t.Element);
                w.Write(t.Fields.Count);
                foreach (var (name, type) in t.Fields)
                {
                    w.Write(name);
                    w.Write(type);
                }
            }
        }

        return ms.ToArray();
    }

    // Copies one saved value of `type`, leaving out the bytes of the field `drop` (declaring type, field) wherever it is.
    private static void CopyValue(BinaryReader r, BinaryWriter w, Dictionary<string, Described> types, string type, (string Type, string Field) drop, bool keep = true)
    {
        var t = types[type];
        void Bytes(int n)
        {
            var b = r.ReadBytes(n);
            if (keep) w.Write(b);
        }

        switch (t.Kind)
        {
            case 0:
                Bytes(t.Size);
                break;
            case 1:
                var present = r.ReadBoolean();
                if (keep) w.Write(present);
                if (present)
                {
                    var text = r.ReadString();
                    if (keep) w.Write(text);
                }

                break;
            case 2 or 3:
                var n = r.ReadInt32();
                if (keep) w.Write(n);
                for (var i = 0; i < n; i++) CopyValue(r, w, types, t.Element, drop, keep);
                break;
            case 4 or 5:
                if (t.Kind == 5)
                {
                    var has = r.ReadBoolean();
                    if (keep) w.Write(has);
                    if (!has) break;
                }

                foreach (var (name, fieldType) in t.Fields) CopyValue(r, w, types, fieldType, drop, keep && (t.Name, name) != drop);
                break;
        }
    }

    /// <summary>
    /// This build's line state as the build before <c>OeeTracker._goodSinceRejectMoved</c> was added wrote it: the books
    /// block's layout without the field (another fingerprint, the description and every tracker's bytes without it).
    /// </summary>
    private static byte[] AsWrittenBeforeGoodSinceRejectMoved(byte[] file, int stations, int buffers)
    {
        const string Tracker = "EdgeTwin.Twin.Line.Oee.OeeTracker";
        var drop = (Tracker, "_goodSinceRejectMoved");
        using var r = new BinaryReader(new MemoryStream(file[..^32]));
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(r.ReadBytes("EDGETWIN-LINE-STATE\n"u8.Length));
        Assert.Equal(3, r.ReadInt32());
        w.Write(3);
        w.Write(r.ReadInt64());
        w.Write(r.ReadString());
        r.ReadBytes(32);
        w.Write(System.Security.Cryptography.SHA256.HashData("the build before"u8));
        var described = ParseDescription(r.ReadBytes(r.ReadInt32()));
        var types = described.ToDictionary(t => t.Name);
        var before = ParseDescription(DescriptionBytes(described));
        Assert.Equal(1, before.Single(t => t.Name == Tracker).Fields.RemoveAll(f => f.Name == drop.Item2));
        var oldDescription = DescriptionBytes(before);
        w.Write(oldDescription.Length);
        w.Write(oldDescription);
        w.Write(r.ReadString());
        var block = r.ReadBytes(r.ReadInt32());
        using var br = new BinaryReader(new MemoryStream(block));
        var bms = new MemoryStream();
        var bw = new BinaryWriter(bms);
        bw.Write(br.ReadBytes(36 + (8 * stations) + (12 * buffers))); // shift start, its kind, books from, publish, forecast, per station and buffer
        foreach (var root in Enumerable.Repeat(Tracker, stations).Append("EdgeTwin.Twin.Line.Oee.LineOeeTracker").Append("EdgeTwin.Twin.Line.ActivePeriodBottleneck").Append("EdgeTwin.Twin.Line.Oee.PlannedStopCalendar"))
        {
            foreach (var (name, fieldType) in types[root].Fields) CopyValue(br, bw, types, fieldType, drop, (root, name) != drop);
        }

        Assert.Equal(block.Length, br.BaseStream.Position);
        bw.Flush();
        w.Write((int)bms.Length);
        w.Write(bms.ToArray());
        w.Write(r.ReadBytes((int)(r.BaseStream.Length - r.BaseStream.Position))); // the stations' blocks, as they were
        w.Flush();
        var body = ms.ToArray();
        return [.. body, .. System.Security.Cryptography.SHA256.HashData(body)];
    }

    [Fact]
    public async Task Regression_an_upgrade_that_added_one_OEE_field_restarted_the_shifts_books()
    {
        // Measured: the upgrade that added OeeTracker._goodSinceRejectMoved changed the books' layout fingerprint, so the
        // shift's books were "kept by an agent build that saves the books differently" and the shift's OEE restarted from
        // zero at the deploy. Now a build whose classes only gained a field takes the books over.
        var counters = new ulong[] { 1000, 2000 };
        var (stage, line) = NewStage();
        await RunFor(stage, TimeSpan.FromMinutes(30), counters);
        await stage.FlushAsync(CancellationToken.None);
        var good = Good(line);
        Assert.True(good > 100, $"good {good}");
        var previous = AsWrittenBeforeGoodSinceRejectMoved(File.ReadAllBytes(StatePath), stations: 2, buffers: 1);
        File.WriteAllBytes(StatePath, previous);

        _logs.Clear();
        var (next, upgraded) = NewStage();
        Assert.Contains(_logs, l => l.Level == LogLevel.Information
            && l.Message.Contains($"line l1: {StatePath} was written by another agent build whose classes differ only by fields (OeeTracker: new _goodSinceRejectMoved): taken over", StringComparison.Ordinal)
            && l.Message.Contains("a copy is kept as " + StatePath + ".other-build", StringComparison.Ordinal));
        Assert.Contains(_logs, l => l.Message.Contains("the shift's books go on from it; learned figures kept for S1, S2", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Warning);
        Assert.Equal(good, Good(upgraded));
        await RunFor(next, TimeSpan.FromMinutes(1), counters);
        Assert.True(Good(upgraded) > good, $"good {Good(upgraded)} after {good}");
        await next.FlushAsync(CancellationToken.None);
        Assert.Equal(previous, File.ReadAllBytes(StatePath + ".other-build"));

        // The file this build wrote is its own: read again, nothing of another build.
        _logs.Clear();
        NewStage();
        Assert.DoesNotContain(_logs, l => l.Message.Contains("another agent build", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Books_taken_over_from_a_build_with_other_fields_still_start_afresh_when_a_cycle_time_changed()
    {
        // The books' configuration part hashed from the trackers' bytes cannot be compared across layouts; the
        // trackers' read-only cycle time is still checked by the codec.
        var counters = new ulong[] { 1000, 2000 };
        var (stage, _) = NewStage();
        await RunFor(stage, TimeSpan.FromMinutes(5), counters);
        await stage.FlushAsync(CancellationToken.None);
        File.WriteAllBytes(StatePath, AsWrittenBeforeGoodSinceRejectMoved(File.ReadAllBytes(StatePath), stations: 2, buffers: 1));

        _logs.Clear();
        var (_, upgraded) = NewStage(yaml: Yaml.Replace("{ id: S1, ideal_cycle_time: 30s", "{ id: S1, ideal_cycle_time: 25s", StringComparison.Ordinal));
        Assert.Contains(_logs, l => l.Message.Contains("the shift's books start afresh (its saved state does not fit: OeeTracker._idealCycle: saved 30, the configuration now gives 25)", StringComparison.Ordinal));
        Assert.Contains(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains("state not kept for S1: figures changed in the configuration", StringComparison.Ordinal));
        Assert.Equal(0, Good(upgraded));
    }

    [Fact]
    public async Task A_corrupt_state_file_is_set_aside_and_the_next_save_writes_a_good_one()
    {
        await File.WriteAllTextAsync(StatePath, "EDGETWIN-LINE-STATE\n" + new string('x', 100), TestContext.Current.CancellationToken);
        var (stage, line) = NewStage();
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning);
        Assert.Contains($"line l1: state file {StatePath} is corrupt (checksum mismatch", warning.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(StatePath + ".corrupt"));
        var counters = new ulong[] { 5, 5 };
        await RunFor(stage, TimeSpan.FromSeconds(30), counters);
        await stage.FlushAsync(CancellationToken.None);
        var good = Good(line);

        _logs.Clear();
        var (_, nextLine) = NewStage();
        Assert.DoesNotContain(_logs, l => l.Level >= LogLevel.Warning);
        Assert.Equal(good, Good(nextLine));
    }

    [Fact]
    public async Task Regression_a_line_state_write_failing_for_a_new_cause_was_not_logged()
    {
        // One warning per episode was right for one cause, but a second cause in the same episode (the directory gone,
        // then the file system full or read-only) was never said. Over a simulated hour of checkpoints a minute apart:
        // one warning per cause, with its stack once, and the recovery with how long and how many.
        var blocker = Path.Combine(_dir.FullName, "not-a-directory");
        await File.WriteAllTextAsync(blocker, "", TestContext.Current.CancellationToken);
        var path = Path.Combine(blocker, LineStateStage.FileName);
        var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        var line = new LineTwinStage(Config(), Registry(), new NullSink(), NullLogger<LineTwinStage>.Instance, TimeSpan.FromMinutes(1));
        var stage = new LineStateStage(line, "l1", path, TimeSpan.FromMinutes(1), _clock, new ListLogger<LineStateStage>(logs));
        var counters = new ulong[] { 5, 5 };
        for (var i = 0; i < 30; i++)
        {
            await RunFor(stage, TimeSpan.FromMinutes(1), counters);
            await stage.PendingWrite;
        }

        // Another cause: the directory is there now, but the temp file's name is taken by a directory.
        File.Delete(blocker);
        Directory.CreateDirectory(path + ".tmp");
        for (var i = 0; i < 30; i++)
        {
            await RunFor(stage, TimeSpan.FromMinutes(1), counters);
            await stage.PendingWrite;
        }

        var warnings = logs.Where(l => l.Level == LogLevel.Warning).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, w => Assert.Contains($"line l1: cannot write state file {path}", w.Message, StringComparison.Ordinal));
        Assert.NotEqual(warnings[0].Message, warnings[1].Message);
        Assert.NotNull(warnings[0].Exception);

        Directory.Delete(path + ".tmp");
        await RunFor(stage, TimeSpan.FromMinutes(1), counters);
        await stage.PendingWrite;
        var back = Assert.Single(logs, l => l.Message.Contains("written again", StringComparison.Ordinal));
        Assert.EndsWith($"{path} written again after 59m 0s of failed writes (59 failed)", back.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_state_file_that_cannot_be_written_is_said_once_and_the_line_twin_goes_on()
    {
        var blocker = Path.Combine(_dir.FullName, "not-a-directory");
        await File.WriteAllTextAsync(blocker, "", TestContext.Current.CancellationToken);
        var path = Path.Combine(blocker, LineStateStage.FileName);
        var (stage, line) = NewStage(path);
        var counters = new ulong[] { 5, 5 };
        for (var i = 0; i < 3; i++)
        {
            await RunFor(stage, TimeSpan.FromSeconds(70), counters);
            await stage.PendingWrite;
        }

        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning);
        Assert.Contains($"line l1: cannot write state file {path}", warning.Message, StringComparison.Ordinal);
        Assert.Contains("no state has been written yet", warning.Message, StringComparison.Ordinal);
        Assert.True(Good(line) >= 20);

        // The disk comes back: said once.
        File.Delete(blocker);
        await RunFor(stage, TimeSpan.FromSeconds(70), counters);
        await stage.PendingWrite;
        Assert.Contains(_logs, l => l.Message.Contains("written again", StringComparison.Ordinal));
        Assert.True(File.Exists(path));
    }

    [Fact]
    public async Task The_state_section_is_checked_and_the_file_is_kept_next_to_the_outbox()
    {
        var d = new ConfigDiagnostics();
        LineTwinConfig.Parse(Yaml + "\n  state:\n    checkpoint_interval: 2h\n    fille: x\n    file: ''\n", "site.yaml", d);
        Assert.Contains(d.Items, p => p.Path == "line.state.checkpoint_interval" && p.Line == 9 && p.Message.Contains("at most 1h", StringComparison.Ordinal));
        Assert.Contains(d.Items, p => p.Path == "line.state.fille" && p.Line == 10);
        Assert.Contains(d.Items, p => p.Path == "line.state.file" && p.Line == 11 && p.Message.Contains("must name a file", StringComparison.Ordinal));
        d = new ConfigDiagnostics();
        LineTwinConfig.Parse(Yaml + "\n  state: { checkpoint_interval: 1s }\n", "site.yaml", d);
        Assert.Contains(d.Items, p => p.Path == "line.state.checkpoint_interval" && p.Message.Contains("at least 10s", StringComparison.Ordinal));

        async Task<ISampleStage> Registered(string line)
        {
            var parsed = SiteConfigLoader.Parse("site: { id: s1, gateway_id: g1 }\ndevices: []\n" + line, "site.yaml", new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) });
            Assert.True(parsed.Config is not null, string.Join("; ", parsed.Problems));
            var site = parsed.Config;
            var services = new ServiceCollection().AddSingleton(site).AddLogging();
            services.AddSingleton(new AgentRuntime(site, new SeriesRegistry(), _clock));
            services.AddSingleton(new EdgeTwin.Agent.StoreAndForward.StoreAndForwardOptions { OutboxPath = Path.Combine(_dir.FullName, "outbox.db") });
            services.AddLineTwin(site);
            await using var provider = services.BuildServiceProvider();
            return provider.GetServices<SampleStageRegistration>().Single().Create(provider);
        }

        // Devices the site does not have are refused by the site's validator: a line without signals is enough here.
        const string Bare = "line:\n  id: l1\n  buffers: [{ id: B1, capacity: 10 }]\n  stations:\n    - { id: S1, ideal_cycle_time: 30s, output: B1 }\n    - { id: S2, ideal_cycle_time: 30s, inputs: [B1] }";
        var kept = Assert.IsType<LineStateStage>(await Registered(Bare));
        Assert.Equal("line-twin", kept.Name);
        Assert.Equal(StatePath, kept.StatePath);
        // A relative file is taken from the outbox's directory (the config's, /etc/edgetwin, is read-only under the unit).
        kept = Assert.IsType<LineStateStage>(await Registered(Bare + "\n  state: { file: learned/l1.bin }\n"));
        Assert.Equal(Path.Combine(_dir.FullName, "learned", "l1.bin"), kept.StatePath);
        // A name ending in '/' is a directory before it exists: created with the first write.
        kept = Assert.IsType<LineStateStage>(await Registered(Bare + "\n  state: { file: new-dir/ }\n"));
        Assert.Equal(Path.Combine(_dir.FullName, "new-dir", LineStateStage.FileName), kept.StatePath);
        Assert.IsType<LineTwinStage>(await Registered(Bare + "\n  state: { enabled: false }\n"));
        Assert.False(File.Exists(StatePath)); // nothing is written before the first checkpoint
    }

    [Theory]
    [InlineData("outbox.db", "LiteDB")]
    [InlineData("edgetwin.yaml", "site: { id: s1 }\n")]
    [InlineData("alerts.journal", "")]
    public async Task Regression_a_state_file_named_like_another_file_set_that_file_aside_and_wrote_over_it(string name, string content)
    {
        // `line.state.file: outbox.db` used to rename the open outbox to .corrupt at start and write the line state over it.
        var path = Path.Combine(_dir.FullName, name);
        await File.WriteAllTextAsync(path, content, TestContext.Current.CancellationToken);
        var (stage, line) = NewStage(path);
        var error = Assert.Single(_logs, l => l.Level == LogLevel.Error);
        Assert.Contains($"line l1: line.state.file {path} is not a line state file", error.Message, StringComparison.Ordinal);
        Assert.Contains("not read, not written", error.Message, StringComparison.Ordinal);
        Assert.Null(stage.StatePath);

        var counters = new ulong[] { 5, 5 };
        await RunFor(stage, TimeSpan.FromMinutes(3), counters);
        await stage.PendingWrite;
        await stage.FlushAsync(CancellationToken.None);
        Assert.Equal(content, await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken));
        Assert.Empty(_dir.GetFiles(name + ".corrupt*"));
        Assert.True(Good(line) > 0); // the line twin itself goes on
    }

    [Fact]
    public async Task An_earlier_corrupt_file_is_kept_when_another_is_set_aside()
    {
        await File.WriteAllTextAsync(StatePath + ".corrupt", "first", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(StatePath, "EDGETWIN-LINE-STATE\n" + new string('y', 100), TestContext.Current.CancellationToken);
        NewStage();
        Assert.Equal("first", await File.ReadAllTextAsync(StatePath + ".corrupt", TestContext.Current.CancellationToken));
        Assert.Single(_dir.GetFiles(LineStateStage.FileName + ".corrupt-*"));
    }
}
