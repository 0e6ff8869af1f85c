namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// Slots of the in-flight window, first come first served. Taking a free slot never waits and never allocates
/// (SemaphoreSlim allocated a cancellation promise for every wait with a token, one per message in a replay).
/// A waiter resumes at the first free slot. Waiting for a batch of slots was tried and is wrong: a broker with Nagle
/// on (mosquitto's default) holds its later PUBACKs until we ACK its first segment, our kernel delays that ACK while
/// we have nothing to send, and a replay stalled for the delayed-ACK timeout (40 ms) per window (2,000 messages/s
/// with MQTT 5's receive maximum of 20).
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

    /// <summary>Takes a slot, waiting for one when none is free.</summary>
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

            cancellationToken.ThrowIfCancellationRequested();
            waiter = new Waiter(this);
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

            if (_waiters.Count > 0)
            {
                granted = _waiters[0];
                _waiters.RemoveAt(0);
                _free--; // the waiter's slot
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

    private sealed class Waiter(WindowGate gate)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private CancellationTokenRegistration _registration;

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
