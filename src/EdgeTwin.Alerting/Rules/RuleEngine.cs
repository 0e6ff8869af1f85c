using System.Globalization;
using EdgeTwin.Alerting.State;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.Rules;

/// <summary>
/// Evaluates the rules on samples and events. Rule→series bindings are compiled once per series (when the registry
/// announces it) into an array indexed by <see cref="SeriesId"/>, so a sample costs an array read and a comparison per
/// rule that watches its series, and allocates nothing; only a condition change reaches the <see cref="AlertManager"/>'s
/// lifecycle (an active alert's value is updated in place).
/// </summary>
public sealed partial class RuleEngine : IDisposable
{
    // A rate ring: one slot per 1/RateBuckets of the window (a window spans RateBuckets + 1 buckets at most).
    private const int RateBuckets = 60;
    private const int RateSlots = 64;

    private readonly AlertManager _manager;
    private readonly SeriesRegistry _registry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly List<AlertRule> _seriesRules;
    private readonly List<AlertRule> _eventRules;
    private readonly List<Binding> _timed = [];
    private readonly Dictionary<(string Rule, string Scope), Combined> _combined = [];
    private readonly List<AlertInstance> _eventInstances = [];
    private Binding[]?[] _bySeries = [];
    private RetiredSeriesCursor _retired; // under _gate

    // Devices a device_down rule reports down: their series' missing-data alerts would only repeat that alert.
    private readonly HashSet<string> _downDevices = new(StringComparer.Ordinal);

    public RuleEngine(AlertManager manager, SeriesRegistry registry, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(registry);
        _manager = manager;
        _registry = registry;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _seriesRules = [.. manager.Config.Rules.Where(r => r.Kind is RuleKind.Threshold or RuleKind.Rate or RuleKind.Stuck or RuleKind.Missing or RuleKind.State)];
        _eventRules = [.. manager.Config.Rules.Where(r => r.Kind is RuleKind.DeviceDown or RuleKind.Event)];
        _registry.SeriesAdded += OnSeriesAdded;
        foreach (var (id, descriptor) in _registry.Snapshot())
        {
            OnSeriesAdded(id, descriptor);
        }
    }

    /// <summary>Series that at least one rule watches.</summary>
    public int BoundSeries
    {
        get
        {
            var table = Volatile.Read(ref _bySeries);
            return table.Count(b => b is not null);
        }
    }

    /// <summary>Evaluates a batch. <paramref name="arrival"/> is the Stopwatch timestamp the batch arrived (for latency figures; 0 if unknown).</summary>
    public void Process(ReadOnlySpan<Sample> samples, long arrival = 0)
    {
        var now = _time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        lock (_gate)
        {
            UnbindRetired(now);
            var table = _bySeries;
            foreach (ref readonly var s in samples)
            {
                var i = s.Series.Value;
                if ((uint)i >= (uint)table.Length || table[i] is not { } bindings)
                {
                    continue;
                }

                foreach (var b in bindings)
                {
                    Evaluate(b, in s, now, nowMs, arrival);
                }
            }
        }

        // The batch's changes go to the store in one commit, then to the sinks.
        _manager.Commit();
    }

    /// <summary>Device up/down for device rules; predictions and anomalies for event rules. Own alert events are ignored.</summary>
    public void Handle(EdgeEvent edgeEvent)
    {
        ArgumentNullException.ThrowIfNull(edgeEvent);
        if (edgeEvent.Kind is EdgeEventKind.AlertRaised or EdgeEventKind.AlertCleared or EdgeEventKind.AlertAcknowledged or EdgeEventKind.AlertSilenced)
        {
            return;
        }

        var now = _time.GetUtcNow();
        if (edgeEvent.Kind is EdgeEventKind.DeviceDown or EdgeEventKind.DeviceUp
            && _eventRules.Exists(r => r.Kind == RuleKind.DeviceDown && Glob.IsMatch(r.SourceGlob, edgeEvent.Source)))
        {
            lock (_gate)
            {
                _ = edgeEvent.Kind == EdgeEventKind.DeviceDown ? _downDevices.Add(edgeEvent.Source) : _downDevices.Remove(edgeEvent.Source);
            }
        }

        foreach (var rule in _eventRules)
        {
            if (!Glob.IsMatch(rule.SourceGlob, edgeEvent.Source))
            {
                continue;
            }

            if (rule.Kind == RuleKind.DeviceDown && edgeEvent.Kind is EdgeEventKind.DeviceDown or EdgeEventKind.DeviceUp)
            {
                var down = edgeEvent.Kind == EdgeEventKind.DeviceDown;
                var instance = _manager.Instance(rule, edgeEvent.Source, edgeEvent.Source);
                if (down && edgeEvent.Attributes is { } cause && cause.TryGetValue("error", out var error))
                {
                    // The scheduler's cause, so the 3 a.m. message says more than "is down".
                    instance.Detail = cause.TryGetValue("failures", out var failures) ? $"{failures} failed polls, {error}" : error;
                }

                _manager.SetCondition(instance, down, down ? 1 : 0, now);
            }
            else if (rule.Kind == RuleKind.Event && edgeEvent.Kind == rule.EventKind && Resolves(rule, edgeEvent))
            {
                // The source says the condition is over (the thermal twin's "state: resolved" has no countdown): clear
                // now, not clear_after later (a critical shutdown alert with the relay on stayed 10 min after cooling was back).
                if (_manager.Find(rule, edgeEvent.Source) is { RawActive: true } resolved)
                {
                    LogResolvedBySource(rule.Name, edgeEvent.Source);
                    resolved.ClearText = edgeEvent.Message is { Length: > 0 } m ? m : null;
                    _manager.SetCondition(resolved, false, resolved.Value, now);
                }
                else
                {
                    _manager.ForHoldNotHeld(rule, edgeEvent.Source);
                }
            }
            else if (rule.Kind == RuleKind.Event && edgeEvent.Kind == rule.EventKind
                && edgeEvent.Attributes is { } attributes && rule.Attribute is { } name
                && attributes.TryGetValue(name, out var text)
                && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
            {
                // An event below the rule's limit from a source without an alert has nothing to record: every series
                // whose detector ever published an anomaly, at any score, kept an alert in memory (≈ 1 KB each).
                var known = _manager.Find(rule, edgeEvent.Source) is { Retired: false } live ? live : null;
                if (known is null && !rule.Evaluate(value, false))
                {
                    _manager.ForHoldNotHeld(rule, edgeEvent.Source);
                    continue;
                }

                // Labelled with the place the event names (the zone of a cooling failure), built only for a new alert.
                // A retired namesake not yet forgotten (its series came back) is revived by Instance, not reused as retired.
                var instance = known
                    ?? _manager.Instance(rule, edgeEvent.Source, null, _manager.Site.EventPlaceLabels(edgeEvent.Source, attributes));

                // Filed at the centre under the device the event itself went to (the uplink's rule: its series' device,
                // the device it names, else its source up to the first '/').
                if (instance.Device is null)
                {
                    if (_registry.TryGet(edgeEvent.Series ?? edgeEvent.Source, out var sid))
                    {
                        var d = _registry[sid];
                        instance.Series = d.Key;
                        instance.Metric = d.Metric;
                        instance.Device = d.DeviceId;
                    }
                    else
                    {
                        instance.Device = edgeEvent.Device ?? EdgeTwin.Outbox.Summaries.UplinkBodies.DeviceOf(edgeEvent.Source);
                    }
                }

                // The summary is the event's own text (failed units, racks affected, first step), not "attribute = value".
                instance.EventMessage = edgeEvent.Message;
                lock (_gate)
                {
                    instance.LastEventMs = MonoMs();
                    if (!_eventInstances.Contains(instance))
                    {
                        _eventInstances.Add(instance);
                    }
                }

                var active = rule.Evaluate(value, instance.RawActive);
                if (active != instance.RawActive)
                {
                    _manager.SetCondition(instance, active, value, now);
                }
                else
                {
                    if (!active)
                    {
                        _manager.ForHoldNotHeld(rule, instance.Key);
                    }

                    _manager.SetValue(instance, value);
                }
            }
        }
    }

    /// <summary>
    /// An event of the rule's kind that ends the condition at its source: <c>state: resolved</c>, or no value for the
    /// rule's attribute at all (the source no longer predicts the condition, e.g. no shutdown within the horizon).
    /// </summary>
    private static bool Resolves(AlertRule rule, EdgeEvent edgeEvent) =>
        edgeEvent.Attributes is not { } attributes
        || string.Equals(attributes.GetValueOrDefault("state"), "resolved", StringComparison.Ordinal)
        || (rule.Attribute is { } name && !attributes.ContainsKey(name));

    /// <summary>A GPIO input rule's contact changed (from its edge interrupt).</summary>
    public void SetInput(AlertRule rule, bool active, long cause = 0)
    {
        ArgumentNullException.ThrowIfNull(rule);
        _manager.SetCondition(_manager.Instance(rule, rule.Name, null), active, active ? 1 : 0, _time.GetUtcNow(), cause);
    }

    /// <summary>Time-based conditions: stuck and missing series, event alerts without a new event; then the manager's tick.</summary>
    public void Tick()
    {
        var now = _time.GetUtcNow();
        var monoMs = MonoMs();
        List<AlertManager.AfterTimer>? afters = null;
        lock (_gate)
        {
            UnbindRetired(now);
            var running = false;
            foreach (var b in _timed)
            {
                var after = (long)b.Rule.After.TotalMilliseconds;
                if (b.Active)
                {
                    continue;
                }

                if (b.Resume is { Stuck: true } waiting && _time.GetTimestamp() - waiting.Deadline >= 0)
                {
                    // No good sample within the tolerance: what it would be compared with is too old.
                    b.Resume = null;
                    _manager.AfterOutcome(b.Rule, b.Key, "unclaimed", waiting, TimeSpan.Zero, "no sample within alerts.for_outage_tolerance of the last alive mark");
                }

                // Stuck and missing run on the monotonic clock: a wall-clock step forward made every series look
                // missing at once, a step back held the alert for the size of the step.
                if (b.Rule.Kind == RuleKind.Stuck && b.HasValue)
                {
                    if (monoMs - b.RefMs >= after)
                    {
                        StopAfter(b, monoMs - b.RefMs);
                        Update(b, true, b.Last, now, 0);
                    }
                    else
                    {
                        running |= monoMs - b.RefMs >= SaveAfterMs(b);
                    }
                }
                else if (b.Rule.Kind == RuleKind.Missing)
                {
                    if (monoMs - b.LastSeenMs >= after && !_downDevices.Contains(b.Device))
                    {
                        if (b.Resume is { } credited)
                        {
                            EndSaved(b, "restored", credited, log: false);
                        }
                        else
                        {
                            StopAfter(b, monoMs - b.LastSeenMs);
                        }

                        Update(b, true, (monoMs - b.LastSeenMs) / 1000.0, now, 0);
                    }
                    else
                    {
                        running |= monoMs - b.LastSeenMs >= SaveAfterMs(b);
                    }
                }
            }

            // Saved with the alive mark while one runs, and once more after the last stopped (its document goes).
            if ((running || _manager.HasAfterDocs) && _manager.AliveMarkDue)
            {
                _manager.CollectingAfters();
                afters = CollectAfters(monoMs);
            }

            foreach (var instance in _eventInstances)
            {
                // clear_after too: a wall-clock step forward cleared the alert at once (and the next event raised it again).
                if (instance.RawActive && monoMs - instance.LastEventMs >= (long)instance.Rule.After.TotalMilliseconds)
                {
                    // Cleared by silence, not by the source: say so ("resolved" alone read as if the source had said it was over).
                    instance.ClearText = $"{instance.Key}: no {instance.Rule.EventKind.ToWireName()} event for {Core.Config.Durations.Format(instance.Rule.After)} (clear_after), alert cleared";
                    _manager.SetCondition(instance, false, instance.Value, now);
                }
            }
        }

        _manager.Tick(now, afters);
    }

    /// <summary>The running after timers (and those saved before the stop still waiting for a sample), for the alive mark at a clean stop.</summary>
    internal List<AlertManager.AfterTimer> AfterTimers()
    {
        lock (_gate)
        {
            _manager.CollectingAfters();
            return CollectAfters(MonoMs());
        }
    }

    /// <summary>
    /// Under _gate. A timer is saved once it has run a tenth of its <c>after</c>, at least a minute (an alive mark's
    /// span), and a missing one also twice the gap between the series' last two samples: a steady probe, a slow poller
    /// or a report-on-change series would otherwise have the gateway write every minute for ever.
    /// </summary>
    private static long SaveAfterMs(Binding b)
    {
        var ms = Math.Max((long)AlertManager.AliveInterval.TotalMilliseconds, (long)b.Rule.After.TotalMilliseconds / 10);
        return b.Rule.Kind == RuleKind.Missing ? Math.Max(ms, 2 * b.GapMs) : ms;
    }

    /// <summary>
    /// Under _gate. <paramref name="b"/>'s running timer stopped after <paramref name="ranMs"/> (a sample came, the value
    /// moved, the alert fired, the series left): if it ran long enough to have been saved, its document goes now, not at
    /// the next alive mark. A kill in that minute left it, and the next start credited a missing series the time before
    /// the sample that had ended it (a stuck one whose value had moved and come back, the time before the move). One
    /// write per saved stretch, not per sample: a sample of a series that sends steadily costs two compares here.
    /// </summary>
    private void StopAfter(Binding b, long ranMs)
    {
        if (ranMs >= (long)AlertManager.AliveInterval.TotalMilliseconds && ranMs >= SaveAfterMs(b))
        {
            _manager.AfterStopped(b.Rule, b.Key);
        }
    }

    /// <summary>
    /// Under _gate. The timer saved before the stop that <paramref name="b"/> held ends as <paramref name="outcome"/>
    /// (counted; logged with <paramref name="why"/> unless <paramref name="log"/> is false), and its document goes now.
    /// </summary>
    private void EndSaved(Binding b, string outcome, AlertManager.SavedAfter saved, string? why = null, bool log = true)
    {
        b.Resume = null;
        _manager.AfterOutcome(b.Rule, b.Key, outcome, saved, TimeSpan.Zero, why, log: log);
        _manager.AfterStopped(b.Rule, b.Key);
    }

    /// <summary>
    /// How much of <paramref name="rule"/>'s after a saved timer credits: what it had run, less the grace a resumed
    /// timer still needs on fresh samples (1 min, its whole after when shorter), as a resumed for: hold. A missing
    /// timer's grace is at least twice the series' sample gap (<paramref name="sampleGap"/>): a 5 min poller whose
    /// device came back during the downtime would otherwise be reported missing before its first poll after the start.
    /// </summary>
    private static long CreditMs(AlertRule rule, TimeSpan elapsed, out TimeSpan left, TimeSpan sampleGap = default)
    {
        var grace = sampleGap * 2 > AlertManager.RestoreGrace ? sampleGap * 2 : AlertManager.RestoreGrace;
        grace = rule.After < grace ? rule.After : grace;
        left = rule.After - elapsed;
        if (left < grace)
        {
            left = grace;
        }

        return (long)(rule.After - left).TotalMilliseconds;
    }

    /// <summary>Under _gate. The after timers to save with an alive mark (see <see cref="AlertManager.Tick(DateTimeOffset, List{AlertManager.AfterTimer})"/>).</summary>
    private List<AlertManager.AfterTimer> CollectAfters(long monoMs)
    {
        var list = new List<AlertManager.AfterTimer>();
        foreach (var b in _timed)
        {
            if (b.Active)
            {
                continue;
            }

            if (b.Resume is { Stuck: true } waiting)
            {
                list.Add(new(b.Rule, b.Key, true, waiting.Value, waiting.Elapsed, AlertManager.FrozenAfter));
            }
            else if (b.Rule.Kind == RuleKind.Stuck && b.HasValue && monoMs - b.RefMs >= SaveAfterMs(b))
            {
                list.Add(new(b.Rule, b.Key, true, b.Last, TimeSpan.FromMilliseconds(monoMs - b.RefMs), b.RefMs));
            }
            else if (b.Rule.Kind == RuleKind.Missing && monoMs - b.LastSeenMs >= SaveAfterMs(b))
            {
                // A missing timer keeps the series' sample gap (seconds) where a stuck one keeps its value.
                list.Add(new(b.Rule, b.Key, false, b.GapMs / 1000.0, TimeSpan.FromMilliseconds(monoMs - b.LastSeenMs), b.LastSeenMs));
            }
        }

        return list;
    }

    public void Dispose() => _registry.SeriesAdded -= OnSeriesAdded;

    /// <summary>
    /// Under _gate. A retired series' row left its device for good: its rules stop watching it, and an alert it holds
    /// (typically "missing" since the row vanished) clears, saying why, instead of firing until the next restart.
    /// </summary>
    private void UnbindRetired(DateTimeOffset now)
    {
        while (_retired.TryNext(_registry, out var id))
        {
            RetireEventAlerts(_registry[id].Key, now);
            var table = _bySeries;
            if ((uint)id.Value >= (uint)table.Length || table[id.Value] is not { } bindings)
            {
                continue;
            }

            foreach (var b in bindings)
            {
                if (_timed.Remove(b) && !b.Active)
                {
                    if (b.Resume is { } saved)
                    {
                        // Its series is gone for good: the timer saved before the stop ends here, counted and logged.
                        EndSaved(b, "condition_gone", saved, "its series left the device (its table row is gone for row_retention)");
                    }
                    else
                    {
                        var mono = MonoMs();
                        StopAfter(b, b.Rule.Kind == RuleKind.Missing ? mono - b.LastSeenMs : b.HasValue ? mono - b.RefMs : 0);
                    }
                }

                if (b.Active)
                {
                    if (b.Instance is { } instance)
                    {
                        instance.ClearedBecause = "left the device (its table row is gone for row_retention): series retired, alert cleared";
                    }

                    Update(b, false, b.Last, now, 0);
                }

                if (b.Instance is { } own)
                {
                    _manager.Retire(own, now);
                }

                if (b.Group is { } g)
                {
                    g.Members--;
                    g.Reported -= b.Reported ? 1 : 0;
                    g.Worst = ReferenceEquals(g.Worst, b) ? null : g.Worst;
                }
            }

            var copy = (Binding[]?[])table.Clone();
            copy[id.Value] = null;
            Volatile.Write(ref _bySeries, copy);
        }
    }

    /// <summary>
    /// Under _gate. The event alerts keyed by a retired series (an anomaly's source is its series) go the way of its
    /// bound alerts: cleared saying why if active, out of the clear_after list, and forgotten by the manager once nothing
    /// is owed. Every row of a churning table that once had an anomaly event left one instance here for ever.
    /// </summary>
    private void RetireEventAlerts(string seriesKey, DateTimeOffset now)
    {
        for (var i = _eventInstances.Count - 1; i >= 0; i--)
        {
            var instance = _eventInstances[i];
            if (!string.Equals(instance.Key, seriesKey, StringComparison.Ordinal))
            {
                continue;
            }

            if (instance.RawActive)
            {
                instance.ClearedBecause = "left the device (its table row is gone for row_retention): series retired, alert cleared";
                _manager.SetCondition(instance, false, instance.Value, now);
            }

            _eventInstances.RemoveAt(i);
            _manager.Retire(instance, now);
        }
    }

    /// <summary>Event alerts the engine watches for clear_after, for tests and diagnostics.</summary>
    internal int EventAlertCount
    {
        get
        {
            lock (_gate)
            {
                return _eventInstances.Count;
            }
        }
    }

    /// <summary>The monotonic clock in milliseconds (arbitrary origin), for stuck/missing and clear_after durations.</summary>
    private long MonoMs() => (long)(_time.GetTimestamp() / (double)_time.TimestampFrequency * 1000);

    private void Evaluate(Binding b, in Sample s, DateTimeOffset now, long nowMs, long arrival)
    {
        var rule = b.Rule;
        switch (rule.Kind)
        {
            case RuleKind.Threshold:
                if (!s.IsGood)
                {
                    return;
                }

                b.HasValue = true;
                var v = s.Value * b.Factor;
                b.Last = v;
                var active = rule.Evaluate(v, b.Active);
                if (active != b.Active || !b.Reported)
                {
                    Update(b, active, v, now, arrival);
                }

                Live(b, active, v);
                break;
            case RuleKind.State:
                if (!s.IsGood)
                {
                    return;
                }

                b.HasValue = true;
                b.Last = s.Value;
                var inAlarm = Array.IndexOf(b.AlarmCodes!, (long)Math.Round(s.Value)) >= 0;
                if (inAlarm != b.Active || !b.Reported)
                {
                    Update(b, inAlarm, s.Value, now, arrival);
                }

                Live(b, inAlarm, s.Value);
                break;
            case RuleKind.Rate:
                if (!s.IsGood)
                {
                    return;
                }

                var rate = b.PushRate(s.TimestampUnixMs, s.Value, (long)rule.Window.TotalMilliseconds);
                if (!double.IsNaN(rate))
                {
                    var on = rule.Evaluate(rate, b.Active);
                    if (on != b.Active || !b.Reported)
                    {
                        Update(b, on, rate, now, arrival);
                    }

                    Live(b, on, rate);
                }

                break;
            case RuleKind.Stuck:
                if (s.Quality == SampleQuality.Stuck)
                {
                    // The source flags it stuck itself: the alert goes active now, a saved timer has nothing to add (it ends
                    // counted, its document goes with it).
                    if (b.Resume is { } superseded)
                    {
                        EndSaved(b, "condition_gone", superseded,
                            "the source flags the first sample after the start stuck itself: the alert fires at once, without the saved time");
                    }

                    if (!b.Active)
                    {
                        if (b.HasValue)
                        {
                            StopAfter(b, MonoMs() - b.RefMs);
                        }

                        Update(b, true, s.Value, now, arrival);
                    }

                    return;
                }

                if (!s.IsGood)
                {
                    return;
                }

                if (b.Resume is { } saved)
                {
                    // The first good sample since the start: the after timer saved before the stop goes on only if the
                    // series is still at the value it was seen stuck at (compared as the rule compares).
                    b.Resume = null;
                    if (!b.HasValue && !b.Active && Math.Abs(s.Value - saved.Value) <= rule.Tolerance)
                    {
                        b.HasValue = true;
                        b.Last = saved.Value;
                        b.RefMs = MonoMs() - CreditMs(rule, saved.Elapsed, out var left);
                        _manager.AfterOutcome(rule, b.Key, "restored", saved, left);
                        break;
                    }

                    EndSaved(b, "condition_gone", saved,
                        string.Create(CultureInfo.InvariantCulture, $"the first sample after the start reads {s.Value}, not the {saved.Value} seen stuck"));
                }

                if (!b.HasValue || Math.Abs(s.Value - b.Last) > rule.Tolerance)
                {
                    if (b.Hold && b.HasValue && !b.Active && b.Instance is { } moved)
                    {
                        // The value moved since the start: the stuck hold saved before the stop is over.
                        b.Hold = false;
                        _manager.ForHoldNotHeld(rule, moved.Key);
                    }

                    var moveMs = MonoMs();
                    if (b.HasValue && !b.Active)
                    {
                        // A saved stuck stretch ends: its document goes now (a value back at the saved one before a kill was credited).
                        StopAfter(b, moveMs - b.RefMs);
                    }

                    b.HasValue = true;
                    b.Last = s.Value;
                    b.RefMs = moveMs;
                    if (b.Active)
                    {
                        Update(b, false, s.Value, now, arrival);
                    }
                }

                break;
            case RuleKind.Missing:
                var seenMs = MonoMs();
                if (b.Resume is { } credit)
                {
                    // The series sends again: the time credited from before the stop is over.
                    b.GapMs = 0;
                    EndSaved(b, "condition_gone", credit, "the series sent a sample before its after ran out");
                }
                else
                {
                    // A gap long enough to have been saved ends: its document goes now (before, a kill in the minute
                    // after this sample credited the gap after the restart). Before GapMs moves: SaveAfterMs uses it.
                    var gap = seenMs - b.LastSeenMs;
                    if (!b.Active)
                    {
                        StopAfter(b, gap);
                    }

                    b.GapMs = gap;
                }

                b.LastSeenMs = seenMs;
                if (b.Hold && !b.Active && b.Instance is { } seen)
                {
                    // Data again since the start: the missing hold saved before the stop is over.
                    b.Hold = false;
                    _manager.ForHoldNotHeld(rule, seen.Key);
                }

                if (b.Active)
                {
                    Update(b, false, 0, now, arrival);
                }

                break;
        }
    }

    /// <summary>
    /// Keeps an active alert's value current (the list, an acknowledge and the clear showed the value at the raise: 27 °C
    /// for a rack at 35 °C). A combined alert shows its worst active member: the member that holds the worst value
    /// updates it, another member takes over when it is worse, so it does not jump between racks with every sample.
    /// </summary>
    private void Live(Binding b, bool active, double value)
    {
        if (b.Group is not { } g)
        {
            if (active)
            {
                _manager.SetValue(b.Instance!, value);
            }

            return;
        }

        if (!active)
        {
            if (ReferenceEquals(g.Worst, b))
            {
                g.Worst = null; // the next active member's sample takes over
            }

            return;
        }

        if (g.Worst is null || ReferenceEquals(g.Worst, b)
            || (b.Rule.Direction == Direction.Above ? value > g.WorstValue : value < g.WorstValue))
        {
            g.Worst = b;
            g.WorstValue = value;
            if (g.Instance.RawActive)
            {
                _manager.SetValue(g.Instance, value);
            }
        }
    }

    private void Update(Binding b, bool active, double value, DateTimeOffset now, long cause)
    {
        var wasActive = b.Active;
        var wasReported = b.Reported;
        b.Active = active;
        b.Reported = true;
        if (b.Group is not { } g)
        {
            if (b.Hold)
            {
                // The first evaluation since the start: a for: hold saved before the stop resumes if the condition holds
                // (SetCondition), and is dropped if it does not.
                b.Hold = false;
                if (!active)
                {
                    _manager.ForHoldNotHeld(b.Rule, b.Instance!.Key);
                }
            }

            if (active != b.Instance!.RawActive)
            {
                _manager.SetCondition(b.Instance, active, value, now, cause, commit: false);
            }

            return;
        }

        if (!wasReported)
        {
            g.Reported++;
        }

        if (active && !wasActive)
        {
            g.ActiveMembers++;
            g.Hot[b.Member] = g.Hot.GetValueOrDefault(b.Member) + 1;
            g.Instance.HotMembers = [.. g.Hot.Keys];
        }
        else if (!active && wasActive)
        {
            g.ActiveMembers--;

            // Counted per series: a rack's other PDU may still be hot.
            if (g.Hot.TryGetValue(b.Member, out var n) && n > 1)
            {
                g.Hot[b.Member] = n - 1;
            }
            else
            {
                g.Hot.Remove(b.Member);
            }

            g.Instance.HotMembers = [.. g.Hot.Keys];
        }

        bool groupActive;
        bool decided;
        if (g.Rule.Combine == Combine.Any)
        {
            groupActive = g.ActiveMembers > 0;

            // "None active" is only known once every member has spoken (after a restart the alert may be restored firing).
            decided = groupActive || g.Reported == g.Members;
        }
        else
        {
            groupActive = g.ActiveMembers == g.Members && g.Members > 0;
            decided = groupActive || g.Reported > g.ActiveMembers;
        }

        if (decided && g.Hold)
        {
            g.Hold = false;
            if (!groupActive)
            {
                _manager.ForHoldNotHeld(g.Rule, g.Instance.Key);
            }
        }

        if (decided && groupActive != g.Instance.RawActive)
        {
            _manager.SetCondition(g.Instance, groupActive, value, now, cause, commit: false);
        }
    }

    private void OnSeriesAdded(SeriesId id, SeriesDescriptor descriptor)
    {
        List<Binding>? bindings = null;
        foreach (var rule in _seriesRules)
        {
            if (!rule.Match.Matches(descriptor))
            {
                continue;
            }

            long[]? alarmCodes = null;
            IReadOnlyDictionary<long, string>? stateNames = null;
            if (rule.Kind == RuleKind.State)
            {
                // A series without states: (or none of the rule's) cannot be in an alarm state; binding it would only count it.
                stateNames = _manager.Site.StateNames(descriptor.DeviceId, descriptor.Metric);
                alarmCodes = stateNames is { } names
                    ? [.. names.Where(n => rule.States.Contains(n.Value, StringComparer.Ordinal)).Select(n => n.Key)]
                    : [];
                if (alarmCodes.Length == 0)
                {
                    continue;
                }
            }

            var factor = 1.0;
            double? breakerA = null;
            if (rule.PercentOfBreaker)
            {
                // % of the feed's breaker: a current of a device that meters a feed with a known rating, else nothing to compare.
                var amps = descriptor.Unit switch { "A" => 1.0, "mA" => 0.001, _ => double.NaN };
                if (_manager.Site.BreakerA(descriptor.DeviceId) is not { } breaker || double.IsNaN(amps))
                {
                    continue;
                }

                factor = amps * 100 / breaker;
                breakerA = breaker;
            }

            Binding b;
            if (rule.Combine == Combine.None)
            {
                var instance = _manager.Instance(rule, descriptor.Key, descriptor.DeviceId);
                Describe(instance, descriptor);
                instance.StateNames = stateNames;
                instance.BreakerA = breakerA;
                b = new Binding(rule, instance, null) { Active = instance.RawActive, AlarmCodes = alarmCodes, Device = descriptor.DeviceId, Key = descriptor.Key, Factor = factor, Hold = _manager.HasForHold(rule, instance.Key) };
            }
            else
            {
                var placed = _manager.Site.ScopeValue(rule.Per, descriptor.DeviceId);
                var scope = placed ?? descriptor.DeviceId;
                lock (_gate)
                {
                    if (!_combined.TryGetValue((rule.Name, scope), out var group))
                    {
                        // Labelled with the scope only: the first member's rack and device are not the room's.
                        var place = placed is null ? null : _manager.Site.ScopeLabels(rule.Per, placed);
                        group = new Combined(rule, _manager.Instance(rule, scope, descriptor.DeviceId, place));
                        group.Hold = _manager.HasForHold(rule, group.Instance.Key);
                        _combined[(rule.Name, scope)] = group;
                    }

                    group.Members++;

                    // Members are named by rack when the topology places them (a rack's two PDUs are one member).
                    var member = _manager.Site.Place(descriptor.DeviceId).Rack is { } rack ? "rack " + rack : "device " + descriptor.DeviceId;
                    group.Names.Add(member);
                    group.Instance.MemberCount = group.Names.Count;
                    Describe(group.Instance, descriptor);
                    b = new Binding(rule, null, group) { AlarmCodes = alarmCodes, Device = descriptor.DeviceId, Key = descriptor.Key, Member = member, Factor = factor };
                }
            }

            b.LastSeenMs = MonoMs();
            if (rule.Kind is RuleKind.Stuck or RuleKind.Missing && !b.Active && _manager.TakeAfter(rule, descriptor.Key) is { } saved)
            {
                // An after timer saved before the stop: a stuck one waits for the first sample's value; a missing one
                // is credited now, and dropped by the first sample (Evaluate).
                if (rule.Kind == RuleKind.Missing)
                {
                    var gap = double.IsFinite(saved.Value) && saved.Value > 0 ? TimeSpan.FromSeconds(Math.Min(saved.Value, rule.After.TotalSeconds)) : TimeSpan.Zero;
                    b.GapMs = (long)gap.TotalMilliseconds;
                    b.LastSeenMs -= CreditMs(rule, saved.Elapsed, out var left, gap);
                    _manager.AfterOutcome(rule, descriptor.Key, "restored", saved, left, count: false);
                }

                b.Resume = saved;
            }

            (bindings ??= []).Add(b);
        }

        if (bindings is null)
        {
            return;
        }

        lock (_gate)
        {
            var table = _bySeries;
            if (id.Value >= table.Length)
            {
                Array.Resize(ref table, Math.Max(id.Value + 1, table.Length * 2));
            }
            else
            {
                table = (Binding[]?[])table.Clone();
            }

            table[id.Value] = [.. bindings];
            foreach (var b in bindings)
            {
                if (b.Rule.Kind is RuleKind.Stuck or RuleKind.Missing)
                {
                    _timed.Add(b);
                }
            }

            Volatile.Write(ref _bySeries, table);
        }
    }

    /// <summary>
    /// The unit and the metric (without the device) the default summary shows; the metric, and for a one-series alert its
    /// series and device, that its events to the centre carry.
    /// </summary>
    private static void Describe(AlertInstance instance, SeriesDescriptor descriptor)
    {
        if (instance.Rule.Combine == Combine.None)
        {
            instance.Device = descriptor.DeviceId;
            instance.Series = descriptor.Key;
        }

        instance.Metric = descriptor.Metric;
        instance.Unit = instance.Rule.PercentOfBreaker ? "% of breaker" : descriptor.Unit;
        instance.Subject = descriptor.Key.StartsWith(descriptor.DeviceId + "/", StringComparison.Ordinal) ? descriptor.Key[(descriptor.DeviceId.Length + 1)..] : descriptor.Key;
    }

    /// <summary>One rule on one series: its condition, its last value and, for rates, a ring of recent points.</summary>
    private sealed class Binding(AlertRule rule, AlertInstance? instance, Combined? group)
    {
        private long[]? _t;
        private double[]? _v;
        private int _head;
        private int _count;
        private long _lastMs;

        public AlertRule Rule { get; } = rule;

        public AlertInstance? Instance { get; } = instance;

        public Combined? Group { get; } = group;

        public bool Active { get; set; }

        public bool Reported { get; set; }

        public bool HasValue { get; set; }

        /// <summary>A <c>for:</c> hold saved before the stop waits for this binding's first evaluation (see AlertManager.HasForHold).</summary>
        public bool Hold { get; set; }

        public string Device { get; init; } = "";

        /// <summary>The series' key (an after timer is saved per rule and series, a combined rule's too).</summary>
        public string Key { get; init; } = "";

        /// <summary>
        /// An after timer saved before the stop: stuck, waiting for the first good sample to compare its value; missing,
        /// credited at the start until the alert fires or a sample comes.
        /// </summary>
        public AlertManager.SavedAfter? Resume { get; set; }

        /// <summary>Missing rules: the time between the series' last two samples (ms), for <see cref="SaveAfterMs"/>.</summary>
        public long GapMs { get; set; }

        /// <summary>Combined rules: the member this series counts for (<c>rack A02</c>, or <c>device X</c> outside racks).</summary>
        public string Member { get; init; } = "";

        /// <summary>Factor from the series' value to the rule's (threshold with <c>percent_of: breaker</c>: A → % of the breaker), else 1.</summary>
        public double Factor { get; init; } = 1;

        /// <summary>State rules: the codes of this series' profile whose names the rule lists.</summary>
        public long[]? AlarmCodes { get; init; }

        public double Last { get; set; }

        /// <summary>When the value last changed, on the monotonic clock (<see cref="MonoMs"/>).</summary>
        public long RefMs { get; set; }

        /// <summary>When a sample last arrived, on the monotonic clock (<see cref="MonoMs"/>).</summary>
        public long LastSeenMs { get; set; }

        /// <summary>Adds a point; returns the change per minute over the window, or NaN while the window holds less than half its span.</summary>
        /// <remarks>
        /// The ring is kept by time, not by sample: it holds the first point of each 1/<see cref="RateBuckets"/> of the
        /// window, so it spans the whole window at any poll interval (one slot per sample held only 63 s at 1 s polling,
        /// and a 3 min window never filled). The rate compares the newest sample with the oldest point in the window.
        /// </remarks>
        public double PushRate(long tMs, double v, long windowMs)
        {
            _t ??= new long[RateSlots];
            _v ??= new double[RateSlots];
            if (_count > 0 && tMs <= _lastMs)
            {
                if (tMs >= _lastMs - SampleClock.ToleranceMs)
                {
                    return double.NaN; // out of order or repeated timestamp
                }

                // Far older than the last: the wall clock stepped back (one series' samples come in order). The points
                // kept are on the old clock; start over rather than drop every sample until the clock catches up.
                _count = 0;
            }

            _lastMs = tMs;
            var bucketMs = Math.Max(1, (windowMs + RateBuckets - 1) / RateBuckets);
            if (_count == 0 || tMs / bucketMs != _t[(_head + _count - 1) % RateSlots] / bucketMs)
            {
                if (_count == RateSlots)
                {
                    _head = (_head + 1) % RateSlots;
                    _count--;
                }

                _t[(_head + _count) % RateSlots] = tMs;
                _v[(_head + _count) % RateSlots] = v;
                _count++;
            }

            while (_count > 1 && tMs - _t[_head] > windowMs)
            {
                _head = (_head + 1) % RateSlots;
                _count--;
            }

            var span = tMs - _t[_head];
            if (span <= 0 || span * 2 < windowMs)
            {
                return double.NaN;
            }

            return (v - _v[_head]) * 60_000.0 / span;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key}: the source reports the condition resolved")]
    private partial void LogResolvedBySource(string rule, string key);

    /// <summary>The members of one scope (rack, room…) combined by any/all into one alert.</summary>
    private sealed class Combined(AlertRule rule, AlertInstance instance)
    {
        public AlertRule Rule { get; } = rule;

        public AlertInstance Instance { get; } = instance;

        public int Members { get; set; }

        public int Reported { get; set; }

        public int ActiveMembers { get; set; }

        /// <summary>A <c>for:</c> hold saved before the stop waits for the group's first decided evaluation.</summary>
        public bool Hold { get; set; }

        /// <summary>The active member whose value the alert shows (the worst one), and that value.</summary>
        public Binding? Worst { get; set; }

        public double WorstValue { get; set; }

        /// <summary>Members in the alarm zone, with how many of their series are (sorted, for a stable summary).</summary>
        public SortedDictionary<string, int> Hot { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Names { get; } = new(StringComparer.Ordinal);
    }
}
