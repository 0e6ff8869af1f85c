using BenchmarkDotNet.Attributes;
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
    private long _t;
    private ulong _count;

    [GlobalSetup]
    public void Setup()
    {
        _tracker = new OeeTracker(30, 120, 300);
        _tracker.OnState(0, MachineState.Running);
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
