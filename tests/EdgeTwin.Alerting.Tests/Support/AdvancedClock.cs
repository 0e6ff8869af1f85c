using EdgeTwin.Tests.Shared;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>
/// The harness service's clock: <see cref="SteppableClock"/>, whose timers run on the thread that advances the fake time
/// (<see cref="Advance"/>), as on <see cref="TimeProvider.System"/> they run on a thread that holds none of the service's
/// locks.
/// </summary>
/// <remarks>
/// <see cref="FakeTimeProvider"/> runs a due timer on whichever thread reads the time first (its <c>GetUtcNow</c> and
/// <c>GetTimestamp</c> fire due timers). A sink's thread that read the clock under the manager's lock (saving an alert in
/// <c>MarkNotified</c>) in the instant between <c>Advance</c> moving the time and firing its timers took over the
/// service's tick; the tick waited for the rule engine's lock, which the test's next <c>Feed</c> held while it waited for
/// the manager's lock: both threads stuck for good, no CPU (about one fill of 10,000 changes in 40). A timer that fires
/// on any other thread than the advancing one is therefore run on the thread pool, and <see cref="Advance"/> returns
/// only once it has run, as if it had run on the advancing thread.
/// </remarks>
internal sealed class AdvancedClock(FakeTimeProvider time, SteppableClock clock) : TimeProvider
{
    [ThreadStatic]
    private static AdvancedClock? t_advancing;

    private int _handedOff;

    /// <summary>Timers that fired on another thread and have not finished yet.</summary>
    public int HandedOff => Volatile.Read(ref _handedOff);

    public override DateTimeOffset GetUtcNow() => clock.GetUtcNow();

    public override long GetTimestamp() => clock.GetTimestamp();

    public override long TimestampFrequency => clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => clock.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        clock.CreateTimer(s => Fire(callback, s), state, dueTime, period);

    /// <summary>Moves the fake time; due timers run on this thread, and those another thread took over have run on return.</summary>
    public void Advance(TimeSpan by)
    {
        var outer = t_advancing;
        t_advancing = this;
        try
        {
            time.Advance(by);
        }
        finally
        {
            t_advancing = outer;
        }

        if (!SpinWait.SpinUntil(() => HandedOff == 0, TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException($"{HandedOff} timer callback(s) handed to the thread pool did not finish within 30 s");
        }
    }

    private void Fire(TimerCallback callback, object? state)
    {
        if (ReferenceEquals(t_advancing, this))
        {
            callback(state);
            return;
        }

        Interlocked.Increment(ref _handedOff);
        ThreadPool.UnsafeQueueUserWorkItem(
            _ =>
            {
                try
                {
                    callback(state);
                }
                finally
                {
                    Interlocked.Decrement(ref _handedOff);
                }
            },
            null);
    }
}
