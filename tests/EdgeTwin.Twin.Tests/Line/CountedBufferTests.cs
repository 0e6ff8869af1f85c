using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Oee;
using EdgeTwin.Twin.Line.Scenarios;

namespace EdgeTwin.Twin.Tests.Line;

/// <summary>
/// Buffer levels counted from the stations' part counters (<see cref="CountedBuffers"/>) against the simulated line's true
/// levels: the twin sees what a gateway polling the PLCs every 2 s sees — each station's state and its part counter.
/// </summary>
public sealed class CountedBufferTests
{
    private const double Shift = 8 * 3600;
    private const int PollSeconds = 2;
    private readonly ITestOutputHelper _out;

    public CountedBufferTests(ITestOutputHelper output) => _out = output;

    private static MachineState Observed(StationState s) => s switch
    {
        StationState.Working => MachineState.Running,
        StationState.Starved => MachineState.Starved,
        StationState.Blocked => MachineState.Blocked,
        StationState.Down => MachineState.Faulted,
        _ => MachineState.PlannedStop,
    };

    /// <summary>What a run of the counter against the simulation gave.</summary>
    private sealed record Tracked(double MeanAbsError, double MaxAbsError, double KnownShare, int Polls);

    private sealed class Gateway(LineSimulator sim)
    {
        private readonly long[] _offset = new long[sim.Spec.Stations.Count];

        public CountedBuffers Counted { get; } = new(sim.Spec, [.. sim.Spec.Stations.Select(_ => 32)], [.. sim.Spec.Stations.Select(_ => 0)]);

        public int Lost { get; private set; }

        /// <summary>The PLC's counter restarts from 0 (power cycled, a counter reset from the HMI).</summary>
        public void ResetCounter(int station) => _offset[station] = -sim.Completed(station);

        /// <summary>The counter reads <paramref name="parts"/> more than the parts that went into the buffer (a part diverted by hand).</summary>
        public void Miscount(int station, int parts) => _offset[station] += parts;

        public void Poll()
        {
            long ms = (long)(sim.Tick * sim.Spec.TickSeconds * 1000);
            for (int s = 0; s < sim.Spec.Stations.Count; s++)
            {
                if (Counted.OnCounter(s, reject: false, ms, (ulong)(sim.Completed(s) + _offset[s]), out _) >= 0) Lost++;
                Counted.OnState(s, Observed(sim.CurrentState(s)));
            }
        }
    }

    // Polls a simulated stretch and compares the counted level with the truth at every poll where it is known.
    private static Tracked Follow(LineSimulator sim, Gateway gw, double seconds)
    {
        double sum = 0, max = 0;
        int known = 0, polls = 0;
        for (double t = 0; t < seconds; t += PollSeconds)
        {
            sim.Advance(sim.TicksFor(PollSeconds));
            gw.Poll();
            for (int b = 0; b < sim.Spec.Buffers.Count; b++)
            {
                polls++;
                if (!gw.Counted.Known(b)) continue;
                known++;
                double e = Math.Abs(gw.Counted.Level(b) - sim.BufferLevel(b));
                sum += e;
                max = Math.Max(max, e);
            }
        }
        return new Tracked(known == 0 ? double.NaN : sum / known, max, (double)known / polls, polls);
    }

    private static LineSpec Serial(Random rnd, int n) => LineSpec.Serial(
        [.. Enumerable.Range(0, n).Select(i => ($"S{i + 1}", 20 + 20 * rnd.NextDouble(), 3600 * (1 + 5 * rnd.NextDouble()), 60 * (2 + 13 * rnd.NextDouble())))],
        [.. Enumerable.Range(0, n - 1).Select(_ => rnd.Next(3, 21))], cycleTimeCv: 0.1);

    /// <summary>
    /// Over a shift of a serial line the counted level follows the true one within a part on average (measured: mean
    /// abs. error ≈ 0.2–0.4 parts; the rest is the 2-s poll, a part put in and taken out between two readings), known
    /// from its first starved/blocked anchor on.
    /// </summary>
    [Fact]
    public void The_counted_level_follows_the_simulated_buffers_over_a_shift()
    {
        var rnd = new Random(3);
        double worst = 0, sum = 0;
        const int lines = 6;
        for (int k = 0; k < lines; k++)
        {
            var sim = new LineSimulator(Serial(rnd, rnd.Next(3, 7)));
            sim.Reset(100 + (ulong)k);
            var gw = new Gateway(sim);
            var r = Follow(sim, gw, Shift);
            _out.WriteLine($"line {k}: {sim.Spec.Stations.Count} stations, mean |error| {r.MeanAbsError:0.000} parts, max {r.MaxAbsError}, known {r.KnownShare:P1} of the polls");
            Assert.True(r.KnownShare > 0.9, $"line {k}: known only {r.KnownShare:P1} of the time");
            Assert.True(r.MeanAbsError <= 1.0, $"line {k}: mean |error| {r.MeanAbsError}");
            worst = Math.Max(worst, r.MeanAbsError);
            sum += r.MeanAbsError;
        }
        _out.WriteLine($"mean |error| over {lines} lines {sum / lines:0.000} parts, worst line {worst:0.000}");
    }

    /// <summary>
    /// A counter that goes back is a reset: the buffers around that station are unknown (the forecast assumes them half
    /// full) until a starved or blocked anchor, after which the count follows the truth again.
    /// </summary>
    [Fact]
    public void A_counter_reset_makes_the_buffers_around_it_unknown_until_the_next_anchor()
    {
        var line = LineSpec.Serial([("S1", 20, 3600, 300), ("S2", 25, 3600, 300), ("S3", 22, 3600, 300)], [10, 10], cycleTimeCv: 0.1);
        var sim = new LineSimulator(line);
        sim.Reset(7);
        var gw = new Gateway(sim);
        var before = Follow(sim, gw, Shift / 2);
        Assert.True(gw.Counted.Known(0) && gw.Counted.Known(1));

        gw.ResetCounter(1); // S2's PLC counter restarts from 0
        sim.Advance(sim.TicksFor(PollSeconds));
        gw.Poll();
        Assert.False(gw.Counted.Known(0));
        Assert.False(gw.Counted.Known(1));
        Assert.False(gw.Counted.Trusted(0, (long)(sim.Tick * 1000)));
        Assert.Equal(1, gw.Lost);

        var after = Follow(sim, gw, Shift / 2);
        _out.WriteLine($"before the reset: mean |error| {before.MeanAbsError:0.000}, after it: {after.MeanAbsError:0.000} (known {after.KnownShare:P1} of the polls)");
        Assert.True(gw.Counted.Known(0) && gw.Counted.Known(1), "re-anchored by a starved or blocked station");
        Assert.True(after.MeanAbsError <= 1.0, $"after the reset: {after.MeanAbsError}");
        Assert.True(after.KnownShare > 0.8, $"after the reset known only {after.KnownShare:P1}");
    }

    /// <summary>
    /// A count gone wrong without a reset (parts taken off by hand, a reject lane the model does not know) is set right by
    /// the next starved or blocked station; until then it is off by what was miscounted (bounded by the capacity).
    /// </summary>
    [Fact]
    public void A_miscounted_buffer_is_set_right_by_the_next_starved_or_blocked_anchor()
    {
        var line = LineSpec.Serial([("S1", 22, 3600, 300), ("S2", 22, 3600, 300), ("S3", 22, 3600, 300)], [20, 20], cycleTimeCv: 0.1);
        var sim = new LineSimulator(line);
        sim.Reset(5);
        var gw = new Gateway(sim);
        Follow(sim, gw, 3600);
        // Mid-buffer, where no station says anything about B1 for a while.
        while (sim.BufferLevel(0) is < 6 or > 14) Follow(sim, gw, PollSeconds);
        gw.Miscount(0, 3); // S1 counts 3 parts that never reached B1
        Follow(sim, gw, PollSeconds);
        Assert.Equal(0, gw.Lost); // within the counter's slack: not a jump, the count simply is wrong now
        Assert.True(Math.Abs(gw.Counted.Level(0) - sim.BufferLevel(0)) >= 2, $"{gw.Counted.Level(0)} vs {sim.BufferLevel(0)}");
        int polls = 0;
        while (Math.Abs(gw.Counted.Level(0) - sim.BufferLevel(0)) >= 2 && polls++ < 2 * 3600 / PollSeconds) Follow(sim, gw, PollSeconds);
        _out.WriteLine($"B1 set right after {polls * PollSeconds} s");
        Assert.True(polls < 2 * 3600 / PollSeconds, "B1 was not re-anchored within two hours");
        var after = Follow(sim, gw, Shift - 2 * 3600);
        Assert.True(after.MeanAbsError <= 1.0, $"after the re-anchor: {after.MeanAbsError}");
    }

    /// <summary>
    /// A graph line: two parallel machines share their input and output buffers, and an assembly station takes a part
    /// from each of its two inputs per part it makes (its starvation says nothing about which input is empty).
    /// </summary>
    [Fact]
    public void Parallel_machines_and_an_assembly_station_are_counted()
    {
        var line = new LineSpec(
            [
                new StationSpec("S1", 12, 3 * 3600, 300, [], "B1", 0.1),
                new StationSpec("S2a", 25, 2 * 3600, 400, ["B1"], "B2", 0.1),
                new StationSpec("S2b", 25, 2 * 3600, 400, ["B1"], "B2", 0.1),
                new StationSpec("S3", 14, 3 * 3600, 300, [], "B3", 0.1),
                new StationSpec("S4", 13, 4 * 3600, 300, ["B2", "B3"], null, 0.1),
            ],
            [new BufferSpec("B1", 12), new BufferSpec("B2", 8), new BufferSpec("B3", 15)]);
        var sim = new LineSimulator(line);
        sim.Reset(11);
        var gw = new Gateway(sim);
        var r = Follow(sim, gw, Shift);
        _out.WriteLine($"graph line: mean |error| {r.MeanAbsError:0.000} parts, max {r.MaxAbsError}, known {r.KnownShare:P1} of the polls");
        for (int b = 0; b < 3; b++) Assert.True(gw.Counted.Known(b), line.Buffers[b].Id);
        Assert.True(r.MeanAbsError <= 1.0, $"mean |error| {r.MeanAbsError}");
        Assert.True(r.KnownShare > 0.9, $"known only {r.KnownShare:P1}");
    }

    /// <summary>A buffer around a station without a part counter cannot be counted: it stays assumed, as before.</summary>
    [Fact]
    public void A_buffer_next_to_a_station_without_a_counter_is_not_counted()
    {
        var line = LineSpec.Serial([("S1", 20, 0, 0), ("S2", 25, 0, 0), ("S3", 22, 0, 0)], [10, 10]);
        var counted = new CountedBuffers(line, [32, 0, 32], [0, 0, 0]);
        Assert.False(counted.Countable(0));
        Assert.False(counted.Countable(1));
        counted.OnState(2, MachineState.Starved);
        counted.OnState(0, MachineState.Blocked);
        Assert.False(counted.Known(0));
        Assert.False(counted.Known(1));
    }

    /// <summary>
    /// The forecast of the rest of the shift from counted levels vs from half-full buffers, both against the simulated
    /// outcome (and the forecast from the true levels as the floor), 30 min before the shift's end, where the buffers
    /// are a large share of what is still to come.
    /// </summary>
    [Fact]
    public void The_forecast_from_counted_levels_is_closer_than_from_half_full_buffers()
    {
        var rnd = new Random(21);
        const int lines = 20;
        const double at = Shift - 1800;
        double counted = 0, half = 0, truthStart = 0, mae = 0;
        for (int k = 0; k < lines; k++)
        {
            var st = Enumerable.Range(0, rnd.Next(4, 8)).Select(i => ($"S{i + 1}", 20 + 20 * rnd.NextDouble(), 3600 * (1 + 5 * rnd.NextDouble()), 60 * (2 + 13 * rnd.NextDouble()))).ToArray();
            var spec = LineSpec.Serial(st, [.. st.Skip(1).Select(_ => rnd.Next(10, 41))], cycleTimeCv: 0.1);
            var sim = new LineSimulator(spec);
            sim.Reset(500 + (ulong)k);
            var gw = new Gateway(sim);
            mae += Follow(sim, gw, at).MeanAbsError;
            var truth = sim.Snapshot();
            var countedLevels = Enumerable.Range(0, spec.Buffers.Count).Select(b => gw.Counted.Known(b) ? gw.Counted.Level(b) : LineSnapshot.AssumedLevel(spec.Buffers[b])).ToArray();
            var halfLevels = spec.Buffers.Select(LineSnapshot.AssumedLevel).ToArray();
            long soFar = sim.Output;
            sim.Advance(sim.TicksFor(Shift - at));
            double actual = sim.Output - soFar;
            double Error(int[] levels)
            {
                var f = new LineScenarios(spec, Shift, 1) { Replications = 40, Seed = 9000 + (ulong)k }
                    .ForecastEndOfShift(new LineNow(at, soFar, new LineSnapshot(levels, truth.StationDown)));
                return Math.Abs(f.Mean.Mean - soFar - actual) / Math.Max(1, actual);
            }
            counted += Error(countedLevels);
            half += Error(halfLevels);
            truthStart += Error([.. truth.BufferLevels]);
        }
        _out.WriteLine($"{lines} lines, last 30 min: mean |error| of the parts still to come: counted start {counted / lines:P1}, half-full start {half / lines:P1}, true levels {truthStart / lines:P1}; counted level mean |error| {mae / lines:0.00} parts");
        Assert.True(counted < half, $"counted {counted / lines:P1} vs half full {half / lines:P1}");
    }
}
