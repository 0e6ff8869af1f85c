using System.Diagnostics.Metrics;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Alerting;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Summaries;
using EdgeTwin.Sensors.Host;
using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The agent's wall-clock watch: a gateway without a real-time clock runs on a wrong clock until NTP steps it, and the
/// centre learns which entries to move, and by how much, from a <c>clock_stepped</c> event.
/// </summary>
public sealed class ClockStepWatcherTests : IDisposable
{
    private static readonly ClockReading Unsynchronised = new(ClockReading.TimeError, ClockReading.StaUnsync, ClockReading.PhaseLimitMicroseconds);
    private static readonly ClockReading Synchronised = new(0, 0, 12_000);

    private readonly FakeTimeProvider _inner = new(new DateTimeOffset(2026, 12, 1, 3, 0, 0, TimeSpan.Zero));
    private readonly SteppableClock _clock;
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly ListLogger _log = new();
    private ClockReading _kernel = Unsynchronised;

    public ClockStepWatcherTests() => _clock = new SteppableClock(_inner);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IMeterFactory Meters => _services.GetRequiredService<IMeterFactory>();

    public void Dispose() => _services.Dispose();

    private ClockStepWatcher Watcher(Func<ClockReading>? kernel = null) => new(_clock, Meters, _log, "gw-7", kernel ?? (() => _kernel), () => "boot-1", "/nonexistent/timesync");

    [Fact]
    public void Forward_and_back_steps_are_reported_once_each_with_their_size_a_warning_and_the_counter()
    {
        using var steps = new MetricCollector<long>(Meters, AgentMetrics.MeterName, "edgetwin.clock.steps");
        var watcher = Watcher();
        Assert.Null(watcher.Check(() => null)); // the baseline
        _inner.Advance(ClockStepWatcher.CheckInterval);
        Assert.Null(watcher.Check(() => null));

        // fake-hwclock booted the gateway 5 h behind; NTP's first sync steps it forward between two checks.
        _inner.Advance(TimeSpan.FromSeconds(2));
        _clock.Step(TimeSpan.FromHours(5));
        _kernel = Synchronised;
        _inner.Advance(TimeSpan.FromSeconds(3));
        var forward = watcher.Check(() => null);
        Assert.NotNull(forward);
        Assert.Equal(EdgeEventKind.ClockStepped, forward.Kind);
        Assert.Equal("clock_stepped", forward.Kind.ToWireName());
        Assert.Equal(EventSeverity.Warning, forward.Severity);
        Assert.Equal("clock", forward.Source);
        Assert.Equal("gw-7", forward.Device);
        var a = forward.Attributes!;
        Assert.Equal("18000000", a["step_ms"]);
        var after = _clock.GetUtcNow();
        Assert.Equal(after, forward.Time);
        Assert.Equal(WireTime.Instant(after), a["wall_after"]);
        Assert.Equal(WireTime.Instant(after - TimeSpan.FromHours(5)), a["wall_before"]);
        Assert.Equal("false", a["synchronized_before"]);
        Assert.Equal("true", a["synchronized_after"]);
        Assert.False(a.ContainsKey("first_seq")); // no outbox: no range
        Assert.Contains("stepped forward by 5h 0m", forward.Message, StringComparison.Ordinal);

        _inner.Advance(ClockStepWatcher.CheckInterval);
        Assert.Null(watcher.Check(() => null)); // reported once

        // A manual `date -s` an hour back.
        _clock.Step(TimeSpan.FromHours(-1));
        _inner.Advance(ClockStepWatcher.CheckInterval);
        var back = watcher.Check(() => null);
        Assert.NotNull(back);
        Assert.Equal("-3600000", back.Attributes!["step_ms"]);
        Assert.Equal("true", back.Attributes["synchronized_before"]);
        Assert.Equal(WireTime.Instant(_clock.GetUtcNow() + TimeSpan.FromHours(1)), back.Attributes["wall_before"]);

        Assert.Equal(2, watcher.Steps);
        Assert.Equal(-3_600_000, watcher.LastStep!.StepMs);
        var measured = steps.GetMeasurementSnapshot();
        Assert.Equal(["forward", "back"], measured.Select(m => (string)m.Tags["direction"]!));
        Assert.All(measured, m => Assert.Equal(1, m.Value));
        var warnings = _log.At(LogLevel.Warning).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.Contains("stepped forward by 5h 0m (18000000 ms", warnings[0], StringComparison.Ordinal);
        Assert.Contains("kernel clock not synchronised before, synchronised after", warnings[0], StringComparison.Ordinal);
        Assert.Contains("stepped back by 1h 0m", warnings[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Slewing_never_adds_up_to_a_step_and_steps_within_the_threshold_are_not_reported()
    {
        // A daemon slewing at the kernel's maximum (500 ppm) moves the wall clock 2.5 ms per check, for a day: 43 s in all.
        var watcher = Watcher();
        watcher.Check(() => null);
        var checks = (int)(TimeSpan.FromDays(1) / ClockStepWatcher.CheckInterval);
        for (var i = 0; i < checks; i++)
        {
            _inner.Advance(ClockStepWatcher.CheckInterval);
            _clock.Step(TimeSpan.FromMilliseconds(2.5));
            Assert.Null(watcher.Check(() => null));
        }

        // timesyncd steps from 0.4 s: below the threshold, not reported; just above it, reported.
        _inner.Advance(ClockStepWatcher.CheckInterval);
        _clock.Step(TimeSpan.FromMilliseconds(ClockStepWatcher.ThresholdMs - 100));
        Assert.Null(watcher.Check(() => null));
        _inner.Advance(ClockStepWatcher.CheckInterval);
        _clock.Step(TimeSpan.FromMilliseconds(-(ClockStepWatcher.ThresholdMs + 100)));
        Assert.Equal("-2100", watcher.Check(() => null)!.Attributes!["step_ms"]);
        Assert.Equal(1, watcher.Steps);
    }

    [Fact]
    public void A_pause_that_moves_both_clocks_is_not_a_step()
    {
        // A stop-the-world GC, a loaded CPU or a VM its host suspended: the checks come late, both clocks ran on.
        var watcher = Watcher();
        watcher.Check(() => null);
        foreach (var pause in new[] { TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(40), TimeSpan.FromHours(2) })
        {
            _inner.Advance(pause);
            Assert.Null(watcher.Check(() => null));
        }

        Assert.Equal(0, watcher.Steps);
        Assert.Empty(_log.At(LogLevel.Warning));
    }

    [Fact]
    public void Without_the_kernel_clock_state_the_event_leaves_it_out()
    {
        // The static unit's ProtectClock= denies adjtimex even for a read.
        var watcher = Watcher(() => throw new IOException("adjtimex(2): EPERM"));
        watcher.Check(() => null);
        _clock.Step(TimeSpan.FromDays(3));
        _inner.Advance(ClockStepWatcher.CheckInterval);
        var stepped = watcher.Check(() => null)!;
        Assert.Equal("259200000", stepped.Attributes!["step_ms"]);
        Assert.False(stepped.Attributes.ContainsKey("synchronized_before"));
        Assert.False(stepped.Attributes.ContainsKey("synchronized_after"));
    }

    [Fact]
    public async Task The_event_names_exactly_the_entries_this_run_stamped_by_the_old_clock_in_a_real_outbox()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockstep-");
        try
        {
            var options = new LiteDbOutboxOptions { Path = Path.Combine(dir.FullName, "outbox.db"), Identity = new UplinkIdentity("gw-7", "dc1") };

            // An earlier run left entries behind (stamped by whatever clock it had: not this run's to re-stamp).
            long earlierLast;
            await using (var earlier = await LiteDbOutbox.OpenAsync(options, time: _clock, cancellationToken: Ct))
            {
                earlierLast = await earlier.AppendAsync([Entry("earlier-1"), Entry("earlier-2")], Ct);
            }

            await using var outbox = await LiteDbOutbox.OpenAsync(options, time: _clock, cancellationToken: Ct);
            var watcher = Watcher();
            Assert.Null(watcher.Check(outbox.GetStats));
            Assert.Equal(earlierLast + 1, outbox.GetStats().RunFirstSequence);

            // Booted 5 h behind: three batches stamped by the wrong clock, then NTP steps it forward.
            var firstOfRun = await outbox.AppendAsync([Entry("a")], Ct);
            await outbox.AppendAsync([Entry("b"), Entry("c")], Ct);
            var lastOld = await outbox.AppendAsync([Entry("d")], Ct);
            _inner.Advance(TimeSpan.FromSeconds(4));
            _clock.Step(TimeSpan.FromHours(5));
            _inner.Advance(TimeSpan.FromSeconds(1));
            var forward = watcher.Check(outbox.GetStats)!;
            Assert.Equal(earlierLast + 1, firstOfRun);
            Assert.Equal(firstOfRun.ToString(System.Globalization.CultureInfo.InvariantCulture), forward.Attributes!["first_seq"]);
            Assert.Equal(lastOld.ToString(System.Globalization.CultureInfo.InvariantCulture), forward.Attributes["last_seq"]);
            Assert.Equal(new ClockStep(_clock.GetUtcNow(), 18_000_000, firstOfRun, lastOld), watcher.LastStep);

            // The event goes in behind them (stamped by the new clock, like what follows), then a step back: its range
            // starts after the first one's and holds the event itself.
            var eventSeq = await outbox.AppendAsync([UplinkBodies.Event(options.Identity, forward)], Ct);
            var lastNew = await outbox.AppendAsync([Entry("e")], Ct);
            _inner.Advance(ClockStepWatcher.CheckInterval);
            Assert.Null(watcher.Check(outbox.GetStats));
            _clock.Step(TimeSpan.FromMinutes(-10));
            _inner.Advance(ClockStepWatcher.CheckInterval);
            var back = watcher.Check(outbox.GetStats)!;
            Assert.Equal(lastOld + 1, eventSeq);
            Assert.Equal(eventSeq.ToString(System.Globalization.CultureInfo.InvariantCulture), back.Attributes!["first_seq"]);
            Assert.Equal(lastNew.ToString(System.Globalization.CultureInfo.InvariantCulture), back.Attributes["last_seq"]);

            // Nothing appended since: a third step has no range.
            _clock.Step(TimeSpan.FromMinutes(10));
            _inner.Advance(ClockStepWatcher.CheckInterval);
            var empty = watcher.Check(outbox.GetStats)!;
            Assert.False(empty.Attributes!.ContainsKey("first_seq"));
            Assert.False(empty.Attributes.ContainsKey("last_seq"));
            Assert.Contains("nothing this run sent was stamped by the old clock", empty.Message, StringComparison.Ordinal);

            // The body as the uplink sends it: the event list's wire name and the attributes, sorted.
            var body = JsonDocument.Parse(UplinkBodies.Event(options.Identity, forward).Payload).RootElement;
            Assert.Equal("clock_stepped", body.GetProperty("event").GetString());
            Assert.Equal("gw-7", body.GetProperty("device").GetString());
            Assert.Equal(["first_seq", "last_seq", "step_ms", "synchronized_after", "synchronized_before", "wall_after", "wall_before"],
                body.GetProperty("attributes").EnumerateObject().Select(p => p.Name));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task An_event_rule_on_clock_stepped_fires_for_a_step_forward_as_the_outbox_readme_writes_it()
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-clockstep-rule-");
        const string Yaml = """
            alerts:
              group_interval: 0s
              rules:
                - name: gateway-clock-stepped
                  type: event
                  event: clock_stepped
                  attribute: step_ms
                  above: 60000
                  clear_after: 10m
                  severity: warning
            """;
        var diagnostics = new EdgeTwin.Core.Config.ConfigDiagnostics();
        var root = (EdgeTwin.Core.Config.ConfigMapping)EdgeTwin.Core.Config.YamlTree.Parse(Yaml, "rules.yaml", diagnostics)!;
        var config = EdgeTwin.Alerting.Rules.AlertsConfig.Read(new EdgeTwin.Core.Config.ConfigReader((EdgeTwin.Core.Config.ConfigMapping)root["alerts"]!, diagnostics), dir.FullName);
        Assert.Empty(diagnostics.Sorted());
        var service = new EdgeTwin.Alerting.AlertingService(config, new EdgeTwin.Alerting.Rules.SiteIndex(null), new EdgeTwin.Core.Samples.SeriesRegistry(), null,
            new EdgeTwin.Alerting.AlertingOptions { StorePath = Path.Combine(dir.FullName, "alerts.db"), RunConnectivityProbe = false });
        try
        {
            await service.StartAsync(CancellationToken.None);
            var watcher = Watcher();
            watcher.Check(() => null);
            _clock.Step(TimeSpan.FromHours(5));
            _inner.Advance(ClockStepWatcher.CheckInterval);
            service.Handle(watcher.Check(() => null)!);
            await AlertingAgentSetup.Until(() => service.Manager.Active().Any(a => a.State == EdgeTwin.Alerting.State.AlertState.Firing), "the clock-step alert", 20);
            var alert = Assert.Single(service.Manager.Active());
            Assert.Equal(("gateway-clock-stepped", EventSeverity.Warning), (alert.Rule, alert.Severity));
        }
        finally
        {
            await service.DisposeAsync();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task An_event_the_full_hub_did_not_take_in_time_is_offered_again_and_arrives_once()
    {
        // The hub's queues wait rather than drop; the service gives a hand-over 10 s, then keeps the event for the next check.
        var config = EdgeTwin.IntegrationTests.Agent.AgentFiles.Load(EdgeTwin.IntegrationTests.Agent.AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
            """));
        var runtime = new AgentRuntime(config, new EdgeTwin.Core.Samples.SeriesRegistry(), _clock);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = new System.Collections.Concurrent.ConcurrentQueue<EdgeEvent>();
        await using var hub = new EdgeTwin.Core.Pipeline.EventHub();
        hub.AddStage(new EdgeTwin.Core.Pipeline.DelegateEventStage("blocked", async (e, ct) =>
        {
            await gate.Task.WaitAsync(ct);
            handled.Enqueue(e);
        }), capacity: 1);
        hub.Start();
        runtime.Events = hub;
        runtime.MarkStarted();
        var filler = new EdgeEvent(EdgeEventKind.DeviceUp, "pdu-1", _clock.GetUtcNow(), EventSeverity.Info, "filler");
        await hub.PublishAsync(filler, Ct); // taken by the stage, which waits at the gate
        await AlertingAgentSetup.Until(() => hub.Stats().Sum(s => s.QueueDepth) == 0, "the stage to take the first event", 10);
        await hub.PublishAsync(filler, Ct); // fills its queue

        var log = new ListLogger<ClockStepService>();
        var watcher = Watcher();
        watcher.Check(() => null); // the baseline (ExecuteAsync runs on the thread pool: its first check may come after the step)
        _clock.Step(TimeSpan.FromHours(5));
        using var service = new ClockStepService(watcher, runtime, _services, log);
        await service.StartAsync(Ct);
        await AdvanceUntil(() => log.Lines.Any(l => l.Message.Contains("waited 10 s for the event hub", StringComparison.Ordinal)), "the hand-over to time out");
        Assert.Empty(handled);

        gate.SetResult();
        await AdvanceUntil(() => handled.Any(e => e.Kind == EdgeEventKind.ClockStepped), "the clock_stepped event through the hub");
        for (var i = 0; i < 5; i++)
        {
            _inner.Advance(ClockStepWatcher.CheckInterval);
            await Task.Delay(20, Ct);
        }

        await service.StopAsync(Ct);
        var stepped = Assert.Single(handled, e => e.Kind == EdgeEventKind.ClockStepped);
        Assert.Equal("18000000", stepped.Attributes!["step_ms"]);
    }

    private async Task AdvanceUntil(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            _inner.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20, Ct);
        }

        Assert.True(condition(), "timed out waiting for " + what);
    }

    [Fact]
    public void Status_shows_the_last_step_and_its_range()
    {
        var watcher = Watcher();
        Assert.Null(Line(watcher)?.Split('\n').ElementAtOrDefault(1)); // no step yet: one line
        watcher.Check(() => null);
        _clock.Step(TimeSpan.FromHours(-2));
        _inner.Advance(ClockStepWatcher.CheckInterval);
        watcher.Check(() => new OutboxStats(3, 1_796_000_000_000_001, 1_796_000_000_000_040, null, 0, new Dictionary<string, long>(), 40, 0, 0) { RunFirstSequence = 1_796_000_000_000_001 });

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            ClockStatus.Write(writer, () => Synchronised, watcher);
            writer.WriteEndObject();
        }

        var root = JsonDocument.Parse(buffer.ToArray()).RootElement;
        var step = root.GetProperty("clock").GetProperty("last_step");
        Assert.Equal(-7_200_000, step.GetProperty("step_ms").GetInt64());
        Assert.Equal(1_796_000_000_000_001, step.GetProperty("first_seq").GetInt64());
        Assert.Equal(1_796_000_000_000_040, step.GetProperty("last_seq").GetInt64());
        Assert.Equal(1, root.GetProperty("clock").GetProperty("steps_since_start").GetInt32());
        var lines = ClockStatus.Line(root)!.Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("clock     synchronised", lines[0], StringComparison.Ordinal);
        Assert.Equal($"          stepped back by 2h 0m at {WireTime.Instant(_clock.GetUtcNow())} (1 step since the agent started): outbox entries 1796000000000001 to 1796000000000040 were stamped by the old clock (a clock_stepped event tells the centre)", lines[1]);
    }

    private static string? Line(ClockStepWatcher watcher)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            ClockStatus.Write(writer, () => Synchronised, watcher);
            writer.WriteEndObject();
        }

        return ClockStatus.Line(JsonDocument.Parse(buffer.ToArray()).RootElement);
    }

    private OutboxRecord Entry(string message) =>
        UplinkBodies.Event(new UplinkIdentity("gw-7", "dc1"), new EdgeEvent(EdgeEventKind.DeviceUp, "pdu-" + message, _clock.GetUtcNow(), EventSeverity.Info, message));
}
