using System.Globalization;

namespace EdgeTwin.Agent.Sources;

/// <summary>
/// Rate-limits a log line that is written when a device's state changes (which points are unreadable and why). A
/// state that changes now and then is logged at every change; one that flaps (a probe that answers every other poll,
/// a firmware that garbles a value in one answer of three) is logged at its first change, then at most once per
/// <see cref="Every"/>, saying how many changes went unlogged, and the state it ends in is logged once the period is
/// over even when it no longer changes, so the journal's last word is the device's current state.
/// </summary>
internal sealed class ChangeLogThrottle(TimeProvider time, TimeSpan every)
{
    private long _loggedAt;
    private bool _logged;
    private int _unlogged;

    public TimeSpan Every { get; } = every;

    /// <summary>
    /// Called once per poll with whether the state changed; true when the current state is to be logged now, with
    /// <paramref name="note"/> to append (empty, or how many changes were not logged).
    /// </summary>
    public bool ShouldLog(bool changed, out string note)
    {
        note = "";
        var now = time.GetTimestamp();
        var due = !_logged || time.GetElapsedTime(_loggedAt, now) >= Every;
        if (changed)
        {
            if (!due)
            {
                _unlogged++;
                return false;
            }
        }
        else if (_unlogged == 0 || !due)
        {
            return false;
        }

        if (_unlogged == 1)
        {
            // One held-back change is not flapping: say why it comes late rather than "it keeps changing".
            note = string.Create(CultureInfo.InvariantCulture,
                $" (after 1 more change in {Human(time.GetElapsedTime(_loggedAt, now))} that was not logged: a change within {Human(Every)} of the last line is logged when they are over)");
        }
        else if (_unlogged > 1)
        {
            note = string.Create(CultureInfo.InvariantCulture,
                $" (after {_unlogged} more changes in {Human(time.GetElapsedTime(_loggedAt, now))} that were not logged: it keeps changing, and is logged at most every {Human(Every)} while it does)");
        }

        _logged = true;
        _loggedAt = now;
        _unlogged = 0;
        return true;
    }

    private static string Human(TimeSpan span) => span.TotalHours >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours}h {span.Minutes}m")
        : string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalMinutes}m {span.Seconds}s");
}
