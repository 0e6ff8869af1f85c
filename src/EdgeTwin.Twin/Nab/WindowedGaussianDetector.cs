namespace EdgeTwin.Twin.Nab;

/// <summary>
/// NAB's "windowed Gaussian" baseline (mean and standard deviation over the last 6,400 rows, score = 1 - Q(z) of the current
/// value). Only a yardstick for our NAB scorer (SCORING.md: it should land near 39.6 standard); not used by the agent.
/// </summary>
public sealed class WindowedGaussianDetector
{
    private const int StepSize = 100;
    private readonly double[] _window;
    private readonly double[] _step = new double[StepSize];
    private int _count;
    private int _pos;
    private int _stepCount;
    private double _mean;
    private double _std = 1.0;

    public WindowedGaussianDetector(int windowSize = 6400) => _window = new double[windowSize];

    /// <summary>As NAB's detector: two-sided tail (the deviation's magnitude), statistics refreshed every 100 rows once the window is full, std floor 1e-6.</summary>
    public double Update(double value)
    {
        var score = 0.0;
        if (_count > 0)
        {
            var z = (value - _mean) / _std;
            score = 1.0 - (0.5 * Anomaly.StreamingAnomalyDetector.Erfc(z / Math.Sqrt(2.0)));
        }

        if (_count < _window.Length)
        {
            _window[_count++] = value;
            Refresh();
        }
        else
        {
            _step[_stepCount++] = value;
            if (_stepCount == StepSize)
            {
                for (var i = 0; i < StepSize; i++)
                {
                    _window[_pos] = _step[i];
                    _pos = (_pos + 1) % _window.Length;
                }

                _stepCount = 0;
                Refresh();
            }
        }

        return score;
    }

    private void Refresh()
    {
        var sum = 0.0;
        for (var i = 0; i < _count; i++)
        {
            sum += _window[i];
        }

        _mean = sum / _count;
        var sq = 0.0;
        for (var i = 0; i < _count; i++)
        {
            sq += (_window[i] - _mean) * (_window[i] - _mean);
        }

        _std = Math.Sqrt(sq / _count);
        if (_std == 0.0)
        {
            _std = 0.000001;
        }
    }
}
