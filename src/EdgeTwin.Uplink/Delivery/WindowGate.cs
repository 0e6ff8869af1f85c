namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// Slots of the in-flight window. A lane that finds the window full says how many slots must be free before it
/// resumes: the backlog lane asks for a batch, so a replay at 20,000 messages/s wakes once per batch of
/// acknowledgements instead of once per message (a thread-pool hop each); the live lane asks for one, so live data
/// waits no longer than it must. Taking a free slot never waits and never allocates.
/// </summary>
internal sealed class WindowGate
{
    private readonly Lock _lock = new();
    private readonly List<Waiter> _waiters = new(2);
    private int _free;

    public WindowGate(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _free = capacity;
    }

    public int Capacity { get; }

    public int Free
    {
        get
        {
            lock (_lock)
            {
                return _free;
            }
        }
    }

    /// <summary>Takes a slot; when none is free, waits until <paramref name="resumeWhenFree"/> are (capped at the capacity).</summary>
    public ValueTask WaitAsync(int resumeWhenFree, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_free > 0)
            {
                _free--;
                return ValueTask.CompletedTask;
            }

            cancellationToken.ThrowIfCancellationRequested();
            waiter = new Waiter(this, Math.Clamp(resumeWhenFree, 1, Capacity));
            _waiters.Add(waiter);
        }

        waiter.Register(cancellationToken);
        return new ValueTask(waiter.Task);
    }

    public void Release()
    {
        Waiter? granted = null;
        lock (_lock)
        {
            _free++;
            if (_free > Capacity)
            {
                _free = Capacity;
                throw new InvalidOperationException($"Window released more slots than its capacity {Capacity}");
            }

            for (var i = 0; i < _waiters.Count; i++)
            {
                if (_free >= _waiters[i].ResumeWhenFree)
                {
                    granted = _waiters[i];
                    _waiters.RemoveAt(i);
                    _free--; // the waiter's slot
                    break;
                }
            }
        }

        granted?.Grant();
    }

    private bool TryRemove(Waiter waiter)
    {
        lock (_lock)
        {
            return _waiters.Remove(waiter); // false: already granted, so it holds a slot and resumes normally
        }
    }

    private sealed class Waiter(WindowGate gate, int resumeWhenFree)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private CancellationTokenRegistration _registration;

        public int ResumeWhenFree { get; } = resumeWhenFree;

        public Task Task => _done.Task;

        public void Register(CancellationToken cancellationToken)
        {
            if (!cancellationToken.CanBeCanceled)
            {
                return;
            }

            _registration = cancellationToken.UnsafeRegister(static (s, ct) => ((Waiter)s!).OnCancel(ct), this);
            if (_done.Task.IsCompleted)
            {
                _registration.Dispose(); // granted while registering
            }
        }

        public void Grant()
        {
            _done.TrySetResult();
            _registration.Dispose();
        }

        private void OnCancel(CancellationToken cancellationToken)
        {
            if (gate.TryRemove(this))
            {
                _done.TrySetCanceled(cancellationToken);
            }
        }
    }
}
