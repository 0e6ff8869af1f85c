using System.Runtime.InteropServices;

namespace EdgeTwin.Core.Samples;

/// <summary>How far a sample's value can be trusted.</summary>
public enum SampleQuality : byte
{
    Good = 0,
    /// <summary>The last good value repeated because the device did not answer in time.</summary>
    Stale = 1,
    /// <summary>The device answered with a value outside the metric's physical range.</summary>
    OutOfRange = 2,
    /// <summary>The value has not changed for longer than the metric allows.</summary>
    Stuck = 3,
    /// <summary>The device reported an error for this metric (exception, noSuchObject, sensor fault).</summary>
    DeviceError = 4,
}

/// <summary>
/// One reading. 24 bytes, no references: batches of samples are plain arrays that the GC never scans,
/// and series metadata travels once through <see cref="SeriesRegistry"/>, not with every value.
/// </summary>
[StructLayout(LayoutKind.Auto)]
public readonly record struct Sample(SeriesId Series, long TimestampUnixMs, double Value, SampleQuality Quality = SampleQuality.Good)
{
    public DateTimeOffset Timestamp => DateTimeOffset.FromUnixTimeMilliseconds(TimestampUnixMs);

    public bool IsGood => Quality == SampleQuality.Good;
}
