using EdgeTwin.Core.Events;

namespace EdgeTwin.Agent.Twin;

/// <summary>
/// Episode hysteresis of the anomaly stages (streaming per series, multivariate per group): a score at or above the
/// threshold opens an episode (one event), and it closes only after enough consecutive scores below half the
/// threshold, so a score hovering at the threshold does not raise an event per sample.
/// </summary>
internal sealed class AnomalyEpisode
{
    private bool _open;
    private int _quiet;

    /// <summary>Whether an episode is open (its event sent, not yet quiet long enough to close).</summary>
    public bool IsOpen => _open;

    /// <summary>Consecutive quiet scores counted towards closing the open episode.</summary>
    public int Quiet => _quiet;

    /// <summary>Continues an episode saved before a restart, so that it is not announced again.</summary>
    public void Restore(bool open, int quiet)
    {
        _open = open;
        _quiet = open ? Math.Max(0, quiet) : 0;
    }

    /// <summary>Advances the state; true when <paramref name="score"/> opens a new episode.</summary>
    public bool Step(double score, double threshold, int quietToClose)
    {
        if (!_open)
        {
            if (score >= threshold)
            {
                _open = true;
                _quiet = 0;
                return true;
            }

            return false;
        }

        _quiet = score < threshold * 0.5 ? _quiet + 1 : 0;
        if (_quiet >= quietToClose)
        {
            _open = false;
        }

        return false;
    }

    /// <summary>Critical when the score is well past the threshold (by 0.3, capped at 1), else warning.</summary>
    public static EventSeverity Severity(double score, double threshold) =>
        score >= Math.Min(1.0, threshold + 0.3) ? EventSeverity.Critical : EventSeverity.Warning;
}
