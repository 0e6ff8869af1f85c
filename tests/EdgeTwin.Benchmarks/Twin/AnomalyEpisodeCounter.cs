namespace EdgeTwin.Benchmarks.Twin;

/// <summary>The agent's episode rule: an event when the score reaches the threshold, closed after 30 scores below half of it.</summary>
internal struct AnomalyEpisodeCounter
{
    private bool _open;
    private int _quiet;

    public int Events;

    public bool Step(double score, double threshold)
    {
        if (!_open)
        {
            _open = score >= threshold;
            _quiet = 0;
            return _open;
        }

        _quiet = score < threshold / 2 ? _quiet + 1 : 0;
        _open = _quiet < 30;
        return false;
    }
}
