namespace EdgeTwin.Core.Scheduling;

/// <summary>Settings shared by every device the scheduler polls.</summary>
public sealed class PollSchedulerOptions
{
    /// <summary>Polls in flight at once, over all devices. Waiting for a slot never moves a device's grid.</summary>
    public int MaxConcurrency { get; set; } = 64;

    /// <summary>Each poll starts up to this fraction of the interval after its grid time (0 to 0.5), so devices
    /// sharing a phase do not hit the network in the same millisecond.</summary>
    public double JitterFraction { get; set; } = 0.05;

    /// <summary>Consecutive failed polls before a device is declared down (a <c>device_down</c> event).</summary>
    public int FailuresBeforeDown { get; set; } = 3;

    /// <summary>Ceiling of the exponential backoff between polls of a down device.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Seed for phase jitter; null picks one at random. Tests fix it for reproducible times.</summary>
    public int? RandomSeed { get; set; }

    internal void Validate()
    {
        if (MaxConcurrency < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrency), MaxConcurrency, "MaxConcurrency must be at least 1.");
        }

        if (JitterFraction is < 0 or > 0.5 || double.IsNaN(JitterFraction))
        {
            throw new ArgumentOutOfRangeException(nameof(JitterFraction), JitterFraction, "JitterFraction must be within [0, 0.5].");
        }

        if (FailuresBeforeDown < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(FailuresBeforeDown), FailuresBeforeDown, "FailuresBeforeDown must be at least 1.");
        }

        if (MaxBackoff <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBackoff), MaxBackoff, "MaxBackoff must be positive.");
        }
    }
}
