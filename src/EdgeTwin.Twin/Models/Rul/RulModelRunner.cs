using Microsoft.Extensions.Logging;

namespace EdgeTwin.Twin.Models.Rul;

/// <summary>
/// Runs a RUL model of a <see cref="ModelCatalog"/> on one window at a time. Input and output tensors are
/// OrtValues over buffers allocated once (rebuilt only when a hot reload swaps the model), so an inference
/// allocates nothing managed beyond them. Not thread-safe: one runner per caller thread.
/// </summary>
public sealed class RulModelRunner(ModelCatalog catalog, string modelName, ILogger? logger = null, ModelsMetrics? metrics = null)
    : WindowModelRunner<CmapssPreprocessor>(catalog, modelName, logger, metrics)
{
    /// <summary>Preprocessing of the model that served the last call (null before the first).</summary>
    public CmapssPreprocessor? Preprocessor => Layout;

    /// <summary>Largest RUL the model gives (its training cap).</summary>
    public double Cap => Entry?.Outputs[0].Cap ?? double.PositiveInfinity;

    /// <summary>
    /// Leases the current model, lets <paramref name="fill"/> write the window into the input buffer with the
    /// model's preprocessor, and runs it. False when the model is unavailable (the caller falls back).
    /// </summary>
    public bool TryPredict<TState>(TState state, Action<CmapssPreprocessor, TState, Span<float>> fill, out float rul)
    {
        ArgumentNullException.ThrowIfNull(fill);
        var ran = TryRun((fill, state), static (pre, s, window) =>
        {
            s.fill(pre, s.state, window);
            return true;
        }, out rul);
        rul = Math.Max(0f, rul);
        return ran;
    }

    /// <summary>Predicts from a unit's rows so far (oldest first, 26 C-MAPSS columns each).</summary>
    public bool TryPredict(IReadOnlyList<double[]> history, out float rul) =>
        TryPredict(history, static (p, h, window) => p.FillWindow(h, window), out rul);

    protected override (CmapssPreprocessor Layout, int Rows, int Features) DescribeInput(ModelEntry entry, string manifestPath)
    {
        var pre = CmapssPreprocessor.FromEntry(entry, manifestPath);
        return (pre, pre.Window, pre.Features);
    }
}
