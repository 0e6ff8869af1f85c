namespace EdgeTwin.Snmp.Client;

/// <summary>
/// How many varbinds (GET, GETNEXT) or repetitions (GETBULK) fit in one agent's answers, learned from its tooBig
/// answers, so the next request starts at a size that fits instead of paying the tooBig round trip again on every poll.
/// Upward it probes by halving the gap between the largest size answered and the smallest answered tooBig, one probe
/// per <see cref="ProbeAfter"/> answered requests, until the two are adjacent. The refused size is believed for
/// <see cref="RecheckAfter"/> after it was last refused; then one request asks for it again, and if that is answered
/// (the agent was reconfigured, updated, or the tooBig was a busy agent's transient) the bound is dropped and probing
/// goes on upward. Created for an agent only on its first tooBig; thread-safe (one agent's requests may run
/// concurrently); allocation-free.
/// </summary>
internal sealed class FittingSize(TimeProvider time)
{
    /// <summary>Answered requests at the learned size before one request tries a larger one.</summary>
    internal const int ProbeAfter = 8;

    /// <summary>How long a refused size is believed before one request asks for it again.</summary>
    // Wall time rather than every N answers: the cost (one possible tooBig) stays once an hour per agent and size
    // whatever the poll rate, and an agent's buffer changes with its configuration or firmware, i.e. rarely.
    internal static readonly TimeSpan RecheckAfter = TimeSpan.FromHours(1);

    private readonly Lock _lock = new();
    private int _tooBig = int.MaxValue; // the smallest size answered tooBig (int.MaxValue: none, or no longer believed)
    private int _fits;                  // the largest size answered below _tooBig (0: none yet)
    private int _answeredSinceProbe;
    private long _tooBigSince = time.GetTimestamp(); // when _tooBig was last refused (or last asked again)

    /// <summary>The size to ask for when <paramref name="wanted"/> is wanted.</summary>
    public int For(int wanted)
    {
        lock (_lock)
        {
            if (wanted <= _fits || wanted < 2)
            {
                return wanted;
            }
            if (wanted >= _tooBig && time.GetElapsedTime(_tooBigSince) >= RecheckAfter)
            {
                // Restarted now, so concurrent requests (or one that gets no answer) do not all ask again.
                _tooBigSince = time.GetTimestamp();
                return _tooBig;
            }
            var size = _fits > 0 ? _fits : Math.Max(1, _tooBig / 2);
            if (_answeredSinceProbe >= ProbeAfter && _tooBig - _fits > 1 && _fits > 0)
            {
                size = _fits + (_tooBig - _fits) / 2;
                _answeredSinceProbe = 0;
            }
            return Math.Min(wanted, size);
        }
    }

    /// <summary>Records a tooBig answer to <paramref name="size"/>; returns the size to ask again with (smaller).</summary>
    public int TooBig(int size)
    {
        lock (_lock)
        {
            if (size <= _tooBig)
            {
                _tooBig = size;
                _tooBigSince = time.GetTimestamp();
            }
            if (_fits >= _tooBig)
            {
                // The answers grew (longer values): the size that fitted was just refused, so nothing below it is known
                // to fit. Half is a bisection step: one more tooBig at most unless they more than doubled, where stepping
                // down by one pays a tooBig per step (net-snmp's tooBig depends on the answer's encoded size only).
                _fits = 0;
            }
            return _fits > 0 ? _fits : Math.Max(1, size / 2);
        }
    }

    /// <summary>Records an answer (not tooBig) to <paramref name="size"/>.</summary>
    public void Answered(int size)
    {
        lock (_lock)
        {
            if (size >= _tooBig)
            {
                // The agent now takes what it refused: forget the bound and probe upward again.
                _tooBig = int.MaxValue;
                _fits = size;
            }
            else if (size > _fits)
            {
                _fits = size;
            }
            _answeredSinceProbe++;
        }
    }

    public override string ToString()
    {
        lock (_lock)
        {
            return _tooBig == int.MaxValue ? $"{_fits} fit, nothing too big" : $"{_fits} fit, {_tooBig} too big";
        }
    }
}
