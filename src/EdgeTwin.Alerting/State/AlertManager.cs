using System.Globalization;
using EdgeTwin.Alerting.Connectivity;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Events;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Alerting.State;

/// <summary>Work the manager hands to the dispatcher: an event for the outbox, or a message for the sinks.</summary>
internal abstract record Outgoing;

/// <summary>An alert raised, cleared, acknowledged or a rule silenced, for the event sink (outbox); <see cref="Seq"/> is its history line.</summary>
internal sealed record OutgoingEvent(EdgeEvent Event, long Seq) : Outgoing;

/// <summary>A message for the sinks; <see cref="StateOnly"/> messages go only to state sinks (GPIO), ungrouped.</summary>
internal sealed record OutgoingNotification(AlertNotification Notification, bool StateOnly) : Outgoing;

/// <summary>What an acknowledge or silence request did.</summary>
public enum ControlResult : byte
{
    Done,
    NotFound,
    NotFiring,
    AlreadyAcknowledged,
}

/// <summary>
/// The alert lifecycle: pending → firing → resolved, acknowledged, silenced until a time, grouped into one message per
/// group, with a flapping guard. Every change is saved in <see cref="AlertStore"/> before anyone hears of it, so a
/// restart neither loses a firing alert nor notifies an acknowledged one again. One lock guards all state; nothing
/// inside it awaits (the sinks and the outbox are fed through a channel read by the dispatcher).
/// </summary>
public sealed partial class AlertManager : IDisposable
{
    private readonly Lock _gate = new();
    private readonly AlertsConfig _config;
    private readonly SiteIndex _site;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly AlertStore _store;
    private readonly Dictionary<string, AlertRule> _rules;
    private readonly Dictionary<(string Rule, string Key), AlertInstance> _instances = [];
    private readonly Dictionary<long, AlertInstance> _byId = [];
    private readonly Dictionary<string, DateTimeOffset> _silences;

    // When each silence set in this run ends, on the monotonic clock: "silence for 1h" lasts an hour however NTP steps
    // the wall clock meanwhile. A silence restored at start has none and ends at its saved wall-clock time (what the
    // operator was told, and all that survives a power-off).
    private readonly Dictionary<string, long> _silenceEnds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private readonly List<AlertInstance> _pending = [];
    private readonly List<AlertInstance> _flapping = [];
    private readonly List<AlertInstance> _retiring = [];
    private readonly FlapClock _flapClock;
    private readonly List<StoredAlert> _restored;
    private readonly AlertingMetrics? _metrics;
    private readonly Lock _dispatchGate = new();
    private readonly List<Outgoing> _early = [];
    private readonly Queue<AlertHistoryEntry> _unsaved = new();
    private Action<Outgoing>? _dispatch;
    private WriteUnit? _unit;
    private long _nextId;
    private long _nextSeq;
    private UplinkState _uplink = UplinkState.Online;

    // for: holds saved before the stop that this run has not evaluated again, by (rule, key): the first evaluation that
    // finds the condition still holding resumes the hold with the time it had already held (Resume), one that finds it
    // over drops it. _holdCount mirrors the count for a lock-free "none left" check on the evaluation path.
    private readonly Dictionary<(string Rule, string Key), SavedHold> _holds = [];
    private int _holdCount;

    // stuck/missing after timers saved before the stop, by (rule, series key), until the rule engine binds the series
    // (TakeAfter); and the after documents on disk, by the reference the rule engine saved them for (FrozenAfter: a
    // document of the earlier run kept as it is until its series is evaluated). _afterDocCount mirrors the latter.
    private readonly Dictionary<(string Rule, string Key), SavedAfter> _afters = [];
    private int _afterCount;
    private readonly Dictionary<(string Rule, string Key), long> _afterDocs = [];
    private int _afterDocCount;
    internal const long FrozenAfter = long.MinValue;

    // Timers that stopped (AfterStopped) since the rule engine collected the list the next alive mark saves: that list
    // is taken under the engine's lock and saved under this one, so a sample in between must not bring a document back.
    private readonly HashSet<(string Rule, string Key)> _stoppedAfters = [];

    // Its own step detector (FlapClock.Stepped remembers what it saw: the flapping guard's must not miss a step).
    private readonly FlapClock _aliveClock;
    private long _lastAliveMark;

    /// <summary>How often the alive mark (and the pending holds not yet saved) is written while an alert is pending.</summary>
    internal static readonly TimeSpan AliveInterval = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A hold resumed after a restart still needs this long (or its whole <c>for:</c> when shorter) of the condition on
    /// samples taken after the start before it fires: Prometheus's <c>for-grace-period</c>, here on fresh samples.
    /// </summary>
    internal static readonly TimeSpan RestoreGrace = TimeSpan.FromMinutes(1);

    /// <param name="host">This machine for the store's origin check (<see cref="EdgeTwin.Core.Config.StoreOrigin.ThisHost"/>; null: read it).</param>
    public AlertManager(AlertsConfig config, SiteIndex site, string storePath, TimeProvider? time = null, ILogger? logger = null, AlertingMetrics? metrics = null, string? host = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _site = site ?? new SiteIndex(null);
        _time = time ?? TimeProvider.System;
        _flapClock = new FlapClock(_time);
        _aliveClock = new FlapClock(_time);
        _lastAliveMark = _time.GetTimestamp();
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        _rules = config.Rules.ToDictionary(r => r.Name, StringComparer.Ordinal);
        _store = new AlertStore(storePath, _logger, metrics, host);
        _silences = _store.LoadSilences();
        RestoredUplink = _store.LoadUplink();
        _restored = [.. _store.LoadAlerts()];
        _nextId = FirstId(_restored, _time, copied: _store.CopiedBecause is not null);
        _nextSeq = FirstSeq(_store.LastSeq, _store.PublishedAtOpen, _time);
        lock (_gate)
        {
            Restore();
            RestorePending();
            RestoreAfters();
            Submit();
        }

        _store.Start(OnCommitted);
    }

    /// <summary>
    /// The next alert id: one above the highest stored (the newest alert is never pruned, so that is the high-water mark).
    /// A store without any alert — the first start, or alerts.db lost: corrupt and set aside, moved, a new disk — numbers
    /// from the wall clock instead, unix ms at this start: ids restarted at 1 after a lost store, and the centre, which
    /// keeps its alert history by <c>alert_id</c>, merged unrelated alerts under one id. Unique as long as the clock is
    /// sane and the lost store averaged under one new alert per millisecond of its life (same rule as the outbox's
    /// sequences); the wire type is unchanged (a decimal string, below 2^53).
    /// </summary>
    /// <remarks>
    /// A store that is a copy (<paramref name="copied"/>: a restored backup, an old gateway's store moved onto its
    /// replacement) also numbers from the clock, above its own highest id: the original went on giving out ids after
    /// the copy was taken, and new alerts under those ids were merged at the centre with the original's.
    /// </remarks>
    internal static long FirstId(IReadOnlyCollection<StoredAlert> restored, TimeProvider time, bool copied = false)
    {
        var clock = Math.Max(1, time.GetUtcNow().ToUnixTimeMilliseconds());
        return restored.Count == 0 ? clock : copied ? Math.Max(restored.Max(a => a.Id) + 1, clock) : restored.Max(a => a.Id) + 1;
    }

    /// <summary>
    /// The next history line's sequence: one above the newest stored line. A store without any line (the first start, or
    /// alerts.db lost) numbers from the wall clock like <see cref="FirstId"/>, and always above the published mark: a
    /// corrupt alerts.db set aside with a journal holding only the lost store's mark (say 40,000) restarted its lines at
    /// 1, below the mark, so lines 1–40,000 counted as handed to the outbox — a raise or clear the agent was killed before
    /// handing over was never re-published and the centre never heard it — and <c>alerts history --json</c> reused the
    /// lost store's <c>seq</c> values.
    /// </summary>
    internal static long FirstSeq(long lastSeq, long publishedThrough, TimeProvider time) =>
        lastSeq > 0 ? Math.Max(lastSeq, publishedThrough) + 1 : Math.Max(publishedThrough + 1, Math.Max(1, time.GetUtcNow().ToUnixTimeMilliseconds()));

    public AlertsConfig Config => _config;

    /// <summary>The uplink's state and since when as last saved (the connectivity monitor starts from it).</summary>
    public (UplinkState State, DateTimeOffset Since)? RestoredUplink { get; }

    public SiteIndex Site => _site;

    public UplinkState Uplink
    {
        get
        {
            lock (_gate)
            {
                return _uplink;
            }
        }
    }

    /// <summary>Changes not yet committed (queued or being written).</summary>
    internal int PendingWrites => _store.Pending;

    /// <summary>
    /// Where committed messages and events go (the service's dispatcher), called on the store's writer thread in order.
    /// What was committed before (the restore) is handed over first.
    /// </summary>
    internal void Attach(Action<Outgoing> dispatch)
    {
        lock (_dispatchGate)
        {
            foreach (var o in _early)
            {
                dispatch(o);
            }

            _early.Clear();
            _dispatch = dispatch;
        }
    }

    /// <summary>Completes once every change made before the call is durable (an acknowledge answered only then).</summary>
    public Task FlushAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            Current().Done = done;
            Submit();
        }

        _store.Pump();

        return done.Task.WaitAsync(cancellationToken);
    }

    internal AlertStore Store => _store;

    /// <summary>The live alert for (rule, key), created on first use with its place labels; restored ones come back firing.</summary>
    /// <remarks><paramref name="place"/>, when given, are the place labels instead of the device's (combined and event alerts).</remarks>
    internal AlertInstance Instance(AlertRule rule, string key, string? device, IReadOnlyDictionary<string, string>? place = null)
    {
        lock (_gate)
        {
            if (_instances.TryGetValue((rule.Name, key), out var existing))
            {
                // A series with the key came back before its retired namesake's alert was forgotten: it is live again.
                existing.Retired = false;
                return existing;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (place is not null)
            {
                foreach (var (k, v) in place)
                {
                    labels[k] = v;
                }
            }
            else if (device is not null)
            {
                _site.AddPlaceLabels(device, labels);
            }

            foreach (var (k, v) in rule.Labels)
            {
                labels[k] = v;
            }

            labels["rule"] = rule.Name;
            labels["severity"] = SeverityName(rule.Severity);
            if (rule.Per is Scope.Rack or Scope.Room or Scope.Line && rule.Combine != Combine.None)
            {
                labels[rule.Per.ToString().ToLowerInvariant()] = key;
            }

            var instance = new AlertInstance(_nextId++, rule, key, labels, GroupKey(labels), _config.FlapMaxChanges + 1) { Site = _site.SiteId };
            Add(instance);
            return instance;
        }
    }

    /// <summary>The live alert for (rule, key) if there is one (restored ones included); nothing is created.</summary>
    internal AlertInstance? Find(AlertRule rule, string key)
    {
        lock (_gate)
        {
            return _instances.GetValueOrDefault((rule.Name, key));
        }
    }

    /// <summary>
    /// The alert's series was retired (its table row left the device): once nothing is owed on it — cleared, not
    /// flapping, no "resolved" held back by a silence — it is dropped from memory, not kept until a restart for a
    /// series that never comes back (a churning table left an instance per rule and row). Until then <see cref="Tick"/>
    /// retries. The store and the history keep what it did.
    /// </summary>
    internal void Retire(AlertInstance instance, DateTimeOffset now)
    {
        lock (_gate)
        {
            instance.Retired = true;
            if (!TryForget(instance, now))
            {
                _retiring.Add(instance);
            }
        }
    }

    /// <summary>Number of alerts held in memory (live, resolved and restored ones), for tests and diagnostics.</summary>
    internal int InstanceCount
    {
        get
        {
            lock (_gate)
            {
                return _instances.Count;
            }
        }
    }

    /// <summary>Under _gate. Forgets a retired alert if nothing is owed on it; true when it is gone (or revived).</summary>
    private bool TryForget(AlertInstance a, DateTimeOffset now)
    {
        if (!a.Retired)
        {
            return true; // revived by a series with its key: nothing to forget
        }

        if (a.State is AlertState.Pending or AlertState.Firing || a.Flapping || (a.Announced && Silenced(a.Rule.Name, now)))
        {
            return false;
        }

        if (_instances.TryGetValue((a.Rule.Name, a.Key), out var held) && ReferenceEquals(held, a))
        {
            _instances.Remove((a.Rule.Name, a.Key));
            _byId.Remove(a.Id);
        }

        return true;
    }

    /// <summary>The rule's condition for one alert changed (hysteresis already applied by the caller).</summary>
    /// <remarks>
    /// With <paramref name="commit"/> false the change is only queued: the sample evaluation commits a whole batch's
    /// changes together with <see cref="Commit"/> at the end of the batch (one commit per batch, not per change).
    /// </remarks>
    internal void SetCondition(AlertInstance instance, bool active, double value, DateTimeOffset now, long cause = 0, bool commit = true)
    {
        lock (_gate)
        {
            instance.RawActive = active;
            instance.Value = value;
            if (cause != 0)
            {
                instance.CauseTimestamp = cause;
            }

            // Before the lifecycle step, so the record saved when this sample fires the alert already holds it as peak.
            instance.TrackPeak(value);
            if (!active && _holds.Count > 0)
            {
                DropHold(instance.Rule.Name, instance.Key);
            }

            Reconcile(instance, now);
            Submit();
        }

        if (commit)
        {
            _store.Pump();
        }
    }

    /// <summary>Commits (group commit) what is queued and hands it on; see <see cref="AlertStore"/>.</summary>
    internal void Commit() => _store.Pump();

    /// <summary>
    /// At a clean stop: saves the active alerts whose peak or event text moved since their last lifecycle write. Neither
    /// is written per sample or event (that would be a database write per rising sample); a crash therefore keeps those
    /// of the last change, a stop the latest. The pending alerts' <c>for:</c> holds are saved with the alive mark.
    /// </summary>
    /// <param name="afters">The rule engine's stuck/missing after timers (<see cref="Rules.RuleEngine.AfterTimers"/>), saved with the mark.</param>
    internal void SavePeaks(List<AfterTimer>? afters = null)
    {
        lock (_gate)
        {
            foreach (var a in _instances.Values)
            {
                if (a.State is (AlertState.Pending or AlertState.Firing)
                    && ((a.HasPeak && !a.Peak.Equals(a.SavedPeak)) || !string.Equals(a.EventMessage, a.SavedEventMessage, StringComparison.Ordinal)))
                {
                    Write(AlertStore.Save(a, _flapClock));
                }
            }

            if (_config.ForOutageTolerance > TimeSpan.Zero)
            {
                MarkAlive(_time.GetUtcNow(), afters);
            }

            Submit();
        }

        _store.Pump();
    }

    /// <summary>Updates the value shown for an active alert without a lifecycle change.</summary>
    internal void SetValue(AlertInstance instance, double value)
    {
        lock (_gate)
        {
            instance.Value = value;
            instance.TrackPeak(value);
        }
    }

    /// <summary>Applies the connectivity monitor's state to rules that depend on it (<c>when_uplink:</c>) and to uplink rules.</summary>
    public void SetUplink(UplinkState state, DateTimeOffset now, string? reason = null)
    {
        lock (_gate)
        {
            var changed = state != _uplink;
            _uplink = state;

            // Called on the monitor's changes (and its first check) only: cheap to save each time.
            Write(AlertStore.SaveUplink(state, now));
            foreach (var instance in _instances.Values)
            {
                if (changed && instance.Rule.WhenUplink != UplinkGate.Any)
                {
                    Reconcile(instance, now);
                }
            }

            Submit();
        }

        _store.Pump();

        foreach (var rule in _config.Rules)
        {
            // Degraded neither raises nor clears: after a restart during an outage the first check fails (degraded), and
            // clearing the restored alert on it sent a false "resolved" and a new "firing" one check later.
            if (rule.Kind == RuleKind.Uplink && state != UplinkState.Degraded)
            {
                var instance = Instance(rule, "uplink", null);
                if (state == UplinkState.Offline && reason is not null)
                {
                    instance.Detail = reason;
                }

                SetCondition(instance, state == UplinkState.Offline, state == UplinkState.Offline ? 1 : 0, now);
            }
        }
    }

    /// <summary>Pending alerts whose <c>for:</c> has elapsed fire; group messages due go out; flapping alerts that settled are released.</summary>
    public void Tick(DateTimeOffset now) => Tick(now, null);

    /// <param name="afters">Non-null when an alive mark is due (<see cref="AliveMarkDue"/>) and an after timer runs or has a document: saved with the mark.</param>
    internal void Tick(DateTimeOffset now, List<AfterTimer>? afters)
    {
        lock (_gate)
        {
            for (var i = _pending.Count - 1; i >= 0; i--)
            {
                var a = _pending[i];
                if (a.State != AlertState.Pending)
                {
                    _pending.RemoveAt(i);
                }
                else if (_time.GetElapsedTime(a.PendingSinceTimestamp) >= a.Rule.For)
                {
                    _pending.RemoveAt(i);
                    Fire(a, now);
                }
            }

            if (_holds.Count > 0)
            {
                ExpireHolds();
            }

            if (_afters.Count > 0)
            {
                ExpireAfters();
            }

            // Only while something is pending or an after timer runs: an idle gateway writes nothing.
            if ((_pending.Count > 0 || afters is not null) && _config.ForOutageTolerance > TimeSpan.Zero && _time.GetElapsedTime(_lastAliveMark) >= AliveInterval)
            {
                MarkAlive(now, afters);
            }

            // The wall clock stepped: the change times of the alerts still muted are saved again in its terms, so a
            // restart after the step keeps the flap window they have left (released ones were just saved).
            var resave = _flapping.Count > 0 && _flapClock.Stepped(SilenceStepTolerance);
            for (var i = _flapping.Count - 1; i >= 0; i--)
            {
                var a = _flapping[i];
                // On the monotonic clock: a wall-clock step neither releases it at once nor keeps it muted longer.
                if (a.LastChange is not { } last || _time.GetElapsedTime(last) >= _config.FlapWindow)
                {
                    _flapping.RemoveAt(i);
                    a.Flapping = false;
                    LogFlappingEnded(a.Rule.Name, a.Key);
                    // Saved, so a restart does not bring the guard back. State sinks get the settled state in any
                    // case; message sinks only what they have not heard yet.
                    var firing = a.State == AlertState.Firing;
                    Notify(a, firing ? AlertStatus.Firing : AlertStatus.Resolved, now, message: firing != a.Announced);
                    Write(AlertStore.Save(a, _flapClock));
                }
                else if (resave)
                {
                    Write(AlertStore.Save(a, _flapClock));
                }
            }

            foreach (var group in _groups.Values)
            {
                if (group.Waiting.Count > 0 && GroupDue(group))
                {
                    Send(group, now);
                }
            }

            List<string>? expired = null;
            List<(string Rule, DateTimeOffset Until)>? moved = null;
            foreach (var (rule, until) in _silences)
            {
                if (!Silenced(rule, now))
                {
                    (expired ??= []).Add(rule);
                }
                else if (_silenceEnds.TryGetValue(rule, out var end) && now + Remaining(end) is var shifted
                    && (shifted - until).Duration() > SilenceStepTolerance)
                {
                    // The wall clock stepped: the end shown and saved moves with it, so `alerts list` and a restart
                    // agree with the time actually left.
                    (moved ??= []).Add((rule, shifted));
                }
            }

            foreach (var (rule, until) in moved ?? [])
            {
                LogSilenceMoved(rule, WireTime.Instant(until), (until - _silences[rule]).ToString("c", CultureInfo.InvariantCulture));
                _silences[rule] = until;
                Write(SaveSilence(rule, until));
            }

            foreach (var rule in expired ?? [])
            {
                _silences.Remove(rule);
                _silenceEnds.Remove(rule);
                Write(AlertStore.RemoveSilence(rule));
                ReleaseSilence(rule, now);
            }

            for (var i = _retiring.Count - 1; i >= 0; i--)
            {
                if (TryForget(_retiring[i], now))
                {
                    _retiring.RemoveAt(i);
                }
            }

            Submit();
        }

        _store.Pump();
    }

    /// <summary>Acknowledges a firing alert: it stays firing (and in the list) but is not notified again, across restarts.</summary>
    public ControlResult Acknowledge(long id, string by)
    {
        try
        {
            return AcknowledgeLocked(id, by);
        }
        finally
        {
            _store.Pump();
        }
    }

    private ControlResult AcknowledgeLocked(long id, string by)
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (!_byId.TryGetValue(id, out var a))
            {
                return ControlResult.NotFound;
            }

            if (a.State != AlertState.Firing)
            {
                return ControlResult.NotFiring;
            }

            if (a.Acked)
            {
                return ControlResult.AlreadyAcknowledged;
            }

            a.AckedAt = now;
            Write(AlertStore.Save(a, _flapClock));

            // The centre hears of it like of a raise (it never learned who acknowledged what during an outage, audit finding 9).
            var uplink = _uplink.ToWireName();
            var ack = new Dictionary<string, string>(StringComparer.Ordinal) { ["state"] = "acknowledged", ["by"] = by, ["acked_at"] = WireTime.Instant(now) };
            var summary = a.Summary + " (acknowledged by " + by + ")";
            var attributes = With(Facts(a, Attributes(a.Id, a.Rule.Name, a.Key, "acknowledged", a.Value, a.FiredAt, now, uplink, a.Labels, a.Peak)), ack);
            var seq = Append(new AlertHistoryEntry(0, a.Id, a.Rule.Name, a.Key, "acknowledged by " + by, a.Rule.Severity, a.Value, now, uplink), EdgeEventKind.AlertAcknowledged, attributes, summary);
            Emit(new OutgoingEvent(AlertEvent(EdgeEventKind.AlertAcknowledged, a.Rule.Name, now, a.Rule.Severity, summary, attributes), seq));
            LogAcknowledged(a.Rule.Name, a.Key, by);
            // The buzzer (silence_on_ack) stops even when the message sinks never heard of the alert (silenced rule). A
            // firing message still waiting in the group goes out as acknowledged instead of FIRING then ACK.
            var replaced = ReplaceWaitingFiring(a, now);
            Notify(a, AlertStatus.Acknowledged, now, message: a.Announced && !replaced);

            Submit();
            return ControlResult.Done;
        }
    }

    /// <summary>
    /// Silences a rule until <paramref name="until"/> (a time not after now lifts it): its alerts keep their lifecycle and
    /// the outputs follow them, but the message sinks are not notified.
    /// </summary>
    public ControlResult Silence(string rule, DateTimeOffset until, string by = "cli")
    {
        try
        {
            return SilenceLocked(rule, until, by);
        }
        finally
        {
            _store.Pump();
        }
    }

    private ControlResult SilenceLocked(string rule, DateTimeOffset until, string by)
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (!_rules.TryGetValue(rule, out var silenced))
            {
                return ControlResult.NotFound;
            }

            _silences[rule] = until;
            _silenceEnds[rule] = _time.GetTimestamp() + TimestampTicks(until - now);
            var uplink = _uplink.ToWireName();
            var lifted = until <= now;
            var silence = new Dictionary<string, string>(StringComparer.Ordinal) { ["state"] = lifted ? "lifted" : "silenced", ["until"] = WireTime.Instant(until), ["by"] = by };
            var change = (lifted ? "silence lifted by " : "silenced until " + until.ToString("O", CultureInfo.InvariantCulture) + " by ") + by;
            var seq = Append(new AlertHistoryEntry(0, 0, rule, "*", change, silenced.Severity, 0, now, uplink), EdgeEventKind.AlertSilenced, silence);
            Emit(new OutgoingEvent(AlertEvent(EdgeEventKind.AlertSilenced, rule, now, silenced.Severity, $"{rule} {change}", SilenceAttributes(rule, now, uplink, silence, _site.GatewayId)), seq));
            if (until <= now)
            {
                _silences.Remove(rule);
                _silenceEnds.Remove(rule);
                Write(AlertStore.RemoveSilence(rule));
                ReleaseSilence(rule, now);
            }
            else
            {
                DropWaiting(rule);
                Write(SaveSilence(rule, until));
            }

            Submit();
            return ControlResult.Done;
        }
    }

    /// <summary>Since when each pending alert has been pending (by id), for <c>alerts list</c>.</summary>
    public IReadOnlyDictionary<long, DateTimeOffset> PendingSince()
    {
        lock (_gate)
        {
            return _instances.Values.Where(a => a.State == AlertState.Pending).ToDictionary(a => a.Id, a => a.PendingSince);
        }
    }

    /// <summary>Alerts that are pending or firing, most severe first.</summary>
    public IReadOnlyList<AlertSnapshot> Active()
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            return [.. _instances.Values
                .Where(a => a.State is AlertState.Firing or AlertState.Pending)
                .OrderByDescending(a => a.Rule.Severity).ThenBy(a => a.Id)
                .Select(a => a.Snapshot(a.Acked ? AlertStatus.Acknowledged : AlertStatus.Firing, now))];
        }
    }

    public IReadOnlyDictionary<string, DateTimeOffset> Silences()
    {
        lock (_gate)
        {
            return new Dictionary<string, DateTimeOffset>(_silences, StringComparer.Ordinal);
        }
    }

    /// <summary>The newest <paramref name="limit"/> history lines, oldest first, including changes still being committed.</summary>
    public IReadOnlyList<AlertHistoryEntry> History(int limit)
    {
        var cursor = OpenHistory(limit, AlertHistoryCursor.DefaultBatch);
        var all = new List<AlertHistoryEntry>();
        while (!cursor.Done)
        {
            all.AddRange(cursor.Next());
        }

        return all;
    }

    /// <summary>
    /// The newest <paramref name="limit"/> history lines as of now, oldest first, to be read <paramref name="batch"/> at a
    /// time (<c>alerts history</c> streams them to its client). Reads LiteDB's index (throws what LiteDB throws).
    /// </summary>
    internal AlertHistoryCursor OpenHistory(int limit, int batch)
    {
        List<AlertHistoryEntry> unsaved;
        lock (_gate)
        {
            unsaved = [.. _unsaved];
        }

        return new AlertHistoryCursor(_store, unsaved, limit, batch);
    }

    /// <summary>Every firing alert as one state message, for state sinks (GPIO) at start.</summary>
    internal AlertNotification? FiringState(DateTimeOffset now)
    {
        lock (_gate)
        {
            // Silenced alerts too: a silence mutes messages, never the outputs. A flapping one holds the outputs until
            // the guard releases it, whatever its state (the relay was off after a restart mid-flap).
            var firing = _instances.Values.Where(a => a.State == AlertState.Firing || a.Flapping)
                .Select(a => a.Snapshot(a.Flapping ? AlertStatus.Flapping : a.Acked ? AlertStatus.Acknowledged : AlertStatus.Firing, now)).ToList();
            return firing.Count == 0 ? null : new AlertNotification("state", firing, now);
        }
    }

    /// <summary>
    /// The firing (acknowledged, flapping) alerts whose firing message every sink was done with: no message carries them
    /// again after a restart, so a sink that must re-send what fires (Alertmanager) starts from these. Those not yet
    /// notified are notified again as usual.
    /// </summary>
    internal IReadOnlyList<AlertSnapshot> NotifiedFiring(DateTimeOffset now)
    {
        lock (_gate)
        {
            return [.. _instances.Values.Where(a => (a.State == AlertState.Firing || a.Flapping) && a.NotifiedFiring)
                .Select(a => a.Snapshot(a.Flapping ? AlertStatus.Flapping : a.Acked ? AlertStatus.Acknowledged : AlertStatus.Firing, now))];
        }
    }

    /// <summary>Called by the dispatcher once every sink delivered (or gave up on) a message.</summary>
    internal void MarkNotified(AlertNotification notification)
    {
        lock (_gate)
        {
            foreach (var s in notification.Alerts)
            {
                if (s.Status == AlertStatus.Firing && _byId.TryGetValue(s.Id, out var a) && a.State == AlertState.Firing && a.FiredAt == s.FiredAt && !a.NotifiedFiring)
                {
                    a.NotifiedFiring = true;
                    Write(AlertStore.Save(a, _flapClock));
                }
                else if (s.Status == AlertStatus.Resolved && _byId.TryGetValue(s.Id, out var r) && r.State == AlertState.Resolved && r.FiredAt == s.FiredAt && r.ResolveOwed)
                {
                    r.ResolveOwed = false;
                    Write(AlertStore.Save(r, _flapClock));
                }
            }

            Submit();
        }
    }

    internal void MarkPublished(long seq)
    {
        lock (_gate)
        {
            Write(AlertStore.PublishedThrough(seq));
            Submit();
        }
    }

    /// <summary>Commits what is queued and closes the store (committed messages still reach the dispatcher).</summary>
    public void Dispose() => _store.Dispose();

    private WriteUnit Current() => _unit ??= new WriteUnit();

    private void Write(StoreWrite w) => Current().Writes.Add(w);

    private void Emit(Outgoing o) => Current().Release.Add(o);

    /// <summary>Appends a history line (committed with the rest of the unit) and returns its sequence number.</summary>
    private long Append(AlertHistoryEntry e, EdgeEventKind? publishAs, IReadOnlyDictionary<string, string>? attributes = null, string? message = null)
    {
        var seq = _nextSeq++;
        Write(AlertStore.Append(seq, e, publishAs, attributes, message));
        while (_unsaved.Count > 0 && _unsaved.Peek().Seq <= _store.AppliedSeq)
        {
            _unsaved.Dequeue();
        }

        _unsaved.Enqueue(e with { Seq = seq });
        return seq;
    }

    /// <summary>Hands what this lock section changed to the store's writer (called at the end of every section, under the lock).</summary>
    private void Submit()
    {
        if (_unit is { } unit)
        {
            _unit = null;

            // Closed (after the sinks stopped): nothing more is saved or sent. Not dispatched from here: that would
            // take the dispatch lock under the manager's lock, the reverse of the committer's order.
            _store.Submit(unit);
        }
    }

    /// <summary>The store's writer thread: a unit is durable; its messages and events may go.</summary>
    private void OnCommitted(WriteUnit unit)
    {
        if (unit.Release.Count == 0)
        {
            return;
        }

        lock (_dispatchGate)
        {
            if (_dispatch is null)
            {
                _early.AddRange(unit.Release);
                return;
            }

            foreach (var o in unit.Release)
            {
                _dispatch(o);
            }
        }
    }

    private void Restore()
    {
        var now = _time.GetUtcNow();
        var owed = _store.LoadOwedResolved();
        foreach (var s in _restored)
        {
            // Firing alerts come back; so does a resolved one that was flapping, so its guard (and id) outlives the
            // restart, and one whose clear a silence holds back, so the silence's end still tells the sinks it resolved.
            var resolvedOwed = s.State == AlertState.Resolved && (owed.Contains(s.Id) || s.ResolveOwed);
            if (s.State != AlertState.Firing && !(s.State == AlertState.Resolved && (s.Flapping || resolvedOwed)))
            {
                continue;
            }

            if (!_rules.TryGetValue(s.Rule, out var rule))
            {
                if (s.State != AlertState.Firing)
                {
                    continue;
                }

                // The rule was removed from the config while its alert fired: close the alert so the history says so.
                // The rule's limits are gone with it; the device and series it was about are kept in the store.
                var removed = Attributes(s.Id, s.Rule, s.Key, "resolved", s.Value, s.FiredAt, now, "online", s.Labels);
                removed["device"] = s.Device ?? s.Labels?.GetValueOrDefault("device") ?? _site.GatewayId;
                if (s.Series is { } removedSeries)
                {
                    removed["series"] = removedSeries;
                }

                var seq = Append(new AlertHistoryEntry(0, s.Id, s.Rule, s.Key, "cleared (rule removed)", EventSeverity.Info, s.Value, now, "online"), EdgeEventKind.AlertCleared, removed, $"{s.Rule} {s.Key}: rule removed");
                Write(AlertStore.Save(new AlertInstance(s.Id, new AlertRule { Name = s.Rule, Kind = RuleKind.Threshold }, s.Key, new Dictionary<string, string>(), "", 1) { State = AlertState.Resolved, ResolvedAt = now, FiredAt = s.FiredAt, Device = s.Device, Series = s.Series, Metric = s.Metric }, _flapClock));
                Emit(new OutgoingEvent(AlertEvent(EdgeEventKind.AlertCleared, s.Rule, now, EventSeverity.Info, $"{s.Rule} {s.Key}: rule removed", removed), seq));
                continue;
            }

            // The labels it had (and so its group); rebuilt from the key only for stores written before they were saved,
            // which lost the scope label and, for per-room/rack alerts, the place labels (audit finding 9).
            var labels = s.Labels is { Count: > 0 } stored ? new Dictionary<string, string>(stored, StringComparer.Ordinal) : RebuildLabels(rule, s.Key);

            var firing = s.State == AlertState.Firing;
            var a = new AlertInstance(s.Id, rule, s.Key, labels, GroupKey(labels), _config.FlapMaxChanges + 1)
            {
                Site = _site.SiteId,
                State = s.State,
                RawActive = firing,
                Value = s.Value,
                FiredAt = s.FiredAt,
                ResolvedAt = s.ResolvedAt,
                AckedAt = s.AckedAt,
                NotifiedFiring = s.NotifiedFiring,
                ResolveOwed = s.ResolveOwed,

                // What the message sinks last heard: firing (delivered) or, by the silence's record, firing before a
                // clear it held back. ReleaseSilence catches them up from this, as without the restart.
                Announced = (firing && s.NotifiedFiring) || owed.Contains(s.Id),
                Flapping = s.Flapping,

                // Its texts (the list, a catch-up after a silence) have the unit before the series is seen again.
                Unit = s.Unit,
                Subject = s.Subject,

                // What its events to the centre are filed under (device, series), before the series is seen again.
                Device = s.Device,
                Series = s.Series,
                Metric = s.Metric,

                // An event alert's text is the source's (the twin's cooling_failure message), not its attribute's value.
                EventMessage = s.EventMessage,
                SavedEventMessage = s.EventMessage,
                ClearText = s.ClearText,
                ClearedBecause = s.ClearedBecause,
            };
            a.Peak = a.HasPeak ? s.Peak ?? (firing ? s.Value : double.NaN) : double.NaN;
            a.RestoreChanges(s.Changes ?? [], _flapClock);
            Add(a);
            if (a.Flapping)
            {
                // The tick releases it once it has been stable for the flap window, as if there had been no restart.
                _flapping.Add(a);
            }

            LogRestored(rule.Name, s.Key, s.State == AlertState.Firing ? "firing" : "resolved", s.AckedAt is not null, s.NotifiedFiring, s.Flapping);

            // Killed between saving and delivering: the sinks never heard of it, so they hear now (unless acknowledged).
            // Not while flapping: its raise was muted on purpose (it was notified FIRING after a restart, audit finding 8).
            if (firing && !s.NotifiedFiring && s.AckedAt is null && !s.Flapping)
            {
                Notify(a, AlertStatus.Firing, now);
            }
            else if (s.State == AlertState.Resolved && s.ResolveOwed && !s.Flapping)
            {
                // Stopped while a peer held its RESOLVED: the NOC heard it fire and must hear it clear. Message sinks
                // only (the relay was never set for it at this start); a silence still holding it back catches it up.
                NotifyMessage(a, a.Snapshot(AlertStatus.Resolved, now), now);
            }
        }

        Dictionary<long, StoredAlert>? byId = null;
        foreach (var u in _store.Unpublished())
        {
            // A line saves its live event's attributes and text (labels, fired_at, peak, …), so the replay after a crash
            // is the event the centre would have got (replayed raises and clears had no label.* at all). Lines from before
            // that are rebuilt from the line, with the labels the alert has in the store.
            var e = u.Entry;
            var extra = u.Attributes ?? new Dictionary<string, string>();
            Dictionary<string, string> attributes;
            if (u.Kind == EdgeEventKind.AlertSilenced)
            {
                attributes = SilenceAttributes(e.Rule, e.Time, e.Uplink, extra, _site.GatewayId);
            }
            else
            {
                IReadOnlyDictionary<string, string>? labels = null;
                if (!extra.Keys.Any(k => k.StartsWith("label.", StringComparison.Ordinal)))
                {
                    byId ??= _restored.ToDictionary(r => r.Id);
                    labels = byId.GetValueOrDefault(e.AlertId)?.Labels;
                }

                attributes = With(Attributes(e.AlertId, e.Rule, e.Key, u.Kind == EdgeEventKind.AlertRaised ? "firing" : "resolved", e.Value, null, e.Time, e.Uplink, labels), extra);
            }

            if (!attributes.ContainsKey("device") && attributes.GetValueOrDefault("label.device") is { } labelled)
            {
                // A line saved before events carried their device: the alert's device label, not the rule name.
                attributes["device"] = labelled;
            }

            Emit(new OutgoingEvent(AlertEvent(u.Kind, e.Rule, e.Time, e.Severity, u.Message ?? $"{e.Rule} {e.Key}: {e.Change}", attributes), e.Seq));
        }

        PruneUnrestored();
    }

    /// <summary>
    /// Deletes the stored alerts this start did not restore: an alert that cleared before the stop fires again under a
    /// new id, so its document was never read again, yet every start loaded all of them (a restart a day for six months
    /// with a few hundred per-series alerts: tens of thousands of documents in memory and in alerts.db). The history
    /// keeps what they did. The newest alert stays, since the next id is the highest stored one plus one (in older builds too).
    /// </summary>
    private void PruneUnrestored()
    {
        var newest = _nextId - 1;
        var pruned = 0;
        foreach (var s in _restored)
        {
            if (s.State != AlertState.Firing && s.Id != newest && !_byId.ContainsKey(s.Id))
            {
                Write(AlertStore.RemoveAlert(s.Id));
                pruned++;
            }
        }

        if (pruned > 0)
        {
            LogPruned(pruned, _restored.Count);
        }

        _restored.Clear();
        _restored.TrimExcess();
    }

    private Dictionary<string, string> RebuildLabels(AlertRule rule, string key)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["rule"] = rule.Name, ["severity"] = SeverityName(rule.Severity) };
        foreach (var (k, v) in rule.Labels)
        {
            labels[k] = v;
        }

        var device = rule.Per == Scope.Series ? key.Split('/')[0] : rule.Per == Scope.Device ? key : null;
        if (device is not null)
        {
            _site.AddPlaceLabels(device, labels);
        }

        return labels;
    }

    /// <summary>
    /// A silence with the alerts of its rule whose clear it holds back from the message sinks (they heard them firing):
    /// what the catch-up at its end needs, so a restart before then does not lose their "resolved".
    /// </summary>
    private StoreWrite SaveSilence(string rule, DateTimeOffset until)
    {
        List<long>? owed = null;
        foreach (var a in _instances.Values)
        {
            if (a.Rule.Name == rule && a.State != AlertState.Firing && a.Announced)
            {
                (owed ??= []).Add(a.Id);
            }
        }

        return AlertStore.SaveSilence(rule, until, owed);
    }

    /// <summary>
    /// Under _gate, at start. The pending alerts' <c>for:</c> holds saved before the stop: one whose agent was down at
    /// most <c>for_outage_tolerance</c> (now less the last alive mark) is kept until its rule evaluates its key again;
    /// the others are dropped, and so is every one when the wall clock reads earlier than the last alive mark (a box
    /// booted with a clock behind: how long it was down is unknown). Only this comparison uses the wall clock across
    /// the restart; the hold itself, the downtime not counted, is what the last run measured on its monotonic clock.
    /// </summary>
    private void RestorePending()
    {
        var saved = _store.LoadPending();
        if (saved.Count == 0)
        {
            return;
        }

        var tally = new RestoreTally(_time.GetUtcNow(), _store.LoadAlive(), _config.ForOutageTolerance);
        var start = _time.GetTimestamp();
        foreach (var p in saved)
        {
            var fits = _rules.TryGetValue(p.Rule, out var rule) && rule.For > TimeSpan.Zero;
            if (tally.Judge(p.Live, p.At, fits, out var lastAlive, out var down) is { } why)
            {
                Write(AlertStore.RemovePending(p.Rule, p.Key));
                _metrics?.ForHold(why);
                continue;
            }

            var held = p.Held + (lastAlive - p.At);
            _holds[(p.Rule, p.Key)] = new SavedHold(p.Since, held, start + TimestampTicks(_config.ForOutageTolerance - down));
            if (p.Live)
            {
                // Frozen: this run may write alive marks for other alerts before it evaluates this one again, and those
                // minutes must not count as held.
                Write(AlertStore.SavePending(p.Rule, p.Key, p.Since, held, lastAlive, live: false, p.Labels ?? new Dictionary<string, string>()));
            }
        }

        Volatile.Write(ref _holdCount, _holds.Count);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            tally.Report(LogHoldsKept, LogHoldsDropped, LogHoldsClockBehind, "holds are never restored", "their rule is gone or has no for: now");
        }
    }

    /// <summary>
    /// Under _gate. The alert goes pending again on its first evaluation after a restart, and a hold saved before the
    /// stop is waiting for it: it is credited with the time it had held then (not the downtime), and still needs
    /// <see cref="RestoreGrace"/> (its whole <c>for:</c> when shorter) of the condition on fresh samples. It is shown pending
    /// since it first went pending.
    /// </summary>
    private void Resume(AlertInstance a, SavedHold hold)
    {
        var grace = a.Rule.For < RestoreGrace ? a.Rule.For : RestoreGrace;
        var left = a.Rule.For - hold.Held;
        if (left < grace)
        {
            left = grace;
        }

        a.PendingSince = hold.Since;
        a.PendingSinceTimestamp -= TimestampTicks(a.Rule.For - left);

        // Its record is the earlier run's (frozen): the next alive mark saves it as this run's.
        a.PendingDoc = true;
        a.PendingSaved = false;
        _metrics?.ForHold("restored");
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var (since, held, rest) = (WireTime.Instant(hold.Since), Core.Config.Durations.Format(Whole(hold.Held)), Core.Config.Durations.Format(Whole(left)));
            LogHoldResumed(a.Rule.Name, a.Key, since, held, rest);
        }
    }

    /// <summary>Under _gate. The first evaluation of its key after the start finds the condition over: the saved hold goes.</summary>
    private void DropHold(string rule, string key)
    {
        if (_holds.Remove((rule, key)))
        {
            Volatile.Write(ref _holdCount, _holds.Count);
            Write(AlertStore.RemovePending(rule, key));
            _metrics?.ForHold("condition_gone");
            LogHoldConditionGone(rule, key);
        }
    }

    /// <summary>Under _gate. Holds no evaluation claimed within the tolerance (a series no longer polled, a rule that never evaluates its key).</summary>
    private void ExpireHolds()
    {
        if (Unclaimed(_holds, static h => h.Deadline) is not { } expired)
        {
            return;
        }

        foreach (var key in expired)
        {
            _holds.Remove(key);
            Write(AlertStore.RemovePending(key.Rule, key.Key));
            _metrics?.ForHold("unclaimed");
        }

        Volatile.Write(ref _holdCount, _holds.Count);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var tolerance = Core.Config.Durations.Format(_config.ForOutageTolerance);
            LogHoldsUnclaimed(expired.Count, tolerance);
        }
    }

    /// <summary>
    /// Under _gate. Saves the pending holds not saved yet (all of them after a wall-clock step, so they and the mark are
    /// in the same clock's terms) and the alive mark, in one unit: a hold is credited up to the last mark, so one that
    /// went pending after it would have nothing to credit, and saving it only here costs nothing a crash would keep.
    /// </summary>
    private void MarkAlive(DateTimeOffset now, List<AfterTimer>? afters)
    {
        Volatile.Write(ref _lastAliveMark, _time.GetTimestamp());
        var stepped = _aliveClock.Stepped(SilenceStepTolerance);
        var any = false;
        foreach (var a in _pending)
        {
            if (a.State != AlertState.Pending)
            {
                continue;
            }

            any = true;
            if (!a.PendingSaved || stepped)
            {
                Write(AlertStore.SavePending(a.Rule.Name, a.Key, a.PendingSince, _time.GetElapsedTime(a.PendingSinceTimestamp), now, live: true, a.Labels));
                a.PendingDoc = true;
                a.PendingSaved = true;
            }
        }

        if (afters is not null && SyncAfters(now, afters, stepped))
        {
            any = true;
        }

        if (any)
        {
            Write(AlertStore.SaveAlive(now));
        }
    }

    /// <summary>Under _gate. The alert leaves pending (fires or drops): its saved hold goes with it.</summary>
    private void ForgetPending(AlertInstance a)
    {
        if (a.PendingDoc)
        {
            Write(AlertStore.RemovePending(a.Rule.Name, a.Key));
        }

        a.PendingDoc = false;
        a.PendingSaved = false;
    }

    /// <summary>
    /// Under _gate, at start. The stuck/missing rules' after timers saved before the stop, triaged as the for: holds
    /// (<see cref="RestorePending"/>: the same tolerance, alive mark and wall-clock check): one kept waits for the rule
    /// engine to bind its series (<see cref="TakeAfter"/>), which credits it if the series is still stuck at the same
    /// value, or still without samples. Before, every start began them from zero: a gateway restarted more often than a
    /// stuck rule's after never reported the stuck sensor.
    /// </summary>
    private void RestoreAfters()
    {
        var saved = _store.LoadAfters();
        if (saved.Count == 0)
        {
            return;
        }

        var tally = new RestoreTally(_time.GetUtcNow(), _store.LoadAlive(), _config.ForOutageTolerance);
        var start = _time.GetTimestamp();
        foreach (var p in saved)
        {
            var fits = _rules.TryGetValue(p.Rule, out var rule) && rule.Kind == (p.Stuck ? RuleKind.Stuck : RuleKind.Missing);
            if (tally.Judge(p.Live, p.At, fits, out var lastAlive, out var down) is { } why)
            {
                Write(AlertStore.RemoveAfter(p.Rule, p.Key));
                _metrics?.AfterTimer(why);
                continue;
            }

            var elapsed = p.Elapsed + (lastAlive - p.At);
            _afters[(p.Rule, p.Key)] = new SavedAfter(p.Stuck, p.Value, elapsed, start + TimestampTicks(_config.ForOutageTolerance - down));
            _afterDocs[(p.Rule, p.Key)] = FrozenAfter;
            if (p.Live)
            {
                // Frozen, as a kept for: hold: this run's alive marks must not count for it before its series is seen again.
                Write(AlertStore.SaveAfter(p.Rule, p.Key, p.Stuck, p.Value, elapsed, lastAlive, live: false));
            }
        }

        Volatile.Write(ref _afterCount, _afters.Count);
        Volatile.Write(ref _afterDocCount, _afterDocs.Count);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            tally.Report(LogAftersKept, LogAftersDropped, LogAftersClockBehind, "after timers are never restored", "their rule is gone or is no longer of the same type");
        }
    }

    /// <summary>
    /// The wall-clock side of restoring what the last run saved (for: holds, after timers), and the start log's tally.
    /// An item is kept when the agent was down at most <c>for_outage_tolerance</c> since the last alive mark; every one
    /// is dropped when the wall clock reads earlier than that mark (a box booted with a clock behind: how long it was
    /// down is unknown).
    /// </summary>
    private sealed class RestoreTally(DateTimeOffset now, DateTimeOffset? alive, TimeSpan tolerance)
    {
        private readonly Dictionary<string, int> _dropped = new(StringComparer.Ordinal);
        private int _kept;
        private TimeSpan _keptDown;
        private TimeSpan _longest;
        private TimeSpan _behind;

        /// <summary>
        /// Null when kept, else why dropped (the metric's outcome). A live item went on up to the last alive mark
        /// (<paramref name="lastAlive"/>); a frozen one (kept by a run that never saw it again) was last known at its own time.
        /// </summary>
        public string? Judge(bool live, DateTimeOffset at, bool ruleFits, out DateTimeOffset lastAlive, out TimeSpan down)
        {
            lastAlive = live && alive is { } mark && mark > at ? mark : at;
            down = now - lastAlive;
            string? why = tolerance <= TimeSpan.Zero ? "disabled"
                : !ruleFits ? "rule_changed"
                : down < TimeSpan.Zero ? "clock_behind"
                : down > tolerance ? "outage_too_long"
                : null;
            if (why is null)
            {
                _kept++;
                _keptDown = down > _keptDown ? down : _keptDown;
                return null;
            }

            _dropped[why] = _dropped.GetValueOrDefault(why) + 1;
            if (why == "clock_behind" && -down > _behind)
            {
                _behind = -down;
            }
            else if (why == "outage_too_long" && down > _longest)
            {
                _longest = down;
            }

            return why;
        }

        public void Report(Action<int, string, string> kept, Action<int, string> dropped, Action<int, string> clockBehind, string neverRestored, string ruleChanged)
        {
            var tol = Core.Config.Durations.Format(tolerance);
            if (_kept > 0)
            {
                kept(_kept, Core.Config.Durations.Format(Whole(_keptDown)), tol);
            }

            foreach (var (why, count) in _dropped)
            {
                switch (why)
                {
                    case "disabled":
                        dropped(count, $"alerts.for_outage_tolerance is 0s ({neverRestored})");
                        break;
                    case "rule_changed":
                        dropped(count, ruleChanged);
                        break;
                    case "outage_too_long":
                        dropped(count, $"the agent was down longer than alerts.for_outage_tolerance ({tol}): {Core.Config.Durations.Format(Whole(_longest))} since its last alive mark");
                        break;
                    default:
                        clockBehind(count, Core.Config.Durations.Format(Whole(_behind)));
                        break;
                }
            }
        }
    }

    /// <summary>
    /// The rule engine binds (rule, series) at start: the after timer saved for it before the stop, if one was kept (it
    /// then decides: credited at the first sample that is still stuck at the same value, or while a missing series stays
    /// without samples; <see cref="AfterOutcome"/>). Costs one read once none is left.
    /// </summary>
    internal SavedAfter? TakeAfter(AlertRule rule, string key)
    {
        if (Volatile.Read(ref _afterCount) == 0)
        {
            return null;
        }

        lock (_gate)
        {
            if (!_afters.Remove((rule.Name, key), out var saved))
            {
                return null;
            }

            Volatile.Write(ref _afterCount, _afters.Count);
            return saved;
        }
    }

    /// <summary>
    /// What became of a saved after timer the rule engine took: <c>restored</c> (credited: <paramref name="left"/> to go),
    /// <c>condition_gone</c> (<paramref name="why"/>: a new value, a sample, the source's own stuck flag, the series
    /// left), <c>unclaimed</c> (no sample within the tolerance). A credited timer's document is rewritten by the next
    /// alive mark; an ended one's goes at once (<see cref="AfterStopped"/>).
    /// </summary>
    /// <param name="count">False: a missing timer credited at the start, counted when it fires or a sample comes.</param>
    /// <param name="log">False: that count, its resumption already logged at the start.</param>
    internal void AfterOutcome(AlertRule rule, string key, string outcome, SavedAfter saved, TimeSpan left, string? why = null, bool count = true, bool log = true)
    {
        if (count)
        {
            _metrics?.AfterTimer(outcome);
        }

        if (!log || !_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var kind = saved.Stuck ? "stuck" : "missing";
        if (outcome == "restored")
        {
            var held = Core.Config.Durations.Format(Whole(saved.Elapsed));
            var rest = Core.Config.Durations.Format(Whole(left));
            var condition = saved.Stuck ? "the series stays at " + saved.Value.ToString(CultureInfo.InvariantCulture) : "no sample comes";
            LogAfterResumed(rule.Name, key, kind, held, rest, condition);
        }
        else
        {
            LogAfterDropped(rule.Name, key, kind, why ?? outcome);
        }
    }

    /// <summary>
    /// The rule engine, under its lock (its lock, then this one, as for every engine call here): a timer that ran long
    /// enough to have a document stopped (the first sample after a saved gap, a saved stuck value moved, the alert
    /// fired, the series left, a saved timer ended). The document goes now, committed with the engine's batch: removed
    /// at the next alive mark, a kill in that minute left it, and the next start credited a missing series the time
    /// before the sample that had ended its gap. A write per such stop, not per sample.
    /// </summary>
    internal void AfterStopped(AlertRule rule, string key)
    {
        if (_config.ForOutageTolerance <= TimeSpan.Zero)
        {
            return;
        }

        lock (_gate)
        {
            // Not one still waiting for its series (ExpireAfters counts and removes it).
            _stoppedAfters.Add((rule.Name, key));
            if (!_afters.ContainsKey((rule.Name, key)) && _afterDocs.Remove((rule.Name, key)))
            {
                Write(AlertStore.RemoveAfter(rule.Name, key));
                Volatile.Write(ref _afterDocCount, _afterDocs.Count);
                Submit();
            }
        }
    }

    /// <summary>The rule engine, under its lock, as it collects the timers for an alive mark (see <see cref="AfterStopped"/>).</summary>
    internal void CollectingAfters()
    {
        lock (_gate)
        {
            _stoppedAfters.Clear();
        }
    }

    /// <summary>Whether an alive mark is due (the rule engine then hands its after timers to <see cref="Tick(DateTimeOffset, List{AfterTimer})"/>).</summary>
    internal bool AliveMarkDue => _config.ForOutageTolerance > TimeSpan.Zero && _time.GetElapsedTime(Volatile.Read(ref _lastAliveMark)) >= AliveInterval;

    /// <summary>Whether after documents are on disk (the next mark removes those whose timer no longer runs).</summary>
    internal bool HasAfterDocs => Volatile.Read(ref _afterDocCount) > 0;

    /// <summary>Under _gate. What was saved before the stop (holds, after timers) and is past its deadline (monotonic); null when none is.</summary>
    private List<(string Rule, string Key)>? Unclaimed<T>(Dictionary<(string Rule, string Key), T> saved, Func<T, long> deadline)
    {
        var nowTicks = _time.GetTimestamp();
        List<(string Rule, string Key)>? expired = null;
        foreach (var (key, item) in saved)
        {
            if (nowTicks - deadline(item) >= 0)
            {
                (expired ??= []).Add(key);
            }
        }

        return expired;
    }

    /// <summary>Under _gate. Saved after timers whose series no rule bound within the tolerance.</summary>
    private void ExpireAfters()
    {
        if (Unclaimed(_afters, static a => a.Deadline) is not { } expired)
        {
            return;
        }

        foreach (var key in expired)
        {
            _afters.Remove(key);
            _afterDocs.Remove(key);
            Write(AlertStore.RemoveAfter(key.Rule, key.Key));
            _metrics?.AfterTimer("unclaimed");
        }

        Volatile.Write(ref _afterCount, _afters.Count);
        Volatile.Write(ref _afterDocCount, _afterDocs.Count);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var tolerance = Core.Config.Durations.Format(_config.ForOutageTolerance);
            LogAftersUnclaimed(expired.Count, tolerance);
        }
    }

    /// <summary>
    /// Under _gate, with an alive mark. Saves the running after timers not saved yet for their current reference (the
    /// time the value last moved, or the last sample; all after a wall-clock step) and removes the documents of timers
    /// that stopped and are still on disk. A timer that ran long enough to have been saved removes its document when it
    /// stops (<see cref="AfterStopped"/>: a write per saved stretch, not per sample); one that stopped before it could
    /// have been saved has none. Returns whether any runs.
    /// </summary>
    private bool SyncAfters(DateTimeOffset now, List<AfterTimer> afters, bool stepped)
    {
        HashSet<(string, string)>? seen = null;
        var running = false;
        foreach (var t in afters)
        {
            var key = (t.Rule.Name, t.Key);
            if (_stoppedAfters.Count > 0 && _stoppedAfters.Contains(key))
            {
                continue; // stopped since the list was taken (its document went then); a new timer is saved at the next mark
            }

            (seen ??= []).Add(key);
            if (t.Ref == FrozenAfter)
            {
                continue; // the earlier run's document, kept as it is until the series is evaluated
            }

            running = true;
            if (!_afterDocs.TryGetValue(key, out var saved) || saved != t.Ref || stepped)
            {
                Write(AlertStore.SaveAfter(t.Rule.Name, t.Key, t.Stuck, t.Value, t.Elapsed, now, live: true));
                _afterDocs[key] = t.Ref;
            }
        }

        List<(string Rule, string Key)>? gone = null;
        foreach (var key in _afterDocs.Keys)
        {
            if ((seen is null || !seen.Contains(key)) && !_afters.ContainsKey(key))
            {
                (gone ??= []).Add(key);
            }
        }

        foreach (var key in gone ?? [])
        {
            _afterDocs.Remove(key);
            Write(AlertStore.RemoveAfter(key.Rule, key.Key));
        }

        _stoppedAfters.Clear();
        Volatile.Write(ref _afterDocCount, _afterDocs.Count);
        return running;
    }

    /// <summary>
    /// A stuck/missing after timer kept from before the stop: seen stuck at <paramref name="Value"/> (else without
    /// samples) for <paramref name="Elapsed"/>, the downtime not counted; unclaimed at <paramref name="Deadline"/> (monotonic).
    /// </summary>
    internal sealed record SavedAfter(bool Stuck, double Value, TimeSpan Elapsed, long Deadline);

    /// <summary>
    /// A running after timer of the rule engine at an alive mark: <paramref name="Elapsed"/> so far, since the reference
    /// <paramref name="Ref"/> (monotonic ms the value last moved or the last sample came; <see cref="FrozenAfter"/>: a
    /// saved timer still waiting for its series' first sample, whose document stays as it is).
    /// </summary>
    internal readonly record struct AfterTimer(AlertRule Rule, string Key, bool Stuck, double Value, TimeSpan Elapsed, long Ref);

    private static TimeSpan Whole(TimeSpan t) => TimeSpan.FromSeconds(Math.Round(t.TotalSeconds));

    /// <summary>
    /// A saved <c>for:</c> hold waiting for its key's first evaluation after the start: shown pending since
    /// <paramref name="Since"/>, <paramref name="Held"/> already held, dropped at <paramref name="Deadline"/> (monotonic) unclaimed.
    /// </summary>
    private sealed record SavedHold(DateTimeOffset Since, TimeSpan Held, long Deadline);

    /// <summary>
    /// Whether a hold saved before the stop waits for (rule, key)'s first evaluation (the rule engine then reports an
    /// evaluation that finds the condition over, <see cref="ForHoldNotHeld"/>).
    /// </summary>
    internal bool HasForHold(AlertRule rule, string key)
    {
        if (Volatile.Read(ref _holdCount) == 0)
        {
            return false;
        }

        lock (_gate)
        {
            return _holds.ContainsKey((rule.Name, key));
        }
    }

    /// <summary>
    /// The rule engine evaluated (rule, key) for the first time since the start and the condition does not hold (or no
    /// longer can: a missing series sent a sample, a stuck one changed): a hold saved before the stop is dropped. A
    /// condition that holds reaches the hold through <see cref="SetCondition"/>. Costs one read once no hold is left.
    /// </summary>
    internal void ForHoldNotHeld(AlertRule rule, string key)
    {
        if (Volatile.Read(ref _holdCount) == 0)
        {
            return;
        }

        lock (_gate)
        {
            DropHold(rule.Name, key);
            Submit();
        }
    }

    private void Add(AlertInstance a)
    {
        _instances[(a.Rule.Name, a.Key)] = a;
        _byId[a.Id] = a;
    }

    private bool Gate(AlertRule rule) => rule.WhenUplink switch
    {
        UplinkGate.NotOnline => _uplink != UplinkState.Online,
        UplinkGate.Offline => _uplink == UplinkState.Offline,
        _ => true,
    };

    private void Reconcile(AlertInstance a, DateTimeOffset now)
    {
        var effective = a.RawActive && Gate(a.Rule);
        if (effective)
        {
            if (a.State is AlertState.Inactive or AlertState.Resolved)
            {
                a.StartPeak();
                if (a.Rule.For <= TimeSpan.Zero)
                {
                    Fire(a, now);
                }
                else
                {
                    a.State = AlertState.Pending;
                    a.PendingSince = now;
                    // for: is measured on the monotonic clock: with the wall clock, an NTP step back of an hour held a
                    // pending alert an hour longer, and a step forward fired it at once.
                    a.PendingSinceTimestamp = _time.GetTimestamp();
                    if (_holds.Count > 0 && _holds.Remove((a.Rule.Name, a.Key), out var hold))
                    {
                        Volatile.Write(ref _holdCount, _holds.Count);
                        Resume(a, hold);
                    }

                    _pending.Add(a);
                }
            }
        }
        else if (a.State == AlertState.Pending)
        {
            a.State = a.FiredAt is null ? AlertState.Inactive : AlertState.Resolved;
            ForgetPending(a);
        }
        else if (a.State == AlertState.Firing)
        {
            Resolve(a, now);
        }
    }

    private void Fire(AlertInstance a, DateTimeOffset now)
    {
        ForgetPending(a);
        a.State = AlertState.Firing;
        a.ClearedBecause = null;
        a.ClearText = null;
        a.FiredAt = now;
        a.ResolvedAt = null;
        a.AckedAt = null;
        a.NotifiedFiring = false;
        a.ResolveOwed = false;
        a.Announced = false;
        var flapping = RecordChange(a, now);
        Write(AlertStore.Save(a, _flapClock));
        var uplink = _uplink.ToWireName();
        var summary = a.Summary;
        var attributes = Facts(a, Attributes(a.Id, a.Rule.Name, a.Key, "firing", a.Value, now, now, uplink, a.Labels, a.Peak));
        var seq = Append(new AlertHistoryEntry(0, a.Id, a.Rule.Name, a.Key, "raised", a.Rule.Severity, a.Value, now, uplink), EdgeEventKind.AlertRaised, attributes, summary);
        _metrics?.Raised(a.Rule);
        LogRaised(a.Rule.Name, a.Key, SeverityName(a.Rule.Severity), summary);
        Emit(new OutgoingEvent(AlertEvent(EdgeEventKind.AlertRaised, a.Rule.Name, now, a.Rule.Severity, summary, attributes), seq));
        if (flapping)
        {
            return;
        }

        Notify(a, AlertStatus.Firing, now);
    }

    private void Resolve(AlertInstance a, DateTimeOffset now)
    {
        a.State = AlertState.Resolved;
        a.ResolvedAt = now;
        var flapping = RecordChange(a, now);
        var uplink = _uplink.ToWireName();

        // The default text of a resolved alert already says it is back; a user template reads the same either way.
        var summary = a.Rule.Summary is null ? a.Summary : a.Summary + " (cleared)";
        var attributes = Facts(a, Attributes(a.Id, a.Rule.Name, a.Key, "resolved", a.Value, a.FiredAt, now, uplink, a.Labels, a.Peak));
        var seq = Append(new AlertHistoryEntry(0, a.Id, a.Rule.Name, a.Key, "cleared", a.Rule.Severity, a.Value, now, uplink), EdgeEventKind.AlertCleared, attributes, summary);
        _metrics?.Cleared(a.Rule);
        LogCleared(a.Rule.Name, a.Key, summary);
        Emit(new OutgoingEvent(AlertEvent(EdgeEventKind.AlertCleared, a.Rule.Name, now, a.Rule.Severity, summary, attributes), seq));
        if (!flapping)
        {
            // Message sinks hear of the clear only if they heard of the raise; state sinks always (the relay drops).
            Notify(a, AlertStatus.Resolved, now, message: a.Announced);
        }

        // After the notification, which marks the RESOLVED owed to the message sinks (saved in the same unit).
        Write(AlertStore.Save(a, _flapClock));

        if (a.Announced && Silenced(a.Rule.Name, now) && _silences.TryGetValue(a.Rule.Name, out var until))
        {
            // The sinks heard it firing and the silence holds back its clear: saved with the silence, so the catch-up
            // at the silence's end survives a restart (the NOC never heard it resolved).
            Write(SaveSilence(a.Rule.Name, until));
        }
    }

    /// <summary>Records a raise/clear; true when the alert is (now) flapping and this change must not be notified.</summary>
    private bool RecordChange(AlertInstance a, DateTimeOffset now)
    {
        var timestamp = _time.GetTimestamp();
        a.Changes[a.ChangeCount % a.Changes.Length] = timestamp;
        a.ChangeCount++;
        if (a.Flapping)
        {
            return true;
        }

        if (a.ChangeCount > _config.FlapMaxChanges)
        {
            var oldest = a.Changes[(a.ChangeCount - a.Changes.Length) % a.Changes.Length];
            if (_time.GetElapsedTime(oldest, timestamp) < _config.FlapWindow)
            {
                a.Flapping = true;
                _flapping.Add(a);
                _metrics?.Flapping(a.Rule);
                LogFlapping(a.Rule.Name, a.Key, _config.FlapMaxChanges, Core.Config.Durations.Format(_config.FlapWindow));
                Notify(a, AlertStatus.Flapping, now);
                return true;
            }
        }

        return false;
    }

    private bool Suppressed(AlertInstance a, DateTimeOffset now) => Silenced(a.Rule.Name, now);

    /// <summary>A wall-clock step smaller than this does not move a silence's shown end nor re-save flap times (tick jitter, slewing).</summary>
    private static readonly TimeSpan SilenceStepTolerance = TimeSpan.FromSeconds(30);

    /// <summary>Whether <paramref name="rule"/> is silenced: by the monotonic end if set in this run, else by the saved wall-clock end.</summary>
    private bool Silenced(string rule, DateTimeOffset now) => _silenceEnds.TryGetValue(rule, out var end)
        ? _time.GetTimestamp() < end
        : _silences.TryGetValue(rule, out var until) && until > now;

    private TimeSpan Remaining(long end) => TimeSpan.FromSeconds((end - _time.GetTimestamp()) / (double)_time.TimestampFrequency);

    /// <summary><paramref name="span"/> in timestamp ticks, clamped so a far-off end cannot overflow.</summary>
    private long TimestampTicks(TimeSpan span) =>
        (long)(Math.Clamp(span.TotalSeconds, -1e6, 1e8) * _time.TimestampFrequency);

    /// <summary>Tells the state sinks of a change, always, and the message sinks when <paramref name="message"/> (and the rule is not silenced).</summary>
    private void Notify(AlertInstance a, AlertStatus status, DateTimeOffset now, bool message = true)
    {
        var snapshot = a.Snapshot(status, now);

        // State sinks (relay, buzzer, lamp) follow every change at once and ignore silences: a silence mutes messages,
        // and muting the outputs too left the relay on for alerts that resolved while it lasted (audit finding 1).
        var single = new AlertNotification(a.Group, [snapshot], now) { CauseTimestamp = a.CauseTimestamp };
        Emit(new OutgoingNotification(single, StateOnly: true));
        if (message)
        {
            NotifyMessage(a, snapshot, now);
        }
    }

    /// <summary>Queues a snapshot for the message sinks: one message per group and interval; nothing while the rule is silenced.</summary>
    private void NotifyMessage(AlertInstance a, AlertSnapshot snapshot, DateTimeOffset now)
    {
        if (Suppressed(a, now))
        {
            _metrics?.Suppressed(a.Rule);
            return;
        }

        if (snapshot.Status == AlertStatus.Firing)
        {
            a.Announced = true;
        }
        else if (snapshot.Status == AlertStatus.Resolved)
        {
            a.Announced = false;
            a.ResolveOwed = true; // saved by the caller's unit (Resolve, the flap release, the silence's catch-up)
        }

        if (!_groups.TryGetValue(a.Group, out var group))
        {
            group = new Group(a.Group);
            _groups[a.Group] = group;
        }

        group.Waiting.Add(snapshot);
        group.Cause = group.Cause == 0 ? a.CauseTimestamp : group.Cause;
        if (group.Waiting.Count == 1 && GroupDue(group))
        {
            Send(group, now);
        }
    }

    /// <summary>
    /// A group's next message may go: group_interval is timed on the monotonic clock (on the wall clock, a step back of an
    /// hour held the collected alerts that hour, a step forward sent them at once).
    /// </summary>
    private bool GroupDue(Group group) =>
        group.LastSentTimestamp is not { } sent || _time.GetElapsedTime(sent) >= _config.GroupInterval;

    private void Send(Group group, DateTimeOffset now)
    {
        var notification = new AlertNotification(group.Key, [.. group.Waiting], now) { CauseTimestamp = group.Cause };
        group.Waiting.Clear();
        group.Cause = 0;
        group.LastSentTimestamp = _time.GetTimestamp();
        _metrics?.Notification(notification.Alerts.Count);
        Emit(new OutgoingNotification(notification, StateOnly: false));
    }

    /// <summary>
    /// A new silence also holds back what its rule still has waiting in the groups (the NOC got FIRING for alerts
    /// silenced 16 s before, audit finding 4). Those snapshots never went out, so <see cref="AlertInstance.Announced"/>
    /// goes back to what the message sinks had heard before the earliest of them; the silence's end catches them up.
    /// </summary>
    private void DropWaiting(string rule)
    {
        foreach (var group in _groups.Values)
        {
            // Newest first, so the earliest dropped snapshot of an alert decides last.
            for (var i = group.Waiting.Count - 1; i >= 0; i--)
            {
                var s = group.Waiting[i];
                if (s.Rule != rule)
                {
                    continue;
                }

                group.Waiting.RemoveAt(i);
                if (_byId.TryGetValue(s.Id, out var a) && s.Status is AlertStatus.Firing or AlertStatus.Resolved)
                {
                    a.Announced = s.Status == AlertStatus.Resolved;
                }
            }

            if (group.Waiting.Count == 0)
            {
                group.Cause = 0;
            }
        }
    }

    /// <summary>Replaces the alert's firing snapshot of this episode still waiting in its group by the acknowledged one; true if there was one.</summary>
    private bool ReplaceWaitingFiring(AlertInstance a, DateTimeOffset now)
    {
        if (!_groups.TryGetValue(a.Group, out var group))
        {
            return false;
        }

        for (var i = group.Waiting.Count - 1; i >= 0; i--)
        {
            var s = group.Waiting[i];
            if (s.Id == a.Id && s.Status == AlertStatus.Firing && s.FiredAt == a.FiredAt)
            {
                group.Waiting[i] = a.Snapshot(AlertStatus.Acknowledged, now);
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// A silence ended: the message sinks are brought up to date — firing alerts of the rule they never heard of are
    /// notified, and alerts they heard firing that resolved meanwhile are notified resolved. State sinks already follow.
    /// </summary>
    private void ReleaseSilence(string rule, DateTimeOffset now)
    {
        foreach (var a in _instances.Values)
        {
            if (a.Rule.Name != rule || a.Flapping)
            {
                continue;
            }

            if (a.State == AlertState.Firing && !a.Announced && !a.Acked)
            {
                NotifyMessage(a, a.Snapshot(AlertStatus.Firing, now), now);
            }
            else if (a.State != AlertState.Firing && a.Announced)
            {
                NotifyMessage(a, a.Snapshot(AlertStatus.Resolved, now), now);
                Write(AlertStore.Save(a, _flapClock));
            }
        }
    }

    private string GroupKey(Dictionary<string, string> labels)
    {
        if (_config.GroupBy.Count == 0)
        {
            return "all";
        }

        return string.Join(',', _config.GroupBy.Select(k => k + "=" + labels.GetValueOrDefault(k, "")));
    }

    internal static string SeverityName(EventSeverity s) => s switch
    {
        EventSeverity.Critical => "critical",
        EventSeverity.Warning => "warning",
        _ => "info",
    };

    /// <summary>
    /// Event attributes: the alert's identity, its state and the times it describes, so a replay after an outage still
    /// says when each change happened (<c>time</c>) and whether the uplink was down then (<c>uplink</c>).
    /// </summary>
    private static Dictionary<string, string> Attributes(long id, string rule, string key, string state, double value, DateTimeOffset? fired, DateTimeOffset time, string uplink, IReadOnlyDictionary<string, string>? labels = null, double peak = double.NaN)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (labels is not null)
        {
            foreach (var (k, v) in labels)
            {
                d["label." + k] = v;
            }
        }

        d["alert_id"] = id.ToString(CultureInfo.InvariantCulture);
        d["rule"] = rule;
        d["key"] = key;
        d["state"] = state;
        d["value"] = WireNumber.Format(value);
        if (!double.IsNaN(peak))
        {
            d["peak"] = WireNumber.Format(peak);
        }

        d["time"] = WireTime.Instant(time);
        if (fired is { } f)
        {
            d["fired_at"] = WireTime.Instant(f);
        }

        d["uplink"] = uplink;
        d["during_outage"] = uplink == "online" ? "false" : "true";
        return d;
    }

    /// <summary>A rule's silence for the centre: no alert, the rule and what the operator did (state, until, by).</summary>
    /// <remarks>A rule is about no one device: the event is filed under the gateway (<paramref name="gateway"/>).</remarks>
    private static Dictionary<string, string> SilenceAttributes(string rule, DateTimeOffset time, string uplink, IReadOnlyDictionary<string, string> silence, string gateway)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["rule"] = rule,
            ["key"] = "*",
            ["device"] = gateway,
            ["time"] = WireTime.Instant(time),
            ["uplink"] = uplink,
            ["during_outage"] = uplink == "online" ? "false" : "true",
        };
        return With(d, silence);
    }

    /// <summary>
    /// An alert event for the centre, filed under the device it is about (attribute <c>device</c>: body and envelope
    /// <c>device</c>, the Kafka key) and its series (attribute <c>series</c>: body <c>series</c>, <c>metric</c>,
    /// <c>unit</c>); the source stays the rule. Before (consumer audit F2) the device was the rule name.
    /// </summary>
    private static EdgeEvent AlertEvent(EdgeEventKind kind, string rule, DateTimeOffset time, EventSeverity severity, string message, Dictionary<string, string> attributes) =>
        new(kind, rule, time, severity, message, attributes)
        {
            Device = attributes.GetValueOrDefault("device"),
            Series = attributes.GetValueOrDefault("series"),
        };

    /// <summary>
    /// The device an alert is about, for the centre: the one the rule engine set (the watched series' device, the device
    /// of the event an event rule watches), the device a device rule reports down, a combined alert's scope (rack, room,
    /// line or device id, as the thermal twin files its zone events), and the gateway for uplink and input rules.
    /// </summary>
    private string EventDevice(AlertInstance a) => a.Device ?? a.Rule.Kind switch
    {
        RuleKind.DeviceDown => a.Key,
        RuleKind.Uplink or RuleKind.Input => _site.GatewayId,
        _ when a.Rule.Combine != Combine.None => a.Key,
        _ => a.Labels.TryGetValue("device", out var d) && d.Length > 0 ? d : _site.GatewayId,
    };

    /// <summary>
    /// The alert's structured facts (consumer audit F2: the limit was only in the English message): the device, series,
    /// metric and unit it is about, the rule's type, severity and <c>for:</c> duration, and per type its limit
    /// (<c>threshold</c>), clear level (<c>clear_level</c>, the hysteresis), <c>direction</c> and the unit those and
    /// <c>value</c> are in (<c>value_unit</c>), its window, <c>after</c>, tolerance, states, watched event, pin, combination.
    /// </summary>
    private Dictionary<string, string> Facts(AlertInstance a, Dictionary<string, string> d)
    {
        var rule = a.Rule;
        d["rule_type"] = RuleTypeName(rule.Kind);
        d["severity"] = SeverityName(rule.Severity);
        d["device"] = EventDevice(a);
        if (a.Series is { } series)
        {
            d["series"] = series;
        }

        if (a.Metric is { } metric)
        {
            d["metric"] = metric;
        }

        if (a.Unit is { Length: > 0 } unit)
        {
            d["unit"] = unit;
        }

        d["for_s"] = Seconds(rule.For);
        if (rule.Combine != Combine.None)
        {
            d["combine"] = rule.Combine == Combine.All ? "all" : "any";
            d["per"] = rule.Per.ToString().ToLowerInvariant();
            d["members"] = a.MemberCount.ToString(CultureInfo.InvariantCulture);
            d["members_active"] = a.HotMembers.Count.ToString(CultureInfo.InvariantCulture);
        }

        switch (rule.Kind)
        {
            case RuleKind.Threshold:
                Limits(d, rule);
                ValueUnit(d, a.Unit);
                break;
            case RuleKind.Rate:
                // Signed change per minute: a fall_per_min of 2 is threshold -2, direction below.
                Limits(d, rule);
                d["value_unit"] = (a.Unit is { Length: > 0 } u && u != "1" ? u : "1") + "/min";
                d["window_s"] = Seconds(rule.Window);
                break;
            case RuleKind.Stuck:
                d["after_s"] = Seconds(rule.After);
                d["tolerance"] = WireNumber.Format(rule.Tolerance);
                ValueUnit(d, a.Unit);
                break;
            case RuleKind.Missing:
                // value: seconds since the last sample.
                d["after_s"] = Seconds(rule.After);
                d["value_unit"] = "s";
                break;
            case RuleKind.State:
                // value: the state code; the alarm states by name.
                d["states"] = string.Join(',', rule.States);
                break;
            case RuleKind.Event:
                Limits(d, rule);
                d["watch_event"] = rule.EventKind.ToWireName();
                d["watch_attribute"] = rule.Attribute ?? "";
                d["clear_after_s"] = Seconds(rule.After);
                break;
            case RuleKind.Input:
                d["pin"] = rule.Pin.ToString(CultureInfo.InvariantCulture);
                d["active"] = rule.ActiveLow ? "low" : "high";
                break;
        }

        // What the sinks show the operator, so the centre's console can show it too: the runbook with every event of
        // the alert, the first action while there is one (not with the clear), as the sinks' snapshots do.
        if (rule.RunbookUrl is { } runbook)
        {
            d["runbook_url"] = runbook;
        }

        if (d.GetValueOrDefault("state") != "resolved" && a.Action is { } action)
        {
            d["action"] = action;
        }

        return d;

        static void Limits(Dictionary<string, string> d, AlertRule rule)
        {
            d["direction"] = rule.Direction == Direction.Above ? "above" : "below";
            d["threshold"] = WireNumber.Format(rule.Limit);
            d["clear_level"] = WireNumber.Format(rule.Clear);
        }

        static void ValueUnit(Dictionary<string, string> d, string? unit)
        {
            if (unit is { Length: > 0 })
            {
                d["value_unit"] = unit;
            }
        }
    }

    /// <summary>The rule's <c>type:</c> as written in the config.</summary>
    internal static string RuleTypeName(RuleKind kind) => kind switch
    {
        RuleKind.Threshold => "threshold",
        RuleKind.Rate => "rate",
        RuleKind.Stuck => "stuck",
        RuleKind.Missing => "missing",
        RuleKind.DeviceDown => "device_down",
        RuleKind.Event => "event",
        RuleKind.Input => "input",
        RuleKind.Uplink => "uplink",
        RuleKind.State => "state",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    private static string Seconds(TimeSpan t) => WireNumber.Format(t.TotalSeconds);

    private static Dictionary<string, string> With(Dictionary<string, string> attributes, IReadOnlyDictionary<string, string> extra)
    {
        foreach (var (k, v) in extra)
        {
            attributes[k] = v;
        }

        return attributes;
    }

    private sealed class Group(string key)
    {
        public string Key { get; } = key;

        public List<AlertSnapshot> Waiting { get; } = [];

        /// <summary>When its last message went (monotonic timestamp); null: none yet.</summary>
        public long? LastSentTimestamp { get; set; }

        public long Cause { get; set; }
    }

    // The alert's own text, as every sink gets it: the journal is what an operator reads when the sinks are down, and
    // "raised (value 1.6678248783877694, warning)" gave neither the unit, the limit nor the place.
    [LoggerMessage(Level = LogLevel.Warning, Message = "alert {Rule} {Key} raised ({Severity}): {Summary}")]
    private partial void LogRaised(string rule, string key, string severity, string summary);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key} cleared: {Summary}")]
    private partial void LogCleared(string rule, string key, string summary);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key} acknowledged by {By}")]
    private partial void LogAcknowledged(string rule, string key, string by);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert {Rule} {Key} is flapping (more than {Max} changes in {Window}); changes are not notified until it settles")]
    private partial void LogFlapping(string rule, string key, int max, string window);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the wall clock stepped by {Step}: the silence of rule {Rule} keeps the time it has left and now ends {Until}")]
    private partial void LogSilenceMoved(string rule, string until, string step);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key} stopped flapping")]
    private partial void LogFlappingEnded(string rule, string key);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key} restored {State} (acknowledged {Acked}, notified {Notified}, flapping {Flapping})")]
    private partial void LogRestored(string rule, string key, string state, bool acked, bool notified, bool flapping);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Pruned} of {Stored} saved alerts had cleared before the stop and were deleted (the history keeps them)")]
    private partial void LogPruned(int pruned, int stored);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Kept} pending for: holds saved before the stop are kept (down {Down}, within alerts.for_outage_tolerance {Tolerance}): an alert whose condition still holds at its first evaluation resumes its hold with the time already held, the downtime not counted")]
    private partial void LogHoldsKept(int kept, string down, string tolerance);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Dropped} pending for: holds saved before the stop start from zero: {Why}")]
    private partial void LogHoldsDropped(int dropped, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store: the wall clock reads {Behind} earlier than the agent's last alive mark (booted with a clock behind, before NTP?): how long it was down is unknown, so {Dropped} pending for: holds saved before the stop start from zero")]
    private partial void LogHoldsClockBehind(int dropped, string behind);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key}: for: hold resumed after the restart, pending since {Since} ({Held} held before the stop, the downtime not counted); fires in {Left} if the condition holds")]
    private partial void LogHoldResumed(string rule, string key, string since, string held, string left);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key}: the for: hold saved before the stop is dropped: the first evaluation after the start finds the condition over")]
    private partial void LogHoldConditionGone(string rule, string key);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Dropped} pending for: holds saved before the stop are dropped: their alerts were not evaluated again within alerts.for_outage_tolerance ({Tolerance}) of the last alive mark")]
    private partial void LogHoldsUnclaimed(int dropped, string tolerance);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Kept} stuck/missing after timers saved before the stop are kept (down {Down}, within alerts.for_outage_tolerance {Tolerance}): a series still stuck at the same value at its first sample, or still without samples, is credited with the time already run, the downtime not counted")]
    private partial void LogAftersKept(int kept, string down, string tolerance);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Dropped} stuck/missing after timers saved before the stop start from zero: {Why}")]
    private partial void LogAftersDropped(int dropped, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "alert store: the wall clock reads {Behind} earlier than the agent's last alive mark (booted with a clock behind, before NTP?): how long it was down is unknown, so {Dropped} stuck/missing after timers saved before the stop start from zero")]
    private partial void LogAftersClockBehind(int dropped, string behind);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key}: {Kind} after timer resumed after the restart ({Held} run before the stop, the downtime not counted); fires in {Left} if {Condition}")]
    private partial void LogAfterResumed(string rule, string key, string kind, string held, string left, string condition);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert {Rule} {Key}: the {Kind} after timer saved before the stop is dropped: {Why}")]
    private partial void LogAfterDropped(string rule, string key, string kind, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "alert store: {Dropped} stuck/missing after timers saved before the stop are dropped: their series were not seen again within alerts.for_outage_tolerance ({Tolerance}) of the last alive mark")]
    private partial void LogAftersUnclaimed(int dropped, string tolerance);
}
