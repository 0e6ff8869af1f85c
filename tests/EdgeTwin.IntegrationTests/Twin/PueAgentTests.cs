using System.Collections.Concurrent;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Agent.Twin.Power;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>
/// The live PUE in the agent on a simulated site served over real SNMP (PDUs, UPSes) and Modbus (the main meter,
/// eastron-sdm630): the series <c>{site}/pue</c> comes back through the pipeline, close to the simulator's own facility
/// and IT power, and an alert rule on it fires like one on any reading.
/// </summary>
public sealed class PueAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_agent_publishes_the_site_pue_from_the_main_meter_and_the_pdus_and_a_rule_fires_on_it()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 4, CoolingUnits = 2, Machines = 0, Seed = 3, MinRackKw = 6, MaxRackKw = 10, Start = DateTimeOffset.UtcNow });
        var site = new SimulatedSite(spec);
        await using var sim = await SimulatedSiteHost.StartAsync(site, SimPaths.LoadProfiles(), new SiteHostOptions(), Ct);
        var config = sim.BuildConfig(TimeSpan.FromSeconds(1), SimPaths.Profiles, TimeSpan.FromMilliseconds(800)) with { Profiles = SimPaths.LoadProfiles() };
        Assert.Equal("meter1", config.Site.Power.FacilityMeter);

        var pue = new ConcurrentQueue<(Sample Sample, double TruthPue)>();
        var events = new ConcurrentQueue<EdgeEvent>();
        var work = Directory.CreateTempSubdirectory("edgetwin-pue-");
        SeriesRegistry? registry = null;
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => s.AddPue().AddAlerting(new AlertingAgentOptions { StateDirectory = work.FullName, Config = PueRule() }),
        }.ObserveSamples("test", (samples, _) =>
        {
            foreach (var s in samples.Span)
            {
                if (registry![s.Series].Metric == PueStage.Metric)
                {
                    pue.Enqueue((s, Truth(site)));
                }
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
        var stage = agent.Services.GetRequiredService<PueStage>();
        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);

            // The simulated UPSes are an ietf-ups-mib (output power per line) and an apc-smart-ups (load in % only): not
            // every UPS reads its output, so the IT power is the PDUs' (category 2's measurement point), every PDU being read.
            Assert.Equal(EdgeTwin.Twin.Power.PueBasis.PduOutput, stage.Basis);
            Assert.Equal(spec.Pdus.Count, stage.ItDevices.Count);
            var descriptor = runtime.Registry[stage.Series];
            Assert.Equal($"{spec.SiteId}/pue{{category=2,it_at=pdu_output}}", descriptor.Key);
            Assert.Equal(PueStage.Role, descriptor.Role);

            await Eventually.UntilAsync(() => pue.Count >= 5, "five PUE samples", 60);
            foreach (var (sample, truth) in pue)
            {
                Assert.Equal(SampleQuality.Good, sample.Quality);
                Assert.InRange(sample.Value, 1.3, 1.8); // UPS losses, fans and compressors (COP 3) over the IT load
                Assert.True(Math.Abs(sample.Value - truth) < 0.05, $"PUE {sample.Value:0.000}, the simulator's {truth:0.000}");
            }

            TestContext.Current.TestOutputHelper?.WriteLine("PUE: " + string.Join(", ", pue.Select(p => $"{p.Sample.Value:0.000} (sim {p.TruthPue:0.000})")));

            // The rule on role site.pue sees the series as any other reading.
            await Eventually.UntilAsync(() => events.Any(e => e.Kind == EdgeEventKind.AlertRaised && e.Source == "pue-test"), "the alert on the PUE", 30);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
            await physics.CancelAsync();
            await physicsTask;
            agent.Dispose();
            work.Delete(recursive: true);
        }
    }

    private static double Truth(SimulatedSite site)
    {
        lock (site.SyncRoot)
        {
            var facility = site.Upses.Sum(u => u.InputKw) + site.CoolingUnits.Sum(u => u.FanPowerKw + u.CompressorKw);
            return facility / site.Pdus.Sum(p => p.PowerKw);
        }
    }

    private static AlertsConfig PueRule()
    {
        const string yaml = """
            alerts:
              rules:
                - { name: pue-test, type: threshold, match: { role: site.pue }, above: 1.1, severity: warning, action: "Check the cooling plant's efficiency" }
            """;
        var diagnostics = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "rules.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        Assert.Empty(diagnostics.Sorted());
        return config;
    }
}
