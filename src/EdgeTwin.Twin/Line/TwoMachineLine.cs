namespace EdgeTwin.Twin.Line;

/// <summary>Result of the exact two-machine analysis.</summary>
/// <param name="Throughput">Parts per time unit leaving M2.</param>
/// <param name="ThroughputUpstream">Parts per time unit leaving M1 (equal to <paramref name="Throughput"/> by conservation of flow; a check).</param>
/// <param name="ProbStarved">p(0, 0, 1): buffer empty, M1 down, M2 up (M2 starved).</param>
/// <param name="ProbBlocked">p(N, 1, 0): buffer full, M1 up, M2 down (M1 blocked).</param>
/// <param name="MeanLevel">Average buffer level.</param>
public readonly record struct TwoMachineResult(double Throughput, double ThroughputUpstream, double ProbStarved, double ProbBlocked, double MeanLevel);

/// <summary>
/// Exact throughput of the two-machine, one-buffer line with deterministic unit processing times and
/// geometric failures and repairs (Buzacott 1967; Gershwin, Manufacturing Systems Engineering, 1994,
/// §3.2): machine i fails with probability p_i in a time unit in which it works (operation-dependent),
/// is repaired with probability r_i per time unit; machine states change at the start of a time unit,
/// the buffer level n ∈ [0, N] at its end, M1 works only if n &lt; N and M2 only if n &gt; 0 at the start.
/// The stationary distribution of this Markov chain (states (n, α1, α2)) is computed exactly by
/// banded Gaussian elimination — levels change by at most one per step, so the system is banded with
/// half-width 7 and the solve is O(N). Gershwin's closed form is one way to write the same solution;
/// solving the chain directly needs no special cases (p1/r1 = p2/r2, small N).
/// </summary>
public static class TwoMachineLine
{
    private const int HalfWidth = 7;

    /// <summary>Efficiency of a machine in isolation, e = r / (r + p).</summary>
    public static double Efficiency(double p, double r) => r / (r + p);

    public static TwoMachineResult Solve(double p1, double r1, double p2, double r2, int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "buffer capacity must be >= 1");
        Check(p1, nameof(p1)); Check(r1, nameof(r1)); Check(p2, nameof(p2)); Check(r2, nameof(r2));
        if (r1 <= 0 || r2 <= 0) throw new ArgumentOutOfRangeException(nameof(r1), "repair probabilities must be > 0");
        int m = 4 * (n + 1);
        int w = HalfWidth;
        int bw = 2 * w + 1;
        var a = new double[m * bw]; // a[row * bw + (col - row + w)]
        var rhs = new double[m];
        // A = I − Pᵀ : row j holds the balance equation of state j.
        for (int i = 0; i < m; i++) a[i * bw + w] = 1.0;
        Span<double> q1 = stackalloc double[2];
        Span<double> q2 = stackalloc double[2];
        for (int lvl = 0; lvl <= n; lvl++)
        {
            for (int a1 = 0; a1 <= 1; a1++)
            {
                for (int a2 = 0; a2 <= 1; a2++)
                {
                    int from = lvl * 4 + a1 * 2 + a2;
                    bool op1 = a1 == 1 && lvl < n;
                    bool op2 = a2 == 1 && lvl > 0;
                    // q[x] = probability that the machine is up (x = 1) or down (x = 0) next.
                    q1[1] = a1 == 0 ? r1 : op1 ? 1 - p1 : 1; q1[0] = 1 - q1[1];
                    q2[1] = a2 == 0 ? r2 : op2 ? 1 - p2 : 1; q2[0] = 1 - q2[1];
                    for (int b1 = 0; b1 <= 1; b1++)
                    {
                        for (int b2 = 0; b2 <= 1; b2++)
                        {
                            double pr = q1[b1] * q2[b2];
                            if (pr == 0) continue;
                            int next = lvl + (b1 == 1 && lvl < n ? 1 : 0) - (b2 == 1 && lvl > 0 ? 1 : 0);
                            int to = next * 4 + b1 * 2 + b2;
                            a[to * bw + (from - to + w)] -= pr;
                        }
                    }
                }
            }
        }
        // Fix π(1,1,1) = 1 (a recurrent state) instead of its balance equation, normalise afterwards.
        int reference = 1 * 4 + 3;
        for (int k = 0; k < bw; k++) a[reference * bw + k] = 0;
        a[reference * bw + w] = 1;
        rhs[reference] = 1;
        // Banded elimination without pivoting: I − Pᵀ is column diagonally dominant, so it is stable.
        for (int k = 0; k < m; k++)
        {
            double piv = a[k * bw + w];
            if (Math.Abs(piv) < 1e-300) continue; // a state that cannot be reached: its row is already zero.
            int last = Math.Min(m - 1, k + w);
            for (int i = k + 1; i <= last; i++)
            {
                double f = a[i * bw + (k - i + w)];
                if (f == 0) continue;
                f /= piv;
                for (int j = k; j <= last; j++) a[i * bw + (j - i + w)] -= f * a[k * bw + (j - k + w)];
                rhs[i] -= f * rhs[k];
            }
        }
        var pi = new double[m];
        for (int k = m - 1; k >= 0; k--)
        {
            double piv = a[k * bw + w];
            if (Math.Abs(piv) < 1e-300) { pi[k] = 0; continue; }
            double s = rhs[k];
            int last = Math.Min(m - 1, k + w);
            for (int j = k + 1; j <= last; j++) s -= a[k * bw + (j - k + w)] * pi[j];
            pi[k] = s / piv;
        }
        double sum = 0;
        for (int k = 0; k < m; k++) { if (pi[k] < 0) pi[k] = 0; sum += pi[k]; }
        double out2 = 0, out1 = 0, mean = 0;
        for (int lvl = 0; lvl <= n; lvl++)
        {
            for (int a1 = 0; a1 <= 1; a1++)
            {
                for (int a2 = 0; a2 <= 1; a2++)
                {
                    double p = pi[lvl * 4 + a1 * 2 + a2] / sum;
                    mean += lvl * p;
                    if (lvl > 0) out2 += p * (a2 == 0 ? r2 : 1 - p2);
                    if (lvl < n) out1 += p * (a1 == 0 ? r1 : 1 - p1);
                }
            }
        }
        return new TwoMachineResult(out2, out1, pi[0 * 4 + 0 * 2 + 1] / sum, pi[n * 4 + 1 * 2 + 0] / sum, mean);
    }

    private static void Check(double v, string name)
    {
        if (!(v >= 0 && v <= 1)) throw new ArgumentOutOfRangeException(name, v, "probability must be in [0, 1]");
    }
}
