namespace EdgeTwin.Outbox;

/// <summary>
/// Wakes uplinks waiting for entries beyond a sequence. A fresh completion source per generation: setting it
/// releases every waiter at once, without polling and without a lock held across an await.
/// </summary>
internal sealed class OutboxSignal : IDisposable
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = NewSource();
    private long _last;
    private bool _disposed;

    /// <summary>Records that entries up to <paramref name="lastSequence"/> exist and wakes every waiter.</summary>
    public void Set(long lastSequence)
    {
        TaskCompletionSource toRelease;
        lock (_gate)
        {
            if (lastSequence > _last)
            {
                _last = lastSequence;
            }

            toRelease = _next;
            _next = NewSource();
        }

        toRelease.TrySetResult();
    }

    public async ValueTask WaitAsync(long afterSequence, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_last > afterSequence)
                {
                    return;
                }

                wait = _next.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        TaskCompletionSource toFail;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            toFail = _next;
        }

        toFail.TrySetException(new ObjectDisposedException(nameof(IOutbox), "The outbox was disposed while an uplink waited for entries."));
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
