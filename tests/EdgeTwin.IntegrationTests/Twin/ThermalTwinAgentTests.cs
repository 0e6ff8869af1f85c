using System.Collections.Concurrent;
using System.Globalization;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// The live thermal twin in the agent on a simulated site served over real SNMP (PDUs, cooling units) and Modbus
/// (meter, drives): warm-started from 6 simulated hours of the same site's normal telemetry, it must publish a
/// <c>cooling_failure</c> prediction when a unit stops, before the first rack reaches 32 °C, with a time to 32 °C close to
/// what the simulator then does, in the fields the alerting rules read.
/// </summary>
public sealed class ThermalTwinAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_scripted_cooling_failure_yields_a_live_prediction_before_the_first_rack_reaches_32C()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 6, CoolingUnits = 2, Machines = 1, Seed = 1, MinRackKw = 18, MaxRackKw = 27, CoolingMargin = 1.0, Start = DateTimeOffset.UtcNow });
        var site = new SimulatedSite(spec);
        await using var sim = await SimulatedSiteHost.StartAsync(site, SimPaths.LoadProfiles(), new SiteHostOptions(), Ct);
        var config = sim.BuildConfig(TimeSpan.FromSeconds(1), SimPaths.Profiles, TimeSpan.FromMilliseconds(800)) with { Profiles = SimPaths.LoadProfiles() };
        var twinOptions = new ThermalTwinOptions
        {
            Settings = new EdgeTwin.Twin.Thermal.ThermalSettings { ShutdownInletC = spec.ThermalShutdownInletC },
            RefreshEvery = TimeSpan.FromSeconds(5),
            WarmStart = SimulatedThermalPlant.History(spec, TimeSpan.FromHours(6), DateTimeOffset.UtcNow),
        };
        var events = new ConcurrentQueue<(EdgeEvent Event, TimeSpan At)>();
        var work = Directory.CreateTempSubdirectory("edgetwin-thermal-");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            // The alerting engine with the shipped rule on the prediction (datacenter.yaml: thermal-shutdown-soon).
            ConfigureServices = s => s.AddThermalTwin(twinOptions).AddAlerting(new AlertingAgentOptions { StateDirectory = work.FullName, Config = ShutdownRule() }),
        }.ObserveEvents("test", (e, _) =>
        {
            events.Enqueue((e, clock.Elapsed));
            return ValueTask.CompletedTask;
        });

        var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        var stage = agent.Services.GetRequiredService<ThermalTwinStage>();
        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);

            // The warm start calibrates at once: a twin-state event with the fit error.
            await Eventually.UntilAsync(() => events.Any(e => e.Event.Source.EndsWith("/thermal_twin", StringComparison.Ordinal)), "the calibration event", 90);
            var calibration = events.First(e => e.Event.Source.EndsWith("/thermal_twin", StringComparison.Ordinal)).Event;
            Assert.True(double.Parse(calibration.Attributes!["inlet_fit_rmse_k"], CultureInfo.InvariantCulture) < 1.5, calibration.Message);

            // Every rack and unit is fed from the devices: a few polls later the frame has all inlets, powers and unit states.
            await Eventually.UntilAsync(() => Complete(stage), "inlets, power and unit state of every rack and unit in the twin's frame", 60);
            Assert.DoesNotContain(events, e => e.Event.Source.EndsWith("/cooling_failure", StringComparison.Ordinal));

            var failedAt = clock.Elapsed;
            site.Apply(new FaultCommand(FaultKind.CoolingStop, "crac1"));

            // Watch the simulator's truth until the first rack reaches 32 °C (or 6 minutes). The simulated IT load follows the
            // UTC time of day: near its 03:00 trough (a CI run at 01:15 UTC) the first rack took longer than 3 minutes.
            TimeSpan? true32 = null;
            while (clock.Elapsed - failedAt < TimeSpan.FromMinutes(6) && true32 is null)
            {
                double hottest;
                lock (site.SyncRoot)
                {
                    hottest = site.Racks.Max(r => r.InletC);
                }

                if (hottest >= 32)
                {
                    true32 = clock.Elapsed - failedAt;
                }

                await Task.Delay(200, Ct);
            }

            var predictions = events.Where(e => e.Event.Kind == EdgeEventKind.Prediction && e.Event.Source.EndsWith("/cooling_failure", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(predictions);
            TestContext.Current.TestOutputHelper?.WriteLine($"true 32 °C after {true32?.TotalSeconds:0.0} s; predictions: " + string.Join(" | ", predictions.Select(p => $"{(p.At - failedAt).TotalSeconds:0.0}s: 32C in {p.Event.Attributes!.GetValueOrDefault("time_to_32c_s")} s, shutdown in {p.Event.Attributes!.GetValueOrDefault("time_to_thermal_shutdown_s")} s")));
            var first = predictions[0];
            var a = first.Event.Attributes!;
            Assert.Equal("cooling_failure", a["scenario"]);
            Assert.Equal("false", a["down_at_start"]);
            Assert.Equal("active", a["state"]);
            Assert.Equal("crac1", a["failed_units"]);
            Assert.False(string.IsNullOrEmpty(a["affected_racks"]));
            Assert.StartsWith("[", a["mitigation_plan"], StringComparison.Ordinal);
            Assert.NotNull(true32);
            var firstAfter = first.At - failedAt;
            Assert.True(firstAfter < true32, $"first prediction {firstAfter.TotalSeconds:0.0} s after the failure, the first rack reached 32 °C after {true32!.Value.TotalSeconds:0.0} s");

            // A sensible time to 32 °C: the predicted crossing within 40 % (or 20 s) of the true one.
            var predicted32 = firstAfter.TotalSeconds + double.Parse(a["time_to_32c_s"], CultureInfo.InvariantCulture);
            var actual = true32.Value.TotalSeconds;
            Assert.True(Math.Abs(predicted32 - actual) <= Math.Max(20, 0.4 * actual), $"predicted 32 °C at {predicted32:0} s after the failure, simulator {actual:0} s; {first.Event.Message}");

            // The operator's line: the crossing with the peak it comes from, and what the first step buys in words.
            // (A crossing only the forecast's upper band reaches is said as possible, next to the expected peak.)
            Assert.Matches(@"(reaches 32 °C in [0-9.]+ (s|min) \(peak|may reach 32 °C in [0-9.]+ (s|min) \(upper band of the forecast; expected peak) [0-9]+\.[0-9] °C within [0-9]+ min\)", first.Event.Message);
            if (a["mitigation_plan"] != "[]")
            {
                Assert.Matches(@"first step: .+ \((buys [0-9.]+ min|keeps every rack below the limit if started (within [0-9.]+ (s|min)|at once), allowing [0-9.]+ (s|min) for it to take effect)\)(; all [0-9]+ steps together: (keep every rack below the limit if started (within [0-9.]+ (s|min)|at once), allowing [0-9.]+ (s|min) for it to take effect|buy [0-9.]+ min))?$", first.Event.Message);
            }

            // The alerting rules read time_to_thermal_shutdown_min (and time_to_shutdown_min) as numbers.
            Assert.True(double.TryParse(a["time_to_thermal_shutdown_min"], NumberStyles.Float, CultureInfo.InvariantCulture, out var minutes) && minutes > 0, first.Event.Message);
            Assert.Equal(a["time_to_thermal_shutdown_min"], a["time_to_shutdown_min"]);

            // Refreshed while the failure lasts, and the countdown moves.
            Assert.True(predictions.Count >= 2, $"{predictions.Count} prediction(s) in {actual:0} s");

            // The alert rule fired on the prediction's time_to_thermal_shutdown_min (about 5 min here, below 15).
            Assert.Contains(events, e => e.Event.Kind == EdgeEventKind.AlertRaised && e.Event.Source == "thermal-shutdown-soon");

            // Its text is the twin's own line (failed units, racks affected, first step), not "time_to_thermal_shutdown_min = 5.2".
            var raised = events.First(e => e.Event.Kind == EdgeEventKind.AlertRaised && e.Event.Source == "thermal-shutdown-soon");
            Assert.Contains(events, e => e.Event.Kind == EdgeEventKind.Prediction && e.Event.Message == raised.Event.Message);

            // Labelled with the zone the prediction names (it was device=<zone> with no room).
            Assert.Equal(a["zone"], raised.Event.Attributes!["label.room"]);
            Assert.False(raised.Event.Attributes.ContainsKey("label.device"));

            site.Apply(new FaultCommand(FaultKind.CoolingRestore, "crac1"));
            await Eventually.UntilAsync(() => events.Any(e => e.Event.Source.EndsWith("/cooling_failure", StringComparison.Ordinal) && e.Event.Attributes?.GetValueOrDefault("state") == "resolved"), "the resolved event", 60);

            // The resolved event ends the shutdown alert at once (it waited for clear_after, 10 min after the last countdown).
            await Eventually.UntilAsync(() => events.Any(e => e.Event.Kind == EdgeEventKind.AlertCleared && e.Event.Source == "thermal-shutdown-soon"), "the shutdown alert cleared", 30);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            await physics.CancelAsync();
            await physicsTask;

            // Disposed before its state directory goes: the alert store checkpoints on dispose.
            agent.Dispose();
            work.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_unit_already_stopped_at_the_first_poll_after_a_warm_start_is_a_cooling_failure()
    {
        // The arm64 demo under qemu, starved of CPU, first ran the twin's tick after crac1's scripted stop had been
        // polled; the twin had never seen the unit running, took it for a unit that is normally off and predicted
        // nothing. The warm-start history shows it running, so a first reading of "stopped" is a failure. On a machine
        // with CPU to spare the twin's first tick comes before the first poll (and sees the warm-start values), so this
        // test passes either way here; it pins the behaviour, the demo under qemu is where the race showed.
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 6, CoolingUnits = 2, Machines = 0, Seed = 2, MinRackKw = 12, MaxRackKw = 18, CoolingMargin = 1.0, Start = DateTimeOffset.UtcNow });
        var site = new SimulatedSite(spec);
        site.Apply(new FaultCommand(FaultKind.CoolingStop, "crac1"));
        await using var sim = await SimulatedSiteHost.StartAsync(site, SimPaths.LoadProfiles(), new SiteHostOptions(), Ct);
        var config = sim.BuildConfig(TimeSpan.FromSeconds(1), SimPaths.Profiles, TimeSpan.FromMilliseconds(800)) with { Profiles = SimPaths.LoadProfiles() };
        var twinOptions = new ThermalTwinOptions
        {
            Settings = new EdgeTwin.Twin.Thermal.ThermalSettings { ShutdownInletC = spec.ThermalShutdownInletC },
            WarmStart = SimulatedThermalPlant.History(spec, TimeSpan.FromHours(6), DateTimeOffset.UtcNow),
        };
        var events = new ConcurrentQueue<EdgeEvent>();
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddThermalTwin(twinOptions),
        }.ObserveEvents("test", (e, _) =>
        {
            events.Enqueue(e);
            return ValueTask.CompletedTask;
        });

        using var agent = AgentHostBuilder.Build(config, options);
        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            // The unit is down in the simulator (and so on its SNMP agent) before the agent's first poll.
            await Eventually.UntilAsync(() => { lock (site.SyncRoot) { return !site.CoolingUnits.Single(u => u.Id == "crac1").IsRunning; } }, "crac1 stopped in the simulator", 30);
            await agent.StartAsync(Ct);
            await Eventually.UntilAsync(() => events.Any(e => e.Kind == EdgeEventKind.Prediction && e.Source.EndsWith("/cooling_failure", StringComparison.Ordinal)), "a cooling_failure prediction", 120);
            var first = events.First(e => e.Kind == EdgeEventKind.Prediction && e.Source.EndsWith("/cooling_failure", StringComparison.Ordinal));
            Assert.Equal("crac1", first.Attributes!["failed_units"]);
            Assert.Equal("active", first.Attributes["state"]);

            // Stopped at some time between the end of the history and the first reading: said so, not dated as now.
            Assert.Equal("true", first.Attributes["down_at_start"]);
            Assert.Contains("already down when the agent started", first.Message, StringComparison.Ordinal);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            await physics.CancelAsync();
            await physicsTask;
        }
    }

    private static AlertsConfig ShutdownRule()
    {
        const string yaml = """
            alerts:
              rules:
                - { name: thermal-shutdown-soon, type: event, event: prediction, attribute: time_to_thermal_shutdown_min, below: 15, clear_above: 20, clear_after: 10m, severity: critical }
            """;
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "rules.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        Assert.Empty(diagnostics.Sorted());
        return config;
    }

    private static bool Complete(ThermalTwinStage stage)
    {
        // The live readings alone (the twin's own frames hold the warm-start values where a reading is missing).
        var frame = stage.Snapshot(0, 0);
        return frame.RackInletC.All(v => !double.IsNaN(v))
            && frame.RackPowerKw.All(v => !double.IsNaN(v))
            && frame.UnitFanSpeed.All(v => !double.IsNaN(v))
            && frame.UnitSupplyC.All(v => !double.IsNaN(v))
            && frame.UnitReturnC.All(v => !double.IsNaN(v));
    }
}
