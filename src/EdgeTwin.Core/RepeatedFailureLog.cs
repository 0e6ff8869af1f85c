namespace EdgeTwin.Core;

/// <summary>
/// Decides which failures of a retried operation (a state file written at every checkpoint) are logged, so that a
/// failure that lasts a day of outage does not write a line at every retry to the journal, which shares the gateway's
/// flash and rotates by size (the first, most useful line would be rotated away). The first failure is logged with its
/// stack; a failure with another cause is logged at once (a new cause is never hidden), its stack once per cause;
/// repeats of the same cause are summed up at most once per <see cref="SummaryEvery"/> ("still failing since T: N
/// attempts"); the first success after failures is reported once ("recovered after D"). Not thread-safe: one caller
/// at a time (each user writes from one task at a time).
/// </summary>
public sealed class RepeatedFailureLog(TimeProvider time, TimeSpan summaryEvery)
{
    private readonly HashSet<string> _stacksLogged = new(StringComparer.Ordinal);
    private string? _cause;
    private long _loggedAt;
    private long _sinceTs;

    /// <summary>
    /// The shortest time between two summary lines of the same cause (5 min where the stages use it);
    /// <see cref="TimeSpan.MaxValue"/> for none (one line per cause and run of failures).
    /// </summary>
    public TimeSpan SummaryEvery { get; } = summaryEvery;

    /// <summary>True while the operation fails (from its first failure to its next success).</summary>
    public bool Failing => _cause is not null;

    /// <summary>When the current run of failures began (wall clock; meaningful while <see cref="Failing"/>).</summary>
    public DateTimeOffset Since { get; private set; }

    /// <summary>Failed attempts since the current run of failures began, the one being reported included.</summary>
    public int Attempts { get; private set; }

    /// <summary>
    /// Called at each failure with its <paramref name="cause"/> (a short, stable text: the errno's meaning, not a
    /// message with a changing detail); says what to log now.
    /// </summary>
    public FailureVerdict Failed(string cause)
    {
        ArgumentNullException.ThrowIfNull(cause);
        var now = time.GetTimestamp();
        if (_cause is null)
        {
            _cause = cause;
            _sinceTs = now;
            Since = time.GetUtcNow();
            Attempts = 1;
            _loggedAt = now;
            return FailureVerdict.First;
        }

        Attempts++;
        if (!string.Equals(_cause, cause, StringComparison.Ordinal))
        {
            _cause = cause;
            _loggedAt = now;
            return FailureVerdict.NewCause;
        }

        if (time.GetElapsedTime(_loggedAt, now) >= SummaryEvery)
        {
            _loggedAt = now;
            return FailureVerdict.StillFailing;
        }

        return FailureVerdict.Quiet;
    }

    /// <summary>
    /// Called at each success: true (once) when it ends a run of failures, with how long they lasted and how many
    /// attempts failed; the state is then reset, so the next failure is a first one again.
    /// </summary>
    public bool Succeeded(out TimeSpan failedFor, out int attempts)
    {
        failedFor = TimeSpan.Zero;
        attempts = 0;
        if (_cause is null)
        {
            return false;
        }

        failedFor = time.GetElapsedTime(_sinceTs);
        attempts = Attempts;
        _cause = null;
        Attempts = 0;
        return true;
    }

    /// <summary>
    /// <paramref name="ex"/> the first time its kind (type and errno) is logged, null after: a repeated or summed-up
    /// failure is one line, and its stack is already in the journal.
    /// </summary>
    public Exception? StackOnce(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        var key = ex.GetType().FullName + ":" + ex.HResult.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return _stacksLogged.Add(key) ? ex : null;
    }

}

/// <summary>What <see cref="RepeatedFailureLog.Failed"/> says to log.</summary>
public enum FailureVerdict
{
    /// <summary>Nothing: the same cause was logged less than <see cref="RepeatedFailureLog.SummaryEvery"/> ago.</summary>
    Quiet,

    /// <summary>The first failure after a success (or since start): the full line, with its stack.</summary>
    First,

    /// <summary>Still failing, but for another cause than the last line said: the full line.</summary>
    NewCause,

    /// <summary>The same cause for <see cref="RepeatedFailureLog.SummaryEvery"/> since the last line: one summary line.</summary>
    StillFailing,
}
