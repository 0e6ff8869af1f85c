using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Learning;
using EdgeTwin.Twin.Line.Oee;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>MTBF, MTTR and cycle time learned online from machine states, with the configured figures as the prior.</summary>
public sealed class LearningTests
{
    private static readonly StationSpec Configured = new("S1", CycleTimeSeconds: 30, MtbfSeconds: 4 * 3600, MttrSeconds: 600, Inputs: [], Output: null, CycleTimeCv: 0.1);

    [Fact]
    public void Without_events_the_configured_figures_hold()
    {
        var l = new StationLearner(Configured, microStopSeconds: 120);
        var f = l.Figures(0);
        Assert.Equal(4 * 3600, f.MtbfSeconds);
        Assert.Equal(600, f.MttrSeconds);
        Assert.Equal(30, f.CycleSeconds);
        Assert.Equal(0.1, f.CycleCv);
    }

    [Fact]
    public void A_fault_that_ends_at_the_time_of_its_last_keep_alive_is_still_a_breakdown()
    {
        // The stack-light decoder stamps keep-alives at the time a lamp went dark and the change at that same time.
        var l = new StationLearner(Configured, microStopSeconds: 120);
        l.OnState(0, MachineState.Running);
        l.OnState(100_000, MachineState.Faulted);
        l.OnState(400_000, MachineState.Faulted);  // keep-alive
        l.OnState(400_000, MachineState.Running);  // the fault ended then
        l.OnState(500_000, MachineState.Running);
        var f = l.Figures(500_000);
        Assert.Equal(1, f.Breakdowns);
        Assert.Equal(200, f.RunningSeconds, 6);
    }

    [Fact]
    public void Breakdowns_repairs_and_parts_update_the_figures_by_the_conjugate_formulas()
    {
        var l = new StationLearner(Configured, microStopSeconds: 120);
        long t = 0;
        void State(MachineState s, double seconds)
        {
            l.OnState(t, s, staleMs: long.MaxValue);
            t += (long)(seconds * 1000);
        }

        State(MachineState.Running, 3600);  // 1 h running, 100 parts
        l.OnParts(t, 100);
        State(MachineState.Faulted, 900);   // breakdown: 15 min repair
        State(MachineState.Running, 1800);
        l.OnParts(t, 50);
        State(MachineState.Faulted, 60);    // micro-stop: goes into the effective cycle, not a breakdown
        State(MachineState.Starved, 300);   // waiting is neither
        State(MachineState.Running, 1800);
        l.OnParts(t, 50);
        State(MachineState.Faulted, 300);   // second breakdown, 5 min
        l.OnState(t, MachineState.Running, staleMs: long.MaxValue);

        var f = l.Figures(t);
        var k = StationLearner.PriorEvents;
        Assert.Equal(2, f.Breakdowns);
        Assert.Equal(7200, f.RunningSeconds, 6);
        Assert.Equal(((k * 4 * 3600) + 7200) / (k + 2), f.MtbfSeconds, 6);
        Assert.Equal(((k * 600) + 900 + 300) / (k + 2), f.MttrSeconds, 6);
        var c = StationLearner.PriorParts;
        Assert.Equal(((c * 30) + 7200 + 60) / (c + 200), f.CycleSeconds, 6);
        Assert.Equal(200, f.Parts);
    }

    [Fact]
    public void Learned_figures_converge_to_the_line_they_watch_from_a_wrong_prior()
    {
        // The true station: MTBF 30 min, MTTR 4 min, cycle 20 s. The configuration says 3 h, 15 min, 30 s.
        var truth = LineSpec.Serial([("S1", 20.0, 1800.0, 240.0), ("S2", 10.0, 0.0, 0.0)], [50]);
        var configured = truth.Stations[0] with { CycleTimeSeconds = 30, MtbfSeconds = 3 * 3600, MttrSeconds = 900 };
        // Every fault counts as a breakdown here (micro-stop limit 1 s), so the learned figures are the true ones.
        var learner = new StationLearner(configured, microStopSeconds: 1);
        var sim = new LineSimulator(truth);
        sim.Reset(7);
        var observer = new Feed(learner);
        long done = 0;
        for (var minute = 0; minute < 60 * 96; minute++)
        {
            sim.Advance(60, observer);
            var now = sim.Completed(0);
            learner.OnParts(sim.Tick * 1000, now - done);
            done = now;
        }

        var f = learner.Figures(sim.Tick * 1000);
        Assert.True(f.Breakdowns > 120, $"{f.Breakdowns} breakdowns");
        TestContext.Current.SendDiagnosticMessage($"{f}");
        // Within 15 % after four days (~160 breakdowns); the prior (one pseudo-breakdown) has faded.
        Assert.InRange(f.MtbfSeconds, 1800 * 0.85, 1800 * 1.15);
        Assert.InRange(f.MttrSeconds, 240 * 0.85, 240 * 1.15);
        Assert.InRange(f.CycleSeconds, 20 * 0.98, 20 * 1.05);
    }

    [Fact]
    public void The_forecast_runs_on_the_learned_figures()
    {
        // A station that fails far more often than configured: the learned line forecasts less output.
        var truth = LineSpec.Serial([("S1", 20.0, 1200.0, 600.0)], []);
        var configured = truth.Stations[0] with { MtbfSeconds = 8 * 3600, MttrSeconds = 300 };
        var learner = new StationLearner(configured, microStopSeconds: 1);
        var sim = new LineSimulator(truth);
        sim.Reset(3);
        var feed = new Feed(learner);
        long done = 0;
        for (var minute = 0; minute < 60 * 24 * 7; minute++)
        {
            sim.Advance(60, feed);
            learner.OnParts(sim.Tick * 1000, sim.Completed(0) - done);
            done = sim.Completed(0);
        }

        var learned = truth with { Stations = [learner.Apply(configured, sim.Tick * 1000)] };
        var configuredLine = truth with { Stations = [configured] };
        var now = new LineNow(0, 0, null);
        double Forecast(LineSpec l) => new LineScenarios(l, 8 * 3600, 1) { Replications = 60 }.ForecastEndOfShift(now).Mean.Mean;
        var exact = Forecast(truth);
        TestContext.Current.SendDiagnosticMessage($"learned {Forecast(learned):0} ({learner.Figures(sim.Tick * 1000)}) configured {Forecast(configuredLine):0} true {exact:0}");
        // After a week (~300 breakdowns) within 7 %; the configured figures are 40 % off.
        Assert.True(Math.Abs(Forecast(learned) - exact) / exact < 0.07, $"learned {Forecast(learned):0} vs true {exact:0}");
        Assert.True(Forecast(configuredLine) > exact * 1.2, $"configured {Forecast(configuredLine):0} vs true {exact:0}");
    }

    private sealed class Feed(StationLearner learner) : IStationStateObserver
    {
        public void OnStateChange(long tick, int station, StationState state)
        {
            if (station != 0)
            {
                return;
            }

            learner.OnState(tick * 1000, state switch
            {
                StationState.Working => MachineState.Running,
                StationState.Starved => MachineState.Starved,
                StationState.Blocked => MachineState.Blocked,
                StationState.Down => MachineState.Faulted,
                _ => MachineState.PlannedStop,
            }, staleMs: long.MaxValue);
        }
    }
}
