using System.CommandLine;
using System.Diagnostics;
using EdgeTwin.Agent.Demo;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Line;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Samples;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin demo</c>: a simulated site, an embedded MQTT broker and the agent in one process, with a live
/// view; <c>--failure-at</c> seconds after the agent first reads it, a cooling unit stops so the viewer sees the
/// temperatures rise and what the agent reports. <c>--duration</c> runs headless and exits 0.
/// </summary>
internal sealed class DemoCommand : ICliCommand
{
    public Command Create()
    {
        var duration = new Option<double?>("--duration") { Description = "Stop after this many seconds (default: run until Ctrl-C)." }.Positive();
        var failureAt = new Option<double>("--failure-at") { Description = "Seconds after the agent first reads the cooling unit until it fails (negative: no failure).", DefaultValueFactory = _ => 60 };
        var failureUnit = new Option<string>("--failure-unit") { Description = "Cooling unit that fails.", DefaultValueFactory = _ => "crac1" };
        var racks = new Option<int>("--racks") { Description = "Number of racks.", DefaultValueFactory = _ => 6 }.AtLeast(1);
        var units = new Option<int>("--cooling-units") { Description = "Number of cooling units.", DefaultValueFactory = _ => 2 }.AtLeast(1);
        var machines = new Option<int>("--machines") { Description = "Number of machines.", DefaultValueFactory = _ => 2 }.AtLeast(0);
        var seed = new Option<int>("--seed") { Description = "Seed of the simulated site.", DefaultValueFactory = _ => 1 };
        var interval = new Option<string>("--interval") { Description = "Poll interval of every device.", DefaultValueFactory = _ => "2s" };
        var profilesDir = new Option<DirectoryInfo?>("--profiles-dir") { Description = "Directory of device profiles." };
        var outageAt = new Option<double>("--uplink-outage-at") { Description = "Seconds after the agent starts polling until the MQTT broker goes away (0: no outage).", DefaultValueFactory = _ => DefaultOutageAt.TotalSeconds }.Seconds(MaxOutageSetting);
        var outageFor = new Option<double>("--uplink-outage-for") { Description = "Seconds the broker stays away before it comes back on the same port (0: no outage).", DefaultValueFactory = _ => DefaultOutageFor.TotalSeconds }.Seconds(MaxOutageSetting);
        var noOutage = new Option<bool>("--no-uplink-outage") { Description = "No scripted uplink outage." };
        var command = new Command("demo", "Simulated site + embedded MQTT broker + the agent in one process, with a live view and a scripted cooling failure.");
        foreach (var o in new Option[] { duration, failureAt, failureUnit, racks, units, machines, seed, interval, profilesDir, outageAt, outageFor, noOutage })
        {
            command.Options.Add(o);
        }

        var line = new LineSimOptions(LineSimOptions.DefaultStations, stackLights: true, defaultStackLight: "S2");
        line.AddTo(command);

        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var failAfter = parse.GetValue(failureAt);
                var (outageStart, outageLength) = (parse.GetValue(outageAt), parse.GetValue(outageFor));
                var outage = parse.GetValue(noOutage) || outageStart == 0 || outageLength == 0 ? ((TimeSpan, TimeSpan)?)null : (TimeSpan.FromSeconds(outageStart), TimeSpan.FromSeconds(outageLength));
                return await InWorkDirectoryAsync(error, work => RunInAsync(
                    work,
                    new SiteGenerationOptions
                    {
                        Racks = parse.GetValue(racks),
                        CoolingUnits = parse.GetValue(units),
                        Machines = parse.GetValue(machines),
                        LineStations = line.StationsFrom(parse),
                        Seed = parse.GetValue(seed),
                        Start = DateTimeOffset.UtcNow,
                    },
                    failAfter < 0 ? null : TimeSpan.FromSeconds(failAfter),
                    parse.GetValue(failureUnit)!,
                    FaultCommand.ParseDuration(parse.GetValue(interval)!, "--interval"),
                    SimCommand.ResolveProfilesDir(parse.GetValue(profilesDir)?.FullName),
                    parse.GetValue(duration) is { } d ? TimeSpan.FromSeconds(d) : null,
                    line.StackLightsFrom(parse),
                    outage,
                    output,
                    error,
                    ct)).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return 0;
            }
            catch (Exception ex) when (ex is FormatException or FileNotFoundException or DirectoryNotFoundException or KeyNotFoundException or ArgumentException)
            {
                await error.WriteLineAsync("edgetwin demo: " + ex.Message).ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    /// <summary>
    /// The scripted outage of the default run: some 15 s after the cooling failure's first alert (failure at 60 s), long
    /// enough for the agent's uplink-offline alert and for the rack alerts to be raised while the broker is away, so the
    /// replay carries them; back at 125 s.
    /// </summary>
    private static readonly TimeSpan DefaultOutageAt = TimeSpan.FromSeconds(80);

    private static readonly TimeSpan DefaultOutageFor = TimeSpan.FromSeconds(45);

    private static readonly TimeSpan MaxOutageSetting = TimeSpan.FromDays(7);

    /// <summary>The CLI's own grace after SIGTERM (Program.cs); the unit gives 60 s.</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(45);

    /// <summary>Runs <paramref name="run"/> in a throw-away working directory, removed afterwards.</summary>
    private static async Task<int> InWorkDirectoryAsync(TextWriter error, Func<DirectoryInfo, Task<int>> run)
    {
        // The agent's outbox and alert state live in a throw-away directory under $TMPDIR. Made first, so a TMPDIR that
        // cannot take it is one line and exit 1 before anything has started: it was an unhandled exception's stack trace.
        DirectoryInfo work;
        try
        {
            work = Directory.CreateTempSubdirectory("edgetwin-demo-");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"edgetwin demo: cannot create its working directory (outbox, alert state) in {Path.GetTempPath()}: {ex.Message.TrimEnd('.')}; set TMPDIR to a writable directory").ConfigureAwait(false);
            return 1;
        }

        try
        {
            return await run(work).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                work.Delete(recursive: true);
            }
            catch (IOException)
            {
                // A temp directory left behind is harmless.
            }
        }
    }

    private static async Task<int> RunInAsync(
        DirectoryInfo work,
        SiteGenerationOptions siteOptions,
        TimeSpan? failureAt,
        string failureUnit,
        TimeSpan interval,
        string profilesDir,
        TimeSpan? duration,
        IReadOnlyList<string> stackLights,
        (TimeSpan At, TimeSpan For)? outage,
        TextWriter output,
        TextWriter error,
        CancellationToken ct)
    {
        var site = new SimulatedSite(SiteGenerator.Generate(siteOptions));

        var profiles = SimulatedSiteHost.LoadProfiles(profilesDir);
        await using var simulator = await SimulatedSiteHost.StartAsync(site, profiles, new SiteHostOptions(), ct).ConfigureAwait(false);
        await using var broker = await EmbeddedBroker.StartAsync(ct).ConfigureAwait(false);
        var config = simulator.BuildConfig(interval, profilesDir) with { Profiles = profiles };
        var lights = SimulatedStackLights.Attach(site, config, stackLights, profilesDir, interval);
        config = lights?.Config ?? config;

        var state = new DemoState();
        if (failureAt is not null)
        {
            _ = site.CoolingUnit(failureUnit); // an unknown --failure-unit is a usage error now, not a surprise later
        }

        // The agent forwards through its real outbox (a throw-away file) and MQTT uplink to the embedded broker.
        var mqtt = new MqttUplinkOptions
        {
            Host = "127.0.0.1",
            Port = broker.Port,
            ClientId = config.Site.GatewayId,
            Site = config.Site.Id,
            Gateway = config.Site.GatewayId,
            StateDirectory = work.FullName,
        };
        var storeAndForward = new StoreAndForwardOptions
        {
            SummaryWindow = TimeSpan.FromSeconds(10),
            OutboxPath = Path.Combine(work.FullName, "outbox.db"),
            Uplinks = new UplinksConfig(mqtt, null),
        };
        var agentOptions = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ShutdownTimeout = StopTimeout,
            // The live view owns the terminal; the agent's warnings would tear it.
            ConfigureLogging = logging => logging.ClearProviders(),
            ConfigureServices = services => services.AddStoreAndForward(storeAndForward).AddTwinModels().AddModels().AddMultivariateAnomaly().AddMaintenance().AddThermalTwin(ThermalTwinOptions.DemoWarmStart(site.Spec)).AddPue().AddTwinRequests().AddAlerting(new AlertingAgentOptions { StateDirectory = work.FullName, Config = DemoAlertRules() }).AddLineTwin(config, publishEvery: TimeSpan.FromSeconds(10)),
        }
            .ObserveSamples("demo-view", state.OnSamples)
            .ObserveEvents("demo-view", state.OnEvent);
        agentOptions.ConfigureServices += services => lights?.AddTo(services);
        using var agent = AgentHostBuilder.Build(config, agentOptions);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        var scriptedFailureTicks = -1L; // simulated time since the site's start, once the agent has read the unit
        if (failureAt is { } after)
        {
            // The failure counts from the agent's first reading of the unit, so the viewer (and the twin) always see it run,
            // then stop. Counted from when the agent polls, a loaded machine under qemu (first polls timing out for 30 s)
            // stopped the unit before the agent had read it, and the twin had no failure to see happen.
            var unitDevice = config.Site.CoolingUnits.FirstOrDefault(u => u.Id == failureUnit)?.Device ?? failureUnit;
            state.Watch(unitDevice, agent.Services.GetRequiredService<SeriesRegistry>(), () =>
            {
                TimeSpan at;
                lock (site.SyncRoot)
                {
                    at = site.Now - site.Spec.Start + after;
                }

                Interlocked.Exchange(ref scriptedFailureTicks, at.Ticks);
                site.Apply(new FaultCommand(FaultKind.CoolingStop, failureUnit, At: at));
            });
        }
        try
        {
            await agent.StartAsync(ct).ConfigureAwait(false);
        }
        catch (AgentStartException ex)
        {
            foreach (var problem in ex.Problems)
            {
                await error.WriteLineAsync(problem).ConfigureAwait(false);
            }

            await error.WriteLineAsync("edgetwin demo: the agent cannot read the simulated devices (see above)").ConfigureAwait(false);
            return 1;
        }

        // The view's clock counts from here, when the agent is polling: the simulated site has run since the simulator
        // started, which under qemu (JIT of everything, ONNX sessions) was 24 s earlier.
        var pollingFrom = simulator.Runner.SimulatedNow - site.Spec.Start;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (duration is { } d)
        {
            stop.CancelAfter(d);
        }

        var started = Stopwatch.StartNew();
        var terminal = !Console.IsOutputRedirected && ReferenceEquals(output, Console.Out);
        var view = new DemoView(output, terminal);
        var alerting = agent.Services.GetRequiredService<AlertingHostedService>();
        var outbox = agent.Services.GetRequiredService<StoreAndForwardService>().Outbox;
        var script = outage is { } o
            ? new DemoOutage(o.At, o.For, broker, outbox.GetStats, () => alerting.Service?.Connectivity is { Monitored: true } m ? (m.State, m.Since) : null)
            : null;
        var context = new DemoContext(site, runtime, state, broker, script, () => simulator.Runner.SimulatedNow - site.Spec.Start - pollingFrom, failureAt, () => Interlocked.Read(ref scriptedFailureTicks) is >= 0 and var ticks ? TimeSpan.FromTicks(ticks) - pollingFrom : null, failureUnit, () => BufferState(agent));
        await output.WriteLineAsync($"edgetwin demo: {simulator.Devices.Count} simulated devices, agent polling every {interval.TotalSeconds:0.#} s, MQTT broker on 127.0.0.1:{broker.Port} (watch it: {broker.WatchCommand})").ConfigureAwait(false);
        var simulation = simulator.RunAsync(stop.Token);
        var lamps = lights?.RunAsync(stop.Token) ?? Task.CompletedTask;
        var outageScript = script?.RunAsync(context.ElapsedClock, stop.Token) ?? Task.CompletedTask;
        var period = terminal ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(2);
        while (!stop.IsCancellationRequested)
        {
            await view.RenderAsync(context, CancellationToken.None).ConfigureAwait(false);
            try
            {
                await Task.Delay(period, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await simulation.ConfigureAwait(false);
        await lamps.ConfigureAwait(false);
        await outageScript.ConfigureAwait(false);
        await view.RenderAsync(context, CancellationToken.None).ConfigureAwait(false);
        // As long as the CLI gets after SIGTERM (the host's ShutdownTimeout above is the same). With 10 s, the arm64 demo
        // under qemu on a loaded machine exited 1 without a word after its last status line: what a stage's cancellation
        // rethrown by the host looks like through System.CommandLine. A stop cut short is now said, and the exit code
        // stays the pipeline's.
        try
        {
            await agent.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException || (ex is AggregateException all && all.InnerExceptions.All(e => e is OperationCanceledException)))
        {
            // What the outbox accepted is already on disk (fsynced per commit); the stop only cut short a flush.
            await error.WriteLineAsync($"edgetwin demo: the agent did not stop within {StopTimeout.TotalSeconds:0} s; stopped anyway").ConfigureAwait(false);
        }

        await output.WriteLineAsync($"edgetwin demo: stopped after {started.Elapsed.TotalSeconds:0} s, {state.Samples} samples, {state.EventsAndTotal().Total} events; {BrokerReceived(broker)}").ConfigureAwait(false);
        return runtime.Fatal is null ? 0 : 1;
    }

    /// <summary>What the broker itself received, counted by outbox sequence: the proof that nothing the agent sent went missing.</summary>
    private static string BrokerReceived(EmbeddedBroker broker)
    {
        var seq = broker.Sequences;
        return seq.Distinct == 0 ? "the broker received no outbox entry"
            : FormattableString.Invariant($"the broker received {seq.Distinct} outbox entries, {(seq.Missing == 0 ? "no sequence missing" : seq.Missing + " sequences MISSING")} ({seq.Duplicates} received twice)");
    }

    private static string BufferState(IHost agent)
    {
        var saf = agent.Services.GetRequiredService<StoreAndForwardService>();
        var stats = saf.Outbox.GetStats();
        // Counts, not positions: the demo's outbox is new each run, so what is not waiting has reached the broker. The
        // acknowledged sequence (unix ms × 1000, "acked up to #1796381955252000") told a first-time user nothing.
        return FormattableString.Invariant($"outbox: {stats.Appended} appended, {stats.Depth} waiting, {Math.Max(0, stats.Appended - stats.Depth)} delivered to the broker");
    }

    /// <summary>
    /// The demo site's alert rules: the ASHRAE limits on rack inlets, so the scripted cooling failure raises alerts in the view
    /// (and, as events, through the outbox to the broker). Same format as device-profiles/examples/alert-rules/. One alert per
    /// rack: each demo rack has an A- and a B-feed PDU that both measure its inlet, and per series every rack's alert came
    /// twice with the same text.
    /// </summary>
    private static EdgeTwin.Alerting.Rules.AlertsConfig DemoAlertRules()
    {
        const string yaml = """
            alerts:
              rules:
                - { name: rack-inlet-above-recommended, type: threshold, match: { role: rack.inlet_temperature }, above: 27, clear_below: 26, for: 10s, severity: warning, combine: any, per: rack }
                - { name: rack-inlet-above-allowable, type: threshold, match: { role: rack.inlet_temperature }, above: 32, clear_below: 30, for: 5s, severity: critical, combine: any, per: rack }
                - { name: cooling-unit-failed, type: event, event: prediction, attribute: failed_unit_count, above: 0.5, clear_after: 10m, severity: critical }
                - { name: uplink-offline, type: uplink, for: 5s, severity: warning }
              # The broker is probed every 2 s, offline after 3 failed probes: the scripted outage's alert within ~11 s.
              connectivity: { interval: 2s, timeout: 1s, offline_after: 3 }
            """;
        var diagnostics = new EdgeTwin.Core.Config.ConfigDiagnostics();
        var root = (EdgeTwin.Core.Config.ConfigMapping)EdgeTwin.Core.Config.YamlTree.Parse(yaml, "demo-alerts.yaml", diagnostics)!;
        var config = EdgeTwin.Alerting.Rules.AlertsConfig.Read(new EdgeTwin.Core.Config.ConfigReader((EdgeTwin.Core.Config.ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        return diagnostics.Sorted().Count == 0 ? config : throw new InvalidOperationException("demo alert rules: " + string.Join("; ", diagnostics.Sorted()));
    }
}
