using EdgeTwin.Core.Samples;

namespace EdgeTwin.Agent.Sources;

/// <summary>
/// A source that knows why a series' last sample was <see cref="SampleQuality.DeviceError"/> (the sample itself has no
/// room for text); <c>edgetwin poll</c> prints it next to <c>[device_error]</c>.
/// </summary>
internal interface ISampleReasons
{
    /// <summary>The reason of the last DeviceError sample of <paramref name="series"/>, or null when none is known.</summary>
    string? ReasonOf(SeriesId series);
}
