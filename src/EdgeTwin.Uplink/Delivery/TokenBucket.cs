namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// Rate limiter for the backlog lane: tokens refill continuously at <c>ratePerSecond</c> up to <c>burst</c>.
/// Driven by a <see cref="TimeProvider"/> so tests can move time by hand. Not thread-safe: one lane owns it.
/// </summary>
internal sealed class TokenBucket
{
    private readonly TimeProvider _time;
    private readonly double _ratePerSecond;
    private readonly double _burst;
    private double _tokens;
    private long _lastTimestamp;

    public TokenBucket(double ratePerSecond, double burst, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _time = time;
        _ratePerSecond = ratePerSecond;
        _burst = burst;
        _tokens = burst;
        _lastTimestamp = time.GetTimestamp();
    }

    /// <summary>Takes one token if available; otherwise returns how long until one will be.</summary>
    public bool TryTake(out TimeSpan wait)
    {
        Refill();
        if (_tokens >= 1)
        {
            _tokens -= 1;
            wait = TimeSpan.Zero;
            return true;
        }

        wait = TimeSpan.FromSeconds((1 - _tokens) / _ratePerSecond);
        return false;
    }

    /// <summary>Waits for and takes one token.</summary>
    public async ValueTask TakeAsync(CancellationToken cancellationToken)
    {
        while (!TryTake(out var wait))
        {
            // Never sleep less than 1 ms: the timer cannot do better and a zero delay would spin.
            await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait, _time, cancellationToken)
                .ConfigureAwait(false);
        }
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(_lastTimestamp, now);
        _lastTimestamp = now;
        _tokens = Math.Min(_burst, _tokens + (elapsed.TotalSeconds * _ratePerSecond));
    }
}
