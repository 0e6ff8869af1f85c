namespace EdgeTwin.Core.Samples;

/// <summary>
/// Tells, between two reads of a <see cref="TimeProvider"/>, how far its wall clock was stepped (by NTP or
/// <c>date -s</c>): the wall clock's advance minus the monotonic clock's. For a loop that keeps wall-clock times of its own
/// (a next run, a pause that ends at a time) and must move them with a step so that its intervals keep their length, and
/// for the agent's clock-step watcher. Differences within the tolerance (<see cref="SampleClock.ToleranceMs"/> unless
/// given) are NTP slewing and timer jitter, not steps.
/// </summary>
public sealed class WallClockWatch
{
    /// <summary>
    /// A read whose two monotonic timestamps around the wall-clock read are further apart than this is taken again: the
    /// thread was descheduled (a GC pause, a loaded CPU) between them, and the pause would count as a step of its length.
    /// </summary>
    private static readonly TimeSpan ReadBracket = TimeSpan.FromMilliseconds(50);

    private const int ReadAttempts = 4;

    private readonly TimeProvider _time;
    private readonly long _toleranceMs;
    private long _lastWallMs;
    private long _lastTimestamp;

    public WallClockWatch(TimeProvider time)
        : this(time, SampleClock.ToleranceMs)
    {
    }

    /// <param name="time">The clock.</param>
    /// <param name="toleranceMs">A difference up to this (ms) is not a step.</param>
    public WallClockWatch(TimeProvider time, long toleranceMs)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegative(toleranceMs);
        _time = time;
        _toleranceMs = toleranceMs;
    }

    /// <summary>
    /// Reads the clock: returns its wall time (Unix ms) and, in <paramref name="stepMs"/>, the step since the previous read
    /// (negative: backwards; 0 at the first read and within the tolerance).
    /// </summary>
    public long Read(out long stepMs)
    {
        var (wall, timestamp) = ReadPair();
        stepMs = 0;
        if (_lastTimestamp != 0)
        {
            var step = wall - _lastWallMs - (long)_time.GetElapsedTime(_lastTimestamp, timestamp).TotalMilliseconds;
            if (Math.Abs(step) > _toleranceMs)
            {
                stepMs = step;
            }
        }

        _lastWallMs = wall;
        _lastTimestamp = timestamp == 0 ? 1 : timestamp;
        return wall;
    }

    /// <summary>
    /// The wall clock and a monotonic timestamp taken together: the timestamp is the midpoint of two that bracket the wall
    /// read, retried while they are far apart. A pause between the two reads (a stop-the-world GC, a busy CPU, a suspended
    /// VM) advanced the monotonic reading but not the wall one: that read counted the pause as a step back, the next
    /// as a step forward. A pause that outlasts every attempt is taken as it is (a midpoint within half of it).
    /// </summary>
    private (long WallMs, long Timestamp) ReadPair()
    {
        var bracket = (long)(ReadBracket.TotalSeconds * _time.TimestampFrequency);
        long wall = 0, before = 0, after = 0;
        for (var attempt = 0; attempt < ReadAttempts; attempt++)
        {
            before = _time.GetTimestamp();
            wall = _time.GetUtcNow().ToUnixTimeMilliseconds();
            after = _time.GetTimestamp();
            if (after - before <= bracket)
            {
                break;
            }
        }

        return (wall, before + ((after - before) / 2));
    }
}
