namespace EdgeTwin.Core.Scheduling;

/// <summary>
/// Counts device loops that are runnable, as opposed to parked on a timer, a poll in flight or a concurrency slot.
/// Every wake-up increments the count synchronously in the callback that causes it (timer, poll completion,
/// slot hand-off), so after <c>FakeTimeProvider.Advance</c> returns, tests can wait for the count to reach zero
/// and know the scheduler has finished reacting to that instant.
/// </summary>
internal sealed class Activity
{
    private int _busy;

    public int Busy => Volatile.Read(ref _busy);

    public void Enter() => Interlocked.Increment(ref _busy);

    public void Park() => Interlocked.Decrement(ref _busy);
}

/// <summary>A one-shot wake-up: whichever cause fires first marks the loop runnable and resumes it.</summary>
internal sealed class Wake(Activity activity)
{
    private readonly TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _fired;

    public Task Task => _tcs.Task;

    public static readonly Action<object?> FireCallback = static s => ((Wake)s!).Fire();

    public static readonly TimerCallback FireTimerCallback = static s => ((Wake)s!).Fire();

    public void Fire()
    {
        if (Interlocked.Exchange(ref _fired, 1) == 0)
        {
            activity.Enter();
            _tcs.TrySetResult();
        }
    }
}

/// <summary>
/// Bounded concurrency as a FIFO of waiters. A release hands the slot straight to the next waiter (and marks it
/// runnable), so nobody can overtake a device that has waited longer.
/// </summary>
internal sealed class ConcurrencyGate(int slots, Activity activity)
{
    private readonly Lock _lock = new();
    private readonly Queue<Waiter> _waiters = new();
    private readonly int _slots = slots;
    private int _free = slots;

    public int InUse
    {
        get
        {
            lock (_lock)
            {
                return _slots - _free;
            }
        }
    }

    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiters.Count;
            }
        }
    }

    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_free > 0)
            {
                _free--;
                return ValueTask.CompletedTask;
            }

            waiter = new Waiter(activity);
            _waiters.Enqueue(waiter);
            activity.Park();
        }

        return waiter.WaitAsync(cancellationToken);
    }

    public void Release()
    {
        lock (_lock)
        {
            while (_waiters.TryDequeue(out var waiter))
            {
                if (waiter.TryGrant())
                {
                    return;
                }
            }

            _free++;
        }
    }

    private sealed class Waiter(Activity activity)
    {
        private readonly TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _state; // 0 waiting, 1 granted, 2 cancelled

        public bool TryGrant()
        {
            if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
            {
                return false;
            }

            activity.Enter();
            _tcs.TrySetResult();
            return true;
        }

        public async ValueTask WaitAsync(CancellationToken cancellationToken)
        {
            await using (cancellationToken.UnsafeRegister(static s => ((Waiter)s!).Cancel(), this))
            {
                await _tcs.Task.ConfigureAwait(false);
            }
        }

        private void Cancel()
        {
            if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
            {
                activity.Enter();
                _tcs.TrySetCanceled();
            }
        }
    }
}
