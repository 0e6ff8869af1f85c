using System.Diagnostics.Metrics;

namespace EdgeTwin.Twin.Models;

/// <summary>Instruments of the model runtime (meter <c>EdgeTwin.Models</c>).</summary>
public sealed class ModelsMetrics : IDisposable
{
    public const string MeterName = "EdgeTwin.Models";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public ModelsMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _ownsMeter = meterFactory is null;
        Loads = _meter.CreateCounter<long>("edgetwin.models.loads", "{model}", "Model versions verified and put into service.");
        LoadFailures = _meter.CreateCounter<long>("edgetwin.models.load_failures", "{failure}", "Manifests or model files that failed verification.");
        Inferences = _meter.CreateCounter<long>("edgetwin.models.inferences", "{inference}", "Model runs.");
        InferenceFailures = _meter.CreateCounter<long>("edgetwin.models.inference_failures", "{failure}", "Model runs that failed or had no model to run.");
        Predictions = _meter.CreateCounter<long>("edgetwin.models.maintenance_predictions", "{event}", "Maintenance predictions emitted.");
    }

    public Counter<long> Loads { get; }

    public Counter<long> LoadFailures { get; }

    public Counter<long> Inferences { get; }

    public Counter<long> InferenceFailures { get; }

    public Counter<long> Predictions { get; }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
