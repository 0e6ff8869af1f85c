namespace EdgeTwin.Core.Events;

public enum EventSeverity : byte
{
    Info = 0,
    Warning = 1,
    Critical = 2,
}

/// <summary>Well-known event kinds. Uplink payloads carry the lower-case snake name (see <see cref="EdgeEventKinds"/>).</summary>
public enum EdgeEventKind
{
    DeviceUp,
    DeviceDown,
    DataGap,
    Anomaly,
    AlertRaised,
    AlertCleared,
    Trap,
    InputChanged,
    Prediction,
    Recommendation,

    /// <summary>An operator acknowledged a firing alert (who, when), so the centre's view matches the gateway's.</summary>
    AlertAcknowledged,

    /// <summary>An operator silenced a rule until a time, or lifted its silence (who, until).</summary>
    AlertSilenced,

    /// <summary>The gateway's storage failed under the outbox (its file system turned read-only): entries live in memory only.</summary>
    StorageFailed,

    /// <summary>
    /// The gateway's wall clock was stepped (NTP's first sync after a boot without a real-time clock, <c>date -s</c>): the
    /// entries this run stamped under the old clock, by outbox sequence, and how far to move them.
    /// </summary>
    ClockStepped,
}

public static class EdgeEventKinds
{
    public static string ToWireName(this EdgeEventKind kind) => kind switch
    {
        EdgeEventKind.DeviceUp => "device_up",
        EdgeEventKind.DeviceDown => "device_down",
        EdgeEventKind.DataGap => "data_gap",
        EdgeEventKind.Anomaly => "anomaly",
        EdgeEventKind.AlertRaised => "alert_raised",
        EdgeEventKind.AlertCleared => "alert_cleared",
        EdgeEventKind.Trap => "trap",
        EdgeEventKind.InputChanged => "input_changed",
        EdgeEventKind.Prediction => "prediction",
        EdgeEventKind.Recommendation => "recommendation",
        EdgeEventKind.AlertAcknowledged => "alert_acknowledged",
        EdgeEventKind.AlertSilenced => "alert_silenced",
        EdgeEventKind.StorageFailed => "storage_failed",
        EdgeEventKind.ClockStepped => "clock_stepped",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>
/// Something that happened, as opposed to a periodic reading: sent at once upstream, never held for a window.
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="Source">The device, series key, model or rule it concerns.</param>
/// <param name="Time">When it happened (not when it was sent).</param>
/// <param name="Severity">How urgent.</param>
/// <param name="Message">One line for people.</param>
/// <param name="Attributes">Machine-readable details (score, threshold, oid, varbinds…).</param>
public sealed record EdgeEvent(
    EdgeEventKind Kind,
    string Source,
    DateTimeOffset Time,
    EventSeverity Severity,
    string Message,
    IReadOnlyDictionary<string, string>? Attributes = null)
{
    /// <summary>
    /// The device the uplink files this event under (body and envelope <c>device</c>, the Kafka key), when
    /// <see cref="Source"/> does not start with it: without it the device is the part of the source before the first
    /// '/', which for <c>line/line1</c> was "line" — one key for every line of a site. <see cref="Source"/> stays as
    /// it is, because alert rules match their globs on it.
    /// </summary>
    public string? Device { get; init; }

    /// <summary>
    /// The series key the event is about when <see cref="Source"/> is not it (an alert's source is its rule, the watched
    /// series is here): the uplink fills the body's <c>series</c>, <c>metric</c>, <c>unit</c> and <c>device</c> from it.
    /// </summary>
    public string? Series { get; init; }
}

/// <summary>Where sources and stages put events. Implementations never block the caller for long.</summary>
public interface IEventSink
{
    ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken);
}
