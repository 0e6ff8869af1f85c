using Microsoft.Extensions.Time.Testing;

// Shared by the Core, Outbox and Alerting tests (linked into the other two projects).
namespace EdgeTwin.Tests.Shared;

/// <summary>
/// A clock whose wall time can be stepped (as NTP or <c>date -s</c> do) while its monotonic timestamp and timers run on
/// <paramref name="inner"/>'s steady time, like CLOCK_REALTIME vs CLOCK_MONOTONIC on Linux.
/// </summary>
internal sealed class SteppableClock(FakeTimeProvider inner, TimeSpan initialOffset = default) : TimeProvider
{
    private long _offsetTicks = initialOffset.Ticks;

    /// <summary>Steps the wall clock by <paramref name="by"/> (negative: backwards); timestamps and timers are not touched.</summary>
    public void Step(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public override long GetTimestamp() => inner.GetTimestamp();

    public override long TimestampFrequency => inner.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        inner.CreateTimer(callback, state, dueTime, period);
}
