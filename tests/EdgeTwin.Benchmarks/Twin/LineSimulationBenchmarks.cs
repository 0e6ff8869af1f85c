using BenchmarkDotNet.Attributes;
using EdgeTwin.Twin.Line;

namespace EdgeTwin.Benchmarks.Twin;

/// <summary>
/// One 8 h shift of a 10-station line at a 1 s tick (target ≤ 20 ms; a what-if is 100 of these).
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
    public long OneShift()
    {
        // A shift of a working line makes parts: none means the simulation did not run the shift.
        var parts = _sim.Run(8 * 3600, ++_seed);
        return parts > 0 ? parts : throw new InvalidOperationException($"LineSimulation: the shift (seed {_seed}) made {parts} parts");
    }
}
