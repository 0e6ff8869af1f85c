namespace EdgeTwin.Sensors.Common;

/// <summary>Settings every local sensor source shares.</summary>
public abstract record SensorOptions
{
    /// <summary>The device id from the site config.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Upper bound for one read of the device (bus transaction plus conversion time).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The series to publish, each naming a driver channel (<c>temperature</c>, <c>humidity</c>, <c>pressure</c>,
    /// <c>state</c>, <c>changes</c>, <c>count</c>, <c>total</c>), as a profile's metrics do with <c>channel:</c>.
    /// Empty: the driver's default outputs.
    /// </summary>
    public IReadOnlyList<SensorOutput> Outputs { get; init; } = [];

    /// <summary>The configured outputs, or <paramref name="defaults"/>; rejects channels the driver does not have.</summary>
    internal IReadOnlyList<SensorOutput> Resolve(string driver, IReadOnlyCollection<string> channels, IReadOnlyList<SensorOutput> defaults, IReadOnlyCollection<string> rateChannels)
    {
        if (Outputs.Count == 0)
        {
            return defaults;
        }

        foreach (var o in Outputs)
        {
            if (!channels.Contains(o.Channel))
            {
                throw new ArgumentException($"driver '{driver}' has no channel '{o.Channel}' (it has {string.Join(", ", channels)})");
            }

            if (o.Rate && !rateChannels.Contains(o.Channel))
            {
                throw new ArgumentException($"driver '{driver}' cannot publish a rate of channel '{o.Channel}' (only of {(rateChannels.Count == 0 ? "none" : string.Join(", ", rateChannels))})");
            }
        }

        return Outputs;
    }
}
