using System.Diagnostics.Metrics;
using System.Globalization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Anomaly;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin;

/// <summary>
/// Runs one <see cref="StreamingAnomalyDetector"/> per numeric series (gauges, and counters on their rate; state series are
/// skipped) and publishes one <see cref="EdgeEventKind.Anomaly"/> event per episode: when a series' score reaches its
/// threshold, and not again until the score has stayed below half the threshold for <c>quiet_samples</c> samples.
/// Detectors live in an array indexed by the interned <see cref="SeriesId"/> (capacity <c>max_series</c>), created on a
/// series' first sample; scoring a sample allocates nothing.
/// </summary>
public sealed partial class AnomalyStage : ISampleStage, IDisposable
{
    public const string ModelName = "streaming-anomaly";
    public const string MeterName = "EdgeTwin.Twin.Anomaly";

    /// <summary>Version of the detector's algorithm; bumped when scores change meaning.</summary>
    public const string ModelVersion = "1.0";

    private readonly AgentRuntime _runtime;
    private readonly AnomalyConfig _config;
    private readonly ILogger<AnomalyStage> _logger;
    private readonly SeriesState?[] _series;
    private readonly Meter _meter;
    private readonly Counter<long> _scored;
    private readonly Counter<long> _episodes;
    private int _tracked;
    private bool _capacityWarned;

    public AnomalyStage(AgentRuntime runtime, AnomalyConfig config, ILogger<AnomalyStage> logger, IMeterFactory? meterFactory = null)
    {
        _runtime = runtime;
        _config = config;
        _logger = logger;
        _series = new SeriesState?[config.MaxSeries];
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _scored = _meter.CreateCounter<long>("edgetwin.twin.anomaly.samples", "{sample}", "Samples scored by the streaming anomaly detector.");
        _episodes = _meter.CreateCounter<long>("edgetwin.twin.anomaly.episodes", "{episode}", "Anomaly episodes opened (one event each).");
        _meter.CreateObservableGauge("edgetwin.twin.anomaly.series", () => Volatile.Read(ref _tracked), "{series}", "Series with a detector.");

        // `check` cannot know every series (profiles decide them, SNMP tables add rows at run time); once every source is
        // built they are registered, so a glob that matches none of them is most likely a typo: say so once.
        if (config.Enabled && config.Overrides.Count > 0)
        {
            runtime.Started.ContinueWith(static (_, state) => ((AnomalyStage)state!).WarnUnmatchedOverrides(), this, CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    public string Name => "anomaly";

    /// <summary>The last score of a series (NaN when it has no detector), for tests and status views.</summary>
    public double LastScore(SeriesId id) => id.Value >= 0 && id.Value < _series.Length && _series[id.Value] is { } s ? s.LastScore : double.NaN;

    /// <summary>Samples a series' detector has learned (0 when it has none).</summary>
    public long SamplesSeen(SeriesId id) => id.Value >= 0 && id.Value < _series.Length && _series[id.Value] is { } s ? s.Detector.Count : 0;

    public async ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (!_config.Enabled)
        {
            return;
        }

        var scored = 0;
        for (var i = 0; i < samples.Length; i++)
        {
            var sample = samples.Span[i];
            if (!sample.IsGood || sample.Series.IsNone || State(sample.Series) is not { } state)
            {
                continue;
            }

            var score = state.Detector.Update(sample.TimestampUnixMs, sample.Value);
            state.LastScore = score;
            scored++;
            if (state.Step(score, _config.QuietSamplesToClose))
            {
                await PublishAsync(state, sample, score, cancellationToken).ConfigureAwait(false);
            }
        }

        if (scored > 0)
        {
            _scored.Add(scored);
        }
    }

    private SeriesState? State(SeriesId id)
    {
        if (id.Value >= _series.Length)
        {
            if (!_capacityWarned)
            {
                _capacityWarned = true;
                LogCapacity(_logger, _series.Length);
            }

            return null;
        }

        if (_series[id.Value] is { } existing)
        {
            return existing.Skip ? null : existing;
        }

        var descriptor = _runtime.Registry[id];
        var options = _config.OptionsFor(descriptor);
        var created = new SeriesState(descriptor, new StreamingAnomalyDetector(options), descriptor.Kind == MetricKind.State);
        _series[id.Value] = created;
        Interlocked.Increment(ref _tracked);
        return created.Skip ? null : created;
    }

    private async ValueTask PublishAsync(SeriesState state, Sample sample, double score, CancellationToken cancellationToken)
    {
        _episodes.Add(1);
        var key = state.Descriptor.Key;
        var scoreText = score.ToString("F3", CultureInfo.InvariantCulture);
        LogAnomaly(_logger, key, scoreText, sample.Value);
        if (_runtime.Events is not { } events)
        {
            return;
        }

        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["score"] = scoreText,
            ["series"] = key,
            ["device"] = state.Descriptor.DeviceId,
            ["metric"] = state.Descriptor.Metric,
            ["value"] = WireNumber.Format(sample.Value),
            ["unit"] = state.Descriptor.Unit,
            ["threshold"] = WireNumber.Format(state.Detector.Options.Threshold),
            ["model"] = ModelName,
            ["version"] = ModelVersion,
        };
        var severity = AnomalyEpisode.Severity(score, state.Detector.Options.Threshold);
        await events.PublishAsync(
            new EdgeEvent(EdgeEventKind.Anomaly, key, sample.Timestamp, severity, $"anomaly on {key}: score {scoreText} (value {sample.Value.ToString("G6", CultureInfo.InvariantCulture)} {state.Descriptor.Unit})", attributes),
            cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _meter.Dispose();

    /// <summary>Logs a warning for every override glob that matches no series of the site (called once every source is built).</summary>
    internal void WarnUnmatchedOverrides()
    {
        var keys = _runtime.Registry.Snapshot().Select(s => s.Descriptor.Key).ToList();
        var config = _runtime.Config;
        var tablePrefixes = config.Devices.Where(d => d.Enabled)
            .SelectMany(d => config.Profiles.TryGetValue(d.Profile, out var p) ? p.Tables.SelectMany(t => t.Columns).Select(c => $"{d.Id}/{c.Name}{{") : [])
            .ToList();
        foreach (var o in _config.UnmatchedOverrides(keys, tablePrefixes))
        {
            LogOverrideMatchesNothing(_logger, o.Glob, keys.Count, keys.Count > 0 ? keys[0] : "none");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.overrides: '{Glob}' matches none of the site's {Count} series, so its options apply to nothing (keys are device/metric, e.g. {Example})")]
    private static partial void LogOverrideMatchesNothing(ILogger logger, string glob, int count, string example);

    [LoggerMessage(Level = LogLevel.Information, Message = "Anomaly on {Series}: score {Score} (value {Value})")]
    private static partial void LogAnomaly(ILogger logger, string series, string score, double value);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Anomaly detection covers the first {Capacity} series only; raise twin.anomaly.max_series")]
    private static partial void LogCapacity(ILogger logger, int capacity);

    /// <summary>One series: its detector and its episode state.</summary>
    private sealed class SeriesState(SeriesDescriptor descriptor, StreamingAnomalyDetector detector, bool skip)
    {
        private readonly AnomalyEpisode _episode = new();

        public SeriesDescriptor Descriptor { get; } = descriptor;

        public StreamingAnomalyDetector Detector { get; } = detector;

        public bool Skip { get; } = skip;

        public double LastScore { get; set; } = double.NaN;

        /// <summary>Advances the episode state; true when this sample opens a new episode.</summary>
        public bool Step(double score, int quietSamplesToClose) => _episode.Step(score, Detector.Options.Threshold, quietSamplesToClose);
    }
}
