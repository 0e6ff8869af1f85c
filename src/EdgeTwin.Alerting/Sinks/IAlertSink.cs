using EdgeTwin.Alerting.State;

namespace EdgeTwin.Alerting.Sinks;

/// <summary>
/// A local place alerts go: relay/buzzer/LED, the system log, a local broker, a LAN webhook. Each sink runs behind its own
/// <see cref="SinkRunner"/> (bounded queue, timeout, retries), so a failing sink never delays another.
/// </summary>
public interface IAlertSink : IAsyncDisposable
{
    string Name { get; }

    /// <summary>
    /// True for sinks that show the current state (GPIO outputs): they get every change of every alert at once, ungrouped.
    /// False for message sinks: they get one message per group and interval.
    /// </summary>
    bool FollowsState { get; }

    /// <summary>
    /// True for sinks that tell a receiver what is wrong now (webhook, MQTT): a queued message whose alerts a later queued
    /// message all carries is not sent (<see cref="SinkRunner"/>), so a peer back after an outage gets each alert's latest
    /// state, not FIRING for alerts that resolved hours ago. False for a record of every change (syslog: each line is
    /// stamped with its change's own time) and for state sinks (GPIO follow every change at once).
    /// </summary>
    bool SendsLatestStateOnly => !FollowsState;

    /// <summary>
    /// Greater than zero for a receiver that forgets an alert it is not told again (Alertmanager ends one after its
    /// resolve_timeout): the runner posts every alert it was handed that is not resolved again at this interval, and
    /// right after start for the alerts the last run had notified (<see cref="SinkRunner.Seed"/>). Zero: each change once.
    /// </summary>
    TimeSpan ResendInterval => TimeSpan.Zero;

    /// <summary>
    /// How long one delivery attempt may take, given the sink's <c>timeout:</c>. A sink that may try several peers in one
    /// attempt (an MQTT sink with <c>hosts:</c>) gives each its own timeout; the rest: <paramref name="timeout"/>.
    /// </summary>
    TimeSpan AttemptTimeout(TimeSpan timeout) => timeout;

    /// <summary>Prepares the sink (open pins, nothing slow: connections are made on first delivery).</summary>
    Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Delivers <paramref name="alerts"/> (the part of <paramref name="notification"/> this sink is a target of). Throws on
    /// failure; <see cref="SinkRejectedException"/> means retrying cannot help.
    /// </summary>
    Task DeliverAsync(AlertNotification notification, IReadOnlyList<AlertSnapshot> alerts, CancellationToken cancellationToken);
}

/// <summary>The peer refused the message for good (HTTP 4xx, MQTT not authorised): no retry.</summary>
public sealed class SinkRejectedException : Exception
{
    public SinkRejectedException()
    {
    }

    public SinkRejectedException(string message)
        : base(message)
    {
    }

    public SinkRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
