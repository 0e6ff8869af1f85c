using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin.Setpoints;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Twin.Setpoints;

/// <summary>
/// The closed loop on a simulated site whose cooling units are served over Modbus with writable set points
/// (generic-modbus-crac): the agent polls them, the live twin (warm-started) feeds the optimiser, and the set-point
/// control writes through real Modbus TCP into the simulated units. Disabled by default: nothing is written.
/// </summary>
public sealed class SetpointLoopTests
{
    private static readonly SimProfiles Profiles = new() { CoolingUnit = "generic-modbus-crac" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Enabled_loop_steps_within_bounds_and_rates_then_rolls_back_every_unit_on_an_inlet_excursion()
    {
        await using var run = await Run.StartAsync(seed: 2, site =>
        {
            // Bounds around today's set points; the rollback 2 K above today's hottest inlet, the optimiser's limit 3 K above
            // with a 2 K margin, so the loop's own moves stay under the rollback and the injected load crosses it.
            var set = site.CoolingUnits.Select(u => u.SupplySetpointC).ToList();
            var hottest = site.Racks.Max(r => r.InletSensor.Reading);
            return Inv($"""
                  optimise_every: 10s
                  inlet_limit_c: {hottest + 3:0.0}
                  margin_k: 2
                  setpoint_control:
                    enabled: true
                    min_supply_c: {set.Min() - 1:0.0}
                    max_supply_c: {set.Max() + 1.5:0.0}
                    min_fan_percent: 40
                    max_fan_percent: 100
                    max_supply_step_k: 0.5
                    max_fan_step_percent: 5
                    min_write_interval: 3s
                    rollback_inlet_c: {hottest + 2:0.0}
                    rollback_hold: 10m
                    settle_time: 1h
                    max_fit_rmse_k: 5
                    check_every: 500ms
                """);
        });
        var config = run.Agent.Services.GetRequiredService<ThermalTwinConfig>();
        var bounds = config.Setpoints.Bounds;
        var controller = run.Agent.Services.GetRequiredService<SetpointController>();

        // Phase 1: the loop moves the units toward the recommendation, one bounded step per write interval.
        await run.WaitUntilAsync(() => run.Events("/setpoint_write").Count >= 3 || run.Events("/setpoint_rollback").Count > 0, "three set-point write steps", 150);
        Assert.Empty(run.Events("/setpoint_rollback"));
        var recommendation = run.Events("/cooling_recommendation")[0];
        Assert.Equal("false", recommendation.Event.Attributes!["advisory"]);
        var good = controller.KnownGood(0)!;
        var writes = run.Events("/setpoint_write");
        UnitSetpoints[]? previous = null;
        DateTimeOffset? previousAt = null;
        foreach (var (e, _) in writes)
        {
            var units = Units(e);
            for (var j = 0; j < units.Length; j++)
            {
                Assert.InRange(units[j].SupplyC, bounds.MinSupplyC - 1e-6, bounds.MaxSupplyC + 1e-6);
                Assert.InRange(units[j].FanPercent, 0, bounds.MaxFanPercent + 1e-6); // a fan below the bounds is brought in stepwise
                if (previous is not null)
                {
                    Assert.True(Math.Abs(units[j].SupplyC - previous[j].SupplyC) <= 0.5 + 1e-6, e.Message);
                    Assert.True(Math.Abs(units[j].FanPercent - previous[j].FanPercent) <= 5 + 1e-6, e.Message);
                }
                else
                {
                    Assert.True(Math.Abs(units[j].SupplyC - good[j].SupplyC) <= 0.5 + 1e-6, $"first step from {good[j]}: {e.Message}");
                }
            }

            if (previousAt is { } p)
            {
                Assert.True(e.Time - p >= TimeSpan.FromSeconds(3), $"writes {(e.Time - p).TotalSeconds:0.0} s apart");
            }

            previous = units;
            previousAt = e.Time;
        }

        // The simulated units run what the loop commanded (the write went through Modbus into the physics), to the
        // registers' resolution of 0.1 °C and 0.1 % (CI once saw 20.26 commanded, 20.3 in the register).
        var commanded = controller.Commanded(0)!;
        lock (run.Site.SyncRoot)
        {
            for (var j = 0; j < commanded.Count; j++)
            {
                var unit = run.Site.CoolingUnits[j];
                Assert.InRange(unit.SupplySetpointC, commanded[j].SupplyC - 0.05 - 1e-9, commanded[j].SupplyC + 0.05 + 1e-9);
                Assert.InRange((unit.FanSpeedOverride ?? 0) * 100, commanded[j].FanPercent - 0.05 - 1e-9, commanded[j].FanPercent + 0.05 + 1e-9);
            }
        }

        // Phase 2: an inlet excursion (heavy extra load on every rack's PDU) crosses rollback_inlet_c.
        foreach (var pdu in run.Site.Spec.Pdus)
        {
            run.Site.Apply(new FaultCommand(FaultKind.PduOverload, pdu.Id, 25));
        }

        await run.WaitUntilAsync(() => run.Events("/setpoint_rollback").Count > 0, "the setpoint_rollback event", 150);
        var rollback = run.Events("/setpoint_rollback")[0].Event;
        var a = rollback.Attributes!;
        TestContext.Current.TestOutputHelper?.WriteLine(rollback.Message);
        Assert.Equal(EdgeEventKind.Anomaly, rollback.Kind);
        Assert.Equal(EventSeverity.Critical, rollback.Severity);
        Assert.Equal("setpoint_rollback", a["type"]);
        Assert.Equal("inlet_limit", a["reason"]);
        Assert.False(string.IsNullOrEmpty(a["rack"]));
        Assert.True(double.Parse(a["inlet_c"], CultureInfo.InvariantCulture) >= double.Parse(a["limit_c"], CultureInfo.InvariantCulture) - 1e-9, rollback.Message);
        var restored = JsonSerializer.Deserialize<List<RestoredSetpoints>>(a["units_restored"])!;
        Assert.Equal(run.Site.CoolingUnits.Count, restored.Count);
        Assert.All(restored, r => Assert.True(r.Restored, r.Unit));

        // Every unit is back on its known-good set points at once: the supply as read before the first write, the fans
        // handed back to the unit's own control.
        lock (run.Site.SyncRoot)
        {
            for (var j = 0; j < good.Count; j++)
            {
                Assert.Equal(good[j].SupplyC, run.Site.CoolingUnits[j].SupplySetpointC, 2);
                Assert.Null(run.Site.CoolingUnits[j].FanSpeedOverride);
            }
        }

        // Writing pauses for the hold time: no more writes reach the devices.
        var after = run.Sim.Writes;
        await Task.Delay(TimeSpan.FromSeconds(8), Ct);
        Assert.Equal(after, run.Sim.Writes);
        Assert.Single(run.Events("/setpoint_rollback"));
    }

    [Fact]
    public async Task Disabled_by_default_recommendations_are_published_and_nothing_is_ever_written()
    {
        double[] before = [];
        await using var run = await Run.StartAsync(seed: 3, site =>
        {
            before = [.. site.CoolingUnits.Select(u => u.SupplySetpointC)];
            return "  optimise_every: 10s\n";
        });
        Assert.False(run.Agent.Services.GetRequiredService<ThermalTwinConfig>().Setpoints.Enabled);
        await run.WaitUntilAsync(() => run.Events("/cooling_recommendation").Count >= 2, "two advisory recommendations", 120);
        var rec = run.Events("/cooling_recommendation")[0].Event;
        TestContext.Current.TestOutputHelper?.WriteLine(rec.Message);
        Assert.Equal("true", rec.Attributes!["advisory"]);
        Assert.True(double.TryParse(rec.Attributes["saving_kw"], NumberStyles.Float, CultureInfo.InvariantCulture, out _));
        Assert.Empty(run.Events("/setpoint_write"));
        Assert.Empty(run.Events("/setpoint_rollback"));
        Assert.Equal(0, run.Sim.Writes);
        lock (run.Site.SyncRoot)
        {
            Assert.Equal(before, run.Site.CoolingUnits.Select(u => u.SupplySetpointC));
            Assert.All(run.Site.CoolingUnits, u => Assert.Null(u.FanSpeedOverride));
        }
    }

    private static UnitSetpoints[] Units(EdgeEvent e) =>
        [.. JsonSerializer.Deserialize<List<RestoredSetpoints>>(e.Attributes!["units"])!.Select(u => new UnitSetpoints(u.SupplySetpointC ?? double.NaN, u.FanSpeedPercent ?? double.NaN))];

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>A simulated site served over SNMP/Modbus (cooling units over Modbus), its physics running, and the agent on it.</summary>
    private sealed class Run : IAsyncDisposable
    {
        private readonly ConcurrentQueue<(EdgeEvent Event, TimeSpan At)> _events = new();
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private CancellationTokenSource? _physics;
        private Task? _physicsTask;

        public SimulatedSite Site { get; private set; } = null!;

        public SimulatedSiteHost Sim { get; private set; } = null!;

        public Microsoft.Extensions.Hosting.IHost Agent { get; private set; } = null!;

        public static async Task<Run> StartAsync(int seed, Func<SimulatedSite, string> section)
        {
            var run = new Run();
            var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 4, CoolingUnits = 2, Machines = 1, Seed = seed, MinRackKw = 8, MaxRackKw = 14, CoolingMargin = 1.6, Start = DateTimeOffset.UtcNow });
            run.Site = new SimulatedSite(spec);
            var profiles = SimulatedSiteHost.LoadProfiles(SimPaths.Profiles, Profiles);
            run.Sim = await SimulatedSiteHost.StartAsync(run.Site, profiles, new SiteHostOptions { Profiles = Profiles }, Ct);
            run._physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            run._physicsTask = run.Sim.RunAsync(run._physics.Token);
            await Task.Delay(TimeSpan.FromSeconds(3), Ct); // sensors settle on the live physics

            string yaml;
            lock (run.Site.SyncRoot)
            {
                yaml = "thermal_twin:\n" + section(run.Site);
            }

            var diagnostics = new ConfigDiagnostics();
            var root = (ConfigMapping)YamlTree.Parse(yaml, "thermal.yaml", diagnostics)!;
            Assert.Empty(diagnostics.Sorted());
            var baseConfig = run.Sim.BuildConfig(TimeSpan.FromSeconds(1), SimPaths.Profiles, TimeSpan.FromMilliseconds(800));
            var config = baseConfig with
            {
                Profiles = profiles,
                Sections = new Dictionary<string, ConfigMapping>(baseConfig.Sections, StringComparer.Ordinal) { ["thermal_twin"] = (ConfigMapping)root["thermal_twin"]! },
            };
            var twinOptions = new ThermalTwinOptions
            {
                Settings = new EdgeTwin.Twin.Thermal.ThermalSettings { ShutdownInletC = spec.ThermalShutdownInletC },
                WarmStart = SimulatedThermalPlant.History(spec, TimeSpan.FromHours(6), DateTimeOffset.UtcNow),
            };
            var options = new AgentHostOptions
            {
                UseSystemd = false,
                StatusLogInterval = null,
                MinimumLogLevel = LogLevel.Warning,
                ConfigureServices = s => s.AddThermalTwin(twinOptions),
            }.ObserveEvents("test", (e, _) =>
            {
                run._events.Enqueue((e, run._clock.Elapsed));
                return ValueTask.CompletedTask;
            });
            run.Agent = AgentHostBuilder.Build(config, options);
            await run.Agent.StartAsync(Ct);
            await run.Agent.Services.GetRequiredService<AgentRuntime>().Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            return run;
        }

        public List<(EdgeEvent Event, TimeSpan At)> Events(string sourceSuffix) =>
            [.. _events.Where(e => e.Event.Source.EndsWith(sourceSuffix, StringComparison.Ordinal))];

        public async Task WaitUntilAsync(Func<bool> condition, string what, int seconds)
        {
            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while (!condition())
            {
                if (DateTime.UtcNow > deadline)
                {
                    Assert.Fail($"timed out after {seconds} s waiting for {what}; events: " + string.Join(" | ", _events.Select(e => e.Event.Source + ": " + e.Event.Message).TakeLast(12)));
                }

                await Task.Delay(200, Ct);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Agent is not null)
            {
                await Agent.StopAsync(CancellationToken.None);
                Agent.Dispose();
            }

            if (_physics is not null)
            {
                await _physics.CancelAsync();
                await _physicsTask!;
                _physics.Dispose();
            }

            await Sim.DisposeAsync();
        }
    }
}
