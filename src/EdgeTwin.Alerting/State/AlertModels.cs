using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.State;

/// <summary>Where an alert is in its lifecycle.</summary>
public enum AlertState : byte
{
    /// <summary>Never active, or active for less than nothing: not shown.</summary>
    Inactive = 0,

    /// <summary>The condition holds but not yet for the rule's <c>for:</c> duration.</summary>
    Pending = 1,

    Firing = 2,
    Resolved = 3,
}

/// <summary>What a notification says about an alert.</summary>
public enum AlertStatus : byte
{
    Firing,
    Resolved,
    Acknowledged,

    /// <summary>The alert changes too often; further changes are not notified until it settles.</summary>
    Flapping,
}

/// <summary>An alert as sinks, the CLI and the store see it: an immutable copy.</summary>
public sealed record AlertSnapshot(
    long Id,
    string Rule,
    string Key,
    AlertStatus Status,
    AlertState State,
    EventSeverity Severity,
    double Value,
    string Summary,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyList<string> Targets,
    DateTimeOffset? FiredAt,
    DateTimeOffset? ResolvedAt,
    DateTimeOffset? AckedAt,
    bool Flapping,
    DateTimeOffset Time);

/// <summary>
/// One message to the sinks: every alert of one group that changed since the group's last message (a zone's forty racks
/// give one message, not forty). <see cref="Delivered"/> is called once every sink that got it has delivered or given up.
/// </summary>
public sealed class AlertNotification(string group, IReadOnlyList<AlertSnapshot> alerts, DateTimeOffset time)
{
    private int _pending;

    public string Group { get; } = group;

    public IReadOnlyList<AlertSnapshot> Alerts { get; } = alerts;

    public DateTimeOffset Time { get; } = time;

    /// <summary>The most urgent severity in the message.</summary>
    public EventSeverity Severity => Alerts.Count == 0 ? EventSeverity.Info : Alerts.Max(a => a.Severity);

    /// <summary>Arrival of the first sample or edge behind this message (<see cref="System.Diagnostics.Stopwatch"/> ticks; 0 when unknown), for latency figures.</summary>
    public long CauseTimestamp { get; init; }

    /// <summary>When the store had committed it and it went into the sinks' queues (Stopwatch ticks), for latency breakdowns.</summary>
    public long CommittedTimestamp { get; internal set; }

    internal Action<AlertNotification>? Delivered { get; set; }

    /// <summary>The alerts of this message a sink is a target of (an empty target list means every sink).</summary>
    public IReadOnlyList<AlertSnapshot> For(string sink)
    {
        var all = true;
        foreach (var a in Alerts)
        {
            if (a.Targets.Count != 0 && !a.Targets.Contains(sink))
            {
                all = false;
                break;
            }
        }

        return all ? Alerts : [.. Alerts.Where(a => a.Targets.Count == 0 || a.Targets.Contains(sink))];
    }

    internal void Expect(int sinks) => _pending = sinks;

    internal void Complete()
    {
        if (Interlocked.Decrement(ref _pending) == 0)
        {
            Delivered?.Invoke(this);
        }
    }
}

/// <summary>One line of the alert history (raised, cleared, acknowledged, silenced), kept in the store in order.</summary>
public sealed record AlertHistoryEntry(long Seq, long AlertId, string Rule, string Key, string Change, EventSeverity Severity, double Value, DateTimeOffset Time, string Uplink);

/// <summary>A live alert: lifecycle, hysteresis state and flapping record. Guarded by the manager's lock.</summary>
internal sealed class AlertInstance
{
    public AlertInstance(long id, AlertRule rule, string key, IReadOnlyDictionary<string, string> labels, string group, int flapSlots)
    {
        Id = id;
        Rule = rule;
        Key = key;
        Labels = labels;
        Group = group;
        Changes = new long[flapSlots];
    }

    public long Id { get; }

    public AlertRule Rule { get; set; }

    public string Key { get; }

    public IReadOnlyDictionary<string, string> Labels { get; }

    public string Group { get; }

    public AlertState State { get; set; }

    /// <summary>The rule's condition, before the uplink gate and the <c>for:</c> duration.</summary>
    public bool RawActive { get; set; }

    public double Value { get; set; }

    public DateTimeOffset PendingSince { get; set; }

    public DateTimeOffset? FiredAt { get; set; }

    public DateTimeOffset? ResolvedAt { get; set; }

    public DateTimeOffset? AckedAt { get; set; }

    /// <summary>Every targeted sink has delivered (or given up on) the firing message of this episode.</summary>
    public bool NotifiedFiring { get; set; }

    /// <summary>A firing message of this episode was handed to the sinks (not necessarily delivered yet).</summary>
    public bool Announced { get; set; }

    public bool Flapping { get; set; }

    /// <summary>Why, when the source says so (the uplink check's reason, the scheduler's cause of a device down); shown in the default summary.</summary>
    public string? Detail { get; set; }

    /// <summary>Ring of the last raise/clear times (unix ms), for the flapping guard.</summary>
    public long[] Changes { get; }

    public int ChangeCount { get; set; }

    /// <summary>The raise/clear times the ring still holds, oldest first (what the store keeps of the flapping guard).</summary>
    public IEnumerable<long> RecentChanges()
    {
        var count = Math.Min(ChangeCount, Changes.Length);
        for (var i = ChangeCount - count; i < ChangeCount; i++)
        {
            yield return Changes[i % Changes.Length];
        }
    }

    /// <summary>Refills the ring from stored times (oldest first); keeps the newest ones if the ring is smaller now.</summary>
    public void RestoreChanges(IReadOnlyList<long> times)
    {
        var skip = Math.Max(0, times.Count - Changes.Length);
        for (var i = skip; i < times.Count; i++)
        {
            Changes[i - skip] = times[i];
        }

        ChangeCount = times.Count - skip;
    }

    /// <summary>Event rules: when the last matching event arrived (unix ms).</summary>
    public long LastEventMs { get; set; }

    /// <summary>Arrival of the sample that changed the condition (Stopwatch ticks), for latency figures.</summary>
    public long CauseTimestamp { get; set; }

    public bool Acked => AckedAt is not null;

    public string Summary => (Rule.Summary ?? (Detail is null ? DefaultSummary() : DefaultSummary() + ": " + Detail))
        .Replace("{value}", Value.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
        .Replace("{key}", Key, StringComparison.Ordinal)
        .Replace("{rule}", Rule.Name, StringComparison.Ordinal);

    public AlertSnapshot Snapshot(AlertStatus status, DateTimeOffset now) =>
        new(Id, Rule.Name, Key, status, State, Rule.Severity, Value, Summary, Labels, Rule.Targets, FiredAt, ResolvedAt, AckedAt, Flapping, now);

    private string DefaultSummary() => Rule.Kind switch
    {
        RuleKind.Threshold => Rule.Direction == Direction.Above ? "{key} = {value}, above " + Num(Rule.Limit) : "{key} = {value}, below " + Num(Rule.Limit),
        RuleKind.Rate => "{key} changes at {value}/min (limit " + Num(Rule.Limit) + "/min)",
        RuleKind.Stuck => "{key} has not changed for " + Core.Config.Durations.Format(Rule.After),
        RuleKind.Missing => "{key} has sent no data for " + Core.Config.Durations.Format(Rule.After),
        RuleKind.DeviceDown => "device {key} is down",
        RuleKind.Event => "{key}: " + Rule.Attribute + " = {value}",
        RuleKind.Input => "input {rule} is active",
        RuleKind.Uplink => "uplink offline",
        RuleKind.State => "{key} reports " + string.Join(" / ", Rule.States) + " (state code {value})",
        _ => "{rule} {key}",
    };

    private static string Num(double d) => d.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
}
