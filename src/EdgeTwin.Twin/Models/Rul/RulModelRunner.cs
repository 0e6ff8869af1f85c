using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeTwin.Twin.Models.Rul;

/// <summary>
/// Runs a RUL model of a <see cref="ModelCatalog"/> on one window at a time. Input and output tensors are
/// OrtValues over buffers allocated once (rebuilt only when a hot reload swaps the model), so an inference
/// allocates nothing managed beyond them. Not thread-safe: one runner per caller thread.
/// </summary>
public sealed class RulModelRunner : IDisposable
{
    private readonly ModelCatalog _catalog;
    private readonly ILogger _logger;
    private readonly ModelsMetrics? _metrics;
    private readonly RunOptions _runOptions = new();
    private LoadedModel? _model;
    private float[] _input = [];
    private readonly float[] _output = new float[1];
    private OrtValue? _inputValue;
    private OrtValue? _outputValue;
    private string[] _inputNames = [];
    private string[] _outputNames = [];
    private OrtValue[] _inputs = [];
    private OrtValue[] _outputs = [];

    public RulModelRunner(ModelCatalog catalog, string modelName, ILogger? logger = null, ModelsMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        _catalog = catalog;
        ModelName = modelName;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
    }

    public string ModelName { get; }

    /// <summary>Preprocessing of the model that served the last call (null before the first).</summary>
    public CmapssPreprocessor? Preprocessor { get; private set; }

    /// <summary>Uncertainty of the model that served the last call.</summary>
    public RulUncertainty? Uncertainty { get; private set; }

    /// <summary>Manifest entry of the model that served the last call.</summary>
    public ModelEntry? Entry => _model?.Entry;

    /// <summary>Largest RUL the model gives (its training cap).</summary>
    public double Cap => _model?.Entry.Outputs[0].Cap ?? double.PositiveInfinity;

    /// <summary>
    /// Leases the current model, lets <paramref name="fill"/> write the window into the input buffer with the
    /// model's preprocessor, and runs it. False when the model is unavailable (the caller falls back).
    /// </summary>
    public bool TryPredict<TState>(TState state, Action<CmapssPreprocessor, TState, Span<float>> fill, out float rul)
    {
        ArgumentNullException.ThrowIfNull(fill);
        rul = 0;
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
                continue; // retired between Get and lease: a reload just swapped it; read the new one
            }

            try
            {
                if (!ReferenceEquals(model, _model) && !Bind(model))
                {
                    _metrics?.InferenceFailures.Add(1);
                    return false;
                }

                fill(Preprocessor!, state, _input);
                model.Session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);
                rul = Math.Max(0f, _output[0]);
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

    /// <summary>Predicts from a unit's rows so far (oldest first, 26 C-MAPSS columns each).</summary>
    public bool TryPredict(IReadOnlyList<double[]> history, out float rul) =>
        TryPredict(history, static (p, h, window) => p.FillWindow(h, window), out rul);

    private bool Bind(LoadedModel model)
    {
        try
        {
            var pre = CmapssPreprocessor.FromEntry(model.Entry, _catalog.ManifestPath);
            var unc = RulUncertainty.FromEntry(model.Entry, _catalog.ManifestPath);
            ReleaseValues();
            _input = new float[pre.Window * pre.Features];
            _inputValue = OrtValue.CreateTensorValueFromMemory(_input, [1, pre.Window, pre.Features]);
            _outputValue = OrtValue.CreateTensorValueFromMemory(_output, [1, 1]);
            _inputNames = [model.Entry.Inputs[0].Name];
            _outputNames = [model.Entry.Outputs[0].Name];
            _inputs = [_inputValue];
            _outputs = [_outputValue];
            Preprocessor = pre;
            Uncertainty = unc;
            _model = model;
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
