using System.Globalization;
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
    DateTimeOffset Time)
{
    /// <summary>
    /// The worst value while the alert was active (pending or firing; the highest for an <c>above</c> rule, the lowest for
    /// <c>below</c>, for a combined alert the worst member); null for kinds without a limit (state, stuck, missing, …).
    /// </summary>
    public double? Peak { get; init; }

    /// <summary><see cref="Peak"/> with the series' unit as people write it (<c>34.1 °C</c>, <c>1.2 °C/min</c>).</summary>
    public string? PeakText { get; init; }

    /// <summary>The value as the summary shows it, rounded and with its unit (<c>17.65 A</c>, <c>1.5 °C/min</c>); null when not known.</summary>
    public string? ValueText { get; init; }

    /// <summary>The rule's <c>runbook_url</c> (the site's procedure for it), null without one; every status carries it.</summary>
    public string? RunbookUrl { get; init; }

    /// <summary>
    /// The rule's <c>action</c> (what to do first) with its placeholders filled; null without one and for a resolved alert
    /// (nothing is left to do first once it cleared; the runbook stays, for the follow-up).
    /// </summary>
    public string? Action { get; init; }

    /// <summary>Where the alert is, without the site (<c>rack A02 (room1)</c>, <c>machine M3 (line L1)</c>); the key when it has no place.</summary>
    public string? Place { get; init; }
}

/// <summary>
/// One message to the sinks: every alert of one group that changed since the group's last message (a zone's forty racks
/// give one message, not forty). <see cref="Delivered"/> is called once every sink that got it has delivered it or had it refused for good (a sink whose peer is down holds it).
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

/// <summary>
/// The flapping guard's clock. Change times of this run are monotonic timestamps; they are saved as wall-clock times
/// (what survives a power-off) read as "the wall clock now, less the time since on the monotonic clock", so a save after
/// a step is in the stepped clock's terms and a restart after it keeps the window. Times saved by an earlier run are
/// converted once, against the wall clock read at start (advanced on the monotonic clock since), as the outbox ages the
/// entries of earlier runs.
/// </summary>
internal sealed class FlapClock
{
    // Beyond ±30 years a saved time is nonsense anyway (a clock reset to 1970); the clamp keeps ticks from overflowing.
    private const double MaxSeconds = 1e9;

    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly long _startWallMs;

    // The wall clock less the monotonic time since start, as last checked: it moves only when the wall clock steps.
    private long _offsetMs;

    public FlapClock(TimeProvider time)
    {
        _time = time;
        _startTimestamp = time.GetTimestamp();
        _startWallMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        _offsetMs = _startWallMs;
    }

    /// <summary>
    /// Whether the wall clock stepped by more than <paramref name="tolerance"/> since the last call (or start): the
    /// saved change times are then in the old clock's terms and should be saved again.
    /// </summary>
    public bool Stepped(TimeSpan tolerance)
    {
        var offset = _time.GetUtcNow().ToUnixTimeMilliseconds() - (long)_time.GetElapsedTime(_startTimestamp).TotalMilliseconds;
        if (Math.Abs(offset - _offsetMs) <= (long)tolerance.TotalMilliseconds)
        {
            return false;
        }

        _offsetMs = offset;
        return true;
    }

    /// <summary>
    /// A time saved by an earlier run (unix ms) as a monotonic timestamp of this run. One after the start's wall clock
    /// (the box booted with a clock behind, before NTP) counts as at start: the guard then holds one flap window at most,
    /// not until the clock catches up.
    /// </summary>
    public long FromSaved(long wallMs) => _startTimestamp + Ticks(Math.Min(wallMs - _startWallMs, 0) / 1000.0);

    /// <summary>A monotonic timestamp of this run as the wall-clock time (unix ms) to save.</summary>
    public long ToSaved(long timestamp) =>
        _time.GetUtcNow().ToUnixTimeMilliseconds() - (long)_time.GetElapsedTime(timestamp).TotalMilliseconds;

    private long Ticks(double seconds) => (long)(Math.Clamp(seconds, -MaxSeconds, MaxSeconds) * _time.TimestampFrequency);
}

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

    /// <summary>The worst value of this episode (NaN when none or the kind has no limit); see <see cref="AlertSnapshot.Peak"/>.</summary>
    public double Peak { get; set; } = double.NaN;

    /// <summary>The peak in the last record written for this alert (NaN when none): a stop saves it when it moved since.</summary>
    public double SavedPeak { get; set; } = double.NaN;

    /// <summary>The event text in the last record written (an event rule's source refreshes it without a lifecycle change): a stop saves it when it moved since.</summary>
    public string? SavedEventMessage { get; set; }

    /// <summary>Rules with a limit and a direction have a peak; a state code, a stuck value or "1 = down" has none.</summary>
    public bool HasPeak => Rule.Kind is RuleKind.Threshold or RuleKind.Rate or RuleKind.Event;

    /// <summary>A new episode (pending or firing from inactive/resolved) starts its peak at the current value.</summary>
    public void StartPeak() => Peak = HasPeak && double.IsFinite(Value) ? Value : double.NaN;

    /// <summary>Keeps the worst value while the alert is active: two comparisons, no allocation (called for every sample of a firing alert).</summary>
    public void TrackPeak(double value)
    {
        if (!HasPeak || !double.IsFinite(value) || State is not (AlertState.Pending or AlertState.Firing))
        {
            return;
        }

        if (double.IsNaN(Peak) || (Rule.Direction == Direction.Above ? value > Peak : value < Peak))
        {
            Peak = value;
        }
    }

    public DateTimeOffset PendingSince { get; set; }

    /// <summary>When it became pending on the monotonic clock (<see cref="TimeProvider.GetTimestamp"/>), which <c>for:</c> is measured on.</summary>
    public long PendingSinceTimestamp { get; set; }

    /// <summary>The store holds a record of this alert's pending episode (<c>AlertStore.SavePending</c>), removed when it leaves pending.</summary>
    public bool PendingDoc { get; set; }

    /// <summary>That record is this run's and in the wall clock's current terms (else the next alive mark saves it).</summary>
    public bool PendingSaved { get; set; }

    public DateTimeOffset? FiredAt { get; set; }

    public DateTimeOffset? ResolvedAt { get; set; }

    public DateTimeOffset? AckedAt { get; set; }

    /// <summary>Every targeted sink has delivered (or given up on) the firing message of this episode.</summary>
    public bool NotifiedFiring { get; set; }

    /// <summary>
    /// The message sinks were handed this episode's RESOLVED and not every one is done with it yet. Saved, so a stop
    /// while a peer is down sends it again after the restart (the sink queues are in memory).
    /// </summary>
    public bool ResolveOwed { get; set; }

    /// <summary>A firing message of this episode was handed to the sinks (not necessarily delivered yet).</summary>
    public bool Announced { get; set; }

    public bool Flapping { get; set; }

    /// <summary>Why, when the source says so (the uplink check's reason, the scheduler's cause of a device down); shown in the default summary.</summary>
    public string? Detail { get; set; }

    /// <summary>Why it cleared when that is not its condition ending (its series was retired); the resolved summary says this instead. Reset when it fires again.</summary>
    public string? ClearedBecause { get; set; }

    /// <summary>Event rules: how the condition ended (the source's "resolved" message, or no event for clear_after); the resolved summary. Reset when it fires again.</summary>
    public string? ClearText { get; set; }

    /// <summary>Its series was retired: the manager forgets it once nothing is owed on it (see <c>AlertManager.Retire</c>).</summary>
    public bool Retired { get; set; }

    /// <summary>
    /// Ring of the last raise/clear times, for the flapping guard: monotonic timestamps (<see cref="TimeProvider.GetTimestamp"/>),
    /// so a wall-clock step neither ends nor extends the flap window. Saved as wall-clock times through <see cref="FlapClock"/>.
    /// </summary>
    public long[] Changes { get; }

    public int ChangeCount { get; set; }

    /// <summary>The last raise/clear time (a monotonic timestamp), or null before the first.</summary>
    public long? LastChange => ChangeCount == 0 ? null : Changes[(ChangeCount - 1) % Changes.Length];

    /// <summary>The raise/clear times the ring still holds, oldest first, as wall-clock unix ms (what the store keeps of the flapping guard).</summary>
    public IEnumerable<long> RecentChanges(FlapClock clock)
    {
        var count = Math.Min(ChangeCount, Changes.Length);
        for (var i = ChangeCount - count; i < ChangeCount; i++)
        {
            yield return clock.ToSaved(Changes[i % Changes.Length]);
        }
    }

    /// <summary>Refills the ring from stored wall-clock times (oldest first); keeps the newest ones if the ring is smaller now.</summary>
    public void RestoreChanges(IReadOnlyList<long> times, FlapClock clock)
    {
        var skip = Math.Max(0, times.Count - Changes.Length);
        for (var i = skip; i < times.Count; i++)
        {
            Changes[i - skip] = clock.FromSaved(times[i]);
        }

        ChangeCount = times.Count - skip;
    }

    /// <summary>Event rules: when the last matching event arrived (monotonic ms, see RuleEngine.MonoMs), for clear_after.</summary>
    public long LastEventMs { get; set; }

    /// <summary>Arrival of the sample that changed the condition (Stopwatch ticks), for latency figures.</summary>
    public long CauseTimestamp { get; set; }

    public bool Acked => AckedAt is not null;

    /// <summary>The site id, for the place in the default summary (set by the manager).</summary>
    public string? Site { get; set; }

    /// <summary>The watched series' unit as the profile gives it (UCUM: <c>Cel</c>, <c>kW</c>, <c>%</c>); set by the rule engine.</summary>
    public string? Unit { get; set; }

    /// <summary>The watched series without its device: the metric and its tags (<c>inlet_temperature</c>); set by the rule engine.</summary>
    public string? Subject { get; set; }

    /// <summary>
    /// The device the alert is about, for the centre (event <c>device</c>, the Kafka key): the watched series' device, the
    /// device a device rule reports down, the device of the event an event rule watches. Null: derived from the rule
    /// (a combined alert's scope, the gateway for uplink and input rules); see <c>AlertManager.EventDevice</c>.
    /// </summary>
    public string? Device { get; set; }

    /// <summary>The watched series' key when the alert is about one series (not for combined alerts); set by the rule engine.</summary>
    public string? Series { get; set; }

    /// <summary>The watched series' metric (a combined alert's members share it); set by the rule engine.</summary>
    public string? Metric { get; set; }

    /// <summary>Event rules: the last matching event's own message (failed units, racks affected, first step).</summary>
    public string? EventMessage { get; set; }

    /// <summary><c>percent_of: breaker</c> rules: the rating (A) of the breaker the series' feed is on; set by the rule engine.</summary>
    public double? BreakerA { get; set; }

    /// <summary>State rules: the watched series' state names by code (its device profile's <c>states:</c>); set by the rule engine.</summary>
    public IReadOnlyDictionary<long, string>? StateNames { get; set; }

    /// <summary>The profile's name of the state code the series reports now; null when unknown (not bound yet after a restart).</summary>
    private string? StateName() => StateNames is { } names && double.IsFinite(Value) && names.TryGetValue((long)Math.Round(Value), out var name) ? name : null;

    /// <summary>Combined rules: the members (racks, or devices outside racks) in the alarm zone now, sorted, and how many there are.</summary>
    public IReadOnlyList<string> HotMembers { get; set; } = [];

    public int MemberCount { get; set; }

    /// <summary>A user template (<c>summary:</c>) with its placeholders (<see cref="Rules.AlertsConfig.TemplatePlaceholders"/>) replaced; else the default text.</summary>
    public string Summary => Rule.Summary is { } template ? Fill(template) : DefaultSummary();

    /// <summary>The rule's <c>action:</c> with the placeholders <see cref="Summary"/> takes (a combined alert's <c>{key}</c> is its rack, room or line); null without one.</summary>
    public string? Action => Rule.Action is { } template ? Fill(template) : null;

    private string Fill(string template) => template.Contains('{', StringComparison.Ordinal)
        ? template
            .Replace("{value}", Num(Value), StringComparison.Ordinal)
            .Replace("{key}", Key, StringComparison.Ordinal)
            .Replace("{rule}", Rule.Name, StringComparison.Ordinal)
            .Replace("{peak}", double.IsNaN(Peak) ? "" : Num(Peak), StringComparison.Ordinal)
            .Replace("{unit}", DisplayUnit(Unit), StringComparison.Ordinal)
            .Replace("{limit}", LimitText(), StringComparison.Ordinal)
            .Replace("{place}", Place(), StringComparison.Ordinal)
            .Replace("{site}", Site ?? "", StringComparison.Ordinal)
            .Replace("{since}", FiredText(), StringComparison.Ordinal)
        : template;

    /// <summary>The rule's limit as the default text writes it (27 °C, 80 % of breaker, 0.5 °C/min); empty for rules without one.</summary>
    private string LimitText() => Rule.Kind switch
    {
        RuleKind.Threshold => Quantity(Rule.Limit),
        RuleKind.Rate => Num(Rule.Limit) + UnitSuffix() + "/min",
        RuleKind.Event when Rule.Attribute is not null && double.IsFinite(Rule.Limit) => Num(Rule.Limit),
        _ => "",
    };

    /// <summary>When this episode fired (09:40:25 UTC), also in its clear; empty while pending (FiredAt is then the last episode's).</summary>
    private string FiredText() => State is AlertState.Firing or AlertState.Resolved && FiredAt is { } f
        ? f.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture) + " UTC"
        : "";

    public AlertSnapshot Snapshot(AlertStatus status, DateTimeOffset now) =>
        new(Id, Rule.Name, Key, status, State, Rule.Severity, Value, Summary, Labels, Rule.Targets, FiredAt, ResolvedAt, AckedAt, Flapping, now)
        {
            Peak = double.IsNaN(Peak) ? null : Peak,
            PeakText = PeakText,
            ValueText = double.IsFinite(Value) ? ValueText : null,
            RunbookUrl = Rule.RunbookUrl,
            Action = status == AlertStatus.Resolved ? null : Action,
            Place = Place(null),
        };

    /// <summary>The peak with its unit (a rate per minute); null without one.</summary>
    /// <summary>The value with its unit (a rate per minute); a state code, a count or an event's attribute as the bare number.</summary>
    public string ValueText => Rule.Kind switch
    {
        RuleKind.Rate => Num(Value) + UnitSuffix() + "/min",
        RuleKind.Threshold => Quantity(Value),
        _ => Num(Value),
    };

    public string? PeakText => double.IsNaN(Peak) ? null : Rule.Kind == RuleKind.Rate ? Num(Peak) + UnitSuffix() + "/min" : Quantity(Peak);

    /// <summary>
    /// What, where, how bad and since when, in one line for the operator (journal, webhook, <c>alerts list</c>):
    /// <c>rack A02 (room1, site sim): inlet_temperature 32.3 °C above 32 °C since 09:40:25 UTC</c>. A resolved alert
    /// says it is back and how bad it got (<c>… 29.9 °C, back below 30 °C (clear level); peak 34.1 °C</c>), never the
    /// firing text again.
    /// </summary>
    /// <summary>
    /// "has not changed for 3m since 12:03" read as unchanged since 12:03, the time it fired; it was 3m before (or, after
    /// a restart with a resumed timer, earlier still), so stuck and missing summaries say when it fired as such.
    /// </summary>
    private static string FiringSince(string since) => since.Length == 0 ? "" : "; firing" + since;

    private string DefaultSummary()
    {
        var resolved = State == AlertState.Resolved;
        if (resolved && ClearedBecause is { } because)
        {
            return $"{Place()}: {Subject ?? Key} {because}";
        }

        // Only while firing: a pending alert keeps the previous episode's FiredAt.
        var since = State == AlertState.Firing && FiredAt is { } f ? " since " + f.UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture) + " UTC" : "";
        var what = Subject ?? Key;
        var above = Rule.Direction == Direction.Above;
        var text = Rule.Kind switch
        {
            RuleKind.Threshold when Rule.Combine != Combine.None => Combined(what, above, resolved) + since,
            // The current and the breaker it is on: "110.313 % of breaker above 100 % of breaker" gave neither the amps nor which breaker.
            RuleKind.Threshold when BreakerA is { } breaker => resolved
                ? $"{Place()}: {what} {Num(Value * breaker / 100)} A, {Percent(Value)} of its {Num(breaker)} A breaker, back below {Percent(Rule.Clear)} (clear level)"
                : $"{Place()}: {what} {Num(Value * breaker / 100)} A, {Percent(Value)} of its {Num(breaker)} A breaker, above {Percent(Rule.Limit)}{since}",
            RuleKind.Threshold => resolved
                ? $"{Place()}: {what} {Quantity(Value)}, back {(above ? "below" : "above")} {Quantity(Rule.Clear)} (clear level)"
                : $"{Place()}: {what} {Quantity(Value)} {(above ? "above" : "below")} {Quantity(Rule.Limit)}{since}",
            // A rise that ended because the value now falls (cooling back) said "rises at -0.8 °C/min".
            RuleKind.Rate => resolved
                ? above && Value < 0
                    ? $"{Place()}: {what} falls at {Num(-Value)}{UnitSuffix()}/min, back within {Num(Rule.Clear)}{UnitSuffix()}/min rise (clear level)"
                    : $"{Place()}: {what} {(above ? "rises" : "falls")} at {Num(Value)}{UnitSuffix()}/min, back within {Num(Rule.Clear)}{UnitSuffix()}/min (clear level)"
                : $"{Place()}: {what} {(above ? "rises" : "falls")} at {Num(Value)}{UnitSuffix()}/min, limit {Num(Rule.Limit)}{UnitSuffix()}/min{since}",
            RuleKind.Stuck => resolved
                ? $"{Place()}: {what} changes again"
                : $"{Place()}: {what} has not changed for {Core.Config.Durations.Format(Rule.After)}{FiringSince(since)}",
            RuleKind.Missing => resolved
                ? $"{Place()}: {what} sends data again"
                : $"{Place()}: {what} has sent no data for {Core.Config.Durations.Format(Rule.After)}{FiringSince(since)}",
            RuleKind.DeviceDown => resolved ? $"device {Key}{Around()} is up again" : $"device {Key}{Around()} is down{since}",

            // The event's own text is what the operator acts on (failed units, racks affected, first step), not the number.
            RuleKind.Event => resolved
                ? ClearText is { Length: > 0 } c ? OneLine(c) : $"{Key}: resolved (last {Rule.Attribute} = {Num(Value)})"
                : EventMessage is { Length: > 0 } m ? OneLine(m) : $"{Key}: {Rule.Attribute} = {Num(Value)}{since}",
            RuleKind.Input => resolved ? $"input {Rule.Name}{Around()} is no longer active{Lasted()}" : $"input {Rule.Name}{Around()} is active{since}",

            // Which site and since when: "uplink offline" alone did not say which gateway's journal or NOC feed it was in.
            RuleKind.Uplink => resolved ? $"uplink{Around()} back online{Lasted()}" : $"uplink{Around()} offline{since}",
            // The state the device reports, by its profile's name: "battery / onBattery" was the rule's list, both vendors' names.
            RuleKind.State => resolved
                ? StateName() is { } now
                    ? $"{Place()}: {what} reports {now} (state code {Num(Value)}), no longer {string.Join(" / ", Rule.States)}"
                    : $"{Place()}: {what} no longer reports {string.Join(" / ", Rule.States)} (state code {Num(Value)})"
                : $"{Place()}: {what} reports {StateName() ?? string.Join(" / ", Rule.States)} (state code {Num(Value)}){since}",
            _ => $"{Rule.Name} {Key}",
        };
        if (resolved && Rule.Kind == RuleKind.Event && !double.IsNaN(Peak))
        {
            // An event's attribute has no unit: "; peak 6.84" did not say of what (the lowest time to shutdown, in minutes).
            text += $"; {(above ? "highest" : "lowest")} {Rule.Attribute} {Num(Peak)}";
        }
        else if (resolved && PeakText is { } peak)
        {
            // How bad it got, which the clear's own value (back below the clear level) no longer shows.
            text += "; peak " + peak;
        }

        return Detail is null || resolved ? text : text + ": " + Detail;
    }

    /// <summary>
    /// A combined alert names its scope and the members that decide it: one hot rack is "in rack A02", not "several racks".
    /// </summary>
    private string Combined(string what, bool above, bool resolved)
    {
        var side = above ? "above" : "below";
        if (resolved)
        {
            return $"{Place()}: {what} back {(above ? "below" : "above")} {Quantity(Rule.Clear)} (clear level)";
        }

        if (Rule.Combine == Combine.All)
        {
            return $"{Place()}: {what} {side} {Quantity(Rule.Limit)} in all {MemberCount} {Plural(MemberCount)}";
        }

        return HotMembers.Count switch
        {
            0 => $"{Place()}: {what} {side} {Quantity(Rule.Limit)}",
            // A per-rack alert's member is its own rack: "rack A02 (room1): … above 27 °C in rack A02" said it twice.
            1 when HotMembers[0] == ScopeName() => $"{Place()}: {what} {Quantity(Value)} {side} {Quantity(Rule.Limit)}",
            1 => $"{Place()}: {what} {Quantity(Value)} {side} {Quantity(Rule.Limit)} in {HotMembers[0]}",
            var n => $"{Place()}: {what} {side} {Quantity(Rule.Limit)} in {n} of {MemberCount} {Plural(MemberCount)} ("
                + string.Join(", ", HotMembers.Take(5).Select(m => m.StartsWith("rack ", StringComparison.Ordinal) ? m[5..] : m))
                + (n > 5 ? ", …" : "") + ")",
        };
    }

    /// <summary>How a combined alert's scope is named among the members (<c>rack A02</c>, <c>device pdu-1</c>); null for wider scopes.</summary>
    private string? ScopeName() => Rule.Per switch
    {
        Scope.Rack => "rack " + Key,
        Scope.Device => "device " + Key,
        _ => null,
    };

    private string Plural(int n)
    {
        var racks = HotMembers.Count == 0 || HotMembers.All(m => m.StartsWith("rack ", StringComparison.Ordinal));
        return racks ? (n == 1 ? "rack" : "racks") : (n == 1 ? "device" : "devices");
    }

    /// <summary>
    /// Where, from the alert's labels: the rack rather than the PDU or sensor that measured it (two feeds, one rack), then
    /// the room and the site; a combined alert is about its scope, not the member whose sample decided it.
    /// </summary>
    private string Place() => Place(SiteText);

    /// <summary>
    /// Where the alert is: <c>rack A02 (room1, site sim)</c>, <c>machine M3 (line L1, site sim)</c>; with
    /// <paramref name="site"/> null the site is left out (the mail subject has its own <c>{site}</c>) and an alert with no
    /// place is named by its key.
    /// </summary>
    private string Place(string? site)
    {
        if (Rule.Combine != Combine.None)
        {
            return Rule.Per switch
            {
                Scope.Rack => Join("rack " + Key, Label("room"), site),
                Scope.Room => Join("room " + Key, site),
                Scope.Line => Join("line " + Key, site),
                Scope.Site => "site " + Key,
                _ => Join("device " + Key, Label("room"), site),
            };
        }

        if (Label("rack") is { } rack)
        {
            return Join("rack " + rack, Label("room"), site);
        }

        if (Label("machine") is { } machine)
        {
            return Join("machine " + machine, Label("line") is { } line ? "line " + line : null, site);
        }

        if (Label("device") is { } device)
        {
            return Join("device " + device, Label("room"), site);
        }

        if (Label("room") is { } room)
        {
            return Join("room " + room, site);
        }

        return site ?? Key;
    }

    /// <summary>The place of a device alert after its name: <c> (rack r01, room1, site dc1)</c>.</summary>
    private string Around()
    {
        var parts = new[] { Label("rack") is { } r ? "rack " + r : null, Label("room"), SiteText }.Where(p => p is not null).ToArray();
        return parts.Length == 0 ? "" : " (" + string.Join(", ", parts) + ")";
    }

    /// <summary><c> after 42 min 13 s</c>: how long a resolved alert was firing (wall clock), for the clear's line.</summary>
    private string Lasted()
    {
        if (FiredAt is not { } f || ResolvedAt is not { } r || r < f)
        {
            return "";
        }

        var d = TimeSpan.FromSeconds(Math.Round((r - f).TotalSeconds));
        var text = d.TotalMinutes < 1 ? $"{d.Seconds} s"
            : d.TotalHours < 1 ? $"{d.Minutes} min {d.Seconds} s"
            : $"{(long)d.TotalHours} h {d.Minutes:00} min";
        return " after " + text.ToString(CultureInfo.InvariantCulture);
    }

    private string? SiteText => Site is { Length: > 0 } s ? "site " + s : null;

    private string? Label(string name) => Labels.TryGetValue(name, out var v) && v.Length > 0 ? v : null;

    private static string Join(string head, params string?[] rest)
    {
        var parts = rest.Where(p => p is not null).ToArray();
        return parts.Length == 0 ? head : head + " (" + string.Join(", ", parts) + ")";
    }

    // A percentage of a breaker to a tenth: 110.3 %, not 110.313 %.
    private string Quantity(double d) => BreakerA is not null ? Percent(d) + " of breaker" : Num(d) + UnitSuffix();

    private string UnitSuffix() => DisplayUnit(Unit) is { Length: > 0 } u ? " " + u : "";

    /// <summary>UCUM as people write it: <c>Cel</c> is °C, <c>kW.h</c> kWh; the dimensionless <c>1</c> shows nothing.</summary>
    public static string DisplayUnit(string? ucum) => ucum switch
    {
        null or "" or "1" => "",
        "Cel" => "°C",
        "[degF]" => "°F",
        "kW.h" => "kWh",
        "W.h" => "Wh",
        "kV.A" => "kVA",
        "V.A" => "VA",
        "By" => "B",
        "%{RH}" => "% RH",
        _ => ucum,
    };

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static string Percent(double d) => d.ToString("0.#", CultureInfo.InvariantCulture) + " %";

    private static string Num(double d) => d.ToString("0.###", CultureInfo.InvariantCulture);
}
