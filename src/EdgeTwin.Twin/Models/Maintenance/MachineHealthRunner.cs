using System.Text.Json;
using EdgeTwin.Twin.Models.Rul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

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
public sealed class MachineHealthRunner : IDisposable
{
    private readonly ModelCatalog _catalog;
    private readonly ILogger _logger;
    private readonly ModelsMetrics? _metrics;
    private readonly RunOptions _runOptions = new();
    private readonly float[] _output = new float[1];
    private LoadedModel? _model;
    private float[] _input = [];
    private OrtValue? _inputValue;
    private OrtValue? _outputValue;
    private string[] _inputNames = [];
    private string[] _outputNames = [];
    private OrtValue[] _inputs = [];
    private OrtValue[] _outputs = [];

    public MachineHealthRunner(ModelCatalog catalog, string modelName, ILogger? logger = null, ModelsMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        _catalog = catalog;
        ModelName = modelName;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
    }

    public string ModelName { get; }

    /// <summary>Input layout of the model that served the last call (null before the first).</summary>
    public MachineHealthInput? Input { get; private set; }

    public RulUncertainty? Uncertainty { get; private set; }

    public ModelEntry? Entry => _model?.Entry;

    /// <summary>Bumped each time a different model (a hot reload) is bound.</summary>
    public int Binds { get; private set; }

    /// <summary>
    /// Binds the current model when it changed (true when one is available), without running it: lets the
    /// caller size its feature windows before the first inference.
    /// </summary>
    public bool Refresh()
    {
        var model = _catalog.Get(ModelName);
        if (model is null || !model.TryAcquire())
        {
            return _model is not null && model is not null;
        }

        try
        {
            return ReferenceEquals(model, _model) || Bind(model);
        }
        finally
        {
            model.Release();
        }
    }

    /// <summary>Runs the model on the window <paramref name="window"/> writes; false when unavailable.</summary>
    public bool TryPredict(BearingFeatureWindow window, out float rulHours)
    {
        ArgumentNullException.ThrowIfNull(window);
        rulHours = 0;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var model = _catalog.Get(ModelName);
            if (model is null)
            {
                _metrics?.InferenceFailures.Add(1);
                return false;
            }

            if (!model.TryAcquire())
            {
                continue; // retired by a reload between Get and the lease
            }

            try
            {
                if (!ReferenceEquals(model, _model) && !Bind(model))
                {
                    _metrics?.InferenceFailures.Add(1);
                    return false;
                }

                if (!window.Fill(Input!.Window, _input))
                {
                    return false;
                }

                model.Session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);
                rulHours = Math.Max(0f, _output[0]);
                _metrics?.Inferences.Add(1);
                return true;
            }
            catch (OnnxRuntimeException e)
            {
                ModelsLog.InferenceFailed(_logger, ModelName, e);
                _metrics?.InferenceFailures.Add(1);
                return false;
            }
            finally
            {
                model.Release();
            }
        }

        return false;
    }

    private bool Bind(LoadedModel model)
    {
        try
        {
            var input = MachineHealthInput.FromEntry(model.Entry, _catalog.ManifestPath);
            var uncertainty = RulUncertainty.FromEntry(model.Entry, _catalog.ManifestPath);
            ReleaseValues();
            _input = new float[input.Window * BearingFeatureWindow.Features];
            _inputValue = OrtValue.CreateTensorValueFromMemory(_input, [1, input.Window, BearingFeatureWindow.Features]);
            _outputValue = OrtValue.CreateTensorValueFromMemory(_output, [1, 1]);
            _inputNames = [model.Entry.Inputs[0].Name];
            _outputNames = [model.Entry.Outputs[0].Name];
            _inputs = [_inputValue];
            _outputs = [_outputValue];
            Input = input;
            Uncertainty = uncertainty;
            _model = model;
            Binds++;
            return true;
        }
        catch (ModelLoadException e)
        {
            ModelsLog.InferenceFailed(_logger, ModelName, e);
            return false;
        }
    }

    private void ReleaseValues()
    {
        _inputValue?.Dispose();
        _outputValue?.Dispose();
        _inputValue = null;
        _outputValue = null;
    }

    public void Dispose()
    {
        ReleaseValues();
        _runOptions.Dispose();
    }
}
