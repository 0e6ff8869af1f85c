using System.Collections.Concurrent;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>The agent in-process through <see cref="AgentHostBuilder"/>, with a scripted source factory.</summary>
public sealed class AgentHostTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string TwoPdus = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 1s, timeout: 500ms }
          - { id: pdu-2, profile: apc-rpdu2, address: "udp:127.0.0.1:16101", credentials: pub, interval: 1s, timeout: 500ms }
        """;

    private static AgentHostOptions Options(ProfileFakeFactory factory) => new()
    {
        DiscoverSourceFactories = false,
        UseSystemd = false,
        StatusLogInterval = null,
        MinimumLogLevel = LogLevel.Warning,
        ConfigureServices = s => s.AddSourceFactory(factory),
    };

    private static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(20, Ct);
        }
    }

    [Fact]
    public async Task Regression_an_agent_disposed_without_being_stopped_went_on_polling_its_devices()
    {
        // A test that failed between StartAsync and StopAsync left its agent polling (into disposed sources and a closed
        // outbox) for the rest of the CI run, on a 2-core machine shared with the other tests.
        var factory = new ProfileFakeFactory();
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        var host = AgentHostBuilder.Build(config, Options(factory));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await WaitUntilAsync(() => factory.Polls.GetValueOrDefault("pdu-1") >= 2, "two polls of pdu-1");

        host.Dispose();
        var atDispose = factory.Polls.GetValueOrDefault("pdu-1") + factory.Polls.GetValueOrDefault("pdu-2");
        await Task.Delay(TimeSpan.FromSeconds(3), Ct); // three poll intervals
        var after = factory.Polls.GetValueOrDefault("pdu-1") + factory.Polls.GetValueOrDefault("pdu-2");
        Assert.True(after <= atDispose + 2, $"{after - atDispose} polls after the host was disposed"); // at most one in flight each
    }

    [Fact]
    public async Task Every_device_is_polled_into_the_observers_and_stop_drains_everything_queued()
    {
        var factory = new ProfileFakeFactory();
        var seen = new ConcurrentQueue<Sample>();
        var options = Options(factory);

        // A slow observer with room for every batch: at stop its queue still holds batches, which must all arrive.
        options.ObserverStageOptions = new Core.Pipeline.StageOptions(Capacity: 1000);
        options.ObserveSamples("slow-observer", async (batch, ct) =>
        {
            foreach (var s in batch.Span)
            {
                seen.Enqueue(s);
            }

            await Task.Delay(150, ct);
        });
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var host = AgentHostBuilder.Build(config, options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();

        await host.StartAsync(Ct);
        await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await WaitUntilAsync(() => factory.Polls.GetValueOrDefault("pdu-1") >= 3 && factory.Polls.GetValueOrDefault("pdu-2") >= 3, "three polls of each PDU");
        await host.StopAsync(Ct);

        var total = runtime.Pipeline!.TotalSamples;
        Assert.True(total >= 2 * 3 * 7, $"only {total} samples");
        Assert.Equal(total, seen.Count);
        Assert.Equal(["pdu-1", "pdu-2"], factory.Disposed.Order());

        var byKey = seen.GroupBy(s => runtime.Registry[s.Series].Key).ToDictionary(g => g.Key, g => g.Last());
        Assert.Equal(50, byKey["pdu-1/total_power"].Value, 9);
        Assert.Equal("kW", runtime.Registry[byKey["pdu-1/total_power"].Series].Unit);
        Assert.Equal(30, byKey["pdu-2/inlet_temperature"].Value, 9);
        Assert.Equal(12.3, byKey["pdu-2/energy"].Value, 9);
        Assert.All(seen, s => Assert.Equal(SampleQuality.Good, s.Quality));

        // The stamps are the scheduler's acquisition times: each device's polls about 1 s apart.
        var stamps = seen.Where(s => runtime.Registry[s.Series].Key == "pdu-1/total_power").Select(s => s.TimestampUnixMs).ToArray();
        Assert.All(stamps.Zip(stamps.Skip(1)), p => Assert.InRange(p.Second - p.First, 900, 1300));
    }

    [Fact]
    public async Task An_unreachable_device_raises_device_down_then_device_up_when_it_answers_again()
    {
        var factory = new ProfileFakeFactory();
        factory.Failing["pdu-2"] = true;
        var events = new ConcurrentQueue<EdgeEvent>();
        var options = Options(factory);
        options.Scheduler = new PollSchedulerOptions { FailuresBeforeDown = 2, MaxBackoff = TimeSpan.FromSeconds(2) };
        options.ObserveEvents("test", (e, _) =>
        {
            events.Enqueue(e);
            return ValueTask.CompletedTask;
        });
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var host = AgentHostBuilder.Build(config, options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();

        await host.StartAsync(Ct);
        await WaitUntilAsync(() => events.Any(e => e.Kind == EdgeEventKind.DeviceDown), "device_down");
        Assert.Equal(DeviceState.Down, runtime.DeviceStatus().Single(d => d.DeviceId == "pdu-2").State);
        Assert.Equal(DeviceState.Up, runtime.DeviceStatus().Single(d => d.DeviceId == "pdu-1").State);
        factory.Failing["pdu-2"] = false;
        await WaitUntilAsync(() => events.Any(e => e.Kind == EdgeEventKind.DeviceUp), "device_up");
        await host.StopAsync(Ct);

        var down = events.First(e => e.Kind == EdgeEventKind.DeviceDown);
        Assert.Equal("pdu-2", down.Source);
        Assert.Equal("device 'pdu-2' down after 2 failed polls: device 'pdu-2': no response from udp:127.0.0.1:16100 (request timed out)", down.Message);
        Assert.Equal(["pdu-2", "pdu-2"], events.Select(e => e.Source));
    }

    [Fact]
    public async Task Devices_whose_sources_cannot_be_built_are_all_reported_and_the_agent_does_not_start()
    {
        var factory = new ProfileFakeFactory();
        var config = AgentFiles.Load(AgentFiles.WriteConfig("""
              - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: ops }
              - { id: pdu-2, profile: apc-rpdu2, address: "udp:127.0.0.1:16101", credentials: pub }
              - { id: meter-1, profile: eastron-sdm630, address: "tcp:127.0.0.1:15020" }
            """));
        using var host = AgentHostBuilder.Build(config, Options(factory));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();

        var ex = await Assert.ThrowsAsync<AgentStartException>(() => host.StartAsync(Ct));

        Assert.Equal(
            [
                "device 'pdu-1': credentials 'ops' are not SNMPv2c, the only version this test source speaks",
                "device 'meter-1': no source factory for protocol 'modbus' (profile 'eastron-sdm630'); this build has: snmp",
            ],
            ex.Problems);
        Assert.True(runtime.Started.IsFaulted);
        Assert.Equal(["pdu-2"], factory.Disposed); // what was built before the failure is released
        Assert.Empty(factory.Polls);
    }

    private sealed class CrashingService : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Delay(300, stoppingToken);
            throw new InvalidOperationException("uplink state corrupted");
        }
    }

    [Fact]
    public async Task A_crashing_background_service_stops_the_agent_with_exit_code_1()
    {
        var factory = new ProfileFakeFactory();
        var options = Options(factory);
        options.ConfigureServices += s => s.AddHostedService<CrashingService>();
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        var error = new StringWriter();

        var code = await RunCommand.RunAsync(config, options, error, Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal(1, code);
        Assert.Equal("edgetwin: stopped after a fatal error: InvalidOperationException: uplink state corrupted" + Environment.NewLine, error.ToString());
        Assert.Equal(["pdu-1", "pdu-2"], factory.Disposed.Order());
    }

    [Fact]
    public async Task Regression_a_start_that_failed_on_the_outbox_directory_printed_the_hosts_stack_trace_and_not_the_key()
    {
        // Before: the host's "Hosting failed to start" Error with 20 lines of trace, then
        // "edgetwin: fatal: FileNotFoundException: Could not find file '/proc/edgetwin-test'": no key, no config file.
        var factory = new ProfileFakeFactory();
        var logs = new System.Collections.Concurrent.ConcurrentQueue<(LogLevel Level, string Message)>();
        var options = Options(factory);
        options.ConfigureServices += s => s.AddStoreAndForward();
        options.ConfigureLogging += l => l.AddProvider(new ListLoggerProvider(logs));
        var file = AgentFiles.WriteConfig(TwoPdus);
        var loaded = AgentFiles.Load(file);
        // The config check refuses this path (BrokenConfigTests); a directory that goes bad after it still must be named.
        var config = loaded with { Outbox = loaded.Outbox with { Path = "/proc/edgetwin-test/outbox.db" } };
        var error = new StringWriter();

        var code = await RunCommand.RunAsync(config, options, error, Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal(1, code);
        Assert.Equal(
            $"edgetwin: fatal: IOException: cannot create the outbox's directory /proc/edgetwin-test (outbox.path in {Path.GetFullPath(file)}): Could not find file '/proc/edgetwin-test'." + Environment.NewLine,
            error.ToString());
        Assert.DoesNotContain(logs, l => l.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task Stopping_the_run_with_its_token_exits_0_after_a_clean_drain()
    {
        var factory = new ProfileFakeFactory();
        var seen = 0L;
        var options = Options(factory).ObserveSamples("count", (b, _) =>
        {
            Interlocked.Add(ref seen, b.Length);
            return ValueTask.CompletedTask;
        });
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var error = new StringWriter();

        var run = RunCommand.RunAsync(config, options, error, stop.Token);
        await WaitUntilAsync(() => factory.Polls.GetValueOrDefault("pdu-2") >= 2, "two polls");
        await stop.CancelAsync();
        var code = await run.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal(0, code);
        Assert.Equal("", error.ToString());
        Assert.True(Interlocked.Read(ref seen) >= 2 * 7 * 2);
    }
}
