using EdgeTwin.Core.Config;
using EdgeTwin.Simulator.Line;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Tests.Line;

/// <summary>The simulated stack light: lamp patterns per state, the change gap, blinking and contact bounce.</summary>
public sealed class SimStackLightTests
{
    private sealed class Input
    {
        public List<(double Seconds, SimLamp Lamp, bool Lit)> Levels { get; } = [];

        public double Now { get; set; }

        public void Drive(SimLamp lamp, bool lit) => Levels.Add((Now, lamp, lit));
    }

    private static void Step(SimStackLight tower, Input input, double from, double to, SimStationState state, double dt = 0.05)
    {
        for (var t = from; t < to - 1e-9; t += dt)
        {
            input.Now = t;
            tower.Update(t, state, input.Drive);
        }
    }

    [Fact]
    public void A_running_station_shows_green_at_once_and_a_breakdown_turns_green_off_then_red_on_after_the_gap()
    {
        var tower = new SimStackLight(new SimRandom(1), blinkHz: 1, changeGap: 0.15, maxBounces: 0);
        var input = new Input();
        Step(tower, input, 0, 2, SimStationState.Running);
        Assert.Equal([(0.0, SimLamp.Green, true)], input.Levels);
        input.Levels.Clear();
        Step(tower, input, 2, 10, SimStationState.Breakdown);
        Assert.Equal(2, input.Levels.Count);
        Assert.Equal((SimLamp.Green, false), (input.Levels[0].Lamp, input.Levels[0].Lit));
        Assert.Equal(2.0, input.Levels[0].Seconds, 6);
        Assert.Equal((SimLamp.Red, true), (input.Levels[1].Lamp, input.Levels[1].Lit));
        Assert.InRange(input.Levels[1].Seconds, 2.15, 2.2001); // lit after the gap, at the next step
        Assert.True(tower.IsLit(SimLamp.Red) && !tower.IsLit(SimLamp.Green) && !tower.IsLit(SimLamp.Amber));
    }

    [Fact]
    public void A_jam_blinks_red_at_the_given_rate_and_a_tool_change_blinks_amber()
    {
        var tower = new SimStackLight(new SimRandom(1), blinkHz: 1, changeGap: 0, maxBounces: 0);
        var input = new Input();
        Step(tower, input, 0, 10, SimStationState.Jam);
        var red = input.Levels.Where(l => l.Lamp == SimLamp.Red).ToList();
        Assert.Equal(20, red.Count);                     // on and off once a second for 10 s
        Assert.All(red.Where((_, i) => i % 2 == 0), l => Assert.True(l.Lit));
        Assert.DoesNotContain(input.Levels, l => l.Lamp != SimLamp.Red);
        Assert.Equal((true, false, false, true), SimStackLight.Pattern(SimStationState.Jam));
        Assert.Equal((false, true, false, true), SimStackLight.Pattern(SimStationState.Setup));
        Assert.Equal((false, true, false, false), SimStackLight.Pattern(SimStationState.Starved));
        Assert.Equal((false, true, false, false), SimStackLight.Pattern(SimStationState.Blocked));
        Assert.Equal((true, false, false, false), SimStackLight.Pattern(SimStationState.DriveDown));
    }

    [Fact]
    public void Every_edge_bounces_but_ends_at_the_new_level()
    {
        var tower = new SimStackLight(new SimRandom(7), blinkHz: 1, changeGap: 0.1, maxBounces: 3);
        var input = new Input();
        var states = new[] { SimStationState.Running, SimStationState.Starved, SimStationState.Running, SimStationState.Breakdown, SimStationState.Running };
        for (var k = 0; k < states.Length; k++)
        {
            Step(tower, input, k * 2, (k + 1) * 2, states[k]);
        }

        // Bounces add pairs of opposite levels; after each burst the lamp sits at the level the pattern wants.
        Assert.True(tower.Edges > 8, $"{tower.Edges} edges");
        Assert.Equal(tower.Edges, input.Levels.Count);
        Assert.Contains(input.Levels.GroupBy(l => (l.Seconds, l.Lamp)), g => g.Count() > 1);
        foreach (var burst in input.Levels.GroupBy(l => (l.Seconds, l.Lamp)))
        {
            Assert.Equal(1, burst.Count() % 2);
        }

        Assert.True(tower.IsLit(SimLamp.Green) && !tower.IsLit(SimLamp.Red) && !tower.IsLit(SimLamp.Amber));
    }

    [Fact]
    public void Stack_lights_follow_the_line_and_the_section_names_their_lamps()
    {
        var site = new SimulatedSite(SiteGenerator.Generate(new SiteGenerationOptions { Racks = 2, CoolingUnits = 1, Machines = 0, LineStations = 3, Seed = 5 }));
        var levels = new Dictionary<(string, SimLamp), bool>();
        var lights = new SimStackLights(site, ["S2"], (station, lamp, lit) => levels[(station, lamp)] = lit);
        var seen = new HashSet<SimStationState>();
        SimStationState? previous = null;
        var checkedSteady = 0;
        for (var k = 0; k < 4000; k++)
        {
            site.Step(TimeSpan.FromMilliseconds(250));
            lights.Update();
            SimStationState state;
            lock (site.SyncRoot)
            {
                state = site.Line!.State(1);
            }

            seen.Add(state);
            // A steady pattern held for two steps (each longer than the change gap) is what the lamps show.
            if (state == previous && state is SimStationState.Running or SimStationState.Breakdown or SimStationState.DriveDown or SimStationState.Starved or SimStationState.Blocked)
            {
                var p = SimStackLight.Pattern(state);
                Assert.Equal((p.Red, p.Amber, p.Green), (levels.GetValueOrDefault(("S2", SimLamp.Red)), levels.GetValueOrDefault(("S2", SimLamp.Amber)), levels.GetValueOrDefault(("S2", SimLamp.Green))));
                checkedSteady++;
            }

            previous = state;
        }

        Assert.True(checkedSteady > 1000, $"{checkedSteady} steady steps");
        Assert.Contains(SimStationState.Running, seen);
        Assert.True(lights.Edges > 10);

        var yaml = SimLineConfig.Yaml(site.Spec.Line!, s => "plc-" + s.ToLowerInvariant(), ["S2"]);
        Assert.Contains("stack_light: { red: light-s2-red, amber: light-s2-amber, green: light-s2-green }", yaml, StringComparison.Ordinal);
        Assert.Contains("state: { device: plc-s1, metric: machine_state", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("state: { device: plc-s2", yaml, StringComparison.Ordinal);
        Assert.Contains("good: { device: plc-s2, metric: good_parts }", yaml, StringComparison.Ordinal);
        var d = new ConfigDiagnostics();
        Assert.NotNull(YamlTree.Parse(yaml, "line.yaml", d));
        Assert.True(d.IsEmpty, string.Join("; ", d.Sorted()));
    }

    [Fact]
    public void Stack_lights_report_the_longest_line_time_between_two_steps()
    {
        var site = new SimulatedSite(SiteGenerator.Generate(new SiteGenerationOptions { Racks = 1, CoolingUnits = 1, Machines = 0, LineStations = 2, Seed = 3 }));
        var lights = new SimStackLights(site, ["S1"], (_, _, _) => { });
        lights.Update();
        Assert.Equal(0, lights.LongestStepSeconds);
        for (var k = 0; k < 10; k++)
        {
            site.Step(TimeSpan.FromMilliseconds(100));
            lights.Update();
        }

        Assert.Equal(0.1, lights.LongestStepSeconds, 6);
        // A stall: the line catches up 20 s at once, so the lamps showed none of what happened in between.
        site.Step(TimeSpan.FromSeconds(20));
        lights.Update();
        site.Step(TimeSpan.FromMilliseconds(100));
        lights.Update();
        Assert.Equal(20, lights.LongestStepSeconds, 6);

        lights.ResetLongestStep();
        site.Step(TimeSpan.FromMilliseconds(300));
        lights.Update();
        Assert.Equal(0.3, lights.LongestStepSeconds, 6);
    }
}
