namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// Rate limit for a warning a misbehaving device would repeat on every poll: the first occurrence is logged, later ones at
/// most once per interval, saying how many came since the last line (EdgeTwin.Outbox's OutboxFeeder limits its append
/// failures the same way; this library references nothing of the agent's).
/// </summary>
internal sealed class RepeatedWarning(TimeSpan interval, TimeProvider time)
{
    private readonly Lock _lock = new();
    private bool _logged;
    private long _loggedAt;
    private int _notLogged;

    /// <summary>
    /// Counts one occurrence. True when it is to be logged: <paramref name="count"/> is 0 for the first, else how many came
    /// since the last line (this one included), over <paramref name="over"/>.
    /// </summary>
    public bool Occurred(out int count, out TimeSpan over)
    {
        long now = time.GetTimestamp();
        lock (_lock)
        {
            if (_logged && time.GetElapsedTime(_loggedAt, now) < interval)
            {
                _notLogged++;
                count = 0;
                over = TimeSpan.Zero;
                return false;
            }

            count = _logged ? _notLogged + 1 : 0;
            over = _logged ? time.GetElapsedTime(_loggedAt, now) : TimeSpan.Zero;
            _logged = true;
            _loggedAt = now;
            _notLogged = 0;
            return true;
        }
    }
}
