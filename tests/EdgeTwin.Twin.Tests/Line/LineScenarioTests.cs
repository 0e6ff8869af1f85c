using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class LineScenarioTests
{
    private static LineSpec ReliableLine(double ct2 = 10) =>
        LineSpec.Serial([("S1", 10, 0, 0), ("S2", ct2, 0, 0), ("S3", 10, 0, 0)], [6, 6]);

    private static readonly LineNow FullBuffers = new(0, 0, new LineSnapshot([6, 6], [false, false, false]));

    [Fact]
    public void A_station_down_longer_than_the_buffer_holds_stops_the_line_downstream()
    {
        var scenarios = new LineScenarios(ReliableLine(), 3600, marginPerUnit: 12.5) { Replications = 5 };
        // B2 holds 6 parts = 60 s of S3's work; S2 is down 600 s, so S3 starves for about 540 s.
        var r = scenarios.MachineDown(FullBuffers, "S2", 600);
        Assert.InRange(r.LostOutput.Mean, 53, 56);
        Assert.Equal(r.LostOutput.Mean * 12.5, r.Cost.Mean, 9);
        Assert.Equal(360, r.BaselineOutput, 0);

        // The same thing seen in the station states: S3 starved, S1 blocked.
        var sim = new LineSimulator(ReliableLine());
        sim.Reset(1, FullBuffers.Snapshot);
        sim.ScheduleStop(1, 0, 600);
        sim.Advance(3600);
        Assert.InRange(sim.TicksIn(2, StationState.Starved), 530, 560);
        Assert.InRange(sim.TicksIn(0, StationState.Blocked), 590, 610);
        Assert.Equal(600, sim.TicksIn(1, StationState.PlannedStop));
    }

    [Fact]
    public void A_stop_the_downstream_buffer_covers_loses_nothing()
    {
        var scenarios = new LineScenarios(ReliableLine(), 3600, 10) { Replications = 5 };
        var r = scenarios.MachineDown(FullBuffers, "S2", 50);
        Assert.InRange(r.LostOutput.Mean, 0, 1);
    }

    [Fact]
    public void Slowing_the_bottleneck_costs_the_expected_parts()
    {
        var scenarios = new LineScenarios(ReliableLine(), 3600, 1) { Replications = 3 };
        var r = scenarios.CycleTimeChange(FullBuffers, "S2", 12);
        // 360 parts at 10 s become about 300 at 12 s (the full buffer B2 gives 6 parts at 10 s first).
        Assert.InRange(r.LostOutput.Mean, 50, 62);
    }

    [Fact]
    public void A_bigger_buffer_between_unreliable_machines_raises_output()
    {
        var line = LineSpec.Serial([("S1", 1, 50, 10), ("S2", 1, 50, 10)], [2]);
        var scenarios = new LineScenarios(line, 20_000, 1) { Replications = 40 };
        var r = scenarios.BufferChange(new LineNow(0, 0, null), "B1", 40);
        double gain = -r.LostOutput.Mean;
        double exactGain = (TwoMachineLine.Solve(0.02, 0.1, 0.02, 0.1, 40).Throughput - TwoMachineLine.Solve(0.02, 0.1, 0.02, 0.1, 2).Throughput) * 20_000;
        Assert.True(r.LostOutput.High < 0, $"gain interval must exclude 0: {r.LostOutput}");
        Assert.InRange(gain, exactGain * 0.85, exactGain * 1.15);
    }

    [Fact]
    public void Every_interval_carries_the_level_it_was_computed_at()
    {
        // Same seeds, so the same paired losses: only the level changes the interval, and each estimate says which it is.
        var line = LineSpec.Serial([("S1", 1, 50, 10), ("S2", 1, 50, 10)], [2]);
        var now = new LineNow(0, 0, null);
        var narrow = new LineScenarios(line, 5_000, 2) { Replications = 20, Confidence = 0.8 };
        var wide = new LineScenarios(line, 5_000, 2) { Replications = 20, Confidence = 0.95 };
        var a = narrow.BufferChange(now, "B1", 20);
        var b = wide.BufferChange(now, "B1", 20);
        Assert.Equal((0.8, 0.8), (a.LostOutput.Level, a.Cost.Level));
        Assert.Equal((0.95, 0.95), (b.LostOutput.Level, b.Cost.Level));
        Assert.Equal(a.LostOutput.Mean, b.LostOutput.Mean, 9);
        Assert.True(b.LostOutput.High - b.LostOutput.Low > a.LostOutput.High - a.LostOutput.Low, $"{a.LostOutput} vs {b.LostOutput}");

        var w = wide.MaintenanceWindow(now, "S1", 600, stepSeconds: 1800);
        Assert.All(w.Candidates, c => Assert.Equal(0.95, c.LostOutput.Level));
        Assert.Equal(0.95, wide.ForecastEndOfShift(now).Prediction.Level);
    }

    [Fact]
    public void Maintenance_window_goes_where_the_buffer_has_filled()
    {
        // S1 (5 s) feeds the bottleneck S2 (10 s) through an empty 200-part buffer that fills at 0.1 part/s.
        // Stopping S1 for 20 min (120 parts of S2's work) costs 120 parts at the start of the shift and
        // nothing once the buffer holds 120 parts (after 1200 s).
        var line = LineSpec.Serial([("S1", 5, 0, 0), ("S2", 10, 0, 0)], [200]);
        var scenarios = new LineScenarios(line, 8 * 3600, 20) { Replications = 3 };
        var w = scenarios.MaintenanceWindow(new LineNow(0, 0, null), "S1", 1200, stepSeconds: 600);
        Assert.InRange(w.Candidates[0].LostOutput.Mean, 115, 121);
        Assert.True(w.Best.StartSeconds >= 1200, $"best start {w.Best.StartSeconds}");
        Assert.Equal(0, w.Best.LostOutput.Mean, 0);
        Assert.Equal(1 + (8 * 3600 - 1200) / 600, w.Candidates.Count);
    }

    [Fact]
    public void Forecast_of_a_reliable_line_is_exact_and_of_an_unreliable_line_has_an_interval()
    {
        var reliable = new LineScenarios(ReliableLine(), 3600, 1) { Replications = 4 };
        var f = reliable.ForecastEndOfShift(new LineNow(1800, 170, new LineSnapshot([6, 6], [false, false, false])));
        Assert.Equal(170 + 180, f.Mean.Mean, 0);
        Assert.Equal(f.Prediction.Low, f.Prediction.High, 9);

        var unreliable = new LineScenarios(LineSpec.Serial([("S1", 10, 1800, 300), ("S2", 10, 1800, 300)], [10]), 8 * 3600, 1) { Replications = 60 };
        var u = unreliable.ForecastEndOfShift(new LineNow(4 * 3600, 1000, new LineSnapshot([5], [false, true])));
        Assert.True(u.Prediction.Low < u.Mean.Mean && u.Mean.Mean < u.Prediction.High);
        Assert.True(u.Mean.Low <= u.Mean.Mean && u.Mean.High >= u.Mean.Mean);
        Assert.InRange(u.Mean.Mean, 1000 + 1000, 1000 + 1440);
    }

    [Fact]
    public void A_station_keeps_every_planned_stop_scheduled_in_any_order_and_overlapping()
    {
        var line = LineSpec.Serial([("S1", 1, 0, 0)], []);
        var sim = new LineSimulator(line);
        sim.Reset(1);
        sim.ScheduleStop(0, 500, 600);
        sim.ScheduleStop(0, 100, 200);
        sim.ScheduleStop(0, 150, 300); // overlaps the one before
        sim.Advance(1000);

        Assert.Equal(300, sim.TicksIn(0, StationState.PlannedStop)); // 100–300 and 500–600
        Assert.Equal(700, sim.Output);

        sim.Reset(2); // a reset clears them
        sim.Advance(1000);
        Assert.Equal(1000, sim.Output);
    }

    [Fact]
    public void The_shifts_planned_stops_are_in_the_forecast_and_in_every_what_if()
    {
        // A 15-minute break of the whole line 30 min into a 1 h shift: 90 parts of the reliable 10 s line are not made.
        PlannedWindow[] breakAt30 = [new(-1, 1800, 2700, "break")];
        var plain = new LineScenarios(ReliableLine(), 3600, 1) { Replications = 3 };
        var withBreak = new LineScenarios(ReliableLine(), 3600, 1) { Replications = 3, PlannedStops = breakAt30 };

        Assert.Equal(360, plain.ForecastEndOfShift(FullBuffers).Mean.Mean, 0);
        Assert.Equal(270, withBreak.ForecastEndOfShift(FullBuffers).Mean.Mean, 0);
        // Forecast after the break has passed: only the 10 minutes left count.
        Assert.Equal(60, withBreak.ForecastEndOfShift(new LineNow(3000, 0, FullBuffers.Snapshot)).Mean.Mean, 0);
        // Half-way through the break: 5 min of it still to come, out of the 20 min left.
        Assert.Equal(90, withBreak.ForecastEndOfShift(new LineNow(2400, 0, FullBuffers.Snapshot)).Mean.Mean, 0);

        // Maintenance of S2 inside the break costs nothing more; anywhere else it costs its length.
        var w = withBreak.MaintenanceWindow(FullBuffers, "S2", 900, stepSeconds: 900);
        Assert.Equal(1800, w.Best.StartSeconds);
        Assert.Equal(0, w.Best.LostOutput.Mean, 0);
        Assert.InRange(w.Candidates[0].LostOutput.Mean, 80, 91);
    }
}
