using System.Text.Json;
using EdgeTwin.Twin.Models.Maintenance;
using EdgeTwin.Twin.Models.Rul;
using EdgeTwin.Twin.Multivariate;

namespace EdgeTwin.Twin.Models;

/// <summary>
/// The kind-specific part of a manifest entry (normalisation, calibration, uncertainty), checked by
/// <see cref="LoadedModel.Load"/> before the catalog swaps a version in. It calls the same parsers the runners bind
/// with, so a version that verifies is one every runner of its kind can bind, and one that does not keeps the
/// previous version serving.
/// </summary>
public static class ModelKinds
{
    /// <summary>Remaining useful life: C-MAPSS (<c>per-condition-zscore</c>) or machine health (<c>interval-means</c>).</summary>
    public const string Rul = "rul";

    /// <summary>Reconstruction error of a window of related series.</summary>
    public const string MultivariateAnomaly = "multivariate-anomaly";

    /// <summary>Checks what the runners of <paramref name="entry"/>'s kind read from it.</summary>
    /// <exception cref="ModelLoadException">Unknown kind or bad metadata, naming the manifest and the JSON path.</exception>
    public static void Verify(ModelEntry entry, string manifestPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        switch (entry.Kind)
        {
            case Rul:
                // Two runners take kind rul; the input's normalisation type says which one will bind it.
                if (NormalisationType(entry) == "interval-means")
                {
                    MachineHealthInput.FromEntry(entry, manifestPath);
                }
                else
                {
                    CmapssPreprocessor.FromEntry(entry, manifestPath);
                }

                RulUncertainty.FromEntry(entry, manifestPath);
                break;
            case MultivariateAnomaly:
                MultivariateModelSpec.FromEntry(entry, manifestPath);
                break;
            case "":
                throw new ModelLoadException(manifestPath, Join(entry.Field, "kind"), $"missing (one of {Rul}, {MultivariateAnomaly})");
            default:
                throw new ModelLoadException(manifestPath, Join(entry.Field, "kind"), $"unknown kind '{entry.Kind}' (one of {Rul}, {MultivariateAnomaly}); no runner could use model '{entry.Name}'");
        }
    }

    private static string? NormalisationType(ModelEntry entry) =>
        entry.Inputs[0].Normalisation is { ValueKind: JsonValueKind.Object } n && n.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()
            : null;

    private static string Join(string at, string key) => at.Length == 0 ? key : at + "." + key;
}
