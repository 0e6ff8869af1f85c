using EdgeTwin.Core.Events;

namespace EdgeTwin.Alerting.Rules;

/// <summary>What a rule watches.</summary>
public enum RuleKind : byte
{
    /// <summary>A value above (or below) a limit, with a separate clear limit (hysteresis).</summary>
    Threshold,

    /// <summary>A value rising (or falling) faster than a rate per minute over a window.</summary>
    Rate,

    /// <summary>A value that has not changed for a duration (or that the source flags as stuck).</summary>
    Stuck,

    /// <summary>A series with no sample for a duration.</summary>
    Missing,

    /// <summary>A device the scheduler reports down (DeviceDown/DeviceUp events).</summary>
    DeviceDown,

    /// <summary>An attribute of an event (prediction, anomaly) above or below a limit: failure probability, minutes to thermal shutdown.</summary>
    Event,

    /// <summary>A GPIO input contact (leak, smoke, door), raised from its edge interrupt.</summary>
    Input,

    /// <summary>The uplink offline (from the connectivity monitor).</summary>
    Uplink,

    /// <summary>
    /// A state series (kind state) in one of the named states of its device profile: one rule covers vendors whose codes
    /// differ (UPS-MIB's battery(5) and APC's onBattery(3) under the role <c>ups.output_source</c>).
    /// </summary>
    State,
}

/// <summary>Which side of the limit is bad.</summary>
public enum Direction : byte
{
    Above,
    Below,
}

/// <summary>The topology level an alert instance (or a combination) is keyed by.</summary>
public enum Scope : byte
{
    /// <summary>One instance per series (per device for device rules, per source for event rules).</summary>
    Series,
    Device,
    Rack,
    Room,
    Line,
    Site,
}

/// <summary>How the members of a scope combine (<c>combine: any|all</c> with <c>per: rack</c>).</summary>
public enum Combine : byte
{
    /// <summary>No combination: every series is its own alert.</summary>
    None,

    /// <summary>The scope's alert is active while any member's condition holds.</summary>
    Any,

    /// <summary>The scope's alert is active while every member's condition holds.</summary>
    All,
}

/// <summary>When a rule may raise, depending on the connectivity monitor (<c>when_uplink:</c>).</summary>
public enum UplinkGate : byte
{
    /// <summary>Always.</summary>
    Any,

    /// <summary>Only while the uplink is degraded or offline (the centre may not see us).</summary>
    NotOnline,

    /// <summary>Only while the uplink is offline.</summary>
    Offline,
}

/// <summary>Which series a rule applies to: every given field must match; <c>*</c> globs in device and metric.</summary>
public sealed record SeriesMatch(string? Device, string? Metric, string? Role, IReadOnlyList<KeyValuePair<string, string>> Tags)
{
    public static SeriesMatch All { get; } = new(null, null, null, []);

    public bool Matches(Core.Samples.SeriesDescriptor series)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (Device is not null && !Glob.IsMatch(Device, series.DeviceId))
        {
            return false;
        }

        if (Metric is not null && !Glob.IsMatch(Metric, series.Metric))
        {
            return false;
        }

        if (Role is not null && !Glob.IsMatch(Role, series.Role ?? ""))
        {
            return false;
        }

        foreach (var (k, v) in Tags)
        {
            if (series.Tag(k) is not { } actual || !Glob.IsMatch(v, actual))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// One alert rule from <c>alerts.rules</c>, immutable. The fields a kind does not use keep their defaults
/// (<see cref="AlertsConfig"/> rejects keys that do not belong to the kind).
/// </summary>
public sealed record AlertRule
{
    public required string Name { get; init; }

    public required RuleKind Kind { get; init; }

    public EventSeverity Severity { get; init; } = EventSeverity.Warning;

    /// <summary>One line for people; <c>{value}</c>, <c>{key}</c> and <c>{rule}</c> are replaced.</summary>
    public string? Summary { get; init; }

    /// <summary>
    /// <c>runbook_url:</c> the site's procedure for this alert (absolute http or https, as written), carried with the alert
    /// to every message sink, <c>edgetwin alerts list</c> and the centre's alert events; null: none.
    /// </summary>
    public string? RunbookUrl { get; init; }

    /// <summary>
    /// <c>action:</c> what the operator should do first, one line of at most <see cref="AlertsConfig.MaxActionLength"/>
    /// characters, with the placeholders of <see cref="Summary"/> replaced; null: none. Not sent with a resolved alert.
    /// </summary>
    public string? Action { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Sink names; empty means every sink.</summary>
    public IReadOnlyList<string> Targets { get; init; } = [];

    public SeriesMatch Match { get; init; } = SeriesMatch.All;

    public Direction Direction { get; init; } = Direction.Above;

    /// <summary>The limit: a value, a rate per minute, or an event attribute's limit.</summary>
    public double Limit { get; init; }

    /// <summary>Where the condition clears (hysteresis); equals <see cref="Limit"/> when not given.</summary>
    public double Clear { get; init; }

    /// <summary>How long the condition must hold before the alert fires (pending until then).</summary>
    public TimeSpan For { get; init; }

    /// <summary>Rate: the window the rate is measured over. Stuck: tolerated change. Missing: unused.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Stuck: a change smaller than this counts as no change.</summary>
    public double Tolerance { get; init; }

    /// <summary>Stuck/missing/event: how long without change, without data, or without a new event.</summary>
    public TimeSpan After { get; init; }

    /// <summary>Device-down / event rules: the device or event source glob.</summary>
    public string SourceGlob { get; init; } = "*";

    /// <summary>State rules: the profile state names that are the alarm (<c>states: [battery, onBattery]</c>).</summary>
    public IReadOnlyList<string> States { get; init; } = [];

    /// <summary>
    /// Threshold rules with <c>percent_of: breaker</c>: the limits are % of the breaker of the feed the series' device
    /// meters (a current in A or mA), so one rule fits 16 A and 32 A feeds; series of devices without one are not bound.
    /// </summary>
    public bool PercentOfBreaker { get; init; }

    /// <summary>Event rules: the event kind (its wire name, e.g. <c>prediction</c>, <c>anomaly</c>).</summary>
    public EdgeEventKind EventKind { get; init; } = EdgeEventKind.Prediction;

    /// <summary>Event rules: the attribute holding the number (e.g. <c>failure_probability</c>, <c>time_to_shutdown_min</c>).</summary>
    public string? Attribute { get; init; }

    public Combine Combine { get; init; } = Combine.None;

    /// <summary>The scope an instance is keyed by; with <see cref="Combine"/> the scope combined over.</summary>
    public Scope Per { get; init; } = Scope.Series;

    public UplinkGate WhenUplink { get; init; } = UplinkGate.Any;

    /// <summary>Input rules: the GPIO pin, whether low is active, and the debounce time.</summary>
    public int Pin { get; init; } = -1;

    public bool ActiveLow { get; init; } = true;

    /// <summary>
    /// Input rules: the pin's internal pull. Up by default whatever <see cref="ActiveLow"/> says: contacts switch to
    /// ground, and a normally-closed one (door, guard switch: <c>active: high</c>) reads high only through the pull-up.
    /// </summary>
    public EdgeTwin.Core.Profiles.PullMode Pull { get; init; } = EdgeTwin.Core.Profiles.PullMode.Up;

    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>True when the value is in the alarm zone given the previous condition (hysteresis).</summary>
    public bool Evaluate(double value, bool wasActive) => Direction == Direction.Above
        ? (wasActive ? value > Clear : value > Limit)
        : (wasActive ? value < Clear : value < Limit);
}

/// <summary><c>*</c> (any run of characters) and <c>?</c> (one character) matching, without allocation.</summary>
public static class Glob
{
    public static bool IsMatch(string pattern, string text)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(text);
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }
}
