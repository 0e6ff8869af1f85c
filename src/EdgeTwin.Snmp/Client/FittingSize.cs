namespace EdgeTwin.Snmp.Client;

/// <summary>
/// How many varbinds (GET, GETNEXT) or repetitions (GETBULK) fit in one agent's answers, learned from its tooBig answers, so the
/// next request starts at a size that fits instead of paying the tooBig round trip again on every poll. Upward it probes
/// by halving the gap between the largest size answered and the smallest answered tooBig, one probe per
/// <see cref="ProbeAfter"/> answered requests, until the two are adjacent: after that no request draws tooBig.
/// Created for an agent only on its first tooBig; thread-safe (one agent's requests may run concurrently).
/// </summary>
internal sealed class FittingSize
{
    /// <summary>Answered requests at the learned size before one request tries a larger one.</summary>
    internal const int ProbeAfter = 8;

    private readonly Lock _lock = new();
    private int _tooBig = int.MaxValue; // the smallest size answered tooBig
    private int _fits;                  // the largest size answered below _tooBig (0: none yet)
    private int _answeredSinceProbe;

    /// <summary>The size to ask for when <paramref name="wanted"/> is wanted.</summary>
    public int For(int wanted)
    {
        lock (_lock)
        {
            if (wanted <= _fits || wanted < 2)
            {
                return wanted;
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
            _tooBig = Math.Min(_tooBig, size);
            if (_fits >= _tooBig)
            {
                _fits = 0; // the answers grew (longer values): learn again from below
            }
            return _fits > 0 ? _fits : Math.Max(1, size / 2);
        }
    }

    /// <summary>Records an answer (not tooBig) to <paramref name="size"/>.</summary>
    public void Answered(int size)
    {
        lock (_lock)
        {
            if (size > _fits && size < _tooBig)
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
            return $"{_fits} fit, {_tooBig} too big";
        }
    }
}
