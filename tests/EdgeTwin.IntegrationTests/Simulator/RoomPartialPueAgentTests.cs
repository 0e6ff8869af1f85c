using System.Collections.Concurrent;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Agent.Twin.Power;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Samples;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary>
/// A simulated site over two rooms (<c>SiteGenerationOptions.Rooms</c>, <c>edgetwin sim --rooms 2</c>), each room's cooling
/// units and lighting behind its own eastron-sdm630 sub-meter, polled by the real agent from the config the simulator writes
/// (written to a file and loaded as <c>edgetwin run</c> loads it): the partial PUE the agent publishes for each room is the
/// simulator's own, and the site PUE beside them still is. The simulator's clock is held still, so its values are exact.
/// </summary>
public sealed class RoomPartialPueAgentTests
{
    /// <summary>
    /// The PDUs (apc-rpdu2) read power in 0.01 kW steps: 2-3 racks of 4-8 kW at two PDUs each round by at most 0.03 kW in
    /// ~10 kW of a room's IT power, about 0.004 of a pPUE of ~1.4; the meters' float32 adds nothing visible.
    /// </summary>
    private const double Tolerance = 0.01;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Each_rooms_partial_pue_from_its_sub_meter_is_the_simulators_and_the_site_pue_still_agrees()
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions
        {
            Racks = 5, CoolingUnits = 3, Machines = 0, Seed = 11, Rooms = 2, MinRackKw = 6, MaxRackKw = 10, Start = new DateTimeOffset(2026, 6, 3, 14, 0, 0, TimeSpan.Zero),
        });
        var profiles = new SimProfiles();
        await using var sim = await SimulatedSiteHost.StartAsync(
            new SimulatedSite(spec),
            SimulatedSiteHost.LoadProfiles(SimPaths.Profiles, profiles),
            new SiteHostOptions { Profiles = profiles, TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow) },
            Ct);
        var site = sim.Site;

        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-sim-rooms-{Guid.NewGuid():N}.yaml");
        try
        {
            SiteConfigWriter.WriteFile(sim.BuildConfig(TimeSpan.FromSeconds(1), SimPaths.Profiles, TimeSpan.FromMilliseconds(800)), path);
            var loaded = SiteConfigLoader.Load(path);
            Assert.True(loaded.IsValid, string.Join(Environment.NewLine, loaded.Problems));
            Assert.Empty(loaded.Warnings);
            var config = loaded.Config!;
            Assert.Equal("meter1", config.Site.Power.FacilityMeter);
            Assert.Equal(["room1", "room2"], config.Site.Rooms.Select(r => r.Id));
            foreach (var room in config.Site.Rooms)
            {
                Assert.Equal(["meter-" + room.Id], room.InfrastructureMeters);
                Assert.Equal(spec.Racks.Where(r => r.Room == room.Id).Select(r => r.Id), room.Rows.SelectMany(r => r.Racks).Select(r => r.Id));
                Assert.Equal(spec.CoolingUnits.Where(u => u.Room == room.Id).Select(u => u.Id), config.Site.CoolingUnits.Where(u => u.Room == room.Id).Select(u => u.Id));
                Assert.Equal("eastron-sdm630", config.FindDevice("meter-" + room.Id)!.Profile);
            }

            var ppue = new ConcurrentDictionary<string, ConcurrentQueue<double>>(StringComparer.Ordinal);
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
                    var d = registry![s.Series];
                    if (s.Quality != SampleQuality.Good)
                    {
                        continue;
                    }

                    if (d.Metric == PueStage.Metric)
                    {
                        pue.Enqueue(s.Value);
                    }
                    else if (d.Metric == PueStage.PartialMetric && d.Role == PueStage.PartialRole)
                    {
                        var room = d.Tags!.Single(t => t.Key == "room").Value;
                        ppue.GetOrAdd(room, _ => new ConcurrentQueue<double>()).Enqueue(s.Value);
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
                await Eventually.UntilAsync(() => pue.Count >= 3 && site.Rooms.All(r => ppue.TryGetValue(r.Id, out var q) && q.Count >= 3), "three PUE and three pPUE samples of each room", 30);
            }
            finally
            {
                await agent.StopAsync(CancellationToken.None);
                agent.Dispose();
            }

            double truePue;
            Dictionary<string, (double PPue, double ItKw, double InfraKw)> truth;
            lock (site.SyncRoot)
            {
                truePue = site.Pue;
                truth = site.Rooms.ToDictionary(r => r.Id, r => (site.RoomPartialPue(r.Id), site.RoomItKw(r.Id), site.RoomInfrastructureKw(r.Id)), StringComparer.Ordinal);
            }

            var output = TestContext.Current.TestOutputHelper;
            output?.WriteLine($"site PUE: agent {pue.Last():0.0000}, simulator {truePue:0.0000}");
            foreach (var (room, t) in truth)
            {
                output?.WriteLine($"{room} pPUE: agent {ppue[room].Last():0.0000}, simulator {t.PPue:0.0000} (IT {t.ItKw:0.00} kW, infrastructure {t.InfraKw:0.00} kW)");
            }

            Assert.All(pue, p => Assert.Equal(pue.Last(), p, 9)); // values held still: every sample the same
            Assert.True(Math.Abs(pue.Last() - truePue) < Tolerance, $"site PUE {pue.Last():0.0000}, the simulator's {truePue:0.0000}");
            foreach (var (room, t) in truth)
            {
                var published = ppue[room];
                Assert.All(published, p => Assert.Equal(published.Last(), p, 9));
                Assert.InRange(t.PPue, 1.1, 1.8);
                Assert.True(Math.Abs(published.Last() - t.PPue) < Tolerance, $"{room}: pPUE {published.Last():0.0000}, the simulator's {t.PPue:0.0000}");
            }

            // Two rooms of different load and cooling: their pPUEs differ, and the site's (with the UPS losses) is above both's mean.
            Assert.NotEqual(truth["room1"].PPue, truth["room2"].PPue);
            Assert.True(pue.Last() > truth.Values.Sum(t => t.PPue * t.ItKw) / truth.Values.Sum(t => t.ItKw), "the site PUE counts the UPS losses too");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
