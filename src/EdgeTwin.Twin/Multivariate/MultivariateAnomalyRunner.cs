using System.Diagnostics.Metrics;
using EdgeTwin.Twin.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeTwin.Twin.Multivariate;

/// <summary>
/// Scores windows of related series with one multivariate model of a <see cref="ModelCatalog"/> (one shared
/// <see cref="InferenceSession"/> per model), many groups per <see cref="Session.Run"/>. The input buffer
/// (<c>maxBatch × window × features</c> floats) and the output buffer are allocated when a model version is bound, and
/// the OrtValue views of each batch size are created once and reused, so an inference allocates nothing beyond them.
/// When the model is missing, broken or fails, <see cref="TryScore"/> returns false and the runner logs the change
/// once: the caller falls back to the streaming detector that scores every series anyway.
/// Not thread-safe: one runner per stage.
/// </summary>
public sealed partial class MultivariateAnomalyRunner : IDisposable
{
    public const string MeterName = "EdgeTwin.Twin.Multivariate";

    private readonly ModelCatalog _catalog;
    private readonly ILogger _logger;
    private readonly RunOptions _runOptions = new();
    private readonly Meter _meter;
    private readonly Counter<long> _windows;
    private readonly Counter<long> _runs;
    private readonly Counter<long> _failures;
    private LoadedModel? _model;
    private float[] _input = [];
    private float[] _output = [];
    private OrtValue?[] _inputViews = [];
    private OrtValue?[] _outputViews = [];
    private readonly OrtValue[] _inputs = new OrtValue[1];
    private readonly OrtValue[] _outputs = new OrtValue[1];
    private string[] _inputNames = [];
    private string[] _outputNames = [];
    private bool _available = true;

    public MultivariateAnomalyRunner(ModelCatalog catalog, string modelName, int maxBatch = 64, ILogger? logger = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(modelName);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        _catalog = catalog;
        ModelName = modelName;
        MaxBatch = maxBatch;
        _logger = logger ?? NullLogger.Instance;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _windows = _meter.CreateCounter<long>("edgetwin.twin.multivariate.windows", "{window}", "Windows scored by a multivariate model.");
        _runs = _meter.CreateCounter<long>("edgetwin.twin.multivariate.inferences", "{run}", "ONNX Runtime runs (one per batch).");
        _failures = _meter.CreateCounter<long>("edgetwin.twin.multivariate.fallbacks", "{call}", "Calls that fell back because the model was unavailable or failed.");
    }

    public string ModelName { get; }

    public int MaxBatch { get; }

    /// <summary>The spec of the model version bound last (null before the first successful call).</summary>
    public MultivariateModelSpec? Spec { get; private set; }

    /// <summary>The manifest entry of the model version that served the last call.</summary>
    public ModelEntry? Entry => _model?.Entry;

    /// <summary>
    /// Scores <paramref name="windows"/> (each full, with the model's window and feature count) into <paramref name="scores"/>
    /// (0.5 at the calibrated error threshold) and their raw errors into <paramref name="errors"/>. False when the model is
    /// unavailable or fails: the caller falls back.
    /// </summary>
    public bool TryScore(ReadOnlySpan<MultivariateWindow> windows, Span<double> scores, Span<double> errors)
    {
        if (scores.Length < windows.Length || errors.Length < windows.Length)
        {
            throw new ArgumentException("scores and errors need one slot per window");
        }

        for (var attempt = 0; attempt < 3; attempt++)
        {
            var model = _catalog.Get(ModelName);
            if (model is null)
            {
                return Fail(FallbackReason());
            }

            if (!model.TryAcquire())
            {
                continue; // retired between Get and lease by a reload: read the new one
            }

            try
            {
                if (!ReferenceEquals(model, _model) && Bind(model) is { } bindError)
                {
                    return Fail(bindError);
                }

                var spec = Spec!;
                var per = spec.Window * spec.Features.Count;
                for (var start = 0; start < windows.Length; start += MaxBatch)
                {
                    var n = Math.Min(MaxBatch, windows.Length - start);
                    for (var i = 0; i < n; i++)
                    {
                        var w = windows[start + i];
                        if (w.Window != spec.Window || w.Features != spec.Features.Count || !w.IsFull)
                        {
                            throw new ArgumentException($"window {start + i} is {w.Window}×{w.Features} ({(w.IsFull ? "full" : "not full")}); model {ModelName} {model.Entry.Version} takes full {spec.Window}×{spec.Features.Count} windows");
                        }

                        w.CopyNormalised(_input.AsSpan(i * per, per), spec);
                    }

                    _inputs[0] = _inputViews[n] ??= OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _input.AsMemory(0, n * per), [n, spec.Window, spec.Features.Count]);
                    _outputs[0] = _outputViews[n] ??= OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _output.AsMemory(0, n), [n, 1]);
                    model.Session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);
                    _runs.Add(1);
                    for (var i = 0; i < n; i++)
                    {
                        errors[start + i] = _output[i];
                        scores[start + i] = spec.Score(_output[i]);
                    }
                }

                _windows.Add(windows.Length);
                if (!_available)
                {
                    _available = true;
                    LogAvailable(_logger, ModelName, model.Entry.Version);
                }

                return true;
            }
            catch (OnnxRuntimeException e)
            {
                return Fail($"inference failed: {e.Message}");
            }
            finally
            {
                model.Release();
            }
        }

        return Fail("the model was swapped repeatedly during the call");
    }

    private string FallbackReason()
    {
        var status = _catalog.Status.FirstOrDefault(s => s.Name == ModelName);
        return status?.Error ?? _catalog.ManifestError ?? $"no model '{ModelName}' in {_catalog.ManifestPath}";
    }

    private bool Fail(string reason)
    {
        _failures.Add(1);
        if (_available)
        {
            _available = false;
            LogFallback(_logger, ModelName, reason);
        }

        return false;
    }

    private string? Bind(LoadedModel model)
    {
        MultivariateModelSpec spec;
        try
        {
            spec = MultivariateModelSpec.FromEntry(model.Entry, _catalog.ManifestPath);
        }
        catch (ModelLoadException e)
        {
            return e.Message;
        }

        ReleaseViews();
        _input = new float[MaxBatch * spec.Window * spec.Features.Count];
        _output = new float[MaxBatch];
        _inputViews = new OrtValue?[MaxBatch + 1];
        _outputViews = new OrtValue?[MaxBatch + 1];
        _inputNames = [spec.InputName];
        _outputNames = [spec.OutputName];
        Spec = spec;
        _model = model;
        return null;
    }

    private void ReleaseViews()
    {
        foreach (var v in _inputViews)
        {
            v?.Dispose();
        }

        foreach (var v in _outputViews)
        {
            v?.Dispose();
        }
    }

    public void Dispose()
    {
        ReleaseViews();
        _runOptions.Dispose();
        _meter.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Multivariate model {Model} unavailable, falling back to the streaming anomaly detector on the group's series: {Reason}")]
    private static partial void LogFallback(ILogger logger, string model, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Multivariate model {Model} {Version} serving again")]
    private static partial void LogAvailable(ILogger logger, string model, string version);
}
