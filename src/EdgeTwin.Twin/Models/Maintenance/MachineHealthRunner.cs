using System.Text.Json;
using EdgeTwin.Twin.Models.Rul;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Twin.Models.Maintenance;

/// <summary>How a machine-health model wants its input: the manifest input's <c>interval-means</c> normalisation.</summary>
/// <param name="Interval">Averaging interval of one window row.</param>
/// <param name="Window">Rows per window.</param>
/// <param name="MinSamples">Samples per feature an interval needs.</param>
public sealed record MachineHealthInput(TimeSpan Interval, int Window, int MinSamples)
{
    /// <summary>Feature names the model must list, in <see cref="BearingFeature"/> order.</summary>
    public static readonly IReadOnlyList<string> FeatureNames = ["vibration_rms", "vibration_kurtosis", "bearing_temperature"];

    /// <exception cref="ModelLoadException">The entry does not describe this input.</exception>
    public static MachineHealthInput FromEntry(ModelEntry entry, string manifestPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var input = entry.Inputs[0];
        var at = input.Field + ".normalisation";
        if (input.Normalisation is not { ValueKind: JsonValueKind.Object } n || !n.TryGetProperty("type", out var t) || t.GetString() != "interval-means")
        {
            throw new ModelLoadException(manifestPath, at + ".type", "the machine-health runner needs 'interval-means'");
        }

        if (!input.Features.SequenceEqual(FeatureNames, StringComparer.Ordinal))
        {
            throw new ModelLoadException(manifestPath, input.Field + ".features", $"expected [{string.Join(", ", FeatureNames)}]");
        }

        try
        {
            var interval = TimeSpan.FromSeconds(n.GetProperty("intervalSeconds").GetDouble());
            var window = n.GetProperty("window").GetInt32();
            var minSamples = n.TryGetProperty("minSamples", out var ms) ? ms.GetInt32() : 3;
            if (interval < TimeSpan.FromSeconds(1) || window is < 1 or > 1024)
            {
                throw new ModelLoadException(manifestPath, at, "intervalSeconds ≥ 1 and window 1..1024 are required");
            }

            if (input.Shape.Count != 3 || input.Shape[1] != window || input.Shape[2] != FeatureNames.Count)
            {
                throw new ModelLoadException(manifestPath, input.Field + ".shape", $"{input.ShapeText} does not match window {window} × {FeatureNames.Count} features");
            }

            return new MachineHealthInput(interval, window, minSamples);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ModelLoadException(manifestPath, at, $"malformed: {e.Message}", e);
        }
    }
}

/// <summary>
/// Runs the machine-health RUL model (RUL in hours from a window of interval means) of a <see cref="ModelCatalog"/>.
/// Leases the catalog's current model per call, so a hot reload takes effect at the next inference; tensors are
/// OrtValues over buffers allocated once per model. Not thread-safe: one runner per caller.
/// </summary>
public sealed class MachineHealthRunner(ModelCatalog catalog, string modelName, ILogger? logger = null, ModelsMetrics? metrics = null)
    : WindowModelRunner<MachineHealthInput>(catalog, modelName, logger, metrics)
{
    /// <summary>Input layout of the model that served the last call (null before the first).</summary>
    public MachineHealthInput? Input => Layout;

    /// <summary>Runs the model on the window <paramref name="window"/> writes; false when unavailable or not enough data.</summary>
    public bool TryPredict(BearingFeatureWindow window, out float rulHours)
    {
        ArgumentNullException.ThrowIfNull(window);
        var ran = TryRun(window, static (input, w, buffer) => w.Fill(input.Window, buffer), out rulHours);
        rulHours = Math.Max(0f, rulHours);
        return ran;
    }

    protected override (MachineHealthInput Layout, int Rows, int Features) DescribeInput(ModelEntry entry, string manifestPath)
    {
        var input = MachineHealthInput.FromEntry(entry, manifestPath);
        return (input, input.Window, BearingFeatureWindow.Features);
    }
}
