using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// One 8 h shift of a 10-station line at a 1 s tick (target ≤ 20 ms), and 100 replications of it.
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*LineSimulation*' --inProcess
/// </summary>
[MemoryDiagnoser]
public class LineSimulationBenchmarks
{
    private LineSimulator _sim = null!;
    private ulong _seed;

    [GlobalSetup]
    public void Setup()
    {
        var stations = Enumerable.Range(1, 10)
            .Select(i => ($"S{i}", 30.0 + 3 * (i % 4), 2 * 3600.0, 600.0))
            .ToArray();
        _sim = new LineSimulator(LineSpec.Serial(stations, Enumerable.Repeat(20, 9).ToArray(), tickSeconds: 1.0, cycleTimeCv: 0.1));
    }

    [Benchmark]
    public long OneShift() => _sim.Run(8 * 3600, ++_seed);

    [Benchmark]
    public long HundredReplications()
    {
        long total = 0;
        for (int i = 0; i < 100; i++) total += _sim.Run(8 * 3600, ++_seed);
        return total;
    }
}
