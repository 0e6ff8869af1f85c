namespace EdgeTwin.Core.Sources;

/// <summary>
/// The deadline of one poll, for a source whose device shares a line with others (units on one RS-485 bus). The
/// device's <c>timeout</c> measures its own exchanges: while the source says it is waiting for the line (another
/// unit's request is on it), that clock stops, and the wait is bounded by what the source says instead (how long the
/// turns ahead of it can take), so a wedged line still fails the poll. Sources that never call it keep the plain
/// rule: the timeout runs from the start of the poll.
/// </summary>
public sealed class PollDeadline
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private TimeSpan _budget;
    private long _since;
    private TimeSpan _maxWait;
    private bool _waiting;
    private bool _expired;
    private ITimer? _timer;

    internal PollDeadline(TimeProvider time, TimeSpan timeout)
    {
        _time = time;
        _budget = timeout;
        _since = time.GetTimestamp();
    }

    /// <summary>Whether the deadline passed while the source was waiting for the line (not in its own exchange).</summary>
    internal bool ExpiredWaiting { get; private set; }

    /// <summary>How long the source had been waiting for the line when the deadline passed.</summary>
    internal TimeSpan Waited { get; private set; }

    /// <summary>
    /// The source now waits for the shared line: the device's timeout stops running, and the poll fails if the wait
    /// lasts longer than <paramref name="maxWait"/>. Calling it again while waiting starts a new bound.
    /// </summary>
    public void WaitingForLine(TimeSpan maxWait)
    {
        lock (_lock)
        {
            if (_expired)
            {
                return;
            }

            var now = _time.GetTimestamp();
            if (!_waiting)
            {
                _budget -= _time.GetElapsedTime(_since, now);
                _waiting = true;
            }

            _since = now;
            _maxWait = maxWait < TimeSpan.Zero ? TimeSpan.Zero : maxWait;
            RearmLocked(now);
        }
    }

    /// <summary>The source has the line: the device's timeout runs again with what it had left.</summary>
    public void OnLine()
    {
        lock (_lock)
        {
            if (_expired || !_waiting)
            {
                return;
            }

            var now = _time.GetTimestamp();
            _waiting = false;
            _since = now;
            RearmLocked(now);
        }
    }

    /// <summary>Starts timing with <paramref name="timer"/> (created disarmed, firing <see cref="OnTimer"/>).</summary>
    internal void Arm(ITimer timer)
    {
        lock (_lock)
        {
            _timer = timer;
            RearmLocked(_time.GetTimestamp());
        }
    }

    /// <summary>Stops timing before the timer is disposed, so a late call from the source cannot touch it.</summary>
    internal void Disarm()
    {
        lock (_lock)
        {
            _timer = null;
        }
    }

    /// <summary>
    /// The timer's callback: true when the deadline has really passed (then it stays passed). A timer that fired just as
    /// the source moved the deadline is re-armed instead.
    /// </summary>
    internal bool OnTimer()
    {
        lock (_lock)
        {
            if (_expired)
            {
                return true;
            }

            var now = _time.GetTimestamp();
            var left = Left(now);
            if (left > TimeSpan.Zero)
            {
                _timer?.Change(left, Timeout.InfiniteTimeSpan);
                return false;
            }

            _expired = true;
            ExpiredWaiting = _waiting;
            Waited = _waiting ? _time.GetElapsedTime(_since, now) : TimeSpan.Zero;
            return true;
        }
    }

    private TimeSpan Left(long now) => (_waiting ? _maxWait : _budget) - _time.GetElapsedTime(_since, now);

    private void RearmLocked(long now)
    {
        if (_timer is null)
        {
            return;
        }

        var left = Left(now);
        _timer.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }
}
