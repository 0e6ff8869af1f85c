using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using EdgeTwin.Core.Config;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Line;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Line;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Models.Maintenance;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary>
/// The agent's line twin on the simulated packaging line served over real Modbus TCP (one generic-packml-plc per
/// station): its twin-state messages must match the simulator's exact accounting over the same interval —
/// line and station OEE within 0.04, availability within 0.05, good parts within 3 — and name the true bottleneck;
/// the maintenance cost hook it registers answers for the machines on the line.
/// </summary>
public sealed class LineAgentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// A four-station line at twice the demo's speed (cycles ≈ 1 s, so a minute holds ~50 parts and a few stops), served
    /// over Modbus TCP, the config that polls it, and what the agents under test publish next to the simulator's truth.
    /// </summary>
    private sealed class SimulatedLine : IAsyncDisposable
    {
        private SimulatedLine(SimulatedSite site, SimulatedSiteHost sim, EdgeTwin.Core.Config.SiteConfig config)
        {
            Site = site;
            Sim = sim;
            Config = config;
        }

        public SimulatedSite Site { get; }

        public SimulatedSiteHost Sim { get; }

        public EdgeTwin.Core.Config.SiteConfig Config { get; }

        /// <summary>The simulator's accounting at the twin's first PLC reading (its books open then).</summary>
        public SimLineTruth? First { get; private set; }

        public ConcurrentQueue<(EdgeEvent Event, SimLineTruth Truth)> Messages { get; } = new();

        public static async Task<SimulatedLine> StartAsync()
        {
            var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 1, CoolingUnits = 1, Machines = 1, Seed = 21 });
            spec = spec with { Line = SimLineSpec.Packaging(4, seed: 21, timeFactor: 0.5, machines: ["m1"]) };
            var site = new SimulatedSite(spec);
            var sim = await SimulatedSiteHost.StartAsync(site, SimPaths.LoadProfiles(), new SiteHostOptions { Tick = TimeSpan.FromMilliseconds(50) }, Ct);
            var config = sim.BuildConfig(TimeSpan.FromMilliseconds(100), SimPaths.Profiles, TimeSpan.FromSeconds(1)) with { Profiles = SimPaths.LoadProfiles() };
            return new SimulatedLine(site, sim, config);
        }

        public SimLineTruth Truth()
        {
            lock (Site.SyncRoot)
            {
                return Site.Line!.Truth();
            }
        }

        /// <summary>Agent options recording the line twin's messages with the truth at the time.</summary>
        public AgentHostOptions Options(Action<IServiceCollection> configure) => new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = configure,
        }.ObserveSamples("truth", (batch, _) =>
        {
            if (First is null && batch.Length > 0)
            {
                First = Truth();
            }

            return ValueTask.CompletedTask;
        }).ObserveEvents("test", (e, _) =>
        {
            if (e.Kind == EdgeEventKind.Prediction && e.Source == "line/line1")
            {
                Messages.Enqueue((e, Truth()));
            }

            return ValueTask.CompletedTask;
        });

        public ValueTask DisposeAsync() => Sim.DisposeAsync();
    }

    [Fact]
    public async Task Twin_state_over_Modbus_matches_the_simulated_line()
    {
        await using var simLine = await SimulatedLine.StartAsync();
        var (site, sim, config, messages) = (simLine.Site, simLine.Sim, simLine.Config, simLine.Messages);
        var spec = site.Spec;
        var options = simLine.Options(s => s.AddLineTwin(config, publishEvery: TimeSpan.FromSeconds(2), forecastEvery: TimeSpan.FromSeconds(30)));

        using var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(100);
            while (!messages.Any(m => simLine.First is { } first && m.Truth.Seconds - first.Seconds >= 60))
            {
                Assert.True(DateTime.UtcNow < deadline, $"no line twin message covering 60 s; {messages.Count} messages, devices {string.Join(", ", runtime.DeviceStatus().Select(d => d.DeviceId + ":" + d.State))}");
                await Task.Delay(200, Ct);
            }

            await agent.StopAsync(Ct);
        }
        finally
        {
            await physics.CancelAsync();
            await physicsTask;
        }

        var (message, truth) = messages.Last();
        var first = simLine.First!;
        var a = message.Attributes!;
        double Attr(string key) => double.Parse(a[key], CultureInfo.InvariantCulture);
        var report = new List<string>();
        for (var i = 0; i < truth.Stations.Count; i++)
        {
            var id = truth.Stations[i].Id;
            report.Add(FormattableString.Invariant($"{id}: oee {Attr("oee." + id):0.000} vs {truth.Oee(first!, i):0.000}, availability {Attr("availability." + id):0.000} vs {truth.Availability(first!, i):0.000}"));
        }

        var context = string.Join("; ", report) + FormattableString.Invariant($"; line {Attr("oee.line"):0.000} vs {truth.LineOee(first!):0.000} over {truth.Seconds - first!.Seconds:0} s; bottleneck {a["bottleneck"]} vs {spec.Line!.TrueBottleneck}");
        TestContext.Current.SendDiagnosticMessage(context);
        Assert.True(Math.Abs(Attr("oee.line") - truth.LineOee(first)) <= 0.04, context);
        for (var i = 0; i < truth.Stations.Count; i++)
        {
            var id = truth.Stations[i].Id;
            Assert.True(Math.Abs(Attr("oee." + id) - truth.Oee(first, i)) <= 0.04, context);
            Assert.True(Math.Abs(Attr("availability." + id) - truth.Availability(first, i)) <= 0.05, context);
        }

        var good = truth.Stations[^1].Good - first.Stations[^1].Good;
        Assert.InRange(long.Parse(a["good"], CultureInfo.InvariantCulture), good - 3, good + 3);
        Assert.Equal(spec.Line.TrueBottleneck, a["bottleneck"]);
        Assert.True(Attr("forecast.end_of_shift") >= Attr("good"), context);
        // Every buffer's level comes from its consumer's PLC (infeed_level), so the forecast starts from it.
        for (var b = 0; b < spec.Line.BufferCapacities.Count; b++)
        {
            Assert.Equal("measured", a[$"buffer_level_source.B{b + 1}"]);
            Assert.InRange(Attr($"buffer_level.B{b + 1}"), 0, spec.Line.BufferCapacities[b]);
        }

        // The quality term: the capper's (S2, tool wear) model scored the parts it counted from the Modbus PLC's
        // process values, and the good-parts forecast takes its predicted reject rate.
        var s2 = truth.Stations[1].Good + truth.Stations[1].Reject - first.Stations[1].Good - first.Stations[1].Reject;
        Assert.InRange(long.Parse(a["quality.window_parts.S2"], CultureInfo.InvariantCulture), Math.Min(s2 - 3, 50), 50);
        Assert.InRange(Attr("quality.predicted_reject_rate.S2"), 1e-6, 1);
        Assert.InRange(Attr("quality.observed_reject_rate.S2"), 0, 1);
        Assert.False(a.ContainsKey("quality.predicted_reject_rate.S1"));
        // Its process values and reject counters come over Modbus: none missing, the counts behind the rates published.
        Assert.False(a.ContainsKey("quality.missing_inputs.S2"), a.GetValueOrDefault("quality.missing_inputs.S2"));
        Assert.False(a.ContainsKey("quality.no_data"), a.GetValueOrDefault("quality.no_data"));
        Assert.Equal(a["good"], a["good.S4"]);
        var rejects = truth.Stations[1].Reject - first.Stations[1].Reject;
        Assert.InRange(long.Parse(a["rejects.S2"], CultureInfo.InvariantCulture), rejects - 3, rejects + 3);
        Assert.True(Attr("forecast.good_end_of_shift") < Attr("forecast.end_of_shift"), context);
        Assert.True(Attr("forecast.good_end_of_shift") >= Attr("good"), context);

        // The maintenance hook: the machine that drives a station gets its downtime and cost from the line.
        var costModel = agent.Services.GetRequiredService<IUnplannedFailureCostModel>();
        Assert.IsType<LineFailureCostModel>(costModel);
        var inShift = new DateTimeOffset(DateTime.Today.AddHours(9), TimeZoneInfo.Local.GetUtcOffset(DateTime.Today.AddHours(9)));
        var cost = costModel.Estimate("m1", inShift);
        Assert.NotNull(cost);
        Assert.True(cost.DowntimeHours > 0 && cost.Cost > 0, $"{cost}");
        Assert.Null(costModel.Estimate("not-on-the-line", inShift));
    }

    /// <summary>
    /// The same line with no conveyor counts (the buffers' <c>level</c> signals left out) and the stations' states from
    /// PackML StopReason, which tells starved from blocked (the state word's Suspended does not): every buffer is
    /// counted from the PLCs' part counters, anchored by starved and blocked stations, published <c>counted</c> and
    /// near the simulator's true level (within 3 parts: polls 100 ms apart on ~1-s cycles, and the simulator counts a
    /// part when finished, before a blocked station puts it out).
    /// </summary>
    [Fact]
    public async Task Buffers_without_a_level_reading_are_counted_from_the_part_counters_over_Modbus()
    {
        await using var simLine = await SimulatedLine.StartAsync();
        var (site, sim) = (simLine.Site, simLine.Sim);
        var yaml = SimLineConfig.Yaml(site.Spec.Line!, SimDevicePlan.LineStationDevice);
        yaml = Regex.Replace(yaml, @", level: \{[^}]*\}", "");
        yaml = yaml.Replace($"metric: machine_state, map: {SimLineConfig.StateMap}", "metric: stop_reason, map: { 0: running, 1: starved, 2: blocked, 3: faulted, 4: faulted, 5: setup, 6: faulted }", StringComparison.Ordinal);
        var diagnostics = new ConfigDiagnostics();
        var section = (ConfigMapping)((ConfigMapping)YamlTree.Parse(yaml, "line.yaml", diagnostics)!)["line"]!;
        Assert.True(diagnostics.IsEmpty, string.Join("; ", diagnostics.Sorted()));
        var config = simLine.Config with { Sections = new Dictionary<string, ConfigMapping>(simLine.Config.Sections, StringComparer.Ordinal) { ["line"] = section } };
        var levels = new ConcurrentQueue<int[]>();
        var options = simLine.Options(s => s.AddLineTwin(config, publishEvery: TimeSpan.FromSeconds(2), forecastEvery: TimeSpan.FromSeconds(30)))
            .ObserveEvents("levels", (e, _) =>
            {
                if (e.Kind == EdgeEventKind.Prediction && e.Source == "line/line1")
                {
                    lock (site.SyncRoot) levels.Enqueue([.. Enumerable.Range(0, site.Spec.Line!.BufferCapacities.Count).Select(site.Line!.BufferLevel)]);
                }

                return ValueTask.CompletedTask;
            });

        using var agent = AgentHostBuilder.Build(config, options);
        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            await agent.StartAsync(Ct);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(100);
            while (levels.Count < 20)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {levels.Count} line twin messages");
                await Task.Delay(200, Ct);
            }

            await agent.StopAsync(Ct);
        }
        finally
        {
            await physics.CancelAsync();
            await physicsTask;
        }

        // Messages and true levels side by side, from the tenth message on (each buffer anchored by then).
        var pairs = simLine.Messages.Select(m => m.Event.Attributes!).Zip(levels).Skip(10).ToArray();
        double sum = 0;
        int n = 0;
        var report = new List<string>();
        foreach (var (a, truth) in pairs)
        {
            for (var b = 0; b < truth.Length; b++)
            {
                Assert.Equal("counted", a[$"buffer_level_source.B{b + 1}"]);
                var level = int.Parse(a[$"buffer_level.B{b + 1}"], CultureInfo.InvariantCulture);
                report.Add(FormattableString.Invariant($"B{b + 1} {level} vs {truth[b]}"));
                sum += Math.Abs(level - truth[b]);
                n++;
            }
        }

        var context = FormattableString.Invariant($"mean |error| {sum / n:0.00} parts over {pairs.Length} messages: {string.Join(", ", report.TakeLast(12))}");
        TestContext.Current.SendDiagnosticMessage(context);
        Assert.True(sum / n <= 3, context);
    }

    [Fact]
    public async Task A_restarted_agent_goes_on_with_the_shifts_books_and_what_the_line_learned()
    {
        // The same simulated line over Modbus; the agent keeps its state next to an outbox in a temp directory, stops
        // after ~20 s of books and starts again: the books must go on from the first start, parts made meanwhile counted.
        await using var simLine = await SimulatedLine.StartAsync();
        var (sim, config, messages) = (simLine.Sim, simLine.Config, simLine.Messages);
        var dir = Directory.CreateTempSubdirectory("edgetwin-linerestart-");
        async Task<long> RunAgentUntil(double coveredSeconds)
        {
            var options = simLine.Options(s => s
                .AddSingleton(new EdgeTwin.Agent.StoreAndForward.StoreAndForwardOptions { OutboxPath = Path.Combine(dir.FullName, "outbox.db") })
                .AddLineTwin(config, publishEvery: TimeSpan.FromSeconds(2), forecastEvery: TimeSpan.FromSeconds(30)));
            using var agent = AgentHostBuilder.Build(config, options);
            await agent.StartAsync(Ct);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(100);
            while (!messages.Any(m => simLine.First is { } first && m.Truth.Seconds - first.Seconds >= coveredSeconds))
            {
                Assert.True(DateTime.UtcNow < deadline, $"no line twin message covering {coveredSeconds} s; {messages.Count} messages");
                await Task.Delay(200, Ct);
            }

            await agent.StopAsync(Ct);
            return agent.Services.GetRequiredService<LineTwinStage>().Quality(1)!.TotalParts;
        }

        using var physics = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physicsTask = sim.RunAsync(physics.Token);
        try
        {
            var scoredBefore = await RunAgentUntil(20);
            Assert.True(File.Exists(Path.Combine(dir.FullName, LineStateStage.FileName)));
            var before = messages.Last().Event.Attributes!;
            messages.Clear();
            var scoredAfter = await RunAgentUntil(45);

            var (message, truth) = messages.Last();
            var a = message.Attributes!;
            double Attr(string key) => double.Parse(a[key], CultureInfo.InvariantCulture);
            var first = simLine.First!;
            var good = truth.Stations[^1].Good - first.Stations[^1].Good;
            var context = FormattableString.Invariant($"good {a["good"]} vs {good} since the first start ({a["good"]} after, {before["good"]} before the restart); line OEE {Attr("oee.line"):0.000} vs {truth.LineOee(first):0.000} over {truth.Seconds - first.Seconds:0} s; books from {a["books_from"]} (first start {before["books_from"]}); quality parts {scoredBefore} → {scoredAfter}");
            TestContext.Current.SendDiagnosticMessage(context);
            Assert.Equal(before["books_from"], a["books_from"]);
            Assert.InRange(long.Parse(a["good"], CultureInfo.InvariantCulture), good - 3, good + 3);
            Assert.True(Math.Abs(Attr("oee.line") - truth.LineOee(first)) <= 0.05, context);
            Assert.True(scoredAfter > scoredBefore, context);
        }
        finally
        {
            await physics.CancelAsync();
            await physicsTask;
            dir.Delete(recursive: true);
        }
    }
}
