using System.Diagnostics.Metrics;

namespace EdgeTwin.Agent.Hosting;

/// <summary>The agent's own instruments (meter <c>EdgeTwin.Agent</c>); scheduler and pipeline have their own meters.</summary>
public sealed class AgentMetrics
{
    public const string MeterName = "EdgeTwin.Agent";

    private readonly Lock _rateLock = new();
    private long _lastSamples;
    private long _lastTimestamp;
    private double _lastRate;

    public AgentMetrics(IMeterFactory meterFactory, AgentRuntime runtime, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        Runtime = runtime;
        Time = timeProvider;
        PushRestarts = meter.CreateCounter<long>("edgetwin.push.restarts", "{restart}", "Push sources restarted after a failure.");
        meter.CreateObservableGauge("edgetwin.samples.rate", SamplesPerSecond, "{sample}/s", "Samples per second into the pipeline since the last observation.");
        meter.CreateObservableGauge("edgetwin.devices", () => runtime.Devices.Count, "{device}", "Devices the agent reads.");
        meter.CreateObservableCounter("edgetwin.uptime", () => runtime.Uptime.TotalSeconds, "s", "Time since the agent started.");
    }

    public Counter<long> PushRestarts { get; }

    private AgentRuntime Runtime { get; }

    private TimeProvider Time { get; }

    /// <summary>Samples per second since the previous call (the first call measures since start).</summary>
    public double SamplesPerSecond()
    {
        var pipeline = Runtime.Pipeline;
        if (pipeline is null)
        {
            return 0;
        }

        lock (_rateLock)
        {
            var now = Time.GetTimestamp();
            var total = pipeline.TotalSamples;
            if (_lastTimestamp == 0)
            {
                _lastTimestamp = Runtime.StartedTimestamp;
            }

            var seconds = Time.GetElapsedTime(_lastTimestamp, now).TotalSeconds;
            if (seconds >= 0.5)
            {
                _lastRate = (total - _lastSamples) / seconds;
                _lastSamples = total;
                _lastTimestamp = now;
            }

            return _lastRate;
        }
    }
}
