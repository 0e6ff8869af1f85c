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

    /// <summary>
    /// What the device sent for <paramref name="series"/> in the last poll, before decoding (Modbus: <c>input 2: 0x0000
    /// 0x4144</c>), or null when the protocol has nothing to add. <c>edgetwin poll</c> prints it so a wrong word order,
    /// address or scale in a new profile shows next to the value it produced.
    /// </summary>
    string? RawOf(SeriesId series) => null;
}
