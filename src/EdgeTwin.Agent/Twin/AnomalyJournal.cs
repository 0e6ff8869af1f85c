namespace EdgeTwin.Agent.Twin;

/// <summary>
/// Which anomaly episodes get a journal line of their own: the first <see cref="PerWindow"/> of each
/// <see cref="Window"/>, then one line summing up the rest. Every episode is still an event (alert rules, outbox,
/// uplink); the journal is for the operator, and a site of 4,000 series wrote about ten a minute (a 150-min soak of the
/// simulator: 1,266 lines in the 110 min from 28 min after start, up to 196 in ten minutes, mostly PDU outlets), on the
/// same flash as everything else. Not thread-safe: the stage's loop owns it.
/// </summary>
internal sealed class AnomalyJournal(TimeProvider time, int perWindow = 5, TimeSpan? window = null)
{
    private long _windowStart;
    private bool _windowOpen;
    private int _logged;

    public int PerWindow { get; } = perWindow;

    public TimeSpan Window { get; } = window ?? TimeSpan.FromMinutes(5);

    /// <summary>Episodes of the current window not logged one by one.</summary>
    public int Held { get; private set; }

    /// <summary>The highest-scoring held episode: its series, score and value.</summary>
    public (string Series, double Score, double Value) Highest { get; private set; }

    /// <summary>
    /// Whether this episode gets its own line; one that does not is counted (and kept when it is the highest). Call
    /// <see cref="TakeSummary"/> first, so that a window's summary comes before the next window's lines.
    /// </summary>
    public bool ShouldLog(string series, double score, double value)
    {
        var now = time.GetTimestamp();
        if (!_windowOpen || time.GetElapsedTime(_windowStart, now) >= Window)
        {
            _windowOpen = true;
            _windowStart = now;
            _logged = 0;
        }

        if (_logged < PerWindow)
        {
            _logged++;
            return true;
        }

        if (Held++ == 0 || score > Highest.Score)
        {
            Highest = (series, score, value);
        }

        return false;
    }

    /// <summary>The held episodes once their window has passed (null before, or when none were held); the count restarts.</summary>
    public (int Count, string Series, double Score, double Value)? TakeSummary()
    {
        if (Held == 0 || time.GetElapsedTime(_windowStart) < Window)
        {
            return null;
        }

        var summary = (Held, Highest.Series, Highest.Score, Highest.Value);
        Held = 0;
        Highest = default;
        _windowOpen = false;
        return summary;
    }
}
