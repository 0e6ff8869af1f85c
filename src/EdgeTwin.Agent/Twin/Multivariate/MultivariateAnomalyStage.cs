using System.Diagnostics.Metrics;
using System.Globalization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Multivariate;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Multivariate;

/// <summary>
/// Scores the configured groups of related series with their multivariate ONNX models. Each group keeps the latest value
/// of each of its series and, once per <c>interval</c> of sample time, pushes a row (all series fresh) into its window;
/// after each sample batch the full windows are scored, batched per model, by one <see cref="MultivariateAnomalyRunner"/>
/// per model. A score at or above <c>threshold</c> opens an episode (one <see cref="EdgeEventKind.Anomaly"/> event), closed
/// after <c>quiet_windows</c> scores below half of it. When a model is missing or broken the runner logs it once and the
/// group is simply not scored: the streaming detector keeps scoring every series of the group.
/// Allocation per batch: none beyond the event of an opened episode.
/// </summary>
public sealed partial class MultivariateAnomalyStage : ISampleStage, IDisposable
{
    private const int Unresolved = -1;
    private const int NotInGroup = -2;

    private readonly AgentRuntime _runtime;
    private readonly MultivariateConfig _config;
    private readonly ModelCatalog? _catalog;
    private readonly ILogger<MultivariateAnomalyStage> _logger;
    private readonly Dictionary<string, (int Group, int Feature)> _byKey = new(StringComparer.Ordinal);
    private int[] _slot = new int[1024];
    private readonly GroupState[] _groups;
    private readonly ModelBatch[] _models;
    private readonly Meter _meter;
    private readonly Counter<long> _episodes;

    public MultivariateAnomalyStage(AgentRuntime runtime, MultivariateConfig config, ModelCatalog? catalog, ILogger<MultivariateAnomalyStage> logger, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _runtime = runtime;
        _config = config;
        _catalog = catalog;
        _logger = logger;
        Array.Fill(_slot, Unresolved);
        _meter = meterFactory?.Create(MultivariateAnomalyRunner.MeterName + ".Stage") ?? new Meter(MultivariateAnomalyRunner.MeterName + ".Stage");
        _episodes = _meter.CreateCounter<long>("edgetwin.twin.multivariate.episodes", "{episode}", "Multivariate anomaly episodes opened (one event each).");
        var models = config.Groups.Select(g => g.Model).Distinct(StringComparer.Ordinal).ToList();
        _models = [.. models.Select(m => new ModelBatch(m, catalog is null ? null : new MultivariateAnomalyRunner(catalog, m, config.MaxBatch, logger, meterFactory), config.Groups.Count(g => g.Model == m)))];
        _groups = new GroupState[config.Groups.Count];
        for (var g = 0; g < _groups.Length; g++)
        {
            var group = config.Groups[g];
            _groups[g] = new GroupState(group, models.IndexOf(group.Model));
            for (var f = 0; f < group.Series.Count; f++)
            {
                _byKey[group.Series[f]] = (g, f);
            }
        }

        if (catalog is null && _groups.Length > 0)
        {
            LogNoCatalog(_logger, _groups.Length);
        }
    }

    public string Name => "multivariate";

    /// <summary>The last score of a group (NaN before its first), for tests and status views.</summary>
    public double LastScore(string group) => _groups.FirstOrDefault(g => g.Config.Name == group)?.LastScore ?? double.NaN;

    public async ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (!_config.Enabled || _groups.Length == 0 || _catalog is null)
        {
            return;
        }

        for (var i = 0; i < samples.Length; i++)
        {
            var sample = samples.Span[i];
            if (!sample.IsGood || sample.Series.IsNone || !double.IsFinite(sample.Value))
            {
                continue;
            }

            var slot = Slot(sample.Series);
            if (slot < 0)
            {
                continue;
            }

            var group = _groups[slot >> 8];
            var batch = _models[group.ModelIndex];
            switch (group.Offer(slot & 0xFF, sample.TimestampUnixMs, sample.Value, _catalog, _logger))
            {
                case Offered.Ready:
                    batch.Windows[batch.Count] = group.Window!;
                    batch.Groups[batch.Count++] = group;
                    break;
                case Offered.NoModel:
                    batch.RowWithoutModel = true;
                    break;
            }
        }

        foreach (var batch in _models)
        {
            if (batch.Count == 0)
            {
                if (batch.RowWithoutModel)
                {
                    // Rows are due but the model is not there: let the runner report the fallback (once).
                    batch.RowWithoutModel = false;
                    batch.Runner?.TryScore([], [], []);
                }

                continue;
            }

            var n = batch.Count;
            batch.Count = 0;
            if (batch.Runner is null || !batch.Runner.TryScore(batch.Windows.AsSpan(0, n), batch.Scores, batch.Errors))
            {
                continue; // fallback: logged once by the runner; the streaming detector covers the series
            }

            for (var k = 0; k < n; k++)
            {
                var group = batch.Groups[k];
                group.LastScore = batch.Scores[k];
                if (group.Step(batch.Scores[k], _config.Threshold, _config.QuietWindows))
                {
                    await PublishAsync(group, batch.Runner, batch.Scores[k], batch.Errors[k], cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private int Slot(SeriesId id)
    {
        if (id.Value >= _slot.Length)
        {
            var grown = new int[Math.Max(id.Value + 1, _slot.Length * 2)];
            Array.Fill(grown, Unresolved, _slot.Length, grown.Length - _slot.Length);
            _slot.CopyTo(grown, 0);
            _slot = grown;
        }

        var slot = _slot[id.Value];
        if (slot == Unresolved)
        {
            // First sample of this series: look its key up once.
            slot = _byKey.TryGetValue(_runtime.Registry[id].Key, out var gf) ? (gf.Group << 8) | gf.Feature : NotInGroup;
            _slot[id.Value] = slot;
        }

        return slot;
    }

    private async ValueTask PublishAsync(GroupState group, MultivariateAnomalyRunner runner, double score, double error, CancellationToken cancellationToken)
    {
        _episodes.Add(1);
        var entry = runner.Entry!;
        var scoreText = score.ToString("F3", CultureInfo.InvariantCulture);
        var series = string.Join(",", group.Config.Series);
        LogAnomaly(_logger, group.Config.Name, scoreText, entry.Name, entry.Version);
        if (_runtime.Events is not { } events)
        {
            return;
        }

        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["score"] = scoreText,
            ["series"] = series,
            ["group"] = group.Config.Name,
            ["error"] = error.ToString("G6", CultureInfo.InvariantCulture),
            ["error_threshold"] = runner.Spec!.Threshold.ToString("G6", CultureInfo.InvariantCulture),
            ["features"] = string.Join(",", runner.Spec.Features),
            ["values"] = string.Join(",", group.Latest.Select(v => v.ToString("G6", CultureInfo.InvariantCulture))),
            ["threshold"] = WireNumber.Format(_config.Threshold),
            ["model"] = entry.Name,
            ["model_version"] = entry.Version,

            // The name of one release (consumer audit F7 made model_version the one name on every model's events).
            ["version"] = entry.Version,
        };
        var severity = AnomalyEpisode.Severity(score, _config.Threshold);
        await events.PublishAsync(
            new EdgeEvent(EdgeEventKind.Anomaly, "group:" + group.Config.Name, DateTimeOffset.FromUnixTimeMilliseconds(group.LastRowMs), severity,
                $"multivariate anomaly on {group.Config.Name} ({series}): score {scoreText} by {entry.Name} {entry.Version}", attributes),
            cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        foreach (var m in _models)
        {
            m.Runner?.Dispose();
        }

        _meter.Dispose();
    }

    private sealed class ModelBatch(string model, MultivariateAnomalyRunner? runner, int groups)
    {
        public string Model { get; } = model;
        public MultivariateAnomalyRunner? Runner { get; } = runner;
        public MultivariateWindow[] Windows { get; } = new MultivariateWindow[groups];
        public GroupState[] Groups { get; } = new GroupState[groups];
        public double[] Scores { get; } = new double[groups];
        public double[] Errors { get; } = new double[groups];
        public int Count { get; set; }
        public bool RowWithoutModel { get; set; }
    }

    private enum Offered
    {
        NotReady,
        Ready,
        NoModel,
    }

    private sealed class GroupState(MultivariateGroup config, int modelIndex)
    {
        private readonly long[] _latestMs = new long[config.Series.Count];
        private readonly long _intervalMs = (long)config.Interval.TotalMilliseconds;
        private long _nextRowMs = long.MinValue;
        private readonly SampleClock _clock = new();
        private readonly AnomalyEpisode _episode = new();
        private LoadedModel? _specOf;
        private MultivariateModelSpec? _spec;
        private bool _mismatchLogged;

        public MultivariateGroup Config { get; } = config;
        public int ModelIndex { get; } = modelIndex;
        public double[] Latest { get; } = new double[config.Series.Count];
        public MultivariateWindow? Window { get; private set; }
        public double LastScore { get; set; } = double.NaN;
        public long LastRowMs { get; private set; }

        /// <summary>Takes a sample of feature <paramref name="f"/>; Ready when a row was pushed and the window is full.</summary>
        public Offered Offer(int f, long ms, double value, ModelCatalog catalog, ILogger logger)
        {
            if (_clock.Observe(ms) is var step and > 0)
            {
                // The wall clock stepped back: before, no row was due until it caught up with the old "next row" time (the
                // group went unscored for the size of the step), and the other series' stamps from before the step looked
                // fresh throughout it. The rows restart here, from series read after the step.
                _nextRowMs = long.MinValue;
                LastRowMs = 0;
                Array.Clear(_latestMs);
                Window?.Clear();
                SampleClock.LogSteppedBack(logger, "twin.multivariate group " + Config.Name, step, ms, "its rows restart at the new time and its window refills before the next score");
            }

            Latest[f] = value;
            _latestMs[f] = ms;
            if (ms < _nextRowMs)
            {
                return Offered.NotReady;
            }

            var stale = ms - (3 * _intervalMs);
            foreach (var t in _latestMs)
            {
                if (t == 0 || t < stale)
                {
                    return Offered.NotReady; // wait until every series of the group has a fresh value
                }
            }

            if (!EnsureWindow(catalog, logger))
            {
                _nextRowMs = ms + _intervalMs - (_intervalMs / 10);
                return Offered.NoModel;
            }

            if (LastRowMs != 0 && ms - LastRowMs > 3 * _intervalMs)
            {
                Window!.Clear(); // a gap: the old rows do not belong to the same stretch of time
            }

            Window!.Push(Latest);
            LastRowMs = ms;
            _nextRowMs = ms + _intervalMs - (_intervalMs / 10); // a little slack for poll jitter
            return Window.IsFull ? Offered.Ready : Offered.NotReady;
        }

        private bool EnsureWindow(ModelCatalog catalog, ILogger logger)
        {
            var model = catalog.Get(Config.Model);
            if (model is null)
            {
                _specOf = null;
                return false; // the runner reports the fallback
            }

            if (!ReferenceEquals(model, _specOf))
            {
                _specOf = model;
                try
                {
                    _spec = MultivariateModelSpec.FromEntry(model.Entry, catalog.ManifestPath);
                }
                catch (ModelLoadException)
                {
                    _spec = null; // the runner logs why
                }

                if (_spec is not null && _spec.Features.Count != Config.Series.Count)
                {
                    if (!_mismatchLogged)
                    {
                        _mismatchLogged = true;
                        LogFeatureMismatch(logger, Config.Name, Config.Series.Count, model.Entry.Name, model.Entry.Version, _spec.Features.Count, string.Join(", ", _spec.Features));
                    }

                    _spec = null;
                }

                if (_spec is not null && (Window is null || Window.Window != _spec.Window))
                {
                    Window = new MultivariateWindow(_spec.Window, _spec.Features.Count);
                }
            }

            return _spec is not null && Window is not null;
        }

        /// <summary>Episode hysteresis; true when this score opens an episode.</summary>
        public bool Step(double score, double threshold, int quietWindows) => _episode.Step(score, threshold, quietWindows);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Multivariate anomaly on group {Group}: score {Score} ({Model} {Version})")]
    private static partial void LogAnomaly(ILogger logger, string group, string score, string model, string version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.multivariate: {Groups} groups configured but no models catalog (add a models: section); the streaming detector covers their series")]
    private static partial void LogNoCatalog(ILogger logger, int groups);

    [LoggerMessage(Level = LogLevel.Error, Message = "twin.multivariate group {Group} lists {Count} series but model {Model} {Version} takes {Expected} ({Features}); the group is not scored")]
    private static partial void LogFeatureMismatch(ILogger logger, string group, int count, string model, string version, int expected, string features);
}
