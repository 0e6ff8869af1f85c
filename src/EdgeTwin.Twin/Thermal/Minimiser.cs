using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.Optimization;

namespace EdgeTwin.Twin.Thermal;

/// <summary>
/// Nelder-Mead (MathNet.Numerics) that always returns the best point it evaluated: MathNet throws when the iteration
/// budget runs out, and a calibration that is "nearly converged" is still the best estimate we have.
/// </summary>
internal static class Minimiser
{
    public static (double[] X, double Value) Minimise(Func<double[], double> objective, double[] start, double step, int maxIterations, double tolerance = 1e-7)
    {
        var best = (X: (double[])start.Clone(), Value: objective(start));
        var buffer = new double[start.Length];
        var function = ObjectiveFunction.Value(v =>
        {
            for (var i = 0; i < buffer.Length; i++)
            {
                buffer[i] = v[i];
            }

            var value = objective(buffer);
            if (double.IsNaN(value))
            {
                return double.MaxValue;
            }

            if (value < best.Value)
            {
                best = ((double[])buffer.Clone(), value);
            }

            return value;
        });
        try
        {
            var solver = new NelderMeadSimplex(tolerance, maxIterations);
            var perturbation = Vector<double>.Build.Dense(start.Length, step);
            solver.FindMinimum(function, Vector<double>.Build.DenseOfArray(start), perturbation);
        }
        catch (MaximumIterationsException)
        {
            // Keep the best point seen.
        }

        return best;
    }
}
