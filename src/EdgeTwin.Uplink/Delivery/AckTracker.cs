namespace EdgeTwin.Uplink.Delivery;

/// <summary>
/// Turns out-of-order completions (PUBACKs, delivery reports, gaps left by condensation) into the in-order
/// acknowledged position the outbox needs: the position only moves over a gap-free run of completed sequences.
/// Completions beyond the position are kept as sorted, merged ranges, so a long replay next to live traffic
/// costs a handful of ranges rather than one entry per message. Thread-safe.
/// </summary>
internal sealed class AckTracker
{
    private readonly Lock _gate = new();
    // Disjoint, non-adjacent, sorted closed ranges, all above _position + 1.
    private readonly List<(long Start, long End)> _ranges = [];
    private long _position;

    public AckTracker(long position) => _position = position;

    /// <summary>Highest sequence such that it and everything below it completed.</summary>
    public long Position
    {
        get { lock (_gate) { return _position; } }
    }

    /// <summary>Number of disjoint completed ranges held above the position (for tests and metrics).</summary>
    public int PendingRanges
    {
        get { lock (_gate) { return _ranges.Count; } }
    }

    /// <summary>Marks one sequence complete; returns the (possibly advanced) position.</summary>
    public long Complete(long sequence) => Complete(sequence, sequence);

    /// <summary>Marks [start, end] complete; returns the (possibly advanced) position.</summary>
    public long Complete(long start, long end)
    {
        if (end < start)
        {
            return Position;
        }

        lock (_gate)
        {
            if (end <= _position)
            {
                return _position;
            }

            start = Math.Max(start, _position + 1);
            Insert(start, end);
            while (_ranges.Count > 0 && _ranges[0].Start == _position + 1)
            {
                _position = _ranges[0].End;
                _ranges.RemoveAt(0);
            }

            return _position;
        }
    }

    /// <summary>True when the sequence is already complete (at or below the position, or inside a held range).</summary>
    public bool IsComplete(long sequence)
    {
        lock (_gate)
        {
            if (sequence <= _position)
            {
                return true;
            }

            var i = FindFirstEndingAtOrAfter(sequence);
            return i < _ranges.Count && _ranges[i].Start <= sequence;
        }
    }

    private void Insert(long start, long end)
    {
        // First range that could touch or follow [start, end]: its End >= start - 1.
        var i = FindFirstEndingAtOrAfter(start - 1);
        var j = i;
        while (j < _ranges.Count && _ranges[j].Start <= end + 1)
        {
            start = Math.Min(start, _ranges[j].Start);
            end = Math.Max(end, _ranges[j].End);
            j++;
        }

        if (j > i)
        {
            _ranges.RemoveRange(i, j - i);
        }

        _ranges.Insert(i, (start, end));
    }

    private int FindFirstEndingAtOrAfter(long value)
    {
        int lo = 0, hi = _ranges.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].End < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
