namespace EdgeTwin.Core.Samples;

/// <summary>
/// Tells, between two reads of a <see cref="TimeProvider"/>, how far its wall clock was stepped (by NTP or
/// <c>date -s</c>): the wall clock's advance minus the monotonic clock's. For a loop that keeps wall-clock times of its own
/// (a next run, a pause that ends at a time) and must move them with a step so that its intervals keep their length.
/// Differences within <see cref="SampleClock.ToleranceMs"/> are NTP slewing and timer jitter, not steps.
/// </summary>
public sealed class WallClockWatch(TimeProvider time)
{
    private long _lastWallMs;
    private long _lastTimestamp;

    /// <summary>
    /// Reads the clock: returns its wall time (Unix ms) and, in <paramref name="stepMs"/>, the step since the previous read
    /// (negative: backwards; 0 at the first read and within the tolerance).
    /// </summary>
    public long Read(out long stepMs)
    {
        var wall = time.GetUtcNow().ToUnixTimeMilliseconds();
        var timestamp = time.GetTimestamp();
        stepMs = 0;
        if (_lastTimestamp != 0)
        {
            var step = wall - _lastWallMs - (long)time.GetElapsedTime(_lastTimestamp, timestamp).TotalMilliseconds;
            if (Math.Abs(step) > SampleClock.ToleranceMs)
            {
                stepMs = step;
            }
        }

        _lastWallMs = wall;
        _lastTimestamp = timestamp == 0 ? 1 : timestamp;
        return wall;
    }
}
