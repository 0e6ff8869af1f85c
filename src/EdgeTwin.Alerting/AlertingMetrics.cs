using System.Diagnostics.Metrics;
using EdgeTwin.Alerting.Rules;

namespace EdgeTwin.Alerting;

/// <summary>Counters of the <c>EdgeTwin.Alerting</c> meter (names in the README).</summary>
public sealed class AlertingMetrics
{
    public const string MeterName = "EdgeTwin.Alerting";

    private readonly Counter<long> _raised;
    private readonly Counter<long> _cleared;
    private readonly Counter<long> _flapping;
    private readonly Counter<long> _suppressed;
    private readonly Counter<long> _notifications;
    private readonly Histogram<long> _notificationSize;
    private readonly Counter<long> _delivered;
    private readonly Counter<long> _failed;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _superseded;
    private readonly Counter<long> _resent;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _controlRefused;
    private readonly Counter<long> _recipientsRefused;
    private readonly Histogram<double> _deliveryMs;
    private readonly Histogram<double> _commitMs;
    private readonly Histogram<long> _commitWrites;
    private readonly Histogram<double> _checkpointMs;
    private readonly Histogram<double> _applyMs;
    private readonly Histogram<double> _syncMs;
    private readonly Counter<long> _storeFailed;
    private readonly Counter<long> _storeReopened;
    private readonly UpDownCounter<long> _storeMemoryOnly;
    private readonly Counter<long> _storeCorrupt;
    private readonly Counter<long> _forHolds;
    private readonly Counter<long> _afterTimers;

    public AlertingMetrics(IMeterFactory? factory = null)
    {
        var meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _raised = meter.CreateCounter<long>("edgetwin.alerts.raised", description: "Alerts that started firing.");
        _cleared = meter.CreateCounter<long>("edgetwin.alerts.cleared", description: "Alerts that resolved.");
        _flapping = meter.CreateCounter<long>("edgetwin.alerts.flapping", description: "Alerts the flapping guard muted.");
        _suppressed = meter.CreateCounter<long>("edgetwin.alerts.suppressed", description: "Notifications not sent because the rule is silenced.");
        _notifications = meter.CreateCounter<long>("edgetwin.alerts.notifications", description: "Grouped messages handed to the sinks.");
        _notificationSize = meter.CreateHistogram<long>("edgetwin.alerts.notification.size", description: "Alerts per grouped message.");
        _delivered = meter.CreateCounter<long>("edgetwin.alerts.sink.delivered", description: "Messages a sink delivered.");
        _failed = meter.CreateCounter<long>("edgetwin.alerts.sink.failed", description: "Messages a peer refused for good, or whose fast retries ran out (the peer is down; the message is held and retried).");
        _dropped = meter.CreateCounter<long>("edgetwin.alerts.sink.dropped", description: "Messages dropped because a sink's queue was full.");
        _superseded = meter.CreateCounter<long>("edgetwin.alerts.sink.superseded", description: "Queued messages not sent because a later queued message carried the later state of all their alerts (a peer back after an outage gets each alert's latest state once).");
        _resent = meter.CreateCounter<long>("edgetwin.alerts.sink.resent", description: "Re-sends of the alerts still firing that a sink's peer took (format: alertmanager, every resend_interval); not counted in delivered.");
        _retries = meter.CreateCounter<long>("edgetwin.alerts.sink.retries", description: "Delivery attempts repeated after a failure or timeout.");
        _recipientsRefused = meter.CreateCounter<long>("edgetwin.alerts.sink.recipients_refused", description: "Recipients an smtp sink's relay refused for good (5xx): the mail went to the others, not to them.");
        _controlRefused = meter.CreateCounter<long>("edgetwin.alerts.control.refused", description: "Control socket connections refused as busy: over the limit open at once.");
        _commitMs = meter.CreateHistogram<double>("edgetwin.alerts.store.commit.duration", unit: "ms", description: "One group commit: the journal write that makes every change queued since the last one durable.");
        _commitWrites = meter.CreateHistogram<long>("edgetwin.alerts.store.commit.writes", description: "Document writes per group commit.");
        _checkpointMs = meter.CreateHistogram<double>("edgetwin.alerts.store.checkpoint.duration", unit: "ms", description: "Journal checkpoints of alerts.db (run while nothing waits).");
        _applyMs = meter.CreateHistogram<double>("edgetwin.alerts.store.apply.duration", unit: "ms", description: "LiteDB commits of journaled changes (background, off the alarm path).");
        _syncMs = meter.CreateHistogram<double>("edgetwin.alerts.store.sync.duration", unit: "ms", description: "fsyncs of the alert journal and of alerts.db (background, off the alarm path); tag file: journal or litedb.");
        _storeFailed = meter.CreateCounter<long>("edgetwin.alerts.store.failed", description: "Commits of alerts.db that failed (the alerts were still notified).");
        _storeCorrupt = meter.CreateCounter<long>("edgetwin.alerts.store.corrupt", description: "Corrupt alert state found at start (tag file: litedb = alerts.db set aside, journal = alerts.journal damaged, a copy set aside).");
        _storeReopened = meter.CreateCounter<long>("edgetwin.alerts.store.reopened", description: "Times alerts.db was reopened after LiteDB had failed, and given the journal again.");
        _storeMemoryOnly = meter.CreateUpDownCounter<long>("edgetwin.alerts.store.memory_only", description: "1 while the alert store cannot write its directory (a read-only or full file system) and keeps alert state changes in memory only (lost at a restart); 0 while it persists.");
        _forHolds = meter.CreateCounter<long>("edgetwin.alerts.for_holds", description: "Pending for: holds saved before a restart, by what became of them (tag outcome: restored = resumed with the time already held; dropped: condition_gone, unclaimed, outage_too_long, clock_behind, rule_changed, disabled).");
        _afterTimers = meter.CreateCounter<long>("edgetwin.alerts.after_timers", description: "Stuck/missing rules' after timers saved before a restart, by what became of them, one outcome each (tag outcome, as edgetwin.alerts.for_holds: restored = credited with the time already run; dropped: condition_gone (the value moved, a sample came, the source flagged it stuck itself, the series left the device), unclaimed, outage_too_long, clock_behind, rule_changed, disabled).");
        _deliveryMs = meter.CreateHistogram<double>("edgetwin.alerts.sink.latency", unit: "ms", description: "From the sample or edge that changed the alert to the sink's delivery.");
    }

    internal void Raised(AlertRule rule) => _raised.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));

    internal void Cleared(AlertRule rule) => _cleared.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));

    internal void Flapping(AlertRule rule) => _flapping.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));

    internal void Suppressed(AlertRule rule) => _suppressed.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));

    internal void Notification(int alerts)
    {
        _notifications.Add(1);
        _notificationSize.Record(alerts);
    }

    internal void Delivered(string sink, double latencyMs)
    {
        var tag = new KeyValuePair<string, object?>("sink", sink);
        _delivered.Add(1, tag);
        if (latencyMs >= 0)
        {
            _deliveryMs.Record(latencyMs, tag);
        }
    }

    internal void StoreCommit(double ms, int writes)
    {
        _commitMs.Record(ms);
        _commitWrites.Record(writes);
    }

    internal void StoreCheckpoint(double ms) => _checkpointMs.Record(ms);

    internal void StoreApply(double ms) => _applyMs.Record(ms);

    internal void StoreSync(string file, double ms) => _syncMs.Record(ms, new KeyValuePair<string, object?>("file", file));

    internal void StoreFailed() => _storeFailed.Add(1);

    internal void StoreReopened() => _storeReopened.Add(1);

    internal void StoreMemoryOnly(int change) => _storeMemoryOnly.Add(change);

    internal void StoreCorrupt(string file) => _storeCorrupt.Add(1, new KeyValuePair<string, object?>("file", file));

    internal void Failed(string sink) => _failed.Add(1, new KeyValuePair<string, object?>("sink", sink));

    internal void Dropped(string sink) => _dropped.Add(1, new KeyValuePair<string, object?>("sink", sink));

    internal void Superseded(string sink, int messages) => _superseded.Add(messages, new KeyValuePair<string, object?>("sink", sink));

    internal void Resent(string sink) => _resent.Add(1, new KeyValuePair<string, object?>("sink", sink));

    internal void RecipientsRefused(string sink, int recipients) => _recipientsRefused.Add(recipients, new KeyValuePair<string, object?>("sink", sink));

    internal void ControlRefused() => _controlRefused.Add(1);

    internal void ForHold(string outcome) => _forHolds.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    internal void AfterTimer(string outcome) => _afterTimers.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    internal void Retried(string sink) => _retries.Add(1, new KeyValuePair<string, object?>("sink", sink));
}
