using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;

namespace EdgeTwin.Core.Scheduling;

/// <summary>Limits that decide a sample's quality flag (from the device profile's <c>min</c>/<c>max</c>).</summary>
/// <param name="Min">Below this the value is <see cref="SampleQuality.OutOfRange"/>.</param>
/// <param name="Max">Above this the value is <see cref="SampleQuality.OutOfRange"/>.</param>
/// <param name="StuckAfter">An unchanged value for at least this long is <see cref="SampleQuality.Stuck"/>.</param>
public readonly record struct QualityRule(double? Min = null, double? Max = null, TimeSpan? StuckAfter = null)
{
    public static readonly QualityRule None;

    public bool IsNone => Min is null && Max is null && StuckAfter is null;
}

/// <summary>A polled source with its schedule.</summary>
/// <param name="Source">Reads the device once per call.</param>
/// <param name="Interval">Time between polls (the device's <c>interval</c>).</param>
/// <param name="Timeout">How long one poll may take (the device's <c>timeout</c>); clamped to <paramref name="Interval"/>. Time a
/// source reports as waiting for a shared line (<see cref="PollDeadline"/>) does not count; that wait has its own bound.</param>
/// <param name="Rules">Quality limits per series, asked once per series the first time it appears; null for none.</param>
public sealed record PolledDevice(IPolledSource Source, TimeSpan Interval, TimeSpan Timeout, Func<SeriesDescriptor, QualityRule>? Rules = null)
{
    public string DeviceId => Source.DeviceId;
}

/// <summary>Whether the scheduler currently reaches a device.</summary>
public enum DeviceState : byte
{
    /// <summary>Not polled successfully yet, and not yet failed often enough to be down.</summary>
    Unknown = 0,
    Up = 1,
    Down = 2,
}

/// <summary>A snapshot of one device's polling state, for status views and <c>edgetwin poll</c>.</summary>
public sealed record DeviceStatus(
    string DeviceId,
    DeviceState State,
    int ConsecutiveFailures,
    DateTimeOffset? LastSuccess,
    DateTimeOffset? NextPoll,
    string? LastError,
    long Polls,
    long Failures,
    long SkippedPolls)
{
    /// <summary>Series the device has (its table rows included).</summary>
    public int Series { get; init; }

    /// <summary>The device's cap on series (<c>max_series</c>).</summary>
    public int MaxSeries { get; init; }

    /// <summary>Samples dropped because their series would have gone past <see cref="MaxSeries"/>; non-zero means rows are missing.</summary>
    public long SeriesDropped { get; init; }
}
