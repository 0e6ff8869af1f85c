using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Alerting;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Control;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Outbox;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// <c>edgetwin status</c> as the operator on the gateway uses it during a long uplink outage: through the real command
/// line and the agent's control socket, with a real outbox file filling up behind the uplink.
/// </summary>
public sealed class StatusCliTests : IAsyncLifetime
{
    private const string Yaml = """
        alerts:
          group_interval: 0s
          connectivity: { offline_after: 2 }
          rules:
            - { name: uplink-down, type: uplink, severity: critical }
        """;

    private const long Budget = 1024 * 1024;

    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-status-cli-").FullName;
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private AlertingService _service = null!;
    private AlertControlServer _server = null!;
    private LiteDbOutbox _outbox = null!;
    private OutboxStatus _status = null!;
    private Action<Utf8JsonWriter, ICollection<string>> _writeStatus = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Socket => Path.Combine(_dir, "alerts.sock");

    public async ValueTask InitializeAsync()
    {
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(Yaml, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), _dir);
        Assert.Empty(diagnostics.Sorted());
        _service = new AlertingService(config, new SiteIndex(null), new SeriesRegistry(), null, new AlertingOptions
        {
            StorePath = Path.Combine(_dir, "alerts.db"),
            RunConnectivityProbe = false,
        });
        await _service.StartAsync(CancellationToken.None);
        _outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(_dir, "outbox.db"), DiskBudgetBytes = Budget }, cancellationToken: Ct);
        _outbox.RegisterUplink("mqtt");
        _status = new OutboxStatus(_outbox.GetStats, Budget, TimeSpan.FromDays(7), _clock);
        _writeStatus = _status.Write;
        _server = new AlertControlServer(_service, Socket) { StatusWriter = (w, problems) => _writeStatus(w, problems) };
        _server.Start();
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _service.DisposeAsync();
        await _outbox.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Appends <paramref name="count"/> summaries of about 1 KiB, as the feeder does while nothing acknowledges.</summary>
    private async Task AppendAsync(int count)
    {
        var payload = Encoding.UTF8.GetBytes("{\"v\":\"" + new string('x', 900) + "\"}");
        var records = Enumerable.Range(0, count)
            .Select(_ => new OutboxRecord(OutboxKind.Summary, "rack-a01-pdu", _clock.GetUtcNow().ToUnixTimeMilliseconds(), payload))
            .ToList();
        await _outbox.AppendAsync(records, Ct);
    }

    [Fact]
    public async Task Regression_there_was_no_status_saying_since_when_the_uplink_is_down_and_when_the_outbox_budget_runs_out()
    {
        // All is well: exit 0, nothing on stderr.
        _service.Connectivity.Observe(true, true);
        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.True(exit == 0, output + error);
        Assert.Contains("health    OK", output, StringComparison.Ordinal);
        Assert.Equal("", error);

        // The uplink goes; ten minutes of summaries pile up, 50 KiB a minute.
        _service.Connectivity.Observe(false, false);
        _service.Connectivity.Observe(false, false);
        await AlertingAgentSetup.Until(() => _service.Manager.Active().Any(a => a.FiredAt is not null), "the uplink-down alert", 20);
        var offlineSince = _service.Connectivity.Since.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var firstAppend = _clock.GetUtcNow();
        _status.Record();
        for (var minute = 0; minute < 10; minute++)
        {
            await AppendAsync(50);
            _clock.Advance(TimeSpan.FromMinutes(1));
            _status.Record();
        }

        (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.True(exit == 1, output + error);
        Assert.Contains($"uplink    offline since {offlineSince}", output, StringComparison.Ordinal);
        Assert.Contains("outbox    500 entries", output, StringComparison.Ordinal);
        Assert.Contains($"oldest unsent {firstAppend.UtcDateTime:yyyy-MM-dd HH:mm:ss'Z'} (10m 0s ago)", output, StringComparison.Ordinal);
        Assert.Contains("uplink mqtt: 500 entries behind", output, StringComparison.Ordinal);
        Assert.Matches(@"growing \d+\.\d KiB/s; 90 % of the budget in ~\d+m \d+s", output);
        Assert.Contains("at the budget: raw entries are condensed into summaries, then the oldest summaries", output, StringComparison.Ordinal);
        Assert.Contains("the oldest in 6d 23h", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output); // plain text, whatever the terminal
        Assert.StartsWith($"edgetwin status: uplink offline since {offlineSince}", error, StringComparison.Ordinal);
        Assert.Contains("1 alert firing unacknowledged (1 critical)", error, StringComparison.Ordinal);
        Assert.Contains("the outbox reaches 90 % of its disk budget in ~", error, StringComparison.Ordinal);

        // The same for scripts, with the exit code.
        (exit, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        Assert.Equal(1, exit);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.False(r.GetProperty("healthy").GetBoolean());
        Assert.Equal("offline", r.GetProperty("uplink").GetProperty("state").GetString());
        Assert.True(r.GetProperty("uplink").GetProperty("for_s").GetDouble() >= 0);
        var box = r.GetProperty("outbox");
        Assert.Equal(500, box.GetProperty("entries").GetInt64());
        Assert.Equal(500, box.GetProperty("uplinks").GetProperty("mqtt").GetProperty("behind").GetInt64());
        Assert.Equal(600, box.GetProperty("oldest_unsent_age_s").GetDouble());
        Assert.Equal(Budget, box.GetProperty("budget_bytes").GetInt64());
        var rate = box.GetProperty("growth_bytes_per_s").GetDouble();
        var entryBytes = box.GetProperty("entry_bytes").GetInt64();
        Assert.InRange(rate, entryBytes / 600.0 * 0.95, entryBytes / 600.0 * 1.05);
        Assert.Equal((0.9 * Budget - entryBytes) / rate, box.GetProperty("condense_in_s").GetDouble(), 1.0);
        Assert.Equal(7 * 86400 - 600, box.GetProperty("max_age_drop_in_s").GetDouble());
        Assert.Equal(3, r.GetProperty("problems").GetArrayLength());

        // Acknowledged, the alert is no longer a problem; the outage still is.
        Assert.Equal(0, (await InProcessCli.RunAsync("alerts", "ack", "--all", "--socket", Socket)).Exit);
        (exit, _, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Equal(1, exit);
        Assert.DoesNotContain("alert firing", error, StringComparison.Ordinal);
        Assert.Contains("uplink offline since", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_says_when_the_disk_is_smaller_than_what_the_budget_still_allows()
    {
        // 1 MiB budget, 300 KiB free on the outbox's filesystem: the disk, not the budget, bounds the outage.
        await using var status = new AlertControlServer(_service, Path.Combine(_dir, "small-disk.sock"))
        {
            StatusWriter = new OutboxStatus(_outbox.GetStats, Budget, TimeSpan.FromDays(7), _clock, diskFree: () => 300 * 1024).Write,
        };
        status.Start();
        _service.Connectivity.Observe(true, true);

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", status.Path);
        Assert.Equal(1, exit);
        Assert.Contains("disk: 300.0 KiB free on the outbox's filesystem, less than the budget still allows: the disk fills first", output, StringComparison.Ordinal);
        Assert.Contains("the outbox's disk has 0.3 MiB free, less than the 0.9 MiB its budget still allows", error, StringComparison.Ordinal);

        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", status.Path, "--json");
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(300 * 1024, doc.RootElement.GetProperty("outbox").GetProperty("disk_free_bytes").GetInt64());
        Assert.True(doc.RootElement.GetProperty("outbox").GetProperty("disk_smaller_than_budget").GetBoolean());
    }

    [Fact]
    public async Task Status_names_an_outbox_within_its_budget_rounds_as_a_problem_even_without_a_rate()
    {
        // Just restarted (no rate yet) with the store between the watermarks: the budget is dropping or about to.
        _service.Connectivity.Observe(true, true);
        for (var i = 0; i < 16; i++)
        {
            await AppendAsync(50);
        }

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Equal(1, exit);
        Assert.Contains("not growing (or under a minute of history)", output, StringComparison.Ordinal);
        Assert.Matches(@"edgetwin status: the outbox is at 7\d(\.\d)? % of its disk budget: at 90 % raw data is condensed and the oldest summaries dropped \(0 entries dropped so far\)", error);
    }

    [Fact]
    public async Task Regression_a_hung_agent_was_reported_as_the_operation_was_canceled()
    {
        // Listening but never accepting, like an agent stopped with SIGSTOP or stuck: connect succeeds, no answer comes.
        var hung = Path.Combine(_dir, "hung.sock");
        using var listener = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(hung));
        listener.Listen(4);

        var started = System.Diagnostics.Stopwatch.StartNew();
        var (exit, _, error) = await InProcessCli.RunAsync("alerts", "list", "--socket", hung, "--timeout", "1s");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(8), $"took {started.Elapsed}");
        Assert.Equal(1, exit);
        Assert.Contains($"edgetwin alerts: no answer from the agent at {hung} within 1s: it is hung or overloaded", error, StringComparison.Ordinal);
        Assert.DoesNotContain("canceled", error, StringComparison.OrdinalIgnoreCase);

        // status tells "cannot ask the agent" (3) from "the agent says something is wrong" (1).
        (exit, _, error) = await InProcessCli.RunAsync("status", "--socket", hung, "--timeout", "1s");
        Assert.Equal(3, exit);
        Assert.Contains($"edgetwin status: no answer from the agent at {hung} within 1s", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_says_whether_a_time_daemon_synchronises_the_clock_without_calling_it_a_problem()
    {
        // What the agent writes (StoreAndForwardService.WriteStatus): one adjtimex read per status request.
        _service.Connectivity.Observe(true, true);
        Sensors.Host.ClockReading? clock = new(0, 0x2001, 31_000);
        _writeStatus = (w, problems) =>
        {
            _status.Write(w, problems);
            ClockStatus.Write(w, () => clock ?? throw new IOException("adjtimex(2): EPERM — the process may not read the kernel clock state"));
        };

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.True(exit == 0, output + error);
        Assert.Contains("clock     synchronised (kernel max error 0.031 s)", output, StringComparison.Ordinal);

        // A gateway without RTC whose time daemon never reached a server: the kernel's max error at its 16 s cap.
        clock = new(5, 0x40, 16_000_000);
        (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.True(exit == 0, output + error); // gateway-clock-unsynchronized (linux-host) raises it, after its boot allowance
        Assert.Contains("clock     NOT synchronised (kernel max error 16 s, its cap): no time daemon has set the clock, sample times may be wrong", output, StringComparison.Ordinal);

        clock = null; // the static unit's ProtectClock=yes
        (exit, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Equal(0, exit);
        Assert.Contains("clock     unknown: adjtimex(2): EPERM", output, StringComparison.Ordinal);

        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        var json = JsonDocument.Parse(output).RootElement.GetProperty("clock");
        Assert.Equal(JsonValueKind.Null, json.GetProperty("synchronized").ValueKind);
        Assert.StartsWith("adjtimex(2): EPERM", json.GetProperty("error").GetString(), StringComparison.Ordinal);

        // And the real kernel, as the agent reads it: whatever this machine's state, a line that says it.
        _writeStatus = (w, problems) =>
        {
            _status.Write(w, problems);
            ClockStatus.Write(w, Sensors.Host.KernelClock.Read);
        };
        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Matches("clock     (synchronised|NOT synchronised) \\(kernel max error [0-9.]+ s", output);
    }

    [Fact]
    public async Task Regression_status_did_not_say_which_entries_an_unsynchronised_clock_stamps_nor_earlier_runs_ranges()
    {
        // Run 3 of a gateway without RTC whose NTP has not synced yet: two earlier runs left ranges in clock-unsynced.json
        // (the second killed, its range open), and this run stamps from its first entry on under the same clock.
        const long RunFirst = 1_796_000_000_000_001;
        var runsPath = Path.Combine(_dir, UnsyncedRunsFile.FileName);
        await File.WriteAllBytesAsync(runsPath, UnsyncedRunsFile.Format(
            [new SequenceRange(1_795_000_000_000_001, 1_795_000_000_000_500, "boot-0", 0), new SequenceRange(1_795_500_000_000_001, null, "boot-1", 0)]), Ct);
        var log = new EdgeTwin.Tests.Shared.ListLogger();
        Sensors.Host.ClockReading? kernel = new(5, Sensors.Host.ClockReading.StaUnsync, 16_000_000);
        var timesync = Path.Combine(_dir, "timesync");
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var watcher = new ClockStepWatcher(_clock, meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            log, "gw-7", () => kernel ?? throw new IOException("adjtimex(2): EPERM"), () => "boot-2", timesync);
        watcher.UseStateFile(new UnsyncedRunsFile(runsPath, log));
        var opened = new OutboxStats(0, 0, RunFirst - 1, null, 0, new Dictionary<string, long>(), 0, 0, 0) { RunFirstSequence = RunFirst };
        Assert.Null(watcher.Check(() => opened));
        _service.Connectivity.Observe(true, true);
        _writeStatus = (w, problems) =>
        {
            _status.Write(w, problems);
            ClockStatus.Write(w, () => kernel ?? throw new IOException("adjtimex(2): EPERM"), watcher);
        };

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.True(exit == 0, output + error); // normal for minutes after a boot: gateway-clock-unsynchronized raises it after its allowance
        Assert.Contains("clock     NOT synchronised (kernel max error 16 s, its cap)", output, StringComparison.Ordinal);
        Assert.Contains("\n          NOT SYNCHRONISED since the agent started: entries from 1796000000000001 on, and 2 earlier runs' ranges (1795000000000001-1795000000000500, 1795500000000001-1796000000000000), will be reported to the centre (a clock_stepped event) when the clock syncs\n", output.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("health    OK", output, StringComparison.Ordinal);

        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        var clock = JsonDocument.Parse(output).RootElement.GetProperty("clock");
        Assert.False(clock.GetProperty("synchronized").GetBoolean());
        Assert.Equal("adjtimex", clock.GetProperty("synchronized_by").GetString());
        var unsynced = clock.GetProperty("unsynchronized");
        Assert.Equal(WireTime.Instant(_clock.GetUtcNow()), unsynced.GetProperty("since").GetString());
        Assert.True(unsynced.GetProperty("since_start").GetBoolean());
        Assert.Equal(RunFirst, unsynced.GetProperty("from_seq").GetInt64());
        Assert.Equal(["1795000000000001-1795000000000500", "1795500000000001-1796000000000000"], unsynced.GetProperty("earlier_seqs").EnumerateArray().Select(r => r.GetString()));

        // adjtimex denied (ProtectClock=): timesyncd runs but has not synchronised the clock; then neither tells.
        kernel = null;
        Directory.CreateDirectory(timesync);
        _clock.Advance(ClockStepWatcher.CheckInterval);
        Assert.Null(watcher.Check(() => opened));
        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Contains("clock     NOT synchronised (systemd-timesyncd has not synchronised it; the kernel's state cannot be read: adjtimex(2): EPERM)", output, StringComparison.Ordinal);
        Assert.Contains("          NOT SYNCHRONISED since the agent started: entries from 1796000000000001 on", output, StringComparison.Ordinal);
        Directory.Delete(timesync);
        _clock.Advance(ClockStepWatcher.CheckInterval);
        Assert.Null(watcher.Check(() => opened));
        (exit, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Equal(0, exit);
        Assert.Contains("clock     unknown: adjtimex(2): EPERM", output, StringComparison.Ordinal);
        Assert.DoesNotContain("NOT synchronised", output, StringComparison.OrdinalIgnoreCase); // unknown is not unsynchronised
        Assert.Contains("          2 earlier runs' ranges (1795000000000001-1795000000000500, 1795500000000001-1796000000000000) stamped by an unsynchronised clock wait to be reported to the centre", output, StringComparison.Ordinal);
        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        clock = JsonDocument.Parse(output).RootElement.GetProperty("clock");
        Assert.Equal(JsonValueKind.Null, clock.GetProperty("synchronized").ValueKind);
        Assert.Equal(JsonValueKind.Null, clock.GetProperty("unsynchronized").GetProperty("since").ValueKind);

        // NTP synced: the event names every range; with nothing left to name, nothing more is said.
        kernel = new(0, 0, 12_000);
        _clock.Advance(ClockStepWatcher.CheckInterval);
        var named = watcher.Check(() => opened);
        Assert.NotNull(named);
        watcher.Stored(named);
        (exit, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Equal(0, exit);
        Assert.Contains("clock     synchronised (kernel max error 0.012 s)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("SYNCHRONISED", output, StringComparison.Ordinal);
        Assert.DoesNotContain("earlier run", output, StringComparison.Ordinal);
        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(output).RootElement.GetProperty("clock").GetProperty("unsynchronized").ValueKind);
        Assert.False(File.Exists(runsPath));
    }

    [Fact]
    public async Task Regression_status_did_not_say_that_the_write_back_of_the_memory_outbox_to_its_file_fails_nor_why()
    {
        // In memory since the file system turned read-only; it is writable again but the disk is full (event 40, logged once).
        var since = _clock.GetUtcNow().AddMinutes(-20);
        var failedAt = _clock.GetUtcNow().AddSeconds(-40);
        OutboxStorageState storage = new(since, "Read-only file system", 1_796_000_000_000_001, 8L << 20, null, null)
        {
            WriteBackFailedAt = failedAt,
            WriteBackFailure = "not enough free space for the write-back: it needs 9437184 bytes, 4096 are free",
            NextWriteBackIn = TimeSpan.FromSeconds(120),
        };
        var status = new OutboxStatus(() => _outbox.GetStats() with { Storage = storage }, Budget, TimeSpan.FromDays(7), _clock);
        _writeStatus = status.Write;
        _service.Connectivity.Observe(true, true);

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Equal(1, exit); // IN MEMORY ONLY is a problem, as before
        var lines = output.ReplaceLineEndings("\n").Split('\n');
        var memory = Array.FindIndex(lines, l => l.Contains("IN MEMORY ONLY since", StringComparison.Ordinal));
        Assert.True(memory >= 0, output + error);
        Assert.Equal($"          write-back to the file failing: not enough free space for the write-back: it needs 9437184 bytes, 4096 are free (last at {failedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z, next try in 2m 0s)", lines[memory + 1]);

        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        var box = JsonDocument.Parse(output).RootElement.GetProperty("outbox");
        Assert.Equal(WireTime.Instant(failedAt), box.GetProperty("write_back_failed_at").GetString());
        Assert.StartsWith("not enough free space", box.GetProperty("write_back_failure").GetString(), StringComparison.Ordinal);
        Assert.Equal(120, box.GetProperty("write_back_next_in_s").GetDouble());
        Assert.Equal(WireTime.Instant(since), box.GetProperty("memory_only_since").GetString());

        // Only a read-only probe so far (no write-back failed for another cause): the line and the fields are left out.
        storage = storage with { WriteBackFailedAt = null, WriteBackFailure = null, NextWriteBackIn = null };
        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket);
        Assert.Contains("IN MEMORY ONLY since", output, StringComparison.Ordinal);
        Assert.DoesNotContain("write-back", output, StringComparison.Ordinal);
        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", Socket, "--json");
        Assert.False(JsonDocument.Parse(output).RootElement.GetProperty("outbox").TryGetProperty("write_back_failed_at", out _));
    }

    [Fact]
    public async Task Status_of_a_stopped_agent_names_the_socket_and_exits_3()
    {
        var missing = Path.Combine(_dir, "no-agent.sock");
        var (exit, _, error) = await InProcessCli.RunAsync("status", "--socket", missing);
        Assert.Equal(3, exit);
        Assert.Contains($"edgetwin status: the agent is not running or the socket path is wrong: {missing} does not exist", error, StringComparison.Ordinal);
        Assert.Contains("what waits in the outbox without the agent: edgetwin outbox stats --config FILE", error, StringComparison.Ordinal);

        (exit, _, error) = await InProcessCli.RunAsync("status", "--socket", Socket, "--timeout", "soon");
        Assert.Equal(2, exit);
        Assert.Contains("--timeout 'soon' is not a positive duration", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_a_relative_outbox_path_run_from_another_directory_said_only_no_outbox_at_outbox_db()
    {
        // The service resolves a relative outbox.path from its WorkingDirectory; an engineer's shell is elsewhere. The
        // commands now name the full path they looked at and why it differs from the service's.
        var config = Path.Combine(_dir, "site.yaml");
        await File.WriteAllTextAsync(config, "site: { id: s1, gateway_id: gw1 }\noutbox: { path: outbox.db }\ndevices: []\n", Ct);
        var elsewhere = Directory.CreateTempSubdirectory("edgetwin-elsewhere-").FullName;
        try
        {
            var agent = Path.Combine(AppContext.BaseDirectory, "edgetwin.dll");
            var dotnet = Deployment.Tool.Find("dotnet") ?? throw new InvalidOperationException("dotnet is not on PATH");
            var lost = await Deployment.Tool.RunAsync(dotnet, [agent, "outbox", "stats", "--config", config], TimeSpan.FromSeconds(60), Ct, elsewhere);
            Assert.Equal(1, lost.ExitCode);
            Assert.Contains($"edgetwin outbox: no outbox at {Path.Combine(elsewhere, "outbox.db")} (outbox.path 'outbox.db' is relative: this command took it from the current directory {elsewhere}, the service takes it from its working directory, /var/lib/edgetwin under the shipped unit", lost.StdErr, StringComparison.Ordinal);

            lost = await Deployment.Tool.RunAsync(dotnet, [agent, "status", "--config", config], TimeSpan.FromSeconds(60), Ct, elsewhere);
            Assert.Equal(3, lost.ExitCode);
            Assert.Contains($"{Path.Combine(elsewhere, "alerts.sock")} does not exist (outbox.path 'outbox.db' is relative: this command took it from the current directory {elsewhere}", lost.StdErr, StringComparison.Ordinal);

            // From the directory the path is relative to, both find the agent's files (the live socket of this fixture).
            var found = await Deployment.Tool.RunAsync(dotnet, [agent, "status", "--config", config], TimeSpan.FromSeconds(60), Ct, _dir);
            Assert.NotEqual(3, found.ExitCode);
            Assert.DoesNotContain("is relative", found.All, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task Regression_status_did_not_say_that_the_peer_refused_entries_for_good()
    {
        // A broker that refuses the summary topic (an ACL): the uplink passes the entry over and a data_gap names it, and
        // the operator's status says how many were refused and what the peer said about the last one.
        var port = TestPorts.FreeTcp();
        var factory = new MQTTnet.Server.MqttServerFactory();
        using var broker = factory.CreateMqttServer(factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(System.Net.IPAddress.Loopback)
            .WithDefaultEndpointBoundIPV6Address(System.Net.IPAddress.None).WithDefaultEndpointPort(port).Build());
        broker.InterceptingPublishAsync += e =>
        {
            if (e.ApplicationMessage.Topic.EndsWith("/summary", StringComparison.Ordinal))
            {
                e.ProcessPublish = false;
                e.Response.ReasonCode = MQTTnet.Protocol.MqttPubAckReasonCode.NotAuthorized;
                e.Response.ReasonString = "no ACL for this topic";
            }

            return Task.CompletedTask;
        };
        await broker.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        try
        {
            await AppendAsync(1); // refused (a new outbox file numbers from the clock: unix_ms × 1000 + 1)
            var refused = _outbox.GetStats().LastSequence;
            var lines = new System.Collections.Concurrent.ConcurrentQueue<(Microsoft.Extensions.Logging.LogLevel Level, string Message)>();
            var log = new ListLogger<StatusCliTests>(lines);
            var uplink = new EdgeTwin.Uplink.Mqtt.MqttUplink(new EdgeTwin.Uplink.Mqtt.MqttUplinkOptions
            {
                Host = "127.0.0.1",
                Port = port,
                Protocol = EdgeTwin.Uplink.Mqtt.MqttProtocol.V500,
                Site = "site1",
                Gateway = "gw1",
                Delivery = new EdgeTwin.Uplink.Delivery.DeliveryOptions { RefusalBatchDelay = TimeSpan.Zero, ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1) },
            }, _outbox, log);
            using var stop = new CancellationTokenSource();
            var run = uplink.RunAsync(stop.Token);
            try
            {
                await AlertingAgentSetup.Until(() => _outbox.GetAcknowledged("mqtt") >= refused + 1, "the refused entry passed over and its data_gap delivered", 20);
            }
            finally
            {
                await stop.CancelAsync();
                await run;
                foreach (var line in lines)
                {
                    TestContext.Current.TestOutputHelper?.WriteLine($"{line.Level}: {line.Message}");
                }
            }

            await using var server = new AlertControlServer(_service, Path.Combine(_dir, "refused.sock"))
            {
                StatusWriter = new OutboxStatus(_outbox.GetStats, Budget, TimeSpan.FromDays(7), _clock,
                    rejections: () => new Dictionary<string, EdgeTwin.Uplink.Delivery.UplinkRejections> { ["mqtt"] = uplink.Rejections }).Write,
            };
            server.Start();
            _service.Connectivity.Observe(true, true);

            var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", server.Path);
            Assert.True(exit == 1, output + error);
            Assert.Matches($@"uplink mqtt: 0 entries behind, 1 refused for good by the peer since the agent started \(last: entry {refused} at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ: PUBACK 0x87 NotAuthorized: no ACL for this topic\)", output);
            Assert.Contains($"edgetwin status: uplink mqtt: its peer refused 1 entry for good since the agent started (data_gap events with reason rejected_by_peer name them; the last: entry {refused}, PUBACK 0x87 NotAuthorized: no ACL for this topic)", error, StringComparison.Ordinal);

            (_, output, _) = await InProcessCli.RunAsync("status", "--socket", server.Path, "--json");
            using var doc = JsonDocument.Parse(output);
            var box = doc.RootElement.GetProperty("outbox");
            Assert.Equal(1, box.GetProperty("rejected_since_start").GetInt64());
            var mqtt = box.GetProperty("uplinks").GetProperty("mqtt");
            Assert.Equal(1, mqtt.GetProperty("rejected_since_start").GetInt64());
            var last = mqtt.GetProperty("last_rejected");
            Assert.Equal(refused, last.GetProperty("seq").GetInt64());
            Assert.Equal("PUBACK 0x87 NotAuthorized: no ACL for this topic", last.GetProperty("reason").GetString());
            Assert.True(DateTimeOffset.Parse(last.GetProperty("time").GetString()!, CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow.AddMinutes(-5));
        }
        finally
        {
            await broker.StopAsync(new MQTTnet.Server.MqttServerStopOptions());
        }
    }

    [Fact]
    public async Task Regression_status_did_not_say_that_the_broker_closes_the_connection_on_every_entry()
    {
        // A 3.1.1 broker whose ACL forbids the gateway's topics closes the connection on each publish; after three entries
        // refused so, the uplink keeps the rest (Uplink README, "Closed on one entry"). Status said only "3 refused".
        var since = _clock.GetUtcNow();
        var rejections = new EdgeTwin.Uplink.Delivery.UplinkRejections(3, 41, "the peer closed the connection each time this entry was sent", since)
        {
            ClosesOnEveryEntrySince = since,
        };
        await using var server = new AlertControlServer(_service, Path.Combine(_dir, "closes.sock"))
        {
            StatusWriter = new OutboxStatus(_outbox.GetStats, Budget, TimeSpan.FromDays(7), _clock,
                rejections: () => new Dictionary<string, EdgeTwin.Uplink.Delivery.UplinkRejections> { ["mqtt"] = rejections }).Write,
        };
        server.Start();
        _service.Connectivity.Observe(true, true);

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", server.Path);
        Assert.True(exit == 1, output + error);
        Assert.Contains($"uplink mqtt: its peer closes the connection on every entry sent, since {since.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: nothing is delivered and the entries wait in the outbox; check the broker's ACL and size limit for this client", error, StringComparison.Ordinal);

        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", server.Path, "--json");
        using var doc = JsonDocument.Parse(output);
        var mqtt = doc.RootElement.GetProperty("outbox").GetProperty("uplinks").GetProperty("mqtt");
        Assert.Equal(since.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), mqtt.GetProperty("closes_on_every_entry_since").GetString());
    }

    [Fact]
    public async Task Status_says_the_uplink_waits_for_its_sparkplug_primary_host()
    {
        // Sparkplug with sparkplug_primary_host_id: nothing is published while the host's STATE is offline (Uplink README,
        // "Primary host"); the entries wait in the outbox, which status must explain rather than show as a stuck uplink.
        var since = _clock.GetUtcNow();
        var wait = new EdgeTwin.Uplink.Sparkplug.PrimaryHostWait("scada", since);
        await using var server = new AlertControlServer(_service, Path.Combine(_dir, "host.sock"))
        {
            StatusWriter = new OutboxStatus(_outbox.GetStats, Budget, TimeSpan.FromDays(7), _clock,
                primaryHosts: () => new Dictionary<string, EdgeTwin.Uplink.Sparkplug.PrimaryHostWait> { ["mqtt"] = wait }).Write,
        };
        server.Start();
        _service.Connectivity.Observe(true, true);

        (_, var output, _) = await InProcessCli.RunAsync("status", "--socket", server.Path, "--json");
        using (var doc = JsonDocument.Parse(output))
        {
            var mqtt = doc.RootElement.GetProperty("outbox").GetProperty("uplinks").GetProperty("mqtt");
            Assert.Equal("scada", mqtt.GetProperty("primary_host").GetString());
            Assert.Equal(since.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), mqtt.GetProperty("waits_for_primary_host_since").GetString());
        }

        _clock.Advance(TimeSpan.FromMinutes(2)); // a reconnect's short wait is no problem; two minutes are
        var (exit, text, error) = await InProcessCli.RunAsync("status", "--socket", server.Path);
        Assert.True(exit == 1, text + error);
        Assert.Contains($"uplink mqtt: waits for Sparkplug primary host 'scada' since {since.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} (its STATE is offline, or none was seen): nothing is published, the entries wait in the outbox", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regression_status_did_not_say_what_eats_a_metered_data_plan()
    {
        // Before: nothing counted the bytes an uplink sends, so a gateway on a 1-2 GB/month LTE plan could not tell what
        // ate it, nor that its live data alone was over the link budget (and a backlog would never replay).
        var traffic = new EdgeTwin.Uplink.Delivery.UplinkTrafficSnapshot(
            new Dictionary<string, long> { ["summary"] = 9_000_000, ["raw"] = 900_000, ["event"] = 90_000, ["prediction"] = 10_000 },
            new Dictionary<string, long> { ["summary"] = 500_000, ["raw"] = 0, ["event"] = 0, ["prediction"] = 0 },
            MaxBytesPerSecond: 8_000, BacklogThrottled: TimeSpan.FromSeconds(42));
        await using var server = new AlertControlServer(_service, Path.Combine(_dir, "traffic.sock"))
        {
            StatusWriter = new OutboxStatus(_outbox.GetStats, Budget, TimeSpan.FromDays(7), _clock,
                traffic: () => new Dictionary<string, EdgeTwin.Uplink.Delivery.UplinkTrafficSnapshot> { ["mqtt"] = traffic }).Write,
        };
        server.Start();
        _service.Connectivity.Observe(true, true);
        _clock.Advance(TimeSpan.FromMinutes(10)); // 10 MB live in 600 s: 16.7 kB/s, over the 8 kB/s (64 kbit/s) budget

        var (exit, output, error) = await InProcessCli.RunAsync("status", "--socket", server.Path);
        Assert.True(exit == 1, output + error);
        const string Line = "uplink mqtt: sent 10.0 MiB since the agent started (live ~1.3 GiB/day): event 87.9 KiB, prediction 9.8 KiB, raw 878.9 KiB, summary 9.1 MiB; replay 488.3 KiB; max_rate 64 kbit/s, the replay held back 42.0s";
        Assert.True(output.Contains(Line, StringComparison.Ordinal), output);
        Assert.Contains("uplink mqtt: live data alone sends 133.3 kbit/s, over its max_rate of 64 kbit/s: the link budget is exceeded and a backlog cannot replay", error, StringComparison.Ordinal);

        (_, output, _) = await InProcessCli.RunAsync("status", "--socket", server.Path, "--json");
        using var doc = JsonDocument.Parse(output);
        var mqtt = doc.RootElement.GetProperty("outbox").GetProperty("uplinks").GetProperty("mqtt");
        Assert.Equal(10_500_000, mqtt.GetProperty("bytes_since_start").GetInt64());
        Assert.Equal(9_500_000, mqtt.GetProperty("bytes_by_kind").GetProperty("summary").GetInt64());
        Assert.Equal(10_000, mqtt.GetProperty("bytes_by_kind").GetProperty("prediction").GetInt64());
        Assert.Equal(500_000, mqtt.GetProperty("replay_bytes_since_start").GetInt64());
        Assert.Equal(10_000_000.0 / 600 * 86400, mqtt.GetProperty("live_bytes_per_day").GetDouble(), 0);
        Assert.Equal(8_000, mqtt.GetProperty("max_rate_bytes_per_s").GetDouble());
        Assert.Equal(42, mqtt.GetProperty("replay_held_by_max_rate_s").GetDouble());
    }
}
