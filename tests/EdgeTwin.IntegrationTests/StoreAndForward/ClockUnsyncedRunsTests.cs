using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeTwin.IntegrationTests.Docs;
using Json.Schema;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Outbox;
using EdgeTwin.Sensors.Host;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// A gateway without RTC whose agent runs more than once before NTP syncs (power cut, watchdog, upgrade): the whole agent
/// (sources, summaries, LiteDB outbox) on one state directory, a wall clock the test steps and a kernel clock state the
/// test sets. The entries every run stamped before the sync are reported to the centre, with the step where it is known.
/// </summary>
public sealed class ClockUnsyncedRunsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_entries_of_an_earlier_run_before_the_clock_sync_were_left_unmarked()
    {
        // Run 1 stamped its summaries 5 h early and lost power before NTP synced; run 2 saw the step and named only its
        // own entries: the centre kept run 1's at the wrong time with nothing to say so.
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockruns-");
        try
        {
            var clock = new OffsetClock(TimeSpan.FromHours(-5));
            var kernel = new FakeKernelClock();
            var run1 = await RunUnsynchronisedAsync(dir.FullName, clock, kernel, "boot-1");
            Assert.True(File.Exists(Path.Combine(dir.FullName, UnsyncedRunsFile.FileName)), "run 1's range is kept across the restart");

            // The power was cut: fake-hwclock's time again; then NTP's first sync.
            var (entries, run2First) = await RunUntilSteppedAsync(dir.FullName, clock, kernel, "boot-2", () => StepAndSync(clock, kernel));

            var stepped = Assert.Single(entries, IsClockStepped);
            AssertFitsTheSchema(stepped);
            var a = Attributes(stepped);
            Assert.InRange(long.Parse(a["step_ms"], CultureInfo.InvariantCulture), 18_000_000 - 200, 18_000_000 + 200);
            Assert.Equal(run2First, long.Parse(a["first_seq"], CultureInfo.InvariantCulture));
            // One range for run 1: the file goes on from its last sequence, so it ends just below run 2's first. Its clock
            // (another boot's) is not known: not moved by step_ms.
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"{run1.First}-{run2First - 1}"), a["earlier_seqs"]);
            Assert.All(run1.Sequences, s => Assert.InRange(s, run1.First, run2First - 1));
            Assert.Contains("offset not known", Body(stepped).GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_clock_synchronised_while_the_agent_was_stopped_names_the_earlier_runs_at_the_start_without_a_step()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockruns-");
        try
        {
            var clock = new OffsetClock(TimeSpan.FromHours(-5));
            var kernel = new FakeKernelClock();
            var run1 = await RunUnsynchronisedAsync(dir.FullName, clock, kernel, "boot-1");
            var run2 = await RunUnsynchronisedAsync(dir.FullName, clock, kernel, "boot-2"); // another power cut before the sync

            clock.Step(TimeSpan.FromHours(5)); // NTP synced while the agent was stopped: this run sees no step
            kernel.Synchronized = true;
            var (entries, run3First) = await RunUntilSteppedAsync(dir.FullName, clock, kernel, "boot-3", sync: null);

            var stepped = Assert.Single(entries, IsClockStepped);
            AssertFitsTheSchema(stepped);
            var a = Attributes(stepped);
            Assert.Equal("synchronized_while_stopped", a["reason"]);
            Assert.Equal("true", a["synchronized_after"]);
            Assert.False(a.ContainsKey("step_ms"), "the offset of an earlier run is not known: no step is made up");
            Assert.False(a.ContainsKey("first_seq"), "this run stamped nothing by an unsynchronised clock");
            // Both earlier runs, each its own range (their clocks, of two boots, may differ); run 2 went on where run 1 stopped.
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"{run1.First}-{run2.First - 1},{run2.First}-{run3First - 1}"), a["earlier_seqs"]);
            Assert.All(run1.Sequences, s => Assert.InRange(s, run1.First, run2.First - 1));
            Assert.All(run2.Sequences, s => Assert.InRange(s, run2.First, run3First - 1));
            Assert.True(stepped.Sequence >= run3First);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_restart_in_the_same_boot_before_the_sync_is_moved_by_the_step_with_the_run_after_it()
    {
        // The watchdog (or an upgrade) restarted the agent before NTP synced: the monotonic clock ran on, the wall clock was
        // not stepped between, so both runs stamped by one old clock and the step seen in the second moves both.
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockruns-");
        try
        {
            var clock = new OffsetClock(TimeSpan.FromHours(-5));
            var kernel = new FakeKernelClock();
            var run1 = await RunUnsynchronisedAsync(dir.FullName, clock, kernel, "boot-1");
            var (entries, run2First) = await RunUntilSteppedAsync(dir.FullName, clock, kernel, "boot-1", () => StepAndSync(clock, kernel));

            var stepped = Assert.Single(entries, IsClockStepped);
            AssertFitsTheSchema(stepped);
            var a = Attributes(stepped);
            Assert.InRange(long.Parse(a["step_ms"], CultureInfo.InvariantCulture), 18_000_000 - 200, 18_000_000 + 200);
            Assert.Equal(run1.First, long.Parse(a["first_seq"], CultureInfo.InvariantCulture));
            Assert.True(long.Parse(a["last_seq"], CultureInfo.InvariantCulture) > run2First);
            Assert.False(a.ContainsKey("earlier_seqs"));
            Assert.False(a.ContainsKey("reason"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_step_while_the_agent_was_stopped_in_the_same_boot_is_measured_at_the_next_start()
    {
        // The agent crashed before the sync and NTP stepped the clock while systemd restarted it: the new run sees no step,
        // but wall minus monotonic moved by it since the earlier run of this boot.
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockruns-");
        try
        {
            var clock = new OffsetClock(TimeSpan.FromHours(-5));
            var kernel = new FakeKernelClock();
            var run1 = await RunUnsynchronisedAsync(dir.FullName, clock, kernel, "boot-1");
            clock.Step(TimeSpan.FromHours(5));
            kernel.Synchronized = true;
            var (entries, run2First) = await RunUntilSteppedAsync(dir.FullName, clock, kernel, "boot-1", sync: null);

            var stepped = Assert.Single(entries, IsClockStepped);
            AssertFitsTheSchema(stepped);
            var a = Attributes(stepped);
            Assert.Equal("stepped_while_stopped", a["reason"]);
            Assert.InRange(long.Parse(a["step_ms"], CultureInfo.InvariantCulture), 18_000_000 - 200, 18_000_000 + 200);
            Assert.Equal(run1.First, long.Parse(a["first_seq"], CultureInfo.InvariantCulture));
            Assert.Equal(run2First - 1, long.Parse(a["last_seq"], CultureInfo.InvariantCulture));
            Assert.All(run1.Sequences, s => Assert.InRange(s, run1.First, run2First - 1));
            Assert.False(a.ContainsKey("earlier_seqs"));
            var wallAfter = DateTimeOffset.Parse(a["wall_after"], CultureInfo.InvariantCulture);
            var wallBefore = DateTimeOffset.Parse(a["wall_before"], CultureInfo.InvariantCulture);
            Assert.Equal(long.Parse(a["step_ms"], CultureInfo.InvariantCulture), (long)(wallAfter - wallBefore).TotalMilliseconds);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Where_the_unit_may_not_read_the_kernel_clock_timesyncds_marker_tells_the_sync()
    {
        // The role's unit without a host device has ProtectClock=yes: adjtimex(2) fails with EPERM even for a read, so the
        // kernel's state is unknown and no run was recorded as unsynchronised. timesyncd's /run marker tells it instead.
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockruns-");
        try
        {
            var clock = new OffsetClock(TimeSpan.FromHours(-5));
            var kernel = new FakeKernelClock { Denied = true };
            var timesync = Directory.CreateDirectory(Path.Combine(dir.FullName, "run-systemd-timesync")).FullName; // timesyncd runs, not synced yet
            var run1First = (await RunUnsynchronisedAsync(dir.FullName, clock, kernel, "boot-1", timesync)).First;
            var (entries, run2First) = await RunUntilSteppedAsync(dir.FullName, clock, kernel, "boot-2", () =>
            {
                clock.Step(TimeSpan.FromHours(5));
                File.WriteAllText(Path.Combine(timesync, "synchronized"), "");
            }, timesync: timesync);

            var stepped = Assert.Single(entries, IsClockStepped);
            AssertFitsTheSchema(stepped);
            var a = Attributes(stepped);
            Assert.Equal("false", a["synchronized_before"]);
            Assert.Equal("true", a["synchronized_after"]);
            Assert.Equal(run2First, long.Parse(a["first_seq"], CultureInfo.InvariantCulture));
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"{run1First}-{run2First - 1}"), a["earlier_seqs"]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task An_unwritable_state_directory_still_runs_and_names_this_runs_range()
    {
        var parent = Directory.CreateTempSubdirectory("edgetwin-clockruns-ro-");
        try
        {
            var clock = new OffsetClock(TimeSpan.FromHours(-5));
            var kernel = new FakeKernelClock();
            var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
            using var mount = ReadOnlyBindMount.Create(parent.FullName);
            var (entries, runFirst) = await RunUntilSteppedAsync(mount.Dir, clock, kernel, "boot-1", () => StepAndSync(clock, kernel), logs: logs);

            var stepped = Assert.Single(entries, IsClockStepped);
            AssertFitsTheSchema(stepped);
            var a = Attributes(stepped);
            Assert.Equal(runFirst, long.Parse(a["first_seq"], CultureInfo.InvariantCulture));
            Assert.True(long.Parse(a["last_seq"], CultureInfo.InvariantCulture) > runFirst);
            Assert.False(a.ContainsKey("earlier_seqs"));
            Assert.Contains(logs, l => l.Level == LogLevel.Error && l.Message.Contains(UnsyncedRunsFile.FileName + " cannot be written", StringComparison.Ordinal));
        }
        finally
        {
            parent.Delete(recursive: true);
        }
    }

    private sealed record Run(long First, IReadOnlyList<long> Sequences);

    // One run that stops before NTP syncs (the agent is stopped as the power cut or the watchdog would).
    private static async Task<Run> RunUnsynchronisedAsync(string dir, OffsetClock clock, FakeKernelClock kernel, string boot, string? timesync = null)
    {
        kernel.Synchronized = false;
        using var host = Build(dir, clock, kernel, boot, timesync: timesync);
        await host.StartAsync(Ct);
        var outbox = host.Services.GetRequiredService<StoreAndForwardService>().Outbox;
        var first = outbox.GetStats().RunFirstSequence;
        await Until(() => outbox.GetStats().LastSequence > first + 2, "entries under the unsynchronised clock");
        var entries = await outbox.ReadFromAsync(first - 1, 100_000, Ct);
        Assert.DoesNotContain(entries, IsClockStepped);
        await host.StopAsync(Ct);
        return new Run(first, [.. entries.Select(e => e.Sequence)]);
    }

    // One run until its clock_stepped event is stored and the state file cleared: sync (when given) steps or synchronises
    // the clock once the run has entries under the old one; without it the event is expected at the start. The outbox's
    // entries then, and this run's first sequence.
    private static async Task<(List<OutboxEntry> Entries, long RunFirst)> RunUntilSteppedAsync(
        string dir, OffsetClock clock, FakeKernelClock kernel, string boot, Action? sync, string? timesync = null, ConcurrentQueue<(LogLevel, string)>? logs = null)
    {
        using var host = Build(dir, clock, kernel, boot, logs, timesync);
        await host.StartAsync(Ct);
        var outbox = host.Services.GetRequiredService<StoreAndForwardService>().Outbox;
        var first = outbox.GetStats().RunFirstSequence;
        if (sync is not null)
        {
            await Until(() => outbox.GetStats().LastSequence > first + 2, "this run's entries under the old clock");
            sync();
        }

        await Until(() => Stepped(outbox).Count > 0, "the clock_stepped event in the outbox");
        await Until(() => !File.Exists(Path.Combine(dir, UnsyncedRunsFile.FileName)), "the state file cleared once the event is stored");
        List<OutboxEntry> entries = [.. await outbox.ReadFromAsync(0, 100_000, Ct)];
        await host.StopAsync(Ct);
        return (entries, first);
    }

    // NTP's first sync: the wall clock stepped 5 h forward, the kernel synchronised.
    private static void StepAndSync(OffsetClock clock, FakeKernelClock kernel)
    {
        clock.Step(TimeSpan.FromHours(5));
        kernel.Synchronized = true;
    }

    private static List<OutboxEntry> Stepped(LiteDbOutbox outbox) =>
        [.. outbox.ReadFromAsync(0, 100_000, Ct).AsTask().GetAwaiter().GetResult().Where(IsClockStepped)];

    private static readonly Lazy<JsonSchema> Schema = new(() =>
        JsonSchema.FromFile(Path.Combine(ReadmeSnippets.RepoRoot(), "src", "EdgeTwin.Uplink", "schema", "uplink-message.v1.schema.json")));

    // The event as the uplinks send it (the body verbatim in an envelope) satisfies the contract the centre codes against.
    private static void AssertFitsTheSchema(OutboxEntry e)
    {
        var body = JsonNode.Parse(e.Record.Payload.Span)!.AsObject();
        var envelope = new JsonObject
        {
            ["v"] = 1,
            ["site"] = body["site"]!.GetValue<string>(),
            ["gateway"] = body["gateway"]!.GetValue<string>(),
            ["seq"] = e.Sequence,
            ["kind"] = "event",
            ["device"] = body["device"]!.GetValue<string>(),
            ["time"] = DateTimeOffset.FromUnixTimeMilliseconds(e.Record.TimestampUnixMs).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["historical"] = false,
            ["body"] = body,
        };
        var result = Schema.Value.Evaluate(envelope, new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, string.Join('\n', result.Details.Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(x => $"{d.InstanceLocation}: {x.Key}: {x.Value}"))) + "\n" + body.ToJsonString());
    }

    private static bool IsClockStepped(OutboxEntry e) =>
        e.Record.Kind == OutboxKind.Event && Body(e).GetProperty("event").GetString() == "clock_stepped";

    private static JsonElement Body(OutboxEntry e) => JsonDocument.Parse(e.Record.Payload).RootElement.Clone();

    private static Dictionary<string, string> Attributes(OutboxEntry e) =>
        Body(e).GetProperty("attributes").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);

    private static IHost Build(string dir, TimeProvider clock, FakeKernelClock kernel, string boot, ConcurrentQueue<(LogLevel, string)>? logs = null, string? timesync = null)
    {
        var config = AgentFiles.Load(AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 200ms, timeout: 100ms }
            """));
        return AgentHostBuilder.Build(config, new AgentHostOptions
        {
            DiscoverSourceFactories = false,
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ShutdownTimeout = TimeSpan.FromSeconds(15),
            TimeProvider = clock,
            KernelClock = kernel.Read,
            BootId = () => boot,
            TimesyncDirectory = timesync ?? Path.Combine(dir, "no-timesyncd"),
            ConfigureLogging = logs is null ? null : b => b.AddProvider(new ListLoggerProvider(logs)),
            ConfigureServices = s => s
                .AddSourceFactory(new ProfileFakeFactory())
                .AddStoreAndForward(new StoreAndForwardOptions
                {
                    SummaryWindow = TimeSpan.FromSeconds(1),
                    FlushInterval = TimeSpan.FromMilliseconds(200),
                    OutboxPath = Path.Combine(dir, "outbox.db"),
                    Uplinks = UplinksConfig.None,
                }),
        });
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(100, Ct);
        }
    }

    /// <summary>The kernel's NTP state as adjtimex(2) gives it: synchronised is a maximum error below the 16 s cap.</summary>
    private sealed class FakeKernelClock
    {
        private volatile bool _synchronized;

        /// <summary>Like ProtectClock=: adjtimex(2) fails with EPERM.</summary>
        public bool Denied { get; init; }

        public bool Synchronized
        {
            get => _synchronized;
            set => _synchronized = value;
        }

        public ClockReading Read() => Denied
            ? throw new IOException("adjtimex(2): EPERM")
            : _synchronized
            ? new ClockReading(0, 0, 20_000)
            : new ClockReading(ClockReading.TimeError, ClockReading.StaUnsync, ClockReading.PhaseLimitMicroseconds);
    }

    /// <summary>The system clock, its wall time offset by what the test steps (CLOCK_REALTIME vs CLOCK_MONOTONIC).</summary>
    private sealed class OffsetClock(TimeSpan offset) : TimeProvider
    {
        private long _offsetTicks = offset.Ticks;

        public void Step(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

        public override DateTimeOffset GetUtcNow() => TimeProvider.System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
    }
}
