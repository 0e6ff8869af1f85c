using System.Text.Json;
using MathNet.Numerics;

namespace EdgeTwin.Twin.Models.Rul;

/// <summary>
/// How far the model's RUL is from the truth, as a Gaussian whose mean error (<c>bias</c>) and spread
/// (<c>sigma</c>, by predicted-RUL band) were measured on held-out validation units by the training script.
/// </summary>
public sealed class RulUncertainty
{
    private readonly double[] _bandUpper;
    private readonly double[] _sigma;

    public RulUncertainty(double bias, IReadOnlyList<double> bandUpper, IReadOnlyList<double> sigma)
    {
        ArgumentNullException.ThrowIfNull(bandUpper);
        ArgumentNullException.ThrowIfNull(sigma);
        if (bandUpper.Count != sigma.Count || sigma.Count == 0 || sigma.Any(s => !(s > 0)))
        {
            throw new ArgumentException("one positive sigma per band is required");
        }

        Bias = bias;
        _bandUpper = [.. bandUpper];
        _sigma = [.. sigma];
    }

    /// <summary>Mean of predicted − true RUL on validation.</summary>
    public double Bias { get; }

    /// <summary>Reads the output's <c>uncertainty</c> block (<c>gaussian-residual</c>).</summary>
    /// <exception cref="ModelLoadException">The block is missing or malformed.</exception>
    public static RulUncertainty FromEntry(ModelEntry entry, string manifestPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var output = entry.Outputs[0];
        var at = output.Field + ".uncertainty";
        if (output.Uncertainty is not { ValueKind: JsonValueKind.Object } u || !u.TryGetProperty("type", out var t) || t.GetString() != "gaussian-residual")
        {
            throw new ModelLoadException(manifestPath, at, "missing or not of type gaussian-residual");
        }

        try
        {
            var bands = u.GetProperty("bandUpper").EnumerateArray().Select(b => b.ValueKind == JsonValueKind.Null ? double.PositiveInfinity : b.GetDouble()).ToArray();
            var sigma = u.GetProperty("sigma").EnumerateArray().Select(s => s.GetDouble()).ToArray();
            return new RulUncertainty(u.GetProperty("bias").GetDouble(), bands, sigma);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new ModelLoadException(manifestPath, at, $"malformed: {e.Message}", e);
        }
    }

    /// <summary>The residual spread for a predicted RUL.</summary>
    public double SigmaAt(double predictedRul)
    {
        for (var i = 0; i < _bandUpper.Length; i++)
        {
            if (predictedRul <= _bandUpper[i])
            {
                return _sigma[i];
            }
        }

        return _sigma[^1];
    }

    /// <summary>P(true RUL ≤ <paramref name="horizon"/>) given the prediction: Φ((h − (pred − bias)) / σ).</summary>
    public double FailureProbability(double predictedRul, double horizon)
    {
        var mean = predictedRul - Bias;
        var z = (horizon - mean) / SigmaAt(predictedRul);
        return 0.5 * SpecialFunctions.Erfc(-z / Math.Sqrt(2));
    }
}
