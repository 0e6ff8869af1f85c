using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using EdgeTwin.Sensors.Host;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// The clock watcher on a gateway that runs chrony, under the role's unit without a host device (<c>ProtectClock=yes</c>:
/// adjtimex(2) denied) and so without timesyncd's marker: chronyd's tracking report tells the sync state, from a real
/// chronyd of the test's own on a random command port.
/// </summary>
public sealed class ClockStepWatcherChronyTests : IDisposable
{
    private const long RunFirst = 1_796_000_000_000_001;

    private readonly FakeTimeProvider _inner = new(new DateTimeOffset(2026, 12, 1, 3, 0, 0, TimeSpan.Zero));
    private readonly SteppableClock _clock;
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly ListLogger _log = new();
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("edgetwin-clockchrony-");

    public ClockStepWatcherChronyTests() => _clock = new SteppableClock(_inner);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IMeterFactory Meters => _services.GetRequiredService<IMeterFactory>();

    private string NoTimesyncd => Path.Combine(_dir.FullName, "no-timesyncd");

    public void Dispose()
    {
        _services.Dispose();
        _dir.Delete(recursive: true);
    }

    private static ClockReading Denied() => throw new IOException("adjtimex(2): EPERM");

    private ClockStepWatcher Watcher(IPEndPoint chronyd, Func<ClockReading>? kernel = null, string? timesync = null) =>
        new(_clock, Meters, _log, "gw-7", kernel ?? Denied, () => "boot-1", timesync ?? NoTimesyncd, new ChronyCommandClient(chronyd, TimeSpan.FromSeconds(5)));

    [Fact]
    public async Task With_adjtimex_denied_and_no_timesyncd_a_synchronised_chronyd_makes_the_clock_synchronised()
    {
        using var chronyd = await Chronyd.StartAsync(local: true, Ct);
        await chronyd.UntilAsync(t => t.Synchronized, TimeSpan.FromSeconds(30), Ct);
        var watcher = Watcher(chronyd.CommandEndPoint);
        await watcher.RefreshAsync(Ct);
        Assert.Null(watcher.Check(() => null));

        var state = watcher.SyncState!;
        Assert.True(state.Synchronized, state.ToString());
        Assert.Equal("chronyd", state.By);
        Assert.Equal("local", state.Chrony!.Value.Reference);
        Assert.Null(state.ChronyError);
        var (line, clock) = Status(watcher);
        Assert.StartsWith("clock     synchronised (chronyd says so: reference local, stratum 10, 0.000000 s ", line, StringComparison.Ordinal);
        Assert.EndsWith("of NTP time; the kernel's state cannot be read: adjtimex(2): EPERM)", line.Split('\n')[0], StringComparison.Ordinal);
        Assert.Equal("chronyd", clock.GetProperty("synchronized_by").GetString());
        Assert.Equal(10, clock.GetProperty("chronyd").GetProperty("stratum").GetInt32());
        Assert.Equal("normal", clock.GetProperty("chronyd").GetProperty("leap").GetString());

        // An answer serves the check after its refresh only: a check without one does not reuse it.
        _inner.Advance(ClockStepWatcher.CheckInterval);
        watcher.Check(() => null);
        Assert.Null(watcher.SyncState!.Synchronized);
    }

    [Fact]
    public async Task With_adjtimex_denied_and_no_timesyncd_an_unsynchronised_chronyd_makes_the_clock_unsynchronised_not_unknown()
    {
        using var chronyd = await Chronyd.StartAsync(local: false, Ct);
        var watcher = Watcher(chronyd.CommandEndPoint);
        await watcher.RefreshAsync(Ct);
        watcher.Check(() => null);

        var state = watcher.SyncState!;
        Assert.False(state.Synchronized, state.ToString());
        Assert.Equal("chronyd", state.By);
        Assert.Equal(ChronyLeap.Unsynchronised, state.Chrony!.Value.Leap);
        Assert.Equal(_clock.GetUtcNow(), state.UnsynchronizedSince);
        var (line, clock) = Status(watcher);
        Assert.StartsWith("clock     NOT synchronised (chronyd has not synchronised it: no reference, stratum 0, 0.000000 s fast of NTP time; the kernel's state cannot be read: adjtimex(2): EPERM): sample times may be wrong", line, StringComparison.Ordinal);
        Assert.Equal("unsynchronized", clock.GetProperty("chronyd").GetProperty("leap").GetString());
        Assert.Equal(JsonValueKind.Null, clock.GetProperty("chronyd").GetProperty("reference").ValueKind);
    }

    [Fact]
    public async Task Regression_a_run_under_chrony_with_adjtimex_denied_recorded_nothing()
    {
        // The leftover: with ProtectClock=yes and chrony rather than timesyncd, the state was unknown, so a run that started
        // before chrony synced the clock held no range in clock-unsynced.json, and no clock_stepped event could name it.
        using var chronyd = await Chronyd.StartAsync(local: false, Ct);
        var runs = new UnsyncedRunsFile(Path.Combine(_dir.FullName, UnsyncedRunsFile.FileName), _log);
        var watcher = Watcher(chronyd.CommandEndPoint);
        watcher.UseStateFile(runs);
        var opened = new OutboxStats(0, 0, RunFirst - 1, null, 0, new Dictionary<string, long>(), 0, 0, 0) { RunFirstSequence = RunFirst };
        await watcher.RefreshAsync(Ct);
        Assert.Null(watcher.Check(() => opened));

        Assert.Equal(RunFirst, watcher.SyncState!.OpenFrom);
        var open = Assert.Single(runs.Ranges);
        Assert.Equal(RunFirst, open.First);
        Assert.Null(open.Last);
    }

    [Fact]
    public async Task A_chronyd_that_does_not_answer_leaves_the_state_unknown_with_the_reason_logged_once()
    {
        var port = Chronyd.FreeUdpPort();
        var watcher = Watcher(new IPEndPoint(IPAddress.Loopback, port));
        for (var i = 0; i < 3; i++)
        {
            await watcher.RefreshAsync(Ct);
            watcher.Check(() => null);
            _inner.Advance(ClockStepWatcher.CheckInterval);
        }

        var state = watcher.SyncState!;
        Assert.Null(state.Synchronized);
        Assert.Null(state.By);
        var reason = $"chronyd at 127.0.0.1:{port}: nothing listens on the command port (chronyd not running, or its cmdport elsewhere or 0)";
        Assert.Equal(reason, state.ChronyError);
        var (line, clock) = Status(watcher);
        Assert.StartsWith("clock     unknown: adjtimex(2): EPERM; " + reason, line, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, clock.GetProperty("synchronized").ValueKind);
        Assert.Equal(reason, clock.GetProperty("chronyd").GetProperty("error").GetString());
        Assert.Contains(reason, Assert.Single(_log.Lines, l => l.Message.Contains("chronyd at", StringComparison.Ordinal)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_peer_answering_garbage_on_the_command_port_leaves_the_state_unknown_and_the_check_runs_on()
    {
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var answering = Task.Run(async () =>
        {
            var buffer = new byte[512];
            var r = await peer.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), Ct);
            await peer.SendToAsync("not chrony at all, but long enough"u8.ToArray(), SocketFlags.None, r.RemoteEndPoint, Ct);
        }, Ct);
        var watcher = Watcher((IPEndPoint)peer.LocalEndPoint!);
        Assert.Null(watcher.Check(() => null)); // the baseline
        await watcher.RefreshAsync(Ct);
        await answering;
        _clock.Step(TimeSpan.FromHours(5));
        _inner.Advance(ClockStepWatcher.CheckInterval);

        var stepped = watcher.Check(() => null); // a step is still seen; the sync state is left out of the event
        Assert.NotNull(stepped);
        Assert.False(stepped.Attributes!.ContainsKey("synchronized_after"));
        Assert.Null(watcher.SyncState!.Synchronized);
        Assert.StartsWith($"chronyd at {peer.LocalEndPoint}: protocol version 110, this agent speaks 6", watcher.SyncState.ChronyError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chronyd_is_not_asked_where_adjtimex_or_timesyncd_tells()
    {
        using var chronyd = await Chronyd.StartAsync(local: true, Ct);
        await chronyd.UntilAsync(t => t.Synchronized, TimeSpan.FromSeconds(30), Ct);

        // timesyncd runs (its directory, no marker yet): its word, not chronyd's, as before.
        var timesync = Directory.CreateDirectory(Path.Combine(_dir.FullName, "timesync")).FullName;
        var watcher = Watcher(chronyd.CommandEndPoint, timesync: timesync);
        await watcher.RefreshAsync(Ct);
        watcher.Check(() => null);
        Assert.Equal(new ClockSyncState(false, _clock.GetUtcNow(), true, null, "timesyncd"), watcher.SyncState);

        // adjtimex readable: the kernel's word.
        watcher = Watcher(chronyd.CommandEndPoint, kernel: () => new ClockReading(ClockReading.TimeError, ClockReading.StaUnsync, ClockReading.PhaseLimitMicroseconds));
        await watcher.RefreshAsync(Ct);
        watcher.Check(() => null);
        Assert.Equal(new ClockSyncState(false, _clock.GetUtcNow(), true, null, "adjtimex"), watcher.SyncState);
    }

    [Fact]
    public async Task The_clock_step_service_asks_chronyd_before_its_checks()
    {
        using var chronyd = await Chronyd.StartAsync(local: true, Ct);
        await chronyd.UntilAsync(t => t.Synchronized, TimeSpan.FromSeconds(30), Ct);
        var config = EdgeTwin.IntegrationTests.Agent.AgentFiles.Load(EdgeTwin.IntegrationTests.Agent.AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
            """));
        var runtime = new AgentRuntime(config, new SeriesRegistry(), _clock);
        runtime.MarkStarted();
        var watcher = Watcher(chronyd.CommandEndPoint);
        using var service = new ClockStepService(watcher, runtime, _services, new ListLogger<ClockStepService>());
        await service.StartAsync(Ct);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (watcher.SyncState?.Synchronized != true && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, Ct);
            }

            Assert.True(watcher.SyncState?.Synchronized, $"the service's first check: {watcher.SyncState}");
            Assert.Equal("chronyd", watcher.SyncState!.By);
        }
        finally
        {
            await service.StopAsync(Ct);
        }
    }

    private static (string Line, JsonElement Clock) Status(ClockStepWatcher watcher)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            ClockStatus.Write(writer, Denied, watcher);
            writer.WriteEndObject();
        }

        var root = JsonDocument.Parse(buffer.ToArray()).RootElement;
        return (ClockStatus.Line(root)!, root.GetProperty("clock"));
    }
}
