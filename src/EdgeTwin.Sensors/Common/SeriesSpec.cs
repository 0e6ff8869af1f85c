using EdgeTwin.Core.Samples;

namespace EdgeTwin.Sensors.Common;

/// <summary>
/// How one reading of a sensor is published: metric name, unit, kind, twin role, a linear conversion from the
/// driver's unit (<c>value = raw × Scale + Offset</c>, e.g. hPa → Pa with Scale 100) and the range outside which a
/// value is flagged <see cref="SampleQuality.OutOfRange"/>. Profiles override the defaults.
/// </summary>
public sealed record SeriesSpec(
    string Metric,
    string Unit,
    MetricKind Kind = MetricKind.Gauge,
    string? Role = null,
    double Min = double.NegativeInfinity,
    double Max = double.PositiveInfinity)
{
    public double Scale { get; init; } = 1;

    public double Offset { get; init; }

    public SeriesDescriptor Describe(string deviceId, IReadOnlyList<KeyValuePair<string, string>>? tags = null) =>
        new(deviceId, Metric, Unit, Kind, Role, tags);

    public double Convert(double raw) => (raw * Scale) + Offset;

    /// <summary>Good inside [Min, Max], OutOfRange outside, DeviceError for NaN.</summary>
    public SampleQuality Grade(double value) =>
        double.IsNaN(value) ? SampleQuality.DeviceError
        : value < Min || value > Max ? SampleQuality.OutOfRange
        : SampleQuality.Good;
}

/// <summary>
/// One published series of a sensor: which driver channel it reads and how it is described. With
/// <see cref="Rate"/> the series carries the channel's change per second instead of its value (counter channels only).
/// </summary>
public sealed record SensorOutput(string Channel, SeriesSpec Series, bool Rate = false);
