using EdgeTwin.Twin.Line;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class ThroughputModelTests
{
    private readonly ITestOutputHelper _out;

    public ThroughputModelTests(ITestOutputHelper output) => _out = output;

    /// <summary>24 parameter sets: p, r per machine and buffer sizes from tiny to large.</summary>
    public static IEnumerable<(double P1, double R1, double P2, double R2, int N)> Grid()
    {
        double[] ps = [0.01, 0.05];
        double[] rs = [0.1, 0.25];
        int[] ns = [2, 5, 10, 20, 40];
        int i = 0;
        foreach (var p1 in ps)
        foreach (var r1 in rs)
        foreach (var p2 in ps)
        foreach (var r2 in rs)
        {
            // Cycle through buffer sizes so each size meets several machine pairs.
            yield return (p1, r1, p2, r2, ns[i % ns.Length]);
            i++;
        }
        yield return (0.1, 0.1, 0.02, 0.2, 3);
        yield return (0.005, 0.05, 0.01, 0.08, 15);
        yield return (0.02, 0.5, 0.2, 0.5, 1);
        yield return (0.03, 0.15, 0.03, 0.15, 8); // equal efficiencies (the special case of the closed form)
        yield return (0.002, 0.02, 0.004, 0.03, 30);
        yield return (0.05, 0.3, 0.01, 0.1, 60);
        yield return (0.15, 0.3, 0.1, 0.4, 4);
        yield return (0.01, 0.2, 0.06, 0.3, 12);
    }

    [Fact]
    public void Exact_solution_satisfies_Gershwins_identities()
    {
        // The identities hold for N >= 2 (Gershwin's model; with N = 1 transient boundary states break them).
        foreach (var (p1, r1, p2, r2, n) in Grid().Where(g => g.N >= 2))
        {
            var x = TwoMachineLine.Solve(p1, r1, p2, r2, n);
            // Conservation of flow, and flow rate–idle time: P = e2 (1 − p(0,0,1)) = e1 (1 − p(N,1,0)).
            Assert.Equal(x.Throughput, x.ThroughputUpstream, 10);
            Assert.Equal(x.Throughput, TwoMachineLine.Efficiency(p2, r2) * (1 - x.ProbStarved), 10);
            Assert.Equal(x.Throughput, TwoMachineLine.Efficiency(p1, r1) * (1 - x.ProbBlocked), 10);
            Assert.True(x.Throughput <= Math.Min(TwoMachineLine.Efficiency(p1, r1), TwoMachineLine.Efficiency(p2, r2)) + 1e-12);
        }
    }

    [Fact]
    public void Exact_solution_tends_to_the_slower_machine_as_the_buffer_grows()
    {
        var big = TwoMachineLine.Solve(0.01, 0.1, 0.02, 0.1, 5000);
        Assert.Equal(Math.Min(TwoMachineLine.Efficiency(0.01, 0.1), TwoMachineLine.Efficiency(0.02, 0.1)), big.Throughput, 3);
        var small = TwoMachineLine.Solve(0.01, 0.1, 0.02, 0.1, 1);
        Assert.True(small.Throughput < big.Throughput - 0.02);
    }

    [Fact]
    public void Simulated_two_machine_throughput_is_within_1_percent_of_exact_over_the_grid()
    {
        var grid = Grid().ToList();
        Assert.True(grid.Count >= 20);
        double worst = 0;
        foreach (var (p1, r1, p2, r2, n) in grid)
        {
            var line = LineSpec.Serial([("M1", 1, 1 / p1, 1 / r1), ("M2", 1, 1 / p2, 1 / r2)], [n]);
            var sim = new LineSimulator(line);
            const long steps = 4_000_000;
            // Warm up, then measure in the steady state.
            sim.Reset(0xC0FFEE + (ulong)n);
            sim.Advance(20_000);
            long before = sim.Output;
            sim.Advance(steps);
            double simulated = (sim.Output - before) / (double)steps;
            double exact = TwoMachineLine.Solve(p1, r1, p2, r2, n).Throughput;
            double rel = Math.Abs(simulated - exact) / exact;
            worst = Math.Max(worst, rel);
            _out.WriteLine($"p1={p1} r1={r1} p2={p2} r2={r2} N={n}: exact {exact:F5} simulated {simulated:F5} error {rel:P3}");
            Assert.True(rel < 0.01, $"p1={p1} r1={r1} p2={p2} r2={r2} N={n}: exact {exact} simulated {simulated}");
        }
        _out.WriteLine($"worst relative error {worst:P3} over {grid.Count} sets");
    }

    [Fact]
    public void Decomposition_of_a_two_machine_line_is_the_exact_solution()
    {
        var d = Decomposition.Solve([new(0.01, 0.1), new(0.05, 0.25)], [10]);
        Assert.Equal(TwoMachineLine.Solve(0.01, 0.1, 0.05, 0.25, 10).Throughput, d.Throughput, 12);
    }

    public static TheoryData<double[], double[], int[]> LongLines() => new()
    {
        { [0.01, 0.01, 0.01, 0.01, 0.01], [0.1, 0.1, 0.1, 0.1, 0.1], [10, 10, 10, 10] },
        { [0.005, 0.02, 0.01, 0.015, 0.01, 0.008], [0.1, 0.15, 0.08, 0.2, 0.1, 0.12], [8, 15, 5, 20, 10] },
        { [0.02, 0.01, 0.03, 0.01, 0.02, 0.01, 0.02, 0.01, 0.02, 0.01], [0.2, 0.1, 0.25, 0.1, 0.2, 0.1, 0.2, 0.1, 0.2, 0.1], [40, 40, 40, 40, 40, 40, 40, 40, 40] },
        { [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01], [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [10, 10, 10, 10, 10, 10, 10, 10, 10] },
    };

    [Theory]
    [MemberData(nameof(LongLines))]
    public void Simulated_long_line_is_within_3_percent_of_the_decomposition(double[] p, double[] r, int[] n)
    {
        var d = Decomposition.Solve(p.Select((pi, i) => new MachineRates(pi, r[i])).ToArray(), n);
        Assert.True(d.Converged, $"decomposition did not converge in {d.Iterations} iterations");
        var line = LineSpec.Serial(p.Select((pi, i) => ($"M{i + 1}", 1.0, 1 / pi, 1 / r[i])).ToArray(), n);
        var sim = new LineSimulator(line);
        const long steps = 3_000_000;
        sim.Reset(42);
        sim.Advance(20_000);
        long before = sim.Output;
        sim.Advance(steps);
        double simulated = (sim.Output - before) / (double)steps;
        double rel = Math.Abs(simulated - d.Throughput) / d.Throughput;
        _out.WriteLine($"{p.Length} machines: decomposition {d.Throughput:F5} ({d.Iterations} iterations) simulated {simulated:F5} error {rel:P2}");
        Assert.True(rel < 0.03, $"decomposition {d.Throughput} simulated {simulated}");
    }

    [Fact]
    public void Reliable_line_runs_at_the_slowest_cycle_time()
    {
        var line = LineSpec.Serial([("A", 10, 0, 0), ("B", 12, 0, 0), ("C", 8, 0, 0)], [5, 5]);
        var sim = new LineSimulator(line);
        long output = sim.Run(12_000, 1);
        // 12 000 s at one part per 12 s, less the pipeline fill of the first part.
        Assert.InRange(output, 997, 1000);
    }

    [Fact]
    public void Parallel_machines_double_the_capacity_of_their_stage_and_a_merge_needs_both_inputs()
    {
        // A (5 s) feeds two parallel 10 s machines B1, B2 which feed C (5 s): 1 part per 5 s.
        var par = new LineSpec(
            [
                new StationSpec("A", 5, 0, 0, [], "Q1"),
                new StationSpec("B1", 10, 0, 0, ["Q1"], "Q2"),
                new StationSpec("B2", 10, 0, 0, ["Q1"], "Q2"),
                new StationSpec("C", 5, 0, 0, ["Q2"], null),
            ],
            [new BufferSpec("Q1", 4), new BufferSpec("Q2", 4)]);
        Assert.Empty(par.Validate());
        Assert.InRange(new LineSimulator(par).Run(10_000, 1), 1990, 2000);
        // Assembly: C takes one part from each of two feeders; the slower feeder (8 s) paces it.
        var merge = new LineSpec(
            [
                new StationSpec("F1", 5, 0, 0, [], "Q1"),
                new StationSpec("F2", 8, 0, 0, [], "Q2"),
                new StationSpec("C", 4, 0, 0, ["Q1", "Q2"], null),
            ],
            [new BufferSpec("Q1", 4), new BufferSpec("Q2", 4)]);
        Assert.InRange(new LineSimulator(merge).Run(8_000, 1), 995, 1000);
    }

    [Fact]
    public void Invalid_lines_are_rejected_with_every_problem()
    {
        var bad = new LineSpec(
            [
                new StationSpec("A", 0, 0, 0, ["nope"], "Q1"),
                new StationSpec("A", 5, 100, 0, ["Q1"], "Q1"),
            ],
            [new BufferSpec("Q1", 0)]);
        var errors = bad.Validate();
        Assert.Contains(errors, e => e.Contains("cycle time", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("'nope'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("defined twice", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("capacity", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("mttr", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => new LineSimulator(bad));
    }

    [Fact]
    public void A_cycle_through_a_merge_is_rejected_naming_its_stations_and_buffers()
    {
        // S4 sends parts back into B1, which S1 also feeds: B1 has two producers.
        var looped = new LineSpec(
            [
                new StationSpec("S1", 30, 0, 0, [], "B1"),
                new StationSpec("S2", 30, 0, 0, ["B1"], "B2"),
                new StationSpec("S3", 30, 0, 0, ["B2"], "B3"),
                new StationSpec("S4", 30, 0, 0, ["B3"], "B1"),
                new StationSpec("S5", 30, 0, 0, ["B1"], null),
            ],
            [new BufferSpec("B1", 5), new BufferSpec("B2", 5), new BufferSpec("B3", 5)]);

        var error = Assert.Single(looped.Problems());

        Assert.Equal("line has a cycle (a part could return to a station it passed): S2 -> B2 -> S3 -> B3 -> S4 -> B1 -> S2 (S4's output B1 feeds S2 again)", error.Message);
        // The output that closes the loop (to a station listed before it) is where a config reader points.
        Assert.Equal((LineElement.Station, 3, "output"), (error.Element, error.Index, error.Field));
        Assert.Equal([error.Message], looped.Validate());
    }
}
