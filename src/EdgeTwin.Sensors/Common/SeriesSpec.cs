using EdgeTwin.Core.Samples;

namespace EdgeTwin.Sensors.Common;

/// <summary>
/// How one reading of a sensor is published: metric name, unit, kind, twin role and the physical range
/// outside which a value is flagged <see cref="SampleQuality.OutOfRange"/>. Profiles override the defaults.
/// </summary>
public sealed record SeriesSpec(
    string Metric,
    string Unit,
    MetricKind Kind = MetricKind.Gauge,
    string? Role = null,
    double Min = double.NegativeInfinity,
    double Max = double.PositiveInfinity)
{
    public SeriesDescriptor Describe(string deviceId, IReadOnlyList<KeyValuePair<string, string>>? tags = null) =>
        new(deviceId, Metric, Unit, Kind, Role, tags);

    /// <summary>Good inside [Min, Max], OutOfRange outside, DeviceError for NaN.</summary>
    public SampleQuality Grade(double value) =>
        double.IsNaN(value) ? SampleQuality.DeviceError
        : value < Min || value > Max ? SampleQuality.OutOfRange
        : SampleQuality.Good;
}
