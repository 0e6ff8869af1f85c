using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>Line OEE (<see cref="LineOeeTracker"/>) and the stages it takes its ideal rate from (<see cref="LineStages"/>).</summary>
public sealed class LineOeeTests
{
    private const long S = 1000; // ms per second

    /// <summary>S1 (30 s) → B1 → S2a, S2b (72 s each, in parallel: a part every 36 s) → B2 → S3 (30 s).</summary>
    private static LineSpec Parallel() => new(
        [
            new StationSpec("S1", 30, 0, 0, [], "B1"),
            new StationSpec("S2a", 72, 0, 0, ["B1"], "B2"),
            new StationSpec("S2b", 72, 0, 0, ["B1"], "B2"),
            new StationSpec("S3", 30, 0, 0, ["B2"], null),
        ],
        [new BufferSpec("B1", 10), new BufferSpec("B2", 10)]);

    [Fact]
    public void Parallel_machines_sharing_their_buffers_are_one_stage_whose_rates_add()
    {
        var stages = LineStages.Of(Parallel());
        Assert.Equal([[0], [1, 2], [3]], stages.Select(s => s.Stations.ToArray()).ToArray());
        Assert.Equal(36, stages[1].IdealCycleSeconds, 9);
        Assert.Equal(100, stages[1].IsolatedRatePerHour, 9);
        var constraint = LineStages.Constraint(Parallel());
        Assert.Equal([1, 2], constraint.Stations);
        Assert.Equal(0.5, constraint.RateShare(Parallel(), 1), 9);
    }

    [Fact]
    public void Regression_parallel_machines_gave_a_line_oee_of_109_percent()
    {
        // An hour with every machine running and the pair making its full 100 parts: the line ran at its ideal rate.
        // The old line OEE took S2a alone (72 s) as the constraint: performance 2.0, OEE 200 %, speed loss −3600 s.
        var line = new LineOeeTracker(Parallel(), outputStation: 3, microStopSeconds: 120, staleAfterSeconds: 3600);
        for (int i = 0; i < 4; i++) line.OnState(i, 0, MachineState.Running);
        line.OnGoodCounter(0, 0);
        line.OnGoodCounter(3600 * S, 100);
        var r = line.Report(3600 * S);

        Assert.Equal(36, line.IdealCycleSeconds, 9);
        Assert.Equal(1.0, r.Availability!.Value, 9);
        Assert.Equal(1.0, r.Effectiveness!.Value, 9);
        Assert.Equal(1.0, r.Oee!.Value, 9);
        Assert.Equal(0, r.Losses.SpeedLoss!.Value, 6);
    }

    [Fact]
    public void One_of_two_parallel_machines_down_half_the_time_makes_the_line_three_quarters_available()
    {
        var line = new LineOeeTracker(Parallel(), outputStation: 3, microStopSeconds: 120, staleAfterSeconds: 3600);
        line.OnState(1, 0, MachineState.Running);
        line.OnState(2, 0, MachineState.Running);
        line.OnState(2, 1800 * S, MachineState.Faulted);
        line.OnState(0, 0, MachineState.Faulted); // outside the constraint stage: not the line's time base
        line.OnGoodCounter(0, 0);
        line.OnGoodCounter(3600 * S, 75);
        var r = line.Report(3600 * S);

        Assert.Equal(0.75, r.Availability!.Value, 9);
        Assert.Equal(900, r.Losses.Breakdowns, 6); // S2b's 1800 s at its half share of the stage
        Assert.Equal(1.0, r.Effectiveness!.Value, 9);     // 75 parts × 36 s = the 2700 s of weighted running time
        Assert.Equal(0.75, r.Oee!.Value, 9);
    }

    [Fact]
    public void Speed_loss_is_never_negative_when_more_parts_leave_than_the_running_time_allows()
    {
        // The output station drains its buffer in the first minutes: 10 parts in 100 s at a 30 s ideal cycle.
        var t = new OeeTracker(30, 120, 3600);
        t.OnState(0, MachineState.Running);
        t.AddParts(10, 0);
        var r = t.Report(100 * S);
        Assert.Equal(3.0, r.Effectiveness!.Value, 9);
        Assert.Equal(0, r.Losses.SpeedLoss!.Value);
    }
}
