using System.Collections.Concurrent;
using System.Globalization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Line;
using EdgeTwin.Core.Events;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Line;
using EdgeTwin.Simulator.Physics;
using EdgeTwin.Simulator.Serving;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary>
/// One station of the simulated line reports its state only through its stack light, wired to the agent's GPIO inputs
/// (an in-memory chip; the simulator blinks, gaps and bounces the lamps as a real tower does): the agent's real GPIO
/// sources → the line twin's stack-light decoder → OEE. The station breaks down often, and its availability from the
/// lamps must match the simulator's exact accounting.
/// </summary>
public sealed class LineStackLightTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// The most line time that may pass between two lamp steps for the lamps to have shown every state the truth books:
    /// a stall this long misplaces at most 1.5 s of a 60 s window (0.025 availability, half the tolerance).
    /// </summary>
    private const double LongestFaithfulStepSeconds = 1.5;

    [Fact]
    public async Task A_station_read_from_its_stack_light_on_gpio_has_the_availability_of_its_simulated_faults()
    {
        // The lamps show the state at each 20 ms step; when the test process stalls (a loaded CI machine) the line catches
        // up at once and a breakdown can start and end unseen (once, 2026-12-03: 1 of 2 learned, availability 0.706 vs
        // 0.448). Such a window says nothing about the agent, so it is measured again; the stall is printed.
        Measurement m = await MeasureAsync(seed: 21);
        for (var attempt = 2; m.LongestStepSeconds > LongestFaithfulStepSeconds && attempt <= 3; attempt++)
        {
            TestContext.Current.SendDiagnosticMessage(FormattableString.Invariant($"attempt {attempt - 1} void: the line moved {m.LongestStepSeconds:0.0} s between two lamp steps (the test process stalled), so the lamps did not show every state; measuring again ({m.Context})"));
            m = await MeasureAsync(seed: 21);
        }

        var context = m.Context;
        TestContext.Current.SendDiagnosticMessage(context);
        Assert.True(m.LongestStepSeconds <= LongestFaithfulStepSeconds, $"the test process stalled in three windows in a row; {context}");

        // The faults happened and cost availability; the lamps tell the twin how much.
        Assert.True(m.Breakdowns >= 1, context);
        Assert.True(m.TrueAvailability < 0.9, context);
        Assert.True(Math.Abs(m.Availability - m.TrueAvailability) <= 0.05, context);
        Assert.True(Math.Abs(m.Oee - m.TrueOee) <= 0.05, context);
        // The twin learns a breakdown when it ends; none is open at this message (one may start before the truth is read).
        Assert.InRange(m.LearnedBreakdowns, m.Breakdowns - 1, m.Breakdowns);
        Assert.NotEqual("unknown", m.State);
        // The lamps are GPIO sources the agent runs (their readings went through the pipeline); they blinked and bounced.
        Assert.True(m.LampSamples > 20, $"{m.LampSamples} lamp samples; {context}");
        Assert.True(m.LampEdges > 20, context);
    }

    private sealed record Measurement(
        double Availability,
        double TrueAvailability,
        double Oee,
        double TrueOee,
        int LearnedBreakdowns,
        int Breakdowns,
        string State,
        int LampSamples,
        long LampEdges,
        double LongestStepSeconds,
        string Context);

    private static async Task<Measurement> MeasureAsync(int seed)
    {
        var spec = SiteGenerator.Generate(new SiteGenerationOptions { Racks = 1, CoolingUnits = 1, Machines = 1, Seed = seed });
        var line = SimLineSpec.Packaging(4, seed: seed, timeFactor: 0.5, machines: ["m1"]);
        // The stack-light station (the bottleneck, so its waits are few) breaks down every ~12 s of running, repairs
        // at least 11 s (mean 15 s): a minute holds a few steady-red breakdowns besides any blinking-red jams.
        var lit = line.TrueBottleneck;
        line = line with { Stations = [.. line.Stations.Select(s => s.Id == lit ? s with { MtbfSeconds = 12, MttrSeconds = 15 } : s)] };
        spec = spec with { Line = line };
        var site = new SimulatedSite(spec);
        var index = site.Line!.StationIndex(lit);
        await using var sim = await SimulatedSiteHost.StartAsync(site, SimPaths.LoadProfiles(), new SiteHostOptions { Tick = TimeSpan.FromMilliseconds(50) }, Ct);
        var served = sim.BuildConfig(TimeSpan.FromMilliseconds(100), SimPaths.Profiles, TimeSpan.FromSeconds(1)) with { Profiles = SimPaths.LoadProfiles() };
        var lights = SimulatedStackLights.Attach(site, served, [lit], SimPaths.Profiles, TimeSpan.FromSeconds(1))!;
        var config = lights.Config;
        Assert.Equal(served.Devices.Count + 3, config.Devices.Count);

        SimLineTruth Truth()
        {
            lock (site.SyncRoot)
            {
                return site.Line!.Truth();
            }
        }

        SimLineTruth? first = null;
        AgentRuntime? rt = null;
        var lampSamples = 0;
        var messages = new ConcurrentQueue<(EdgeEvent Event, SimLineTruth Truth)>();
        var options = new AgentHostOptions
        {
            UseSystemd = false,
            StatusLogInterval = null,
            MinimumLogLevel = LogLevel.Warning,
            ConfigureServices = s => lights.AddTo(s.AddLineTwin(config, publishEvery: TimeSpan.FromSeconds(2), forecastEvery: TimeSpan.FromSeconds(60))),
        }.ObserveSamples("truth", (batch, _) =>
        {
            if (first is null && batch.Length > 0)
            {
                first = Truth();
                lights.Lights.ResetLongestStep();
            }

            foreach (var sample in batch.Span)
            {
                if (rt is not null && rt.Registry[sample.Series].DeviceId.StartsWith("light-", StringComparison.Ordinal))
                {
                    lampSamples++;
                }
            }

            return ValueTask.CompletedTask;
        }).ObserveEvents("test", (e, _) =>
        {
            if (e.Kind == EdgeEventKind.Prediction && e.Source == "line/line1")
            {
                messages.Enqueue((e, Truth()));
            }

            return ValueTask.CompletedTask;
        });

        using var agent = AgentHostBuilder.Build(config, options);
        var runtime = agent.Services.GetRequiredService<AgentRuntime>();
        rt = runtime;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var physics = sim.RunAsync(stop.Token);
        var lamps = lights.RunAsync(stop.Token);
        double longestStep;
        try
        {
            await agent.StartAsync(Ct);
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(110);
            // Compare at a message sent while the station was not faulted: a fault still open and shorter than the
            // micro-stop limit counts as a micro-stop until it outgrows it, where the truth already books a breakdown.
            bool Settled((EdgeEvent Event, SimLineTruth Truth) m) =>
                first is not null && m.Truth.Seconds - first.Seconds >= 60 && m.Event.Attributes!["state." + lit] != "faulted";
            while (!messages.Any(Settled))
            {
                Assert.True(DateTime.UtcNow < deadline, $"no line twin message covering 60 s with {lit} not faulted; {messages.Count} messages, devices {string.Join(", ", runtime.DeviceStatus().Select(d => d.DeviceId + ":" + d.State))}");
                await Task.Delay(200, Ct);
            }

            // Read before stopping: the window ends at the message, and stopping the agent may stall the lamps.
            longestStep = lights.Lights.LongestStepSeconds;
            await agent.StopAsync(Ct);
        }
        finally
        {
            await stop.CancelAsync();
            await physics;
            await lamps;
        }

        var (message, truth) = messages.First(m => m.Truth.Seconds - first!.Seconds >= 60 && m.Event.Attributes!["state." + lit] != "faulted");
        var a = message.Attributes!;
        double Attr(string key) => double.Parse(a[key], CultureInfo.InvariantCulture);
        var t = truth.Stations[index];
        var f = first!.Stations[index];
        var breakdowns = t.Breakdowns - f.Breakdowns;
        var context = FormattableString.Invariant(
            $"{lit} from its stack light: availability {Attr("availability." + lit):0.000} vs {truth.Availability(first, index):0.000}, oee {Attr("oee." + lit):0.000} vs {truth.Oee(first, index):0.000}, breakdowns learned {a["learned.breakdowns." + lit]} vs {breakdowns} simulated, breakdown s {t.In(SimStationState.Breakdown) - f.In(SimStationState.Breakdown):0.0}, jam s {t.In(SimStationState.Jam) - f.In(SimStationState.Jam):0.0}, over {truth.Seconds - first.Seconds:0} s, {lights.Lights.Edges} lamp edges, longest lamp step {longestStep:0.00} s (seed {seed})");
        return new Measurement(
            Attr("availability." + lit),
            truth.Availability(first, index),
            Attr("oee." + lit),
            truth.Oee(first, index),
            int.Parse(a["learned.breakdowns." + lit], CultureInfo.InvariantCulture),
            breakdowns,
            a["state." + lit],
            lampSamples,
            lights.Lights.Edges,
            longestStep,
            context);
    }
}
