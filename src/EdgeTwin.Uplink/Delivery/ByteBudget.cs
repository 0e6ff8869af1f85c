namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// The uplink's byte-rate budget (<see cref="DeliveryOptions.MaxBytesPerSecond"/>, a metered link): a token bucket in
/// bytes, refilled at the rate up to one second of it. Live sends never wait: they spend what they use, into debt if
/// need be, so an alert or a prediction is never held behind a throttled replay. The backlog lane waits until the
/// bucket is out of debt and then spends what it sends, so the replay only uses what live traffic leaves over.
/// Spending after the send (the size is known only once encoded) keeps the rate over any window within one message.
/// Shared by both lanes, hence the lock; one per uplink, so a reconnect does not grant a fresh second.
/// </summary>
internal sealed class ByteBudget
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly double _rate;
    private readonly double _capacity;
    private double _tokens;
    private long _last;
    private long _waitedTicks; // Stopwatch ticks the backlog spent waiting for the budget

    public ByteBudget(double bytesPerSecond, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerSecond);
        _time = time;
        _rate = bytesPerSecond;
        _capacity = bytesPerSecond; // one second: a burst never exceeds what the link carries in a second
        _tokens = _capacity;
        _last = time.GetTimestamp();
    }

    public double BytesPerSecond => _rate;

    /// <summary>How long the backlog lane has waited for the budget in total.</summary>
    public TimeSpan Waited => TimeSpan.FromSeconds((double)Volatile.Read(ref _waitedTicks) / _time.TimestampFrequency);

    /// <summary>Records bytes sent; never waits.</summary>
    public void Spend(long bytes)
    {
        lock (_lock)
        {
            Refill();
            _tokens -= bytes;
        }
    }

    /// <summary>Waits until the bucket is out of debt (what live sends and earlier replay spent is paid back).</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        long? started = null;
        while (true)
        {
            TimeSpan wait;
            lock (_lock)
            {
                Refill();
                if (_tokens > 0)
                {
                    break;
                }

                wait = TimeSpan.FromSeconds((1 - _tokens) / _rate);
            }

            started ??= _time.GetTimestamp();
            // At least 1 ms (the timer cannot do better); at most 1 s, so a live burst's debt is re-read soon.
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp(wait.TotalMilliseconds, 1, 1000)), _time, cancellationToken).ConfigureAwait(false);
        }

        if (started is { } s)
        {
            Interlocked.Add(ref _waitedTicks, _time.GetTimestamp() - s);
        }
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(_capacity, _tokens + (_time.GetElapsedTime(_last, now).TotalSeconds * _rate));
        _last = now;
    }
}
