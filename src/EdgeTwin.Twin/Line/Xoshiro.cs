namespace EdgeTwin.Twin.Line;

/// <summary>
/// xoshiro256** generator (Blackman and Vigna) kept as a value type so a simulation can hold one
/// stream per station without allocating: per-station streams keep common random numbers aligned
/// between a baseline run and a what-if run (paired replications give tight differences).
/// </summary>
internal struct Xoshiro
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro(ulong seed)
    {
        // SplitMix64 expands the seed so that nearby seeds give unrelated streams.
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in (0, 1]: never 0, so Log(U) is finite.</summary>
    public double NextOpenUnit() => ((NextUInt64() >> 11) + 1) * (1.0 / 9007199254740992.0);

    /// <summary>Number of failures before the first success of a Bernoulli(p) sequence (support 0, 1, 2, …).</summary>
    public long Geometric0(double p)
    {
        if (p <= 0) return long.MaxValue / 4;
        if (p >= 1) return 0;
        double g = Math.Floor(Math.Log(NextOpenUnit()) / Math.Log(1 - p));
        return g > long.MaxValue / 4 ? long.MaxValue / 4 : (long)g;
    }

    /// <summary>Standard normal by Box–Muller (one value per call; the pair's second value is discarded for simplicity).</summary>
    public double NextGaussian()
    {
        double u1 = NextOpenUnit();
        double u2 = NextOpenUnit();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public static ulong Mix(ulong a, ulong b)
    {
        ulong x = a * 0x9E3779B97F4A7C15UL ^ (b + 0x632BE59BD9B4E019UL);
        return SplitMix(ref x);
    }
}
