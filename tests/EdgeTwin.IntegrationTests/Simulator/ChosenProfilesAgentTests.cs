using System.Collections.Concurrent;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Agent.Twin.Power;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Faults;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary>
/// The real agent pipeline polling a simulated site whose UPS units, main meter and rack probes are the profiles a user
/// picked (eaton-xups over SNMP, siemens-pac3200 over Modbus TCP, apc-uio-probe over SNMP), as it polls any other device.
/// The simulator's clock is held still (a fake time provider): what the devices serve is fixed, so the agent's readings
/// are compared with the simulator's exact values.
/// </summary>
public sealed class ChosenProfilesAgentTests
{
    private static readonly SimProfiles Alternatives = new() { Ups = ["eaton-xups"], Meter = "siemens-pac3200", RackProbe = "apc-uio-probe" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SiteSpec Spec() => SiteGenerator.Generate(new SiteGenerationOptions
    {
        Racks = 2, CoolingUnits = 1, Machines = 0, Seed = 11, MinRackKw = 6, MaxRackKw = 10, Start = new DateTimeOffset(2026, 6, 3, 14, 0, 0, TimeSpan.Zero),
    });

    private static Task<SimulatedSiteHost> StartAsync(SimProfiles profiles) =>
        SimulatedSiteHost.StartAsync(
            new SimulatedSite(Spec()),
            SimulatedSiteHost.LoadProfiles(SimPaths.Profiles, profiles),
            new SiteHostOptions { Profiles = profiles, TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow) },
            Ct);

    private static SiteConfig Config(SimulatedSiteHost sim, SimProfiles profiles) =>
        sim.BuildConfig(TimeSpan.FromSeconds(1), SimPaths.Profiles, TimeSpan.FromMilliseconds(800)) with { Profiles = SimulatedSiteHost.LoadProfiles(SimPaths.Profiles, profiles) };

    [Fact]
    public async Task The_agent_reads_an_eaton_ups_a_pac3200_meter_and_rack_probes_and_raises_ups_on_battery_on_a_utility_failure()
    {
        await using var sim = await StartAsync(Alternatives);
        var site = sim.Site;
        var config = Config(sim, Alternatives);
        Assert.Equal("meter1", config.Site.Power.FacilityMeter);
        Assert.All(site.Racks, r => Assert.Equal(r.Id, config.FindDevice("probe-" + r.Id.ToLowerInvariant())!.Location.Rack));

        var latest = new ConcurrentDictionary<(string Device, string Metric), Sample>();
        var events = new ConcurrentQueue<EdgeEvent>();
        var work = Directory.CreateTempSubdirectory("edgetwin-sim-profiles-");
        SeriesRegistry? registry = null;
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddAlerting(new AlertingAgentOptions { StateDirectory = work.FullName, Config = ShippedRule("ups-on-battery") }),
        }.ObserveSamples("test", (samples, _) =>
        {
            foreach (var s in samples.Span)
            {
                var d = registry![s.Series];
                latest[(d.DeviceId, d.Metric)] = s;
            }

            return ValueTask.CompletedTask;
        }).ObserveEvents("test", (e, _) =>
        {
            events.Enqueue(e);
            return ValueTask.CompletedTask;
        });

        var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        registry = runtime.Registry;
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            var probe = "probe-" + site.Racks[0].Id.ToLowerInvariant();
            (string, string)[] wanted =
            [
                ("ups1", "runtime_remaining"), ("ups1", "output_source"), ("ups2", "output_power"),
                ("meter1", "total_power"), ("meter1", "active_energy_import_t1"), ("meter1", "frequency"),
                (probe, "temperature"), (probe, "humidity"),
            ];
            await Eventually.UntilAsync(() => wanted.All(latest.ContainsKey), "a reading of every chosen profile", 30);
            Assert.All(wanted, w => Assert.Equal(SampleQuality.Good, latest[w].Quality));

            double facilityW, importWh;
            lock (site.SyncRoot)
            {
                facilityW = (site.Upses.Sum(u => u.InputKw) + site.CoolingUnits.Sum(u => u.FanPowerKw + u.CompressorKw)) * 1000;
                importWh = site.Upses.Sum(u => u.InputEnergyKwh) * 1000;
            }

            Assert.Equal((float)facilityW, latest[("meter1", "total_power")].Value, 1e-3);
            Assert.Equal(importWh, latest[("meter1", "active_energy_import_t1")].Value, 6);
            Assert.Equal(50, latest[("meter1", "frequency")].Value);
            Assert.Equal(site.Ups("ups1").RuntimeMinutes, latest[("ups1", "runtime_remaining")].Value, 0.01);
            Assert.Equal(3, latest[("ups1", "output_source")].Value); // normal
            Assert.Equal(Math.Round(site.Ups("ups2").OutputKw * 1000), latest[("ups2", "output_power")].Value);
            var rack = site.Racks[0];
            Assert.Equal(Math.Round(rack.InletSensor.Reading), latest[(probe, "temperature")].Value);
            Assert.InRange(latest[(probe, "humidity")].Value, 5, 95);
            Assert.DoesNotContain(events, e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "ups-on-battery");

            site.Apply(FaultCommand.Parse("utility-fail:ups1"));
            site.Step(TimeSpan.FromSeconds(120));
            sim.Refresh();
            var ups = site.Ups("ups1");
            Assert.True(ups.OnBattery);
            var raised = await WaitForAsync(() => events.FirstOrDefault(e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "ups-on-battery"), "the ups-on-battery alert", 30);
            Assert.Contains("ups1", raised.Message + string.Join(",", raised.Attributes?.Values ?? []), StringComparison.Ordinal);

            // The runtime the power twin and ups-runtime-low read: minutes, from XUPS-MIB's seconds.
            await Eventually.UntilAsync(() => Math.Abs(latest[("ups1", "runtime_remaining")].Value - ups.RuntimeMinutes) < 0.01, "the runtime on battery", 10);
            Assert.Equal(5, latest[("ups1", "output_source")].Value); // battery
            Assert.Equal(0, latest[("ups1", "input_frequency")].Value);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            agent.Dispose();
            work.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_lost_probe_reads_comms_lost_and_leaves_its_racks_inlet_to_the_pdus_sensors_and_a_probe_over_its_threshold_alarms()
    {
        await using var sim = await StartAsync(Alternatives);
        var site = sim.Site;
        var config = Config(sim, Alternatives);
        var latest = new ConcurrentDictionary<(string Device, string Metric), Sample>();
        SeriesRegistry? registry = null;
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddThermalTwin(new ThermalTwinOptions()),
        }.ObserveSamples("test", (samples, _) =>
        {
            foreach (var s in samples.Span)
            {
                var d = registry![s.Series];
                latest[(d.DeviceId, d.Metric)] = s;
            }

            return ValueTask.CompletedTask;
        });

        var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        var stage = agent.Services.GetRequiredService<ThermalTwinStage>();
        registry = runtime.Registry;
        var a01 = stage.Twin.Zones[0].Racks.Select(r => r.Id).ToList().IndexOf("A01");
        // A01's inlet as the agent reads it: each of its PDUs' sensor (0.1 °C) and its probe (whole °C).
        double Pdus() => (latest[("pdu-a01-a", "inlet_temperature")].Value + latest[("pdu-a01-b", "inlet_temperature")].Value) / 2;
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            (string, string)[] wanted = [("pdu-a01-a", "inlet_temperature"), ("pdu-a01-b", "inlet_temperature"), ("probe-a01", "temperature"), ("probe-a01", "comm_status"), ("probe-a02", "alarm_status")];
            await Eventually.UntilAsync(() => wanted.All(latest.ContainsKey) && !double.IsNaN(stage.Snapshot(0, 0).RackInletC[a01]), "the PDUs' and the probes' readings in the twin", 30);
            Assert.Equal(2, latest[("probe-a01", "comm_status")].Value); // commsOK
            Assert.Equal(1, latest[("probe-a02", "alarm_status")].Value); // uioNormal
            var before = latest[("probe-a01", "temperature")].Value;
            Assert.Equal(((2 * Pdus()) + before) / 3, stage.Snapshot(0, 0).RackInletC[a01], 9);

            // The probe is lost as the room heats up (crac1, the only unit, stops); A02's probe is set to alarm below its reading.
            site.Apply(FaultCommand.Parse("probe-lost:A01"));
            site.Apply(FaultCommand.Parse("cooling-stop:crac1"));
            site.Step(TimeSpan.FromSeconds(120));
            site.Apply(FaultCommand.Parse(FormattableString.Invariant($"probe-threshold:A02:{Math.Floor(site.Rack("A02").InletSensor.Reading) - 1}")));
            sim.Refresh();
            var hot = Math.Round(site.Rack("A01").InletSensor.Reading, 1);
            Assert.True(hot > before + 3, $"A01 inlet {hot} °C after 120 s without cooling, {before} °C before");
            await Eventually.UntilAsync(
                () => latest[("probe-a01", "comm_status")].Value == 3 && Math.Abs(Pdus() - hot) < 0.01 && latest[("probe-a02", "alarm_status")].Value == 2,
                "the lost probe, the PDUs' new inlet readings and A02's alarm",
                30);
            var deadline = DateTime.UtcNow.AddSeconds(5); // the twin's stage takes the same samples a moment apart
            while (Math.Abs(stage.Snapshot(0, 0).RackInletC[a01] - Pdus()) > 1e-9 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, Ct);
            }

            var temperature = latest[("probe-a01", "temperature")];
            // The card serves PowerNet-MIB's "no reading" (-1); commsLost makes it no reading whatever it serves (row_status).
            Assert.True(double.IsNaN(temperature.Value), $"{temperature.Value}");
            Assert.Equal(SampleQuality.DeviceError, temperature.Quality);
            Assert.Equal(SampleQuality.DeviceError, latest[("probe-a01", "humidity")].Quality);
            // Its alarm status too (the card serves sensorStatusNotApplicable(4)): no verdict from a probe it cannot talk to.
            Assert.Equal(SampleQuality.DeviceError, latest[("probe-a01", "alarm_status")].Quality);
            // The twin's A01 inlet is its PDUs' sensors alone: before the fix the lost probe's last reading stayed in the
            // average (here about a third of the 120 s rise lower).
            TestContext.Current.TestOutputHelper?.WriteLine(FormattableString.Invariant(
                $"A01 inlet: probe {before} °C before it was lost, PDUs {Pdus():0.0} °C after 120 s without cooling, the twin's {stage.Snapshot(0, 0).RackInletC[a01]:0.00} °C (with the lost probe's last reading it was {((2 * Pdus()) + before) / 3:0.00} °C)"));
            Assert.Equal(Pdus(), stage.Snapshot(0, 0).RackInletC[a01], 9);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            agent.Dispose();
        }
    }

    [Fact]
    public async Task The_live_pue_through_a_pac3200_meter_is_the_eastron_ones_for_the_same_seed()
    {
        var eastron = await LivePueAsync(new SimProfiles());
        var pac3200 = await LivePueAsync(new SimProfiles { Meter = "siemens-pac3200" });
        TestContext.Current.TestOutputHelper?.WriteLine($"live PUE: eastron-sdm630 {eastron.Pue:0.000000}, siemens-pac3200 {pac3200.Pue:0.000000} (simulator {eastron.Truth:0.000000})");
        Assert.Equal(eastron.Truth, pac3200.Truth); // the same site, bit for bit
        Assert.InRange(eastron.Pue, 1.2, 2);
        Assert.Equal(eastron.Pue, pac3200.Pue, 6);
        // Against the simulator's own facility / IT power: the PDUs' power is read in their 0.01 kW steps.
        Assert.True(Math.Abs(pac3200.Pue - pac3200.Truth) < 0.01, $"PUE {pac3200.Pue:0.0000}, the simulator's {pac3200.Truth:0.0000}");
    }

    private static async Task<(double Pue, double Truth)> LivePueAsync(SimProfiles profiles)
    {
        await using var sim = await StartAsync(profiles);
        var config = Config(sim, profiles);
        var pue = new ConcurrentQueue<double>();
        SeriesRegistry? registry = null;
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddPue(),
        }.ObserveSamples("test", (samples, _) =>
        {
            foreach (var s in samples.Span)
            {
                if (registry![s.Series].Metric == PueStage.Metric && s.Quality == SampleQuality.Good)
                {
                    pue.Enqueue(s.Value);
                }
            }

            return ValueTask.CompletedTask;
        });
        var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        registry = runtime.Registry;
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            await Eventually.UntilAsync(() => pue.Count >= 3, "three PUE samples", 30);
            double truth;
            lock (sim.Site.SyncRoot)
            {
                truth = (sim.Site.Upses.Sum(u => u.InputKw) + sim.Site.CoolingUnits.Sum(u => u.FanPowerKw + u.CompressorKw)) / sim.Site.Pdus.Sum(p => p.PowerKw);
            }

            // Values held still: every PUE sample is the same.
            Assert.All(pue, p => Assert.Equal(pue.Last(), p, 9));
            return (pue.Last(), truth);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            agent.Dispose();
        }
    }

    /// <summary>The shipped rule from datacenter.yaml as it is in the file, without sinks.</summary>
    private static AlertsConfig ShippedRule(string name)
    {
        var shipped = File.ReadAllLines(Path.Combine(SimPaths.Root, "device-profiles", "examples", "alert-rules", "datacenter.yaml"))
            .SkipWhile(l => !l.Contains("- name: " + name, StringComparison.Ordinal))
            .TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith("- name:", StringComparison.Ordinal));
        var yaml = "alerts:\n  group_interval: 0s\n  rules:\n" + string.Join("\n", shipped) + "\n";
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "datacenter.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        Assert.Empty(diagnostics.Sorted());
        Assert.Equal(name, Assert.Single(config.Rules).Name);
        return config;
    }

    private static async Task<T> WaitForAsync<T>(Func<T?> probe, string what, int seconds)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (probe() is { } found)
            {
                return found;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {seconds} s waiting for {what}");
            }

            await Task.Delay(100, Ct);
        }
    }
}
