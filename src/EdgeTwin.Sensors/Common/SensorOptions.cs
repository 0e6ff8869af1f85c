namespace EdgeTwin.Sensors.Common;

/// <summary>Settings every local sensor source shares.</summary>
public abstract record SensorOptions
{
    /// <summary>The device id from the site config.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Upper bound for one read of the device (bus transaction plus conversion time).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Per-channel overrides of the published series (metric name, unit, role, range), keyed by the driver's channel
    /// name (<c>temperature</c>, <c>humidity</c>, <c>pressure</c>, <c>state</c>, <c>count</c>, <c>rate</c>), as a profile metric's <c>channel:</c>.
    /// Channels not listed use the driver's defaults.
    /// </summary>
    public IReadOnlyDictionary<string, SeriesSpec> Series { get; init; } = new Dictionary<string, SeriesSpec>();

    public SeriesSpec Spec(string channel, SeriesSpec fallback) =>
        Series.TryGetValue(channel, out var spec) ? spec : fallback;
}
