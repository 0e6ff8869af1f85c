using System.Text.Json;
using EdgeTwin.Twin.Models;

namespace EdgeTwin.Twin.Multivariate;

/// <summary>
/// What the runtime needs from a multivariate model's manifest entry: window length, features, z-score normalisation
/// and the calibrated error threshold (<c>outputs[0].calibration.threshold</c>).
/// </summary>
public sealed record MultivariateModelSpec(string InputName, string OutputName, int Window, IReadOnlyList<string> Features, IReadOnlyList<string> Units, float[] Mean, float[] Std, double Threshold)
{
    /// <exception cref="ModelLoadException">A field is missing or inconsistent (names the manifest and the JSON path).</exception>
    public static MultivariateModelSpec FromEntry(ModelEntry entry, string manifestPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var input = entry.Inputs[0];
        var at = input.Field;
        if (input.Shape.Count != 3 || input.Shape[0] != -1 || input.Shape[1] < 2 || input.Shape[2] < 1)
        {
            throw new ModelLoadException(manifestPath, at + ".shape", $"expected [-1, window, features], got {input.ShapeText}");
        }

        var window = (int)input.Shape[1];
        var features = (int)input.Shape[2];
        if (input.Features.Count != features)
        {
            throw new ModelLoadException(manifestPath, at + ".features", $"lists {input.Features.Count} features, the shape has {features}");
        }

        if (input.Normalisation is not { ValueKind: JsonValueKind.Object } n || !n.TryGetProperty("type", out var type) || type.GetString() != "zscore")
        {
            throw new ModelLoadException(manifestPath, at + ".normalisation", "expected { \"type\": \"zscore\", \"mean\": […], \"std\": […] }");
        }

        // Optional, but when written it must agree with the shape the session takes.
        if (n.TryGetProperty("window", out var w) && !(w.ValueKind == JsonValueKind.Number && w.TryGetInt32(out var declared) && declared == window))
        {
            throw new ModelLoadException(manifestPath, at + ".normalisation.window", $"{w.GetRawText()} does not match the shape's window {window} ({input.ShapeText})");
        }

        var mean = Floats(n, "mean", features, manifestPath, at + ".normalisation");
        var std = Floats(n, "std", features, manifestPath, at + ".normalisation");
        if (std.Any(s => !(s > 0)))
        {
            throw new ModelLoadException(manifestPath, at + ".normalisation.std", "every std must be > 0");
        }

        var output = entry.Outputs[0];
        if (output.Shape.Count != 2 || output.Shape[0] != -1 || output.Shape[1] != 1)
        {
            throw new ModelLoadException(manifestPath, output.Field + ".shape", $"expected [-1, 1] (one error per window), got {output.ShapeText}");
        }

        // The calibration block is specific to this kind of model: read it from the entry's own JSON.
        using var doc = JsonDocument.Parse(entry.RawJson);
        var threshold = doc.RootElement.TryGetProperty("outputs", out var outs) && outs.ValueKind == JsonValueKind.Array && outs.GetArrayLength() > 0
            && outs[0].TryGetProperty("calibration", out var cal) && cal.TryGetProperty("threshold", out var t) && t.ValueKind == JsonValueKind.Number
            ? t.GetDouble()
            : throw new ModelLoadException(manifestPath, output.Field + ".calibration.threshold", "missing (the calibrated reconstruction error of normal windows)");
        if (!(threshold > 0) || !double.IsFinite(threshold))
        {
            throw new ModelLoadException(manifestPath, output.Field + ".calibration.threshold", "must be a positive number");
        }

        return new MultivariateModelSpec(input.Name, output.Name, window, input.Features, input.Units, mean, std, threshold);
    }

    /// <summary>Score in [0, 1] from a window's reconstruction error: 0.5 at the calibrated threshold, towards 1 above.</summary>
    public double Score(double error) => double.IsFinite(error) && error > 0 ? 1.0 - Math.Pow(2.0, -error / Threshold) : 0.0;

    private static float[] Floats(JsonElement o, string key, int count, string path, string at)
    {
        if (!o.TryGetProperty(key, out var a) || a.ValueKind != JsonValueKind.Array || a.GetArrayLength() != count)
        {
            throw new ModelLoadException(path, $"{at}.{key}", $"must be an array of {count} numbers");
        }

        var result = new float[count];
        var i = 0;
        foreach (var v in a.EnumerateArray())
        {
            result[i++] = v.ValueKind == JsonValueKind.Number ? v.GetSingle() : throw new ModelLoadException(path, $"{at}.{key}[{i - 1}]", "must be a number");
        }

        return result;
    }
}
