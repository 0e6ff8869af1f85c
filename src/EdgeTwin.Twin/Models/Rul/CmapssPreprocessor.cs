using System.Globalization;
using System.Text.Json;

namespace EdgeTwin.Twin.Models.Rul;

/// <summary>
/// The C-MAPSS RUL model's preprocessing, identical to models/rul/cmapss_common.py (<c>features</c>,
/// <c>last_window</c>): each cycle's operating condition is the nearest centroid of the three settings (scaled),
/// the selected sensors are z-scored with that condition's mean and std, a last column is cycle/cycleScale, and
/// the window is the last <see cref="Window"/> rows, padded at the front by repeating the first row.
/// Optional columns after <c>cycle</c>, named <c>inCondition&lt;k&gt;</c>: 1 when the row's operating condition is
/// k, else 0 (for a gated model that sends a window all in the sea-level condition to a single-condition
/// specialist, the gate inside the ONNX graph; tried before 1.4.0 and not shipped: models/rul/selection-1.4.0.md, up to addendum 4).
/// Parameters come from the manifest entry's input normalisation (<c>per-condition-zscore</c>).
/// </summary>
public sealed class CmapssPreprocessor
{
    /// <summary>Columns of a C-MAPSS row: unit, cycle, three settings, 21 sensors.</summary>
    public const int RowColumns = 26;

    private readonly double[] _settingScale;
    private readonly double[][] _conditions;
    private readonly double[][] _mean;
    private readonly double[][] _std;
    private readonly int[] _sensorColumns;
    private readonly double _cycleScale;
    private readonly int[] _indicatorConditions;

    private CmapssPreprocessor(double[] settingScale, double[][] conditions, double[][] mean, double[][] std, int[] sensorColumns, double cycleScale, int[] indicatorConditions, int window)
    {
        _indicatorConditions = indicatorConditions;
        _settingScale = settingScale;
        _conditions = conditions;
        _mean = mean;
        _std = std;
        _sensorColumns = sensorColumns;
        _cycleScale = cycleScale;
        Window = window;
    }

    /// <summary>Cycles per window.</summary>
    public int Window { get; }

    /// <summary>Features per cycle: the sensors, the cycle column, then the condition indicators (if any).</summary>
    public int Features => _sensorColumns.Length + 1 + _indicatorConditions.Length;

    /// <summary>Sensor columns (the first <see cref="Sensors"/> features, z-scored).</summary>
    public int Sensors => _sensorColumns.Length;

    /// <summary>Builds the preprocessor from a manifest entry; errors name the manifest field.</summary>
    /// <exception cref="ModelLoadException">The entry's input does not describe this preprocessing.</exception>
    public static CmapssPreprocessor FromEntry(ModelEntry entry, string manifestPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var input = entry.Inputs[0];
        var at = input.Field + ".normalisation";
        if (input.Normalisation is not { ValueKind: JsonValueKind.Object } n)
        {
            throw new ModelLoadException(manifestPath, at, "missing");
        }

        var type = n.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "per-condition-zscore")
        {
            throw new ModelLoadException(manifestPath, at + ".type", $"'{type}' is not supported by the RUL runner (per-condition-zscore)");
        }

        try
        {
            var scale = Vector(n, "settingScale");
            var conditions = Matrix(n, "conditions");
            var mean = Matrix(n, "mean");
            var std = Matrix(n, "std");
            var window = n.GetProperty("window").GetInt32();
            var cycleScale = n.GetProperty("cycleScale").GetDouble();
            var features = input.Features;
            var cycleAt = -1;
            for (var i = 0; i < features.Count; i++)
            {
                if (features[i] == "cycle")
                {
                    cycleAt = i;
                    break;
                }
            }

            if (cycleAt < 1)
            {
                throw new ModelLoadException(manifestPath, input.Field + ".features", "expected sensorN names followed by 'cycle' (then optional inCondition<k>)");
            }

            var indicators = new int[features.Count - cycleAt - 1];
            for (var i = 0; i < indicators.Length; i++)
            {
                var name = features[cycleAt + 1 + i];
                if (!name.StartsWith("inCondition", StringComparison.Ordinal) || !int.TryParse(name.AsSpan(11), NumberStyles.None, CultureInfo.InvariantCulture, out var k) || k >= conditions.Length)
                {
                    throw new ModelLoadException(manifestPath, $"{input.Field}.features[{cycleAt + 1 + i}]", $"'{name}' is not inCondition<k> with k < {conditions.Length} (after 'cycle' only condition indicators may follow)");
                }

                indicators[i] = k;
            }

            var columns = new int[cycleAt];
            for (var i = 0; i < columns.Length; i++)
            {
                if (!features[i].StartsWith("sensor", StringComparison.Ordinal) || !int.TryParse(features[i].AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out var s) || s is < 1 or > 21)
                {
                    throw new ModelLoadException(manifestPath, $"{input.Field}.features[{i}]", $"'{features[i]}' is not sensor1..sensor21");
                }

                columns[i] = 4 + s; // unit, cycle, 3 settings, then sensor1 at column 5
            }

            if (scale.Length != 3 || conditions.Any(c => c.Length != 3) || mean.Length != conditions.Length || std.Length != conditions.Length
                || mean.Any(m => m.Length != columns.Length) || std.Any(s => s.Length != columns.Length || s.Any(v => v <= 0)))
            {
                throw new ModelLoadException(manifestPath, at, $"sizes do not agree: {conditions.Length} conditions of 3 settings, mean/std of {columns.Length} sensors each, std > 0");
            }

            if (input.Shape.Count != 3 || input.Shape[1] != window || input.Shape[2] != features.Count)
            {
                throw new ModelLoadException(manifestPath, input.Field + ".shape", $"{input.ShapeText} does not match window {window} × {features.Count} features");
            }

            return new CmapssPreprocessor(scale, conditions, mean, std, columns, cycleScale, indicators, window);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ModelLoadException(manifestPath, at, $"malformed: {e.Message}", e);
        }
    }

    /// <summary>The operating condition (index of the nearest centroid) of a row.</summary>
    public int ConditionOf(ReadOnlySpan<double> row)
    {
        var best = 0;
        var bestD = double.PositiveInfinity;
        for (var k = 0; k < _conditions.Length; k++)
        {
            var d = 0.0;
            for (var j = 0; j < 3; j++)
            {
                var x = (row[2 + j] - _conditions[k][j]) / _settingScale[j];
                d += x * x;
            }

            if (d < bestD)
            {
                bestD = d;
                best = k;
            }
        }

        return best;
    }

    /// <summary>Writes one row's features (<see cref="Features"/> values) to <paramref name="destination"/>.</summary>
    public void FeaturesOf(ReadOnlySpan<double> row, Span<float> destination)
    {
        if (row.Length < RowColumns)
        {
            throw new ArgumentException($"a C-MAPSS row has {RowColumns} columns, got {row.Length}", nameof(row));
        }

        var c = ConditionOf(row);
        var mean = _mean[c];
        var std = _std[c];
        for (var i = 0; i < _sensorColumns.Length; i++)
        {
            destination[i] = (float)((row[_sensorColumns[i]] - mean[i]) / std[i]);
        }

        destination[_sensorColumns.Length] = (float)(row[1] / _cycleScale);
        for (var i = 0; i < _indicatorConditions.Length; i++)
        {
            destination[_sensorColumns.Length + 1 + i] = c == _indicatorConditions[i] ? 1f : 0f;
        }
    }

    /// <summary>
    /// Fills <paramref name="window"/> (<see cref="Window"/> × <see cref="Features"/>, row-major) from a unit's
    /// history so far, oldest first: the last <see cref="Window"/> rows, padded by repeating the first row.
    /// </summary>
    public void FillWindow(IReadOnlyList<double[]> history, Span<float> window)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Count == 0)
        {
            throw new ArgumentException("a unit needs at least one cycle", nameof(history));
        }

        var f = Features;
        if (window.Length != Window * f)
        {
            throw new ArgumentException($"window buffer must hold {Window * f} values", nameof(window));
        }

        var start = Math.Max(0, history.Count - Window);
        var pad = Window - (history.Count - start);
        for (var i = 0; i < Window; i++)
        {
            var row = i < pad ? history[0] : history[start + i - pad];
            FeaturesOf(row, window.Slice(i * f, f));
        }
    }

    private static double[] Vector(JsonElement n, string key) =>
        [.. n.GetProperty(key).EnumerateArray().Select(v => v.GetDouble())];

    private static double[][] Matrix(JsonElement n, string key) =>
        [.. n.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray())];
}
