using System.Diagnostics.Metrics;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Core;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Line;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Line;

/// <summary>
/// Keeps the line twin's books and learning over restarts (<c>line.state</c>): reads <see cref="FileName"/> before the
/// first batch, saves between batches every <c>checkpoint_interval</c> (written in the background: the pipeline does not
/// wait for the disk) and at stop. A restart is then a gap in the readings: the shift's OEE goes on (the parts made
/// during a restart within the 5-min hold counted as usual, those of a longer outage reported apart as unseen), the
/// learned MTBF/MTTR/cycles and the quality models are kept.
/// </summary>
public sealed partial class LineStateStage : ISampleStage
{
    public const string FileName = LineStateConfig.DefaultFileName; // one name for check and runtime

    public const string MeterName = "EdgeTwin.Twin.Line.State";

    private readonly LineTwinStage _line;
    private readonly string? _path; // null: the named file is not ours, nothing is kept
    private readonly string _lineId;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly ILogger<LineStateStage> _logger;
    private readonly Counter<long> _checkpoints;
    private readonly Counter<long> _failures;
    // When the last checkpoint was taken, on the monotonic clock: with the wall clock, a step back of a day (a gateway that
    // booted a day ahead, then synced) meant no checkpoint for a day, and a power cut in it lost a day of learning.
    private long _lastCheckpointTs;
    private Task _writing = Task.CompletedTask;
    // One warning per cause and episode of failed writes, not one a minute; a new cause is said at once (before, a full
    // disk after a read-only remount went unsaid), and "written again" says for how long and how many failed.
    private readonly RepeatedFailureLog _writeFailures;

    public LineStateStage(LineTwinStage line, string lineId, string path, TimeSpan checkpointInterval, TimeProvider time, ILogger<LineStateStage> logger, IMeterFactory? meterFactory = null)
    {
        _line = line ?? throw new ArgumentNullException(nameof(line));
        _lineId = lineId;
        ArgumentNullException.ThrowIfNull(path);
        _interval = checkpointInterval;
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _writeFailures = new RepeatedFailureLog(_time, logFirst: 1, every: TimeSpan.MaxValue);
        var meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _checkpoints = meter.CreateCounter<long>("edgetwin.line.state_checkpoints", "{checkpoint}", "Line twin states written (checkpoints and at stop).");
        _failures = meter.CreateCounter<long>("edgetwin.line.state_write_failures", "{write}", "Line twin state writes that failed (the last good file stays).");
        if (AtomicStateFile.NotOurs(path, LineTwinStage.StateFileMagic, FileName) is { } notOurs)
        {
            // A configured name that is another file (the outbox, a config): never read, set aside or written over.
            LogNotOurs(_logger, _lineId, path, notOurs);
            return;
        }

        _path = path;
        Restore(path);
        _lastCheckpointTs = _time.GetTimestamp();
    }

    public string Name => _line.Name;

    /// <summary>Where the state is kept.</summary>
    internal string? StatePath => _path;

    /// <summary>The state write in flight (completed when none is), for tests.</summary>
    internal Task PendingWrite => _writing;

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public async ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        await _line.ProcessAsync(samples, cancellationToken).ConfigureAwait(false);
        if (_path is null || _time.GetElapsedTime(_lastCheckpointTs) < _interval || !_writing.IsCompleted)
        {
            return;
        }

        _lastCheckpointTs = _time.GetTimestamp();
        var now = Now; // the saved-at stamp stays on the wall clock (max_age compares it with the next start's)
        // Taken here, between batches, on the pipeline's thread; only the write goes to the background.
        var bytes = _line.SaveState(now);
        var path = _path;
        _writing = Task.Run(() => WriteAsync(path, bytes, atStop: false, CancellationToken.None), CancellationToken.None);
    }

    /// <summary>At stop: waits for a write in flight, then saves the state as it is after the last batch.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await ((ISampleStage)_line).FlushAsync(cancellationToken).ConfigureAwait(false);
        if (_path is null)
        {
            return;
        }

        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        await WriteAsync(_path, _line.SaveState(Now), atStop: true, cancellationToken).ConfigureAwait(false);
    }

    private void Restore(string path)
    {
        var now = Now;
        var restore = AtomicStateFile.Read<LineStateRestore, InvalidDataException>(
            path,
            p => File.Exists(p) ? _line.RestoreState(ReadCapped(p), now) : null,
            (reason, aside) => LogCorrupt(_logger, _lineId, path, reason, aside),
            reason => LogUnreadable(_logger, _lineId, path, reason));
        if (restore is null)
        {
            if (!File.Exists(path) && !File.Exists(path + ".corrupt"))
            {
                LogNoState(_logger, _lineId, path);
            }

            return;
        }

        string? copy = null;
        if (restore.FromOtherBuild)
        {
            // An upgrade or a rollback: this build's first checkpoint would write over what it could not take.
            copy = KeepCopy(path);
            LogKeptForOtherBuild(_logger, _lineId, path, copy);
        }

        if (restore.TakenOverFromOtherBuild)
        {
            // An upgrade whose classes only gained or lost fields: the books and the learning go on. The copy is for a
            // rollback, which cannot read this build's file.
            copy ??= KeepCopy(path);
            var changes = string.Join("; ", restore.LayoutChanges!);
            LogTakenOver(_logger, _lineId, path, changes, copy);
        }

        var age = Durations.Approximate(TimeSpan.FromMilliseconds(Math.Max(0, now - restore.SavedAtUnixMs)));
        var books = restore.Books ? "the shift's books go on from it" : $"the shift's books start afresh ({restore.BooksNotRestored})";
        var learned = restore.Learned.Count == 0 ? "nothing learned is kept" : "learned figures kept for " + string.Join(", ", restore.Learned);
        LogRestored(_logger, _lineId, path, age, books, learned);
        foreach (var item in restore.NotRestored.Where(n => n != restore.BooksNotRestored && !n.StartsWith("the shift's books", StringComparison.Ordinal)))
        {
            // Weeks of learning may go with it: a warning, naming the station and why.
            LogNotRestored(_logger, _lineId, item);
        }
    }

    /// <summary>Copies the file another build wrote to <c>PATH.other-build</c> (the time added when one is there); where it went, or why not.</summary>
    private static string KeepCopy(string path)
    {
        var copy = path + ".other-build";
        if (File.Exists(copy))
        {
            copy += "-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        }

        try
        {
            File.Copy(path, copy, overwrite: false);
            return "a copy is kept as " + copy;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "no copy could be kept: " + ex.Message;
        }
    }

    /// <summary>A line state is a few KiB (tens with large quality models): a file far larger is not one, and is not read into memory.</summary>
    private const long MaxStateBytes = 64L << 20;

    private static byte[] ReadCapped(string path)
    {
        var length = new FileInfo(path).Length;
        return length > MaxStateBytes
            ? throw new InvalidDataException($"{length >> 20} MiB: far larger than a line state (a few KiB), not read")
            : File.ReadAllBytes(path);
    }

    private async Task WriteAsync(string path, byte[] bytes, bool atStop, CancellationToken cancellationToken)
    {
        try
        {
            await AtomicStateFile.WriteAsync(path, bytes, cancellationToken).ConfigureAwait(false);
            _checkpoints.Add(1);
            if (_writeFailures.Succeeded() is { } outage)
            {
                var failedForText = Durations.Approximate(outage.Down);
                LogWritable(_logger, _lineId, path, failedForText, outage.Failures);
            }

            if (atStop)
            {
                LogSavedAtStop(_logger, _lineId, path, (bytes.Length + 1023) / 1024);
            }
            else
            {
                LogCheckpoint(_logger, _lineId, path, (bytes.Length + 1023) / 1024);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // In the background nobody else would see it: every failure is said here, and the line twin goes on.
            _failures.Add(1);
            var reason = ex is OperationCanceledException ? "cancelled at stop" : ex.Message;
            // At stop always: it says what the next start goes on from.
            if (atStop || _writeFailures.Failed(reason).Kind == FailureLineKind.Log)
            {
                LogUnwritable(_logger, _writeFailures.StackOnce(ex), _lineId, path, reason, File.Exists(path) ? "the last good state stays" : "no state has been written yet");
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: no saved state at {Path} yet: the books start with the first reading, the stations learn from their configured figures")]
    private static partial void LogNoState(ILogger logger, string line, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: state read from {Path} (saved {Age} ago): {Books}; {Learned}")]
    private static partial void LogRestored(ILogger logger, string line, string path, string age, string books, string learned);

    [LoggerMessage(Level = LogLevel.Error, Message = "line {Line}: line.state.file {Path} is not a line state file ({Reason}): not read, not written; the line twin keeps no state in this run. Name a file of its own (or leave file: out for line-state.bin next to the outbox)")]
    private static partial void LogNotOurs(ILogger logger, string line, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: line.state.enabled is false: the shift's books and what the stations learned start afresh at every start")]
    public static partial void LogDisabled(ILogger logger, string line);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: {Path} was written by another agent build (another file format, or parts laid out differently; below, what is not taken): {Copy} for that build (a rollback: put it back as the state file before starting it)")]
    private static partial void LogKeptForOtherBuild(ILogger logger, string line, string path, string copy);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: {Path} was written by another agent build whose classes differ only by fields ({Changes}): taken over, the new fields starting as configured; {Copy} for that build (a rollback: put it back as the state file before starting it)")]
    private static partial void LogTakenOver(ILogger logger, string line, string path, string changes, string copy);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: state not kept for {What}")]
    private static partial void LogNotRestored(ILogger logger, string line, string what);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: state file {Path} is corrupt ({Reason}); set aside ({Aside}): the books start afresh, the stations learn from their configured figures, and the next checkpoint writes a new file")]
    private static partial void LogCorrupt(ILogger logger, string line, string path, string reason, string aside);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: cannot read state file {Path} ({Reason}): the books start afresh")]
    private static partial void LogUnreadable(ILogger logger, string line, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "line {Line}: cannot write state file {Path} ({Reason}); {Consequence}. The line twin goes on; retried at each checkpoint (said again when it works, or fails for another reason)")]
    private static partial void LogUnwritable(ILogger logger, Exception? ex, string line, string path, string reason, string consequence);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: state file {Path} written again after {FailedFor} of failed writes ({Failed} failed)")]
    private static partial void LogWritable(ILogger logger, string line, string path, string failedFor, int failed);

    [LoggerMessage(Level = LogLevel.Debug, Message = "line {Line}: state checkpoint to {Path} ({KiB} KiB)")]
    private static partial void LogCheckpoint(ILogger logger, string line, string path, int kiB);

    [LoggerMessage(Level = LogLevel.Information, Message = "line {Line}: state saved to {Path} ({KiB} KiB) at stop")]
    private static partial void LogSavedAtStop(ILogger logger, string line, string path, int kiB);
}
