namespace EdgeTwin.Simulator.Physics;

/// <summary>
/// A seeded random source with normal draws. Each simulated component gets its own, seeded from the
/// site's, so one component's draws never shift another's and a seed reproduces a run exactly.
/// </summary>
public sealed class SimRandom
{
    private readonly Random _random;
    private double _spare;
    private bool _hasSpare;

    public SimRandom(int seed)
    {
        _random = new Random(seed);
    }

    public double NextDouble() => _random.NextDouble();

    public double Uniform(double min, double max) => min + ((max - min) * _random.NextDouble());

    public int Next(int minInclusive, int maxExclusive) => _random.Next(minInclusive, maxExclusive);

    /// <summary>A seed for a child source.</summary>
    public int NextSeed() => _random.Next();

    /// <summary>Standard normal draw (Marsaglia polar method).</summary>
    public double Gaussian()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }

        double u, v, s;
        do
        {
            u = (2 * _random.NextDouble()) - 1;
            v = (2 * _random.NextDouble()) - 1;
            s = (u * u) + (v * v);
        }
        while (s >= 1 || s == 0);

        var factor = Math.Sqrt(-2 * Math.Log(s) / s);
        _spare = v * factor;
        _hasSpare = true;
        return u * factor;
    }
}
