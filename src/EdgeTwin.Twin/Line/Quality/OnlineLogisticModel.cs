using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeTwin.Twin.Line.Quality;

/// <summary>
/// The quality model's file format "edgetwin-online-logistic/1" (written by models/secom/train_base.py,
/// described in models/secom/MODEL_CARD.md).
/// </summary>
public sealed class OnlineLogisticFile
{
    [JsonPropertyName("format")] public string Format { get; set; } = "";
    [JsonPropertyName("input_width")] public int InputWidth { get; set; }
    [JsonPropertyName("columns")] public int[] Columns { get; set; } = [];
    [JsonPropertyName("medians")] public double[] Medians { get; set; } = [];
    [JsonPropertyName("means")] public double[] Means { get; set; } = [];
    [JsonPropertyName("stds")] public double[] Stds { get; set; } = [];
    [JsonPropertyName("clip")] public double Clip { get; set; } = 5;
    [JsonPropertyName("weights")] public double[] Weights { get; set; } = [];
    [JsonPropertyName("bias")] public double Bias { get; set; }
    [JsonPropertyName("learning_rate")] public double LearningRate { get; set; }
    [JsonPropertyName("l2")] public double L2 { get; set; }
    [JsonPropertyName("weight_fail")] public double WeightFail { get; set; } = 1;
    [JsonPropertyName("weight_pass")] public double WeightPass { get; set; } = 1;
}

/// <summary>
/// Online logistic model of "this part/run fails inspection" from its process values: a base model trained
/// offline, then one stochastic-gradient step per inspection result (test-then-train), so it follows drift.
/// Preprocessing is frozen from training (median for missing values, z-score, clip). Predict and Learn
/// do not allocate.
/// </summary>
public sealed class OnlineLogisticModel
{
    public const string FormatName = "edgetwin-online-logistic/1";

    private readonly OnlineLogisticFile _f;
    private readonly double[] _w;
    private double _b;

    public OnlineLogisticModel(OnlineLogisticFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Format != FormatName) throw new InvalidDataException($"quality model format '{file.Format}', expected '{FormatName}'");
        int k = file.Columns.Length;
        if (k == 0 || file.Medians.Length != k || file.Means.Length != k || file.Stds.Length != k || file.Weights.Length != k)
            throw new InvalidDataException($"quality model: columns, medians, means, stds and weights must all have the same length ({k})");
        foreach (var c in file.Columns)
            if (c < 0 || c >= file.InputWidth) throw new InvalidDataException($"quality model: column {c} outside the input width {file.InputWidth}");
        _f = file;
        _w = (double[])file.Weights.Clone();
        _b = file.Bias;
    }

    public static OnlineLogisticModel Load(string path)
    {
        using var s = File.OpenRead(path);
        var f = JsonSerializer.Deserialize<OnlineLogisticFile>(s) ?? throw new InvalidDataException($"{path}: empty quality model");
        try
        {
            return new OnlineLogisticModel(f);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    public int InputWidth => _f.InputWidth;

    private double Feature(ReadOnlySpan<double> raw, int j)
    {
        double v = raw[_f.Columns[j]];
        if (double.IsNaN(v)) v = _f.Medians[j];
        return Math.Clamp((v - _f.Means[j]) / _f.Stds[j], -_f.Clip, _f.Clip);
    }

    private double Score(ReadOnlySpan<double> raw)
    {
        double s = _b;
        for (int j = 0; j < _w.Length; j++) s += _w[j] * Feature(raw, j);
        return s;
    }

    /// <summary>Probability that the run fails inspection.</summary>
    public double Predict(ReadOnlySpan<double> raw)
    {
        if (raw.Length < _f.InputWidth) throw new ArgumentException($"expected {_f.InputWidth} values, got {raw.Length}", nameof(raw));
        return 1 / (1 + Math.Exp(-Score(raw)));
    }

    /// <summary>One class-weighted SGD step on an inspection result.</summary>
    public void Learn(ReadOnlySpan<double> raw, bool failed)
    {
        if (raw.Length < _f.InputWidth) throw new ArgumentException($"expected {_f.InputWidth} values, got {raw.Length}", nameof(raw));
        if (_f.LearningRate <= 0) return;
        double p = 1 / (1 + Math.Exp(-Score(raw)));
        double g = (p - (failed ? 1 : 0)) * (failed ? _f.WeightFail : _f.WeightPass);
        for (int j = 0; j < _w.Length; j++) _w[j] -= _f.LearningRate * (g * Feature(raw, j) + _f.L2 * _w[j]);
        _b -= _f.LearningRate * g;
    }
}
