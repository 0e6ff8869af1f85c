namespace EdgeTwin.Simulator.Physics;

/// <summary>Properties of air near room conditions.</summary>
public static class Air
{
    /// <summary>Specific heat, kJ/(kg·K).</summary>
    public const double Cp = 1.006;

    /// <summary>Density, kg/m³.</summary>
    public const double Density = 1.2;

    /// <summary>m³/s to CFM (the unit cooling units usually report airflow in).</summary>
    public const double CubicMetresPerSecondToCfm = 2118.88;
}

/// <summary>
/// What a sensor reports for a physical quantity: a first-order lag behind the true value plus
/// Gaussian noise, so the twin sees the same imperfect signals a real site gives.
/// </summary>
public sealed class SensorChannel
{
    private readonly double _tauSeconds;
    private readonly double _noiseSigma;
    private double _lagged;
    private readonly double _floor;
    private bool _initialised;

    /// <param name="tauSeconds">Time constant of the sensor's lag.</param>
    /// <param name="noiseSigma">Standard deviation of the noise on each reading.</param>
    /// <param name="floor">Lowest value the sensor can report (0 for magnitudes such as vibration).</param>
    public SensorChannel(double tauSeconds, double noiseSigma, double floor = double.NegativeInfinity)
    {
        _tauSeconds = tauSeconds;
        _noiseSigma = noiseSigma;
        _floor = floor;
    }

    /// <summary>The latest reading (lagged value plus this step's noise).</summary>
    public double Reading { get; private set; }

    public void Update(double trueValue, double dtSeconds, SimRandom random)
    {
        if (!_initialised)
        {
            _lagged = trueValue;
            _initialised = true;
        }
        else
        {
            _lagged += (trueValue - _lagged) * (1 - Math.Exp(-dtSeconds / _tauSeconds));
        }

        Reading = Math.Max(_floor, _lagged + (_noiseSigma * random.Gaussian()));
    }
}
