using EdgeTwin.Twin.Models.Rul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeTwin.Twin.Models;

/// <summary>
/// Runs a one-window, one-output model of a <see cref="ModelCatalog"/> (the RUL models). Leases the catalog's current
/// model per call, so a hot reload takes effect at the next inference; input and output tensors are OrtValues over
/// buffers allocated once per bound model, so an inference allocates nothing managed beyond them.
/// Not thread-safe: one runner per caller.
/// </summary>
/// <typeparam name="TLayout">What the manifest entry says about the input (preprocessing, window).</typeparam>
public abstract class WindowModelRunner<TLayout> : IDisposable
    where TLayout : class
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

    protected WindowModelRunner(ModelCatalog catalog, string modelName, ILogger? logger, ModelsMetrics? metrics)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        _catalog = catalog;
        ModelName = modelName;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
    }

    public string ModelName { get; }

    /// <summary>Uncertainty of the model that served the last call.</summary>
    public RulUncertainty? Uncertainty { get; private set; }

    /// <summary>Manifest entry of the model that served the last call.</summary>
    public ModelEntry? Entry => _model?.Entry;

    /// <summary>Why the last bind failed (the entry's metadata does not suit this runner), or null.</summary>
    public string? BindError { get; private set; }

    /// <summary>
    /// Why no model serves this runner, for a user-facing error: the bind error, else the catalog's status error or
    /// manifest error, else that the manifest does not name the model.
    /// </summary>
    public string UnavailableReason()
    {
        if (BindError is { } bind)
        {
            return bind;
        }

        var status = _catalog.Status.FirstOrDefault(s => string.Equals(s.Name, ModelName, StringComparison.Ordinal));
        return status?.Error ?? _catalog.ManifestError ?? (status is null ? "not in the manifest" : $"{status.State}");
    }

    /// <summary>Bumped each time a different model (a hot reload) is bound.</summary>
    public int Binds { get; private set; }

    /// <summary>Input layout of the model that served the last call (null before the first).</summary>
    protected TLayout? Layout { get; private set; }

    /// <summary>Reads the input layout from a manifest entry: the layout, rows and features per row.</summary>
    /// <exception cref="ModelLoadException">The entry does not describe an input this runner understands.</exception>
    protected abstract (TLayout Layout, int Rows, int Features) DescribeInput(ModelEntry entry, string manifestPath);

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

    /// <summary>
    /// Leases the current model, lets <paramref name="fill"/> write the window into the input buffer (false: not enough
    /// data, nothing run) and runs it. False when the model is unavailable (the caller falls back).
    /// </summary>
    protected bool TryRun<TState>(TState state, Func<TLayout, TState, Span<float>, bool> fill, out float value)
    {
        ArgumentNullException.ThrowIfNull(fill);
        value = 0;
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

                if (!fill(Layout!, state, _input))
                {
                    return false;
                }

                model.Session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);
                value = _output[0];
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
            var (layout, rows, features) = DescribeInput(model.Entry, _catalog.ManifestPath);
            var uncertainty = RulUncertainty.FromEntry(model.Entry, _catalog.ManifestPath);
            ReleaseValues();
            _input = new float[rows * features];
            _inputValue = OrtValue.CreateTensorValueFromMemory(_input, [1, rows, features]);
            _outputValue = OrtValue.CreateTensorValueFromMemory(_output, [1, 1]);
            _inputNames = [model.Entry.Inputs[0].Name];
            _outputNames = [model.Entry.Outputs[0].Name];
            _inputs = [_inputValue];
            _outputs = [_outputValue];
            Layout = layout;
            Uncertainty = uncertainty;
            _model = model;
            BindError = null;
            Binds++;
            return true;
        }
        catch (ModelLoadException e)
        {
            BindError = e.Message;
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
        GC.SuppressFinalize(this);
    }
}
