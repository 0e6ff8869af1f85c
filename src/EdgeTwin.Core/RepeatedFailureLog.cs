namespace EdgeTwin.Core;

/// <summary>
/// Which failures of a retried operation in one outage get a log line (failed connects of the uplinks, the alert MQTT
/// sink and the twin request server; state files written at every checkpoint on storage gone read-only). The first
/// <see cref="LogFirst"/> each get one; after that a line only when the reason changes or <see cref="Every"/> has passed
/// (never with <see cref="TimeSpan.MaxValue"/>), carrying how many went unlogged. A broker gone for days otherwise wrote a
/// warning per retry (four a minute per uplink, 40,000 lines in a week of `journalctl -u edgetwin`), burying the lines
/// around it, in a journal on the same flash that rotates by size. Not thread-safe: one loop owns it.
/// </summary>
public sealed class RepeatedFailureLog(TimeProvider time, int logFirst = 5, TimeSpan? every = null)
{
    private long _firstTimestamp;
    private long _lastLoggedTimestamp;
    private string? _lastReason;
    private bool _quietSaid;
    private HashSet<string>? _stacksLogged;

    public int LogFirst { get; } = logFirst;

    public TimeSpan Every { get; } = every ?? TimeSpan.FromMinutes(5);

    /// <summary>
    /// The wall-clock time of this outage's first failure, as its first line was stamped: a summary's "since" (the
    /// outage's length is <see cref="FailureLine.Down"/>, on the monotonic clock; the two differ after a clock step).
    /// </summary>
    public DateTimeOffset Since { get; private set; }

    /// <summary>Failed connects since the last success.</summary>
    public int Failures { get; private set; }

    /// <summary>Failed connects since the last logged one.</summary>
    public int Unlogged { get; private set; }

    /// <summary>Records a failed connect; what to log comes back.</summary>
    public FailureLine Failed(string reason)
    {
        var now = time.GetTimestamp();
        if (Failures++ == 0)
        {
            _firstTimestamp = now;
            Since = time.GetUtcNow();
        }

        var down = time.GetElapsedTime(_firstTimestamp, now);
        var changed = !string.Equals(reason, _lastReason, StringComparison.Ordinal);
        if (Failures <= LogFirst || changed || time.GetElapsedTime(_lastLoggedTimestamp, now) >= Every)
        {
            var unlogged = Unlogged;
            Unlogged = 0;
            _lastReason = reason;
            _lastLoggedTimestamp = now;
            return new FailureLine(FailureLineKind.Log, Failures, unlogged, down, NewReason: changed);
        }

        // The first one held back in an outage says that the rest will be.
        Unlogged++;
        var notice = !_quietSaid;
        _quietSaid = true;
        return new FailureLine(notice ? FailureLineKind.QuietFromNow : FailureLineKind.None, Failures, 0, down);
    }

    /// <summary>
    /// <paramref name="ex"/> the first time its kind (type and errno) is logged, null after: the stack goes into the
    /// journal once, and the lines that repeat or sum up a failure stay one line each.
    /// </summary>
    public Exception? StackOnce(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        _stacksLogged ??= new HashSet<string>(StringComparer.Ordinal);
        var key = ex.GetType().FullName + ":" + ex.HResult.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return _stacksLogged.Add(key) ? ex : null;
    }

    /// <summary>The operation succeeded: the outage it ends (failures and how long since the first), if there was one.</summary>
    public (int Failures, TimeSpan Down)? Succeeded()
    {
        if (Failures == 0)
        {
            return null;
        }

        var outage = (Failures, time.GetElapsedTime(_firstTimestamp));
        Failures = 0;
        Unlogged = 0;
        _lastReason = null;
        _quietSaid = false;
        return outage;
    }
}

public enum FailureLineKind
{
    /// <summary>Held back: nothing to write.</summary>
    None,

    /// <summary>Write the failure (with <see cref="FailureLine.Unlogged"/> when some were held back before it).</summary>
    Log,

    /// <summary>The first failure held back: write once that the same failure is now logged every few minutes.</summary>
    QuietFromNow,
}

/// <param name="Failures">Failed connects of this outage, this one included.</param>
/// <param name="Unlogged">Failures held back since the previous line.</param>
/// <param name="Down">Time since the outage's first failure.</param>
/// <param name="NewReason">The reason differs from the last line's (the outage's first failure included): a full line, not a summary.</param>
public readonly record struct FailureLine(FailureLineKind Kind, int Failures, int Unlogged, TimeSpan Down, bool NewReason = false);
