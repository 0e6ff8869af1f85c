namespace EdgeTwin.Twin.Line;

/// <summary>One machine of a deterministic line: failure and repair probabilities per time unit.</summary>
public readonly record struct MachineRates(double P, double R);

/// <summary>Result of the decomposition: throughput and per-buffer figures.</summary>
public sealed record DecompositionResult(double Throughput, IReadOnlyList<double> BlockThroughputs, IReadOnlyList<double> MeanLevels, int Iterations, bool Converged);

/// <summary>
/// Approximate throughput of a long deterministic-processing-time line M1 B1 M2 … B(k−1) Mk by
/// Gershwin's decomposition with the DDX algorithm (Dallery, David and Xie 1988; Gershwin 1994 §4.4).
/// Buffer Bi is seen by a two-machine line Mu(i) Bi Md(i) whose pseudo-machines stand for everything
/// upstream and downstream. Their parameters satisfy, for i = 2…k−1 (upstream) and i = k−2…1 (downstream):
/// <code>
///   X(i)  = p_s(i−1) r_u(i−1) / (P(i−1) p_u(i))            p_s = p(0,0,1) of block i−1
///   r_u(i) = r_u(i−1) X(i) + r_i (1 − X(i))
///   p_u(i) = r_u(i) (1/P(i−1) + 1/e_i − 2 − p_d(i−1)/r_d(i−1))
///   Y(i)  = p_b(i+1) r_d(i+1) / (P(i+1) p_d(i))            p_b = p(N,1,0) of block i+1
///   r_d(i) = r_d(i+1) Y(i) + r_{i+1} (1 − Y(i))
///   p_d(i) = r_d(i) (1/P(i+1) + 1/e_{i+1} − 2 − p_u(i+1)/r_u(i+1))
/// </code>
/// with e_i = r_i/(r_i+p_i), Mu(1) = M1 and Md(k−1) = Mk. Each block is solved exactly by
/// <see cref="TwoMachineLine"/>; iteration stops when the block throughputs agree.
/// </summary>
public static class Decomposition
{
    public static DecompositionResult Solve(IReadOnlyList<MachineRates> machines, IReadOnlyList<int> buffers, double tolerance = 1e-9, int maxIterations = 1000)
    {
        ArgumentNullException.ThrowIfNull(machines);
        ArgumentNullException.ThrowIfNull(buffers);
        int k = machines.Count;
        if (k < 2) throw new ArgumentException("a line needs at least two machines", nameof(machines));
        if (buffers.Count != k - 1) throw new ArgumentException($"{k} machines need {k - 1} buffers", nameof(buffers));
        int nb = k - 1;
        var pu = new double[nb]; var ru = new double[nb]; var pd = new double[nb]; var rd = new double[nb];
        var res = new TwoMachineResult[nb];
        for (int i = 0; i < nb; i++)
        {
            pu[i] = machines[i].P; ru[i] = machines[i].R;
            pd[i] = machines[i + 1].P; rd[i] = machines[i + 1].R;
        }
        for (int i = 0; i < nb; i++) res[i] = TwoMachineLine.Solve(pu[i], ru[i], pd[i], rd[i], buffers[i]);
        int it;
        bool converged = false;
        for (it = 1; it <= maxIterations; it++)
        {
            // Upstream pass: block index b = 1..nb−1 (0-based), machine between block b−1 and b is machines[b].
            for (int b = 1; b < nb; b++)
            {
                res[b - 1] = TwoMachineLine.Solve(pu[b - 1], ru[b - 1], pd[b - 1], rd[b - 1], buffers[b - 1]);
                var m = machines[b];
                double e = TwoMachineLine.Efficiency(m.P, m.R);
                double prod = res[b - 1].Throughput;
                double x = res[b - 1].ProbStarved * ru[b - 1] / (prod * pu[b]);
                x = Math.Clamp(x, 0, 1);
                ru[b] = Math.Clamp(ru[b - 1] * x + m.R * (1 - x), 1e-12, 1);
                pu[b] = Math.Clamp(ru[b] * (1 / prod + 1 / e - 2 - pd[b - 1] / rd[b - 1]), 1e-12, 1);
            }
            // Downstream pass.
            for (int b = nb - 2; b >= 0; b--)
            {
                res[b + 1] = TwoMachineLine.Solve(pu[b + 1], ru[b + 1], pd[b + 1], rd[b + 1], buffers[b + 1]);
                var m = machines[b + 1];
                double e = TwoMachineLine.Efficiency(m.P, m.R);
                double prod = res[b + 1].Throughput;
                double y = res[b + 1].ProbBlocked * rd[b + 1] / (prod * pd[b]);
                y = Math.Clamp(y, 0, 1);
                rd[b] = Math.Clamp(rd[b + 1] * y + m.R * (1 - y), 1e-12, 1);
                pd[b] = Math.Clamp(rd[b] * (1 / prod + 1 / e - 2 - pu[b + 1] / ru[b + 1]), 1e-12, 1);
            }
            for (int b = 0; b < nb; b++) res[b] = TwoMachineLine.Solve(pu[b], ru[b], pd[b], rd[b], buffers[b]);
            double lo = double.MaxValue, hi = double.MinValue;
            foreach (var r in res) { lo = Math.Min(lo, r.Throughput); hi = Math.Max(hi, r.Throughput); }
            if (hi - lo < tolerance * hi) { converged = true; break; }
        }
        var tps = res.Select(r => r.Throughput).ToArray();
        return new DecompositionResult(tps.Average(), tps, res.Select(r => r.MeanLevel).ToArray(), Math.Min(it, maxIterations), converged);
    }
}
