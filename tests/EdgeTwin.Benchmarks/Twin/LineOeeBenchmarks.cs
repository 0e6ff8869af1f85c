using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Learning;
using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// Cost of one OEE update per machine state change (target ≤ 1 µs) and per counter reading.
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*LineOee*' --inProcess
/// </summary>
[MemoryDiagnoser]
public class LineOeeBenchmarks
{
    private static readonly MachineState[] Cycle = [MachineState.Running, MachineState.Starved, MachineState.Running, MachineState.Faulted, MachineState.Running, MachineState.Blocked];
    private OeeTracker _tracker = null!;
    private LineOeeTracker _line = null!;
    private StationLearner _learner = null!;
    private long _t;
    private long _lineStep = 2; // Cycle[0] is the Running the setup booked: start each machine at its first change
    private ulong _count;

    [GlobalSetup]
    public void Setup()
    {
        _tracker = new OeeTracker(30, 120, 300);
        _tracker.OnState(0, MachineState.Running);
        _learner = new StationLearner(new StationSpec("S1", 30, 4 * 3600, 600, [], null, 0.1), 120);
        _learner.OnState(0, MachineState.Running);

        // S1 → B1 → S2a, S2b in parallel → B2 → S3: the live twin's line books (each machine's tracker plus the line's).
        _line = new LineOeeTracker(
            new LineSpec(
                [
                    new StationSpec("S1", 30, 0, 0, [], "B1"),
                    new StationSpec("S2a", 72, 0, 0, ["B1"], "B2"),
                    new StationSpec("S2b", 72, 0, 0, ["B1"], "B2"),
                    new StationSpec("S3", 30, 0, 0, ["B2"], null),
                ],
                [new BufferSpec("B1", 10), new BufferSpec("B2", 10)]),
            outputStation: 3);
        for (var station = 0; station < 4; station++)
        {
            _line.OnState(station, 0, MachineState.Running);
        }

        // LineStateChange claims a booked state change per call. Only the constraint stage's machines are booked (the
        // others are an array lookup), and a reading of the state a machine is already in books no change: check the
        // readings it will make, from the states the setup left.
        var last = new MachineState?[4];
        foreach (var station in _line.Constraint.Stations)
        {
            last[station] = MachineState.Running;
        }

        for (var k = _lineStep; k < _lineStep + 4000; k++)
        {
            var (station, state) = LineReading(k);
            if (last[station] is not { } before || before == state)
            {
                throw new InvalidOperationException($"LineOee: LineStateChange reading {k} ({state} of station {station}) is {(last[station] is null ? "outside the constraint stage" : "no change")}: it would not book a state change");
            }

            last[station] = state;
        }
    }

    /// <summary>
    /// A state change booked by the line's tracker (parallel stages: the machine's share of its stage), alternating between
    /// the constraint stage's two machines, each walking the cycle so that every call changes its state.
    /// </summary>
    [Benchmark(OperationsPerInvoke = 1000)]
    public void LineStateChange()
    {
        for (int i = 0; i < 1000; i++)
        {
            _t += 7_000;
            var (station, state) = LineReading(_lineStep++);
            _line.OnState(station, _t, state);
        }
    }

    /// <summary>The constraint stage's two machines (S2a, S2b) in turn, each walking the cycle.</summary>
    private static (int Station, MachineState State) LineReading(long k) => (1 + (int)(k & 1), Cycle[(k >> 1) % Cycle.Length]);

    /// <summary>What the line twin stage does per state change: OEE books and the MTBF/MTTR/cycle learner.</summary>
    [Benchmark(OperationsPerInvoke = 1000)]
    public void StateChangeWithLearning()
    {
        for (int i = 0; i < 1000; i++)
        {
            _t += 7_000;
            var s = Cycle[i % Cycle.Length];
            _tracker.OnState(_t, s);
            _learner.OnState(_t, s);
        }
    }

    [Benchmark(OperationsPerInvoke = 1000)]
    public void StateChange()
    {
        for (int i = 0; i < 1000; i++)
        {
            _t += 7_000;
            _tracker.OnState(_t, Cycle[i % Cycle.Length]);
        }
    }

    [Benchmark(OperationsPerInvoke = 1000)]
    public void CounterReading()
    {
        for (int i = 0; i < 1000; i++)
        {
            _t += 30_000;
            _count += 1;
            _tracker.OnGoodCounter(_t, _count);
        }
    }
}
