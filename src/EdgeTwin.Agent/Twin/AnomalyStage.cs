using System.Diagnostics.Metrics;
using System.Globalization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Anomaly;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin;

/// <summary>
/// Runs one <see cref="StreamingAnomalyDetector"/> per numeric series (gauges, and counters on their rate; state series are
/// skipped) and publishes one <see cref="EdgeEventKind.Anomaly"/> event per episode: when a series' score reaches its
/// threshold, and not again until the score has stayed below half the threshold for <c>quiet_samples</c> samples. With
/// <c>threshold_interval</c> set (off by default) the threshold is raised for series polled faster than it
/// (<see cref="StreamingAnomalyDetector.EventThreshold"/>), so that they raise about as few events a day as at that interval.
/// Detectors live in an array indexed by the interned <see cref="SeriesId"/>, at most <c>max_series</c> of them, created on
/// a series' first sample and dropped when the series is retired; scoring a sample allocates nothing.
/// <para>
/// What the detectors learned is kept over restarts (<see cref="AnomalyStateLocation"/>, <see cref="AnomalyStateFile"/>):
/// saved every <c>state.checkpoint_interval</c> from the pipeline's thread (the bytes; the file is written in the
/// background) and at stop; read at start and handed to each series' detector when the series' first sample comes, so
/// a restart neither sends every series back through warm-up nor announces an open episode again. A series whose
/// options changed, or saved longer ago than <c>state.max_age</c>, learns anew. A corrupt file is set aside as
/// <c>.corrupt</c> and a file that cannot be written is logged; detection goes on either way.
/// </para>
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
    private SeriesState?[] _series;
    private RetiredSeriesCursor _retired;
    private readonly Meter _meter;
    private readonly Counter<long> _scored;
    private readonly Counter<long> _episodes;
    private readonly Counter<long> _checkpoints;
    private readonly Counter<long> _checkpointFailures;
    private readonly Counter<long> _restoredSeries;
    private readonly Counter<long> _uncovered;
    private readonly string? _statePath;
    private readonly CancellationTokenSource _disposing = new();
    private Dictionary<string, SavedAnomalySeries>? _saved;
    // When the last checkpoint was taken, on the monotonic clock: with the wall clock, a step back of a day (a gateway that
    // booted a day ahead, then synced) meant no checkpoint for a day, and a power cut in it lost a day of learning.
    private long _lastCheckpointTs;
    private Task _checkpointWrite = Task.CompletedTask;
    // A file system gone read-only fails every checkpoint for the rest of the outage: the first failure and each new
    // cause are logged, repeats summed up every 5 min (with a checkpoint_interval of 10 s it was 360 lines an hour).
    private readonly RepeatedFailureLog _writeFailures;
    private readonly AnomalyJournal _journal;
    private int _restored;
    private int _relearned;
    private bool _restoreReported;
    private int _tracked;
    private bool _capacityWarned;

    public AnomalyStage(AgentRuntime runtime, AnomalyConfig config, ILogger<AnomalyStage> logger, IMeterFactory? meterFactory = null, AnomalyStateLocation? stateLocation = null)
    {
        _runtime = runtime;
        _config = config;
        _logger = logger;
        _series = new SeriesState?[Math.Min(config.MaxSeries, 1024)];
        _writeFailures = new RepeatedFailureLog(runtime.TimeProvider, logFirst: 1, every: WriteFailureSummaryEvery);
        _journal = new AnomalyJournal(runtime.TimeProvider);
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _scored = _meter.CreateCounter<long>("edgetwin.twin.anomaly.samples", "{sample}", "Samples scored by the streaming anomaly detector.");
        _episodes = _meter.CreateCounter<long>("edgetwin.twin.anomaly.episodes", "{episode}", "Anomaly episodes opened (one event each).");
        _meter.CreateObservableGauge("edgetwin.twin.anomaly.series", () => Volatile.Read(ref _tracked), "{series}", "Series with a detector.");
        _checkpoints = _meter.CreateCounter<long>("edgetwin.twin.anomaly.state.checkpoints", "{checkpoint}", "Detector states written to the state file.");
        _checkpointFailures = _meter.CreateCounter<long>("edgetwin.twin.anomaly.state.failures", "{checkpoint}", "State file writes that failed (disk full, permissions, timeout).");
        _uncovered = _meter.CreateCounter<long>("edgetwin.twin.anomaly.uncovered", "{sample}", "Samples not scored because max_series series already have a detector.");
        _restoredSeries = _meter.CreateCounter<long>("edgetwin.twin.anomaly.state.restored", "{series}", "Series whose detector continued from the saved state.");
        var notOurs = config.Enabled && stateLocation?.Path is { } candidate ? AtomicStateFile.NotOurs(candidate, AnomalyStateFile.Magic, AnomalyStateFile.FileName) : null;
        if (notOurs is not null)
        {
            LogStateNotOurs(_logger, stateLocation!.Path!, notOurs);
        }
        else if (config.Enabled && stateLocation?.Path is { } statePath)
        {
            _lastCheckpointTs = runtime.TimeProvider.GetTimestamp();
            _statePath = LoadState(statePath) ? statePath : null;
        }

        // `check` cannot know every series (profiles decide them, SNMP tables add rows at run time); once every source is
        // built they are registered, so a glob that matches none of them is most likely a typo: say so once.
        if (config.Enabled && config.Overrides.Count > 0)
        {
            runtime.Started.ContinueWith(static (_, state) => ((AnomalyStage)state!).WarnUnmatchedOverrides(), this, CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>The line summing up the anomaly episodes of a window past its first <see cref="AnomalyJournal.PerWindow"/>, once the window has passed.</summary>
    private void LogHeldAnomalies()
    {
        if (_journal.TakeSummary() is { } held)
        {
            var window = Durations.Approximate(_journal.Window);
            var score = held.Score.ToString("F3", CultureInfo.InvariantCulture);
            LogAnomaliesHeld(_logger, held.Count, window, held.Series, score, held.Value);
        }
    }

    /// <summary>How often a checkpoint that keeps failing for the same cause is logged again.</summary>
    internal static readonly TimeSpan WriteFailureSummaryEvery = TimeSpan.FromMinutes(5);

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

        while (_retired.TryNext(_runtime.Registry, out var retired))
        {
            Forget(retired);
        }

        var scored = 0;
        var uncovered = 0;
        for (var i = 0; i < samples.Length; i++)
        {
            var sample = samples.Span[i];
            if (!sample.IsGood || sample.Series.IsNone || State(sample.Series, ref uncovered) is not { } state)
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

        if (uncovered > 0)
        {
            _uncovered.Add(uncovered);
        }

        if (_journal.Held > 0)
        {
            LogHeldAnomalies();
        }

        if (_statePath is not null && _runtime.TimeProvider.GetElapsedTime(_lastCheckpointTs) >= _config.State.CheckpointInterval && _checkpointWrite.IsCompleted)
        {
            _lastCheckpointTs = _runtime.TimeProvider.GetTimestamp();
            var now = Now; // the saved-at stamp stays on the wall clock (state.max_age compares it with the next start's)
            var entries = Snapshot(now);
            _checkpointWrite = Task.Run(() => WriteCheckpointAsync(_statePath, now, entries, atStop: false, _disposing.Token), CancellationToken.None);
        }
    }

    /// <summary>At stop: waits for a checkpoint in flight, then saves the state as it is now.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_statePath is null)
        {
            return;
        }

        await _checkpointWrite.WaitAsync(cancellationToken).ConfigureAwait(false);
        var now = Now;
        var entries = Snapshot(now);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        await WriteCheckpointAsync(_statePath, now, entries, atStop: true, stop.Token).ConfigureAwait(false);
    }

    /// <summary>The checkpoint being written in the background (completed when none is).</summary>
    internal Task PendingCheckpoint => _checkpointWrite;

    private long Now => _runtime.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Reads the saved state; false when the file must not be written this run (another build's file that could not be kept aside).</summary>
    private bool LoadState(string path)
    {
        if (!File.Exists(path))
        {
            AtomicStateFile.RemoveLeftover(path);
            if (!TakeBackKeptAside(path))
            {
                LogNoState(_logger, path);
                return true;
            }
        }

        var contents = AtomicStateFile.Read<AnomalyStateContents, InvalidDataException>(
            path,
            AnomalyStateFile.Load,
            (reason, aside) => LogStateCorrupt(_logger, path, reason, aside),
            reason => LogStateUnreadable(_logger, path, reason));
        if (contents is null)
        {
            return true;
        }

        if (contents.FromOtherBuild)
        {
            // An upgrade, or a rollback: the other build's learning is kept for it (a rollback goes on from it), not
            // written over by this build's first checkpoint (before, each build wrote over what the other had learned).
            var aside = AnomalyStateFile.KeptAsidePath(path, contents.LayoutTag);
            var format = contents.FormatVersion is 1 or AnomalyStateFile.CurrentFormatVersion ? "" : $", file format {contents.FormatVersion} (this build reads 1 and {AnomalyStateFile.CurrentFormatVersion})";
            try
            {
                File.Move(path, aside, overwrite: true); // an older file of that same build: this one is newer
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogOtherBuildNotMoved(_logger, path, contents.LayoutTag + format, ex.Message);
                return false;
            }

            LogStateFromOtherBuild(_logger, path, contents.Series.Count, contents.LayoutTag + format, AnomalyStateFile.OwnLayoutTag, aside);
            if (!TakeBackKeptAside(path))
            {
                LogNoOwnKeptAside(_logger, AnomalyStateFile.KeptAsidePath(path, AnomalyStateFile.OwnLayoutTag));
                return true;
            }

            contents = AtomicStateFile.Read<AnomalyStateContents, InvalidDataException>(
                path,
                AnomalyStateFile.Load,
                (reason, aside) => LogStateCorrupt(_logger, path, reason, aside),
                reason => LogStateUnreadable(_logger, path, reason));
            if (contents is null || contents.FromOtherBuild)
            {
                return contents is null; // not this layout after all (renamed by hand): leave it, keep no state this run
            }
        }

        if (!contents.LayoutMatches)
        {
            // An upgrade (or rollback) whose detectors only gained or lost fields: taken over, field by field; a copy
            // stays for that build, so that a rollback to it still goes on from what it had learned.
            var aside = AnomalyStateFile.KeptAsidePath(path, contents.LayoutTag);
            string copy;
            try
            {
                File.Copy(path, aside, overwrite: true);
                copy = "a copy is kept as " + aside + " for that build";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                copy = "no copy could be kept for that build: " + ex.Message;
            }

            var changes = string.Join("; ", contents.OtherLayouts.SelectMany(l => l.Differences).Distinct(StringComparer.Ordinal));
            LogStateTakenOver(_logger, path, contents.LayoutTag, AnomalyStateFile.OwnLayoutTag, changes.Length == 0 ? "no field" : changes, copy);
        }

        var age = TimeSpan.FromMilliseconds(Math.Max(0, Now - contents.SavedAtUnixMs));
        var oldest = Now - (long)_config.State.MaxAge.TotalMilliseconds;
        _saved = contents.Series.Where(s => s.Value.SavedAtUnixMs >= oldest).ToDictionary(StringComparer.Ordinal);
        var ageText = Durations.Approximate(age);
        var maxAgeText = Durations.Format(_config.State.MaxAge);
        LogStateLoaded(_logger, _saved.Count, path, ageText, contents.Series.Count - _saved.Count, maxAgeText);
        return true;
    }

    /// <summary>Moves the file this build's layout kept aside while another build ran back to <paramref name="path"/> (false: there is none).</summary>
    private bool TakeBackKeptAside(string path)
    {
        var own = AnomalyStateFile.KeptAsidePath(path, AnomalyStateFile.OwnLayoutTag);
        if (!File.Exists(own))
        {
            return false;
        }

        try
        {
            File.Move(own, path, overwrite: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogStateUnreadable(_logger, own, ex.Message);
            return false;
        }

        LogTookBackKeptAside(_logger, own, path);
        return true;
    }

    /// <summary>The detector the previous run saved for <paramref name="key"/>, if it was learned under <paramref name="options"/>.</summary>
    private StreamingAnomalyDetector? Restore(string key, AnomalyDetectorOptions options, ulong fingerprint, out SavedAnomalySeries? saved)
    {
        saved = null;
        if (_saved is null || !_saved.Remove(key, out var s))
        {
            return null;
        }

        if (s.OptionsFingerprint != fingerprint)
        {
            _relearned++;
            LogRelearnOptions(_logger, key);
            return null;
        }

        try
        {
            var detector = AnomalyStateFile.Detector(s.Detector, options, s.Layout);
            saved = s;
            _restored++;
            _restoredSeries.Add(1);
            return detector;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            _relearned++;
            LogRelearnUnreadable(_logger, key, ex.Message);
            return null;
        }
    }

    /// <summary>
    /// Every detector's state (and the saved ones not claimed yet, which a late device still wants): the series' own bytes,
    /// taken on the pipeline's thread; the file is streamed from them in the background.
    /// </summary>
    private List<KeyValuePair<string, SavedAnomalySeries>> Snapshot(long now)
    {
        var entries = new List<KeyValuePair<string, SavedAnomalySeries>>(Volatile.Read(ref _tracked) + (_saved?.Count ?? 0));
        foreach (var state in _series)
        {
            if (state is { Skip: false } && state.Detector.Count > 0)
            {
                entries.Add(new(state.Descriptor.Key, new SavedAnomalySeries(now, state.OptionsFingerprint, state.Episode.IsOpen, state.Episode.Quiet, AnomalyStateFile.DetectorBytes(state.Detector))));
            }
        }

        if (_saved is not null)
        {
            var oldest = now - (long)_config.State.MaxAge.TotalMilliseconds;
            entries.AddRange(_saved.Where(s => s.Value.SavedAtUnixMs >= oldest));
        }

        ReportRestore();
        return entries;
    }

    /// <summary>Once: how many series went on from the saved state (when every saved series has come back, else at the first checkpoint or stop).</summary>
    private void ReportRestore()
    {
        if (!_restoreReported && _saved is not null)
        {
            _restoreReported = true;
            LogRestoreSummary(_logger, _restored, _relearned, _saved.Count);
        }
    }

    private async Task WriteCheckpointAsync(string path, long now, List<KeyValuePair<string, SavedAnomalySeries>> entries, bool atStop, CancellationToken cancellationToken)
    {
        var size = AnomalyStateFile.Size(entries);
        var hadFile = File.Exists(path);
        try
        {
            await AtomicStateFile.WriteAsync(path, size, (stream, ct) => AnomalyStateFile.WriteAsync(stream, now, entries, ct), cancellationToken).ConfigureAwait(false);
            _checkpoints.Add(1);
            if (_writeFailures.Succeeded() is { } outage)
            {
                var failedForText = Durations.Approximate(outage.Down);
                LogStateWritableAgain(_logger, path, failedForText, outage.Failures);
            }

            if (atStop)
            {
                LogStateSavedAtStop(_logger, entries.Count, path, size / 1024);
            }
            else
            {
                LogCheckpoint(_logger, entries.Count, path, size / 1024);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            _checkpointFailures.Add(1);
            var reason = ex is OperationCanceledException ? "cancelled at stop" : ex.Message;
            var consequence = !hadFile ? "no checkpoint has been written yet; retried at the next one"
                : atStop ? "the next start goes on from the last checkpoint"
                : "the last good checkpoint stays; retried at the next one";
            // At stop always: it is the last word on what the next start goes on from.
            var line = atStop ? default : _writeFailures.Failed(reason);
            if (atStop || line is { Kind: FailureLineKind.Log, NewReason: true })
            {
                LogStateUnwritable(_logger, _writeFailures.StackOnce(ex), path, reason, consequence);
            }
            else if (line.Kind == FailureLineKind.Log)
            {
                LogStateStillUnwritable(_logger, path, reason, _writeFailures.Since, line.Failures);
            }
        }
    }

    /// <summary>Drops a retired series' detector: its row left the device, and a row that comes back is a new series.</summary>
    private void Forget(SeriesId id)
    {
        if ((uint)id.Value < (uint)_series.Length && _series[id.Value] is not null)
        {
            _series[id.Value] = null;
            Interlocked.Decrement(ref _tracked);
        }
    }

    private SeriesState? State(SeriesId id, ref int uncovered)
    {
        if (id.Value < _series.Length && _series[id.Value] is { } existing)
        {
            return existing.Skip ? null : existing;
        }

        if (Volatile.Read(ref _tracked) >= _config.MaxSeries)
        {
            uncovered++; // counted, not only warned about once: the coverage gap must show in the metrics
            if (!_capacityWarned)
            {
                _capacityWarned = true;
                LogCapacity(_logger, _config.MaxSeries);
            }

            return null;
        }

        if (id.Value >= _series.Length)
        {
            Array.Resize(ref _series, Math.Max(id.Value + 1, _series.Length * 2));
        }

        var descriptor = _runtime.Registry[id];
        var options = _config.OptionsFor(descriptor);
        var skip = descriptor.Kind == MetricKind.State;
        var fingerprint = _statePath is null || skip ? 0UL : DetectorStateCodec.OptionsFingerprint(options);
        SavedAnomalySeries? saved = null;
        var detector = skip ? null : Restore(descriptor.Key, options, fingerprint, out saved);
        var created = new SeriesState(descriptor, detector ?? new StreamingAnomalyDetector(options), skip, fingerprint);
        if (saved is not null)
        {
            created.Episode.Restore(saved.EpisodeOpen, saved.EpisodeQuiet);
            if (_saved is { Count: 0 })
            {
                ReportRestore();
            }
        }

        _series[id.Value] = created;
        Interlocked.Increment(ref _tracked);
        return created.Skip ? null : created;
    }

    private async ValueTask PublishAsync(SeriesState state, Sample sample, double score, CancellationToken cancellationToken)
    {
        _episodes.Add(1);
        var key = state.Descriptor.Key;
        var scoreText = score.ToString("F3", CultureInfo.InvariantCulture);
        LogHeldAnomalies();
        if (_journal.ShouldLog(key, score, sample.Value))
        {
            LogAnomaly(_logger, key, scoreText, sample.Value);
        }
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
            ["threshold"] = WireNumber.Format(state.Detector.EventThreshold),
            ["model"] = ModelName,
            ["model_version"] = ModelVersion,

            // The name of one release (consumer audit F7 made model_version the one name on every model's events).
            ["version"] = ModelVersion,
        };
        var severity = AnomalyEpisode.Severity(score, state.Detector.EventThreshold);
        await events.PublishAsync(
            new EdgeEvent(EdgeEventKind.Anomaly, key, sample.Timestamp, severity, $"anomaly on {key}: score {scoreText} (value {sample.Value.ToString("G6", CultureInfo.InvariantCulture)} {state.Descriptor.Unit})", attributes),
            cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        if (!_disposing.IsCancellationRequested)
        {
            _disposing.Cancel();
            _meter.Dispose();
        }
    }

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

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: {Count} series' learned state read from {Path} (written {Age} ago; {Expired} older than max_age {MaxAge} dropped); each series continues from it with its first sample")]
    private static partial void LogStateLoaded(ILogger logger, int count, string path, string age, int expired, string maxAge);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: no saved state at {Path} yet: every series learns from its first sample (warm-up)")]
    private static partial void LogNoState(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: {Path} was written by another build (detector layout {Other}; this build's is {Own}): its {Count} series are kept unchanged as {Aside} for that build (a rollback goes on from it)")]
    private static partial void LogStateFromOtherBuild(ILogger logger, string path, int count, string other, string own, string aside);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: {Path} was written by another build (detector layout {Other}; this build's is {Own}) whose detectors differ only by fields: taken over, the new fields start as in a new detector, the dropped ones are passed over ({Changes}); {Copy}")]
    private static partial void LogStateTakenOver(ILogger logger, string path, string other, string own, string changes, string copy);

    [LoggerMessage(Level = LogLevel.Error, Message = "twin.anomaly.state: {Path} was written by another build (detector layout {Other}) and cannot be kept aside ({Reason}): not written over; the detectors' state is not kept in this run")]
    private static partial void LogOtherBuildNotMoved(ILogger logger, string path, string other, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: this build's detectors kept no state of their own ({Aside} does not exist): every series learns anew")]
    private static partial void LogNoOwnKeptAside(ILogger logger, string aside);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: {Aside}, which this build's detectors wrote before another build ran, is taken back as {Path}")]
    private static partial void LogTookBackKeptAside(ILogger logger, string aside, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: {Path} is corrupt ({Reason}); set aside ({Aside}), every series learns anew and the next checkpoint writes a new file")]
    private static partial void LogStateCorrupt(ILogger logger, string path, string reason, string aside);

    [LoggerMessage(Level = LogLevel.Error, Message = "twin.anomaly.state: {Path} is not an anomaly state file ({Reason}): not read, not written; the detectors' state is not kept in this run. Name a file of its own in twin.anomaly.state.file")]
    private static partial void LogStateNotOurs(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: cannot read {Path} ({Reason}); every series learns anew")]
    private static partial void LogStateUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: cannot write {Path} ({Reason}); {Consequence}. Detection goes on")]
    private static partial void LogStateUnwritable(ILogger logger, Exception? ex, string path, string reason, string consequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: {Path} still cannot be written ({Reason}) since {Since:O}: {Attempts} checkpoints failed; the last good checkpoint stays. Detection goes on (logged again at most every 5 min while it lasts)")]
    private static partial void LogStateStillUnwritable(ILogger logger, string path, string reason, DateTimeOffset since, int attempts);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: {Path} written again after {FailedFor} of failing checkpoints ({Attempts} failed)")]
    private static partial void LogStateWritableAgain(ILogger logger, string path, string failedFor, int attempts);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: checkpoint of {Count} series to {Path} ({KiB} KiB)")]
    private static partial void LogCheckpoint(ILogger logger, int count, string path, long kiB);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: {Count} series' learned state saved to {Path} ({KiB} KiB) at stop")]
    private static partial void LogStateSavedAtStop(ILogger logger, int count, string path, long kiB);

    [LoggerMessage(Level = LogLevel.Information, Message = "twin.anomaly.state: {Restored} series continued from the saved state, {Relearned} learn anew (options changed or state unreadable), {Waiting} saved series not seen yet (kept until max_age)")]
    private static partial void LogRestoreSummary(ILogger logger, int restored, int relearned, int waiting);

    [LoggerMessage(Level = LogLevel.Debug, Message = "twin.anomaly.state: {Series} learns anew: its detector options changed since the state was saved")]
    private static partial void LogRelearnOptions(ILogger logger, string series);

    [LoggerMessage(Level = LogLevel.Warning, Message = "twin.anomaly.state: {Series} learns anew: its saved state does not fit its detector ({Reason})")]
    private static partial void LogRelearnUnreadable(ILogger logger, string series, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Anomaly on {Series}: score {Score} (value {Value})")]
    private static partial void LogAnomaly(ILogger logger, string series, string score, double value);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} more anomalies in the last {Window} not logged one by one (the highest: {Series} score {Score}, value {Value}); each is an event for the alert rules and the uplink")]
    private static partial void LogAnomaliesHeld(ILogger logger, int count, string window, string series, string score, double value);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Anomaly detection has a detector for {Capacity} series, its max_series: further series are not scored (counted in edgetwin.twin.anomaly.uncovered); raise twin.anomaly.max_series")]
    private static partial void LogCapacity(ILogger logger, int capacity);

    /// <summary>One series: its detector and its episode state.</summary>
    private sealed class SeriesState(SeriesDescriptor descriptor, StreamingAnomalyDetector detector, bool skip, ulong optionsFingerprint)
    {
        public AnomalyEpisode Episode { get; } = new();

        public ulong OptionsFingerprint { get; } = optionsFingerprint;

        public SeriesDescriptor Descriptor { get; } = descriptor;

        public StreamingAnomalyDetector Detector { get; } = detector;

        public bool Skip { get; } = skip;

        public double LastScore { get; set; } = double.NaN;

        /// <summary>Advances the episode state; true when this sample opens a new episode.</summary>
        public bool Step(double score, int quietSamplesToClose) => Episode.Step(score, Detector.EventThreshold, quietSamplesToClose);
    }
}
