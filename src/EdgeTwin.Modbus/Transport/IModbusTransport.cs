namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// Carries one request PDU to a unit and returns its response PDU. Implementations own framing, connection
/// and reconnection, apply their own timeout to every call, and translate socket and I/O failures into
/// <see cref="Protocol.ModbusCommunicationException"/> (timeouts: <see cref="Protocol.ModbusTimeoutException"/>)
/// and malformed bytes into <see cref="Protocol.ModbusProtocolException"/>. Exception responses are returned, not thrown.
/// </summary>
public interface IModbusTransport : IAsyncDisposable
{
    /// <summary>Where the transport talks to, for messages and metric tags (e.g. tcp://10.0.0.5:502).</summary>
    string Endpoint { get; }

    /// <returns>The number of bytes of the response PDU written into <paramref name="response"/>.</returns>
    ValueTask<int> SendAsync(byte unitId, ReadOnlyMemory<byte> request, Memory<byte> response, CancellationToken cancellationToken);
}

/// <summary>Exponential reconnect backoff: while it runs, calls fail fast instead of hammering a dead peer.</summary>
public sealed class ReconnectBackoff
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private TimeSpan _current;
    private long _nextAttempt;
    private long _lastFailure;

    public ReconnectBackoff(TimeSpan min, TimeSpan max, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _min = min;
        _max = max < min ? min : max;
        _current = min;
    }

    public int ConsecutiveFailures { get; private set; }

    /// <summary>Time left before the next attempt is allowed (zero when allowed now).</summary>
    public TimeSpan Remaining
    {
        get
        {
            long now = _time.GetTimestamp();
            return now >= _nextAttempt ? TimeSpan.Zero : _time.GetElapsedTime(now, _nextAttempt);
        }
    }

    /// <summary>
    /// <see cref="Remaining"/>, but never more than <paramref name="maxWait"/> after the last failed attempt: a caller
    /// that already spaces its own attempts (the poll scheduler backs a down device off by its interval) must not find a
    /// device that is back behind a wait grown by other callers' failures (units behind one gateway share it).
    /// </summary>
    public TimeSpan RemainingFor(TimeSpan? maxWait)
    {
        var remaining = Remaining;
        if (maxWait is not { } max || remaining <= TimeSpan.Zero || ConsecutiveFailures == 0)
        {
            return remaining;
        }

        var capped = max - _time.GetElapsedTime(_lastFailure);
        return capped <= TimeSpan.Zero ? TimeSpan.Zero : capped < remaining ? capped : remaining;
    }

    public void Failure()
    {
        ConsecutiveFailures++;
        _lastFailure = _time.GetTimestamp();
        _nextAttempt = _lastFailure + (long)(_current.TotalSeconds * _time.TimestampFrequency);
        _current = TimeSpan.FromTicks(Math.Min(_current.Ticks * 2, _max.Ticks));
    }

    public void Success()
    {
        ConsecutiveFailures = 0;
        _current = _min;
        _nextAttempt = 0;
    }
}
