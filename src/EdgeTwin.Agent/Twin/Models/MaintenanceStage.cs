using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.Models.Maintenance;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Models;

/// <summary>
/// Predictive maintenance on the gateway: for each machine of <c>models.maintenance.machines</c>, the vibration RMS,
/// vibration kurtosis and bearing temperature series of the machine's devices (<c>location: { machine: … }</c>, matched
/// by metric role or name) feed a <see cref="MachineHealthMonitor"/>: interval means → machine-health RUL model (ONNX,
/// leased from the catalog per inference, so a deployed model takes effect without restart) →
/// <see cref="MaintenancePredictor"/> → one <see cref="EdgeEventKind.Prediction"/> event through the event hub when a
/// machine's failure probability crosses the threshold. Downtime and cost come from the registered
/// <see cref="IUnplannedFailureCostModel"/> (the line twin) when there is one, else from the config's figures.
/// Series are mapped once, on their first sample, into an array indexed by <see cref="SeriesId"/>; a sample allocates nothing.
/// <para>
/// The model reads a day of history (48 half-hour intervals), so each machine's history, last estimates and raised
/// prediction are kept over restarts in <see cref="StateFileName"/> next to the outbox (written in the background
/// when an interval closes, and at stop): a restart neither blinds the model for a day nor raises a prediction again.
/// </para>
/// </summary>
public sealed partial class MaintenanceStage : ISampleStage, IDisposable
{
    public const string MeterName = "EdgeTwin.Twin.Maintenance";

    private const int Unmapped = -2;
    private const int Skip = -1;

    private readonly AgentRuntime _runtime;
    private readonly ILogger<MaintenanceStage> _logger;
    private readonly MachineHealthMonitor? _monitor;
    private readonly Dictionary<string, string> _deviceMachine = new(StringComparer.Ordinal);
    private readonly Meter _meter;
    private readonly Counter<long> _samples;
    private readonly Counter<long> _predictions;
    private int[] _map = new int[256];
    private readonly string? _statePath;
    private long _savedAtIntervals;
    private readonly SampleClock _clock = new();
    private Task _saving = Task.CompletedTask;
    // Read-only storage fails every save for the rest of the outage (each machine's closed interval, every half hour):
    // the first failure and each new cause are logged, repeats summed up every 5 min, the recovery once.
    private readonly RepeatedFailureLog _saveFailures;

    // Machines of the state file taken out of models.maintenance.machines with a prediction open: withdrawn with the first
    // batch (the event hub runs then) and kept in the file until they are, so that a stop before it loses nothing.
    private readonly Dictionary<string, MachineHealthState> _orphans = new(StringComparer.Ordinal);
    private readonly string _model = "";
    private readonly TimeSpan _horizon;
    private bool _horizonBeyondLogged;
    // What `edgetwin maintenance status` reads (another thread): rebuilt by the stage when an interval closed or a repair
    // was applied, never read from the monitor itself.
    private volatile IReadOnlyList<MaintenanceMachineStatus> _status = [];
    private long _statusAtIntervals = -1;
    // Machines whose located devices' profiles carry none of a needed signal (judged at start): status says so.
    private readonly Dictionary<string, string> _missingSignals = new(StringComparer.Ordinal);
    private readonly bool[] _frozenLogged = [];
    // Each machine's configured repair time: how long `maintenance status` asks the consequence model about (a cooling
    // unit is on no line, so the config's figure is the one its predictions carry too).
    private readonly Dictionary<string, TimeSpan> _repairTime = new(StringComparer.Ordinal);

    // Repairs reported through the control socket (another thread), applied by the stage with its next batch: the monitor
    // is the stage's alone. The open predictions' ids are mirrored for the answer to the operator.
    private readonly System.Collections.Concurrent.ConcurrentQueue<(string Machine, string By)> _repairs = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _openIds = new(StringComparer.Ordinal);

    /// <summary>The maintenance state file kept next to the outbox.</summary>
    public const string StateFileName = "maintenance-state.json";

    private static readonly JsonSerializerOptions StateJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public MaintenanceStage(AgentRuntime runtime, ModelsConfig config, ModelCatalog catalog, ILogger<MaintenanceStage> logger, IUnplannedFailureCostModel? costModel = null, IMeterFactory? meterFactory = null, string? statePath = null, IFailureConsequenceModel? consequenceModel = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(catalog);
        _runtime = runtime;
        _logger = logger;
        _saveFailures = new RepeatedFailureLog(runtime.TimeProvider, logFirst: 1, every: SaveFailureSummaryEvery);
        Array.Fill(_map, Unmapped);
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _samples = _meter.CreateCounter<long>("edgetwin.twin.maintenance.samples", "{sample}", "Samples fed to machine-health windows.");
        _predictions = _meter.CreateCounter<long>("edgetwin.twin.maintenance.predictions", "{prediction}", "Maintenance predictions published, by state (raised, updated, resolved).");
        CostModel = costModel;
        ConsequenceModel = consequenceModel;
        if (!config.MaintenanceEnabled)
        {
            return;
        }

        _model = config.MaintenanceModel;
        _horizon = config.Horizon;
        if (config.Machines.Count == 0)
        {
            // Nothing to watch; a prediction the state file holds open for a machine taken out of the config is withdrawn.
            if (statePath is not null)
            {
                _statePath = statePath;
                Restore(statePath);
            }

            return;
        }

        foreach (var device in runtime.Config.Devices)
        {
            // A cooling unit's blower is watched under the unit's id, from the devices located on the unit.
            if (device.Location.Machine is { } machine && config.Machines.ContainsKey(machine))
            {
                _deviceMachine[device.Id] = machine;
            }
            else if (device.Location.CoolingUnit is { } unit && config.Machines.ContainsKey(unit))
            {
                _deviceMachine[device.Id] = unit;
            }
        }

        var figures = config.Machines.ToDictionary(kv => kv.Key, kv => new MachineRepairFigures(kv.Value.DowntimeHours, kv.Value.CostPerHour, kv.Value.Action), StringComparer.Ordinal);
        _repairTime = config.Machines.ToDictionary(kv => kv.Key, kv => TimeSpan.FromHours(Math.Max(0, kv.Value.DowntimeHours)), StringComparer.Ordinal);
        var predictor = new MaintenancePredictor(new MaintenanceSettings(config.Threshold, config.Horizon, TimeSpan.FromHours(1), config.RearmBelow) { Currency = config.Currency }, figures, costModel, consequenceModel);
        _monitor = new MachineHealthMonitor([.. config.Machines.Keys.Order(StringComparer.Ordinal)], new MachineHealthRunner(catalog, config.MaintenanceModel, logger), predictor);
        _meter.CreateObservableGauge("edgetwin.twin.maintenance.inferences", () => _monitor.Inferences, "{inference}", "Machine-health model inferences.");
        _meter.CreateObservableCounter("edgetwin.twin.maintenance.frozen_intervals", () => _monitor.FrozenIntervals, "{interval}", "Averaging intervals left out because a signal read one value throughout (a frozen transmitter).");
        _frozenLogged = new bool[_monitor.Machines.Count];

        // A machine whose devices lack a signal the model needs is fed nothing usable: say so, and count only the rest.
        var watching = 0;
        foreach (var machine in _monitor.Machines)
        {
            var devices = _deviceMachine.Where(kv => kv.Value == machine).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            var missing = MissingFeatures(runtime.Config, devices);
            if (missing.Count == 0)
            {
                watching++;
                continue;
            }

            _missingSignals[machine] = string.Join(", ", missing);
            LogMachineLacksSignals(_logger, machine, string.Join(", ", missing), devices.Count == 0 ? "none" : string.Join(", ", devices), config.MaintenanceModel, string.Join(", ", MachineHealthInput.FeatureNames));
        }

        LogWatching(_logger, watching, _monitor.Machines.Count, config.MaintenanceModel, _deviceMachine.Count);
        if (statePath is not null)
        {
            _statePath = statePath;
            Restore(statePath);
        }

        _status = BuildStatus();
        _statusAtIntervals = _monitor.IntervalsClosed;
    }

    /// <summary>The state write in flight (completed when none is), for tests.</summary>
    internal Task PendingSave => _saving;

    private void Restore(string path)
    {
        var saved = AtomicStateFile.Read<Dictionary<string, MachineHealthState>, JsonException>(
            path,
            p => File.Exists(p) ? JsonSerializer.Deserialize<Dictionary<string, MachineHealthState>>(File.ReadAllBytes(p), StateJson) : null,
            (reason, aside) => LogStateCorrupt(_logger, path, reason, aside),
            reason => LogStateUnreadable(_logger, path, reason));
        if (saved is null)
        {
            return;
        }

        var restored = new List<string>();
        foreach (var (machine, state) in saved)
        {
            var index = _monitor?.IndexOf(machine) ?? -1;
            if (index < 0 && state is { Raised: true })
            {
                // Regression: the machine's prediction stayed open at the centre (the CMMS work order with it) for ever,
                // and the next save dropped the machine from the file, so nothing could ever withdraw it.
                _orphans[machine] = state;
                LogOrphanWithdrawn(_logger, machine, state.Open?.Id ?? machine, path);
                continue;
            }

            if (index < 0 || state?.Window is null)
            {
                continue;
            }

            try
            {
                _monitor!.Import(index, state);
                restored.Add($"{machine} {state.Window.Intervals.Length / BearingFeatureWindow.Features} intervals{(state.Raised ? $", prediction {state.Open?.Id ?? machine} open" : "")}");
            }
            catch (InvalidDataException ex)
            {
                LogStateDoesNotFit(_logger, machine, path, ex.Message);
            }
        }

        _savedAtIntervals = _monitor?.IntervalsClosed ?? 0;
        if (_monitor is not null)
        {
            foreach (var machine in _monitor.Machines)
            {
                if (_monitor.Export(_monitor.IndexOf(machine)).Open is { } open)
                {
                    _openIds[machine] = open.Id;
                }
            }

            var machines = string.Join("; ", restored);
            LogStateRestored(_logger, restored.Count, path, machines);
        }
    }

    /// <summary>At stop: waits for a write in flight, then saves the state as it is now.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_statePath is null)
        {
            return;
        }

        await _saving.WaitAsync(cancellationToken).ConfigureAwait(false);
        await SaveAsync(_statePath, Snapshot(), cancellationToken, atStop: true).ConfigureAwait(false);
    }

    private byte[] Snapshot()
    {
        var machines = new Dictionary<string, MachineHealthState>(StringComparer.Ordinal);
        if (_monitor is not null)
        {
            for (var i = 0; i < _monitor.Machines.Count; i++)
            {
                machines[_monitor.Machines[i]] = _monitor.Export(i);
            }

            _savedAtIntervals = _monitor.IntervalsClosed;
        }

        foreach (var (machine, state) in _orphans)
        {
            machines.TryAdd(machine, state);
        }

        return JsonSerializer.SerializeToUtf8Bytes(machines, StateJson);
    }

    /// <summary>How often a save that keeps failing for the same cause is logged again.</summary>
    internal static readonly TimeSpan SaveFailureSummaryEvery = TimeSpan.FromMinutes(5);

    // One save at a time (_saving), so the failure log needs no lock.
    private async Task SaveAsync(string path, byte[] bytes, CancellationToken cancellationToken, bool atStop = false)
    {
        try
        {
            await AtomicStateFile.WriteAsync(path, bytes, cancellationToken).ConfigureAwait(false);
            if (_saveFailures.Succeeded() is { } outage)
            {
                var failedForText = Core.Config.Durations.Approximate(outage.Down);
                LogStateWritableAgain(_logger, path, failedForText, outage.Failures);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            var reason = ex is OperationCanceledException ? "cancelled at stop" : ex.Message;
            // At stop always: it says what the next start goes on from.
            var line = atStop ? default : _saveFailures.Failed(reason);
            if (atStop || line is { Kind: FailureLineKind.Log, NewReason: true })
            {
                LogStateUnwritable(_logger, _saveFailures.StackOnce(ex), path, reason);
            }
            else if (line.Kind == FailureLineKind.Log)
            {
                LogStateStillUnwritable(_logger, path, reason, _saveFailures.Since, line.Failures);
            }
        }
    }

    /// <summary>
    /// The model's features (<see cref="MachineHealthInput.FeatureNames"/>) no metric of <paramref name="devices"/>' profiles
    /// carries, matched as <see cref="FeatureOf(SeriesDescriptor)"/> matches series. Empty when a profile is not loaded
    /// (a config built in code): it cannot be told, and the series are matched as they come.
    /// </summary>
    internal static IReadOnlyList<string> MissingFeatures(EdgeTwin.Core.Config.SiteConfig config, IReadOnlyList<string> devices)
    {
        var covered = new HashSet<BearingFeature>();
        foreach (var id in devices)
        {
            if (config.FindDevice(id) is not { } device || !config.Profiles.TryGetValue(device.Profile, out var profile))
            {
                return [];
            }

            foreach (var metric in profile.AllMetrics)
            {
                if (FeatureOf(metric.Role, metric.Name) is { } feature)
                {
                    covered.Add(feature);
                }
            }
        }

        return [.. Enum.GetValues<BearingFeature>().Where(f => !covered.Contains(f)).Select(f => MachineHealthInput.FeatureNames[(int)f])];
    }

    public string Name => "maintenance";

    /// <summary>The cost model in use (null: the config's fixed figures).</summary>
    public IUnplannedFailureCostModel? CostModel { get; }

    /// <summary>What a watched asset's failure would do to the site (the thermal twin for cooling units), or null.</summary>
    public IFailureConsequenceModel? ConsequenceModel { get; }

    /// <summary>The monitor (null when maintenance is off or no machine is configured).</summary>
    public MachineHealthMonitor? Monitor => _monitor;

    /// <summary>
    /// <c>edgetwin maintenance done MACHINE</c> (the control socket's <c>maintenance_done</c>; any thread): the operator
    /// reports <paramref name="machine"/> repaired. Applied with the stage's next batch (seconds): its open prediction is
    /// withdrawn (<c>state: resolved</c>, same id, <c>repair_reported_by</c>) and its history forgotten, so the model reads
    /// the new bearing only. Before, the repair was seen only after the probability stayed low for 24 h of intervals, and
    /// the model read the worn bearing's day of history meanwhile. Returns what to answer: refused for a machine that is
    /// not watched, else the id of the prediction it closes (null: none was open).
    /// </summary>
    public MaintenanceRepairAnswer ReportRepaired(string machine, string by)
    {
        ArgumentNullException.ThrowIfNull(machine);
        if (_monitor is null || _monitor.IndexOf(machine) < 0)
        {
            var watched = _monitor is null ? "none (models.maintenance is off or has no machines)" : string.Join(", ", _monitor.Machines);
            return new MaintenanceRepairAnswer(false, null, $"machine '{machine}' is not watched by the maintenance predictions (models.maintenance.machines: {watched})");
        }

        _repairs.Enqueue((machine, by));
        var id = _openIds.GetValueOrDefault(machine);
        LogRepairReported(_logger, machine, by, id ?? "none");
        return new MaintenanceRepairAnswer(true, id, id is null
            ? $"{machine}: repair recorded; no prediction was open; its history restarts with the next samples (the model reads the new state only)"
            : $"{machine}: repair recorded; prediction {id} is withdrawn (state resolved) with the next samples and its history restarts");
    }

    /// <summary>
    /// <c>edgetwin maintenance status</c> (the control socket's <c>maintenance_status</c>; any thread): each watched machine
    /// as of the last closed interval — RUL, probability within the horizon, the history it rests on, a frozen signal, the
    /// open prediction. Before, a planner saw a machine only once its probability crossed the threshold: a healthy one, one
    /// warming up, one whose transmitter froze and one without data all looked the same (no event).
    /// </summary>
    public IReadOnlyList<MaintenanceMachineStatus> Status() => _status;

    /// <summary>The horizon the probabilities are over.</summary>
    public TimeSpan Horizon => _horizon;

    /// <summary>The <c>maintenance_status</c> answer's members: horizon, model, and one object per machine (null members: not known yet).</summary>
    public void WriteStatus(System.Text.Json.Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteNumber("horizon_hours", _horizon.TotalHours);
        w.WriteString("model", _model);
        w.WriteString("rul_unit", "h");
        w.WriteStartArray("machines");
        foreach (var m in _status)
        {
            w.WriteStartObject();
            w.WriteString("machine", m.Machine);
            Number(w, "predicted_rul", m.RulHours);
            Number(w, "failure_probability", m.FailureProbability);
            w.WriteNumber("history_hours", m.History.TotalHours);
            w.WriteNumber("window_hours", m.Window.TotalHours);
            Text(w, "inputs_until", m.InputsUntil is { } until ? WireTime.Instant(until) : null);
            Text(w, "frozen_signal", m.FrozenSignal);
            Number(w, "frozen_value", m.FrozenValue);
            Text(w, "prediction_id", m.OpenPrediction);
            Text(w, "missing_signals", m.MissingSignals);
            Text(w, "estimated_failure_time", m.EstimatedFailureTime is { } eta ? WireTime.Instant(eta) : null);
            // Asked now, on the live twin (a cooling unit's room as it runs at this moment), not as it was when raised.
            Text(w, "if_failed", m.OpenPrediction is null ? null : ConsequenceModel?.IfFailed(m.Machine, _repairTime.GetValueOrDefault(m.Machine))?.Summary);
            w.WriteEndObject();
        }

        w.WriteEndArray();

        static void Number(System.Text.Json.Utf8JsonWriter w, string name, double? value)
        {
            if (value is { } v && double.IsFinite(v))
            {
                w.WriteNumber(name, Math.Round(v, 3));
            }
            else
            {
                w.WriteNull(name);
            }
        }

        static void Text(System.Text.Json.Utf8JsonWriter w, string name, string? value)
        {
            if (value is null)
            {
                w.WriteNull(name);
            }
            else
            {
                w.WriteString(name, value);
            }
        }
    }

    private MaintenanceMachineStatus[] BuildStatus()
    {
        var monitor = _monitor!;
        var result = new MaintenanceMachineStatus[monitor.Machines.Count];
        var window = monitor.Interval * (monitor.ModelWindow ?? 48);
        for (var i = 0; i < result.Length; i++)
        {
            var state = monitor.Export(i);
            var intervals = state.Window.Intervals.Length / BearingFeatureWindow.Features;
            var frozen = monitor.Frozen(i, out var value);
            result[i] = new MaintenanceMachineStatus(
                monitor.Machines[i],
                double.IsNaN(state.LastRul) ? null : state.LastRul,
                double.IsNaN(state.LastProbability) ? null : state.LastProbability,
                monitor.Interval * Math.Min(intervals, monitor.ModelWindow ?? 48),
                window,
                state.Window.LastIntervalEndMs > 0 && intervals > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(state.Window.LastIntervalEndMs) : null,
                frozen is { } f ? MachineHealthInput.FeatureNames[(int)f] : null,
                frozen is null ? null : value,
                state.Open?.Id,
                state.Open is { EstimatedFailureTime: var eta } && eta != DateTimeOffset.MinValue ? eta : null)
            {
                MissingSignals = _missingSignals.GetValueOrDefault(monitor.Machines[i]),
            };
        }

        return result;
    }

    public async ValueTask ProcessAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
    {
        if (_orphans.Count > 0)
        {
            await WithdrawOrphansAsync(samples.Length > 0 ? samples.Span[^1].Timestamp : _runtime.TimeProvider.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }

        if (_monitor is null)
        {
            return;
        }

        var repaired = false;
        while (_repairs.TryDequeue(out var repair))
        {
            var index = _monitor.IndexOf(repair.Machine);
            var now = samples.Length > 0 ? samples.Span[^1].Timestamp : _runtime.TimeProvider.GetUtcNow();
            var last = new { Rul = _monitor.LastRul(index), P = _monitor.LastProbability(index) };
            repaired = true;
            if (_monitor.Repaired(index) is not { } open)
            {
                continue;
            }

            _openIds.TryRemove(repair.Machine, out _);
            var withdrawal = new MaintenancePrediction(repair.Machine, double.IsNaN(last.P) ? open.FailureProbability : last.P, double.IsNaN(last.Rul) ? 0 : last.Rul, open.EstimatedFailureTime, "none: repaired", 0, 0, _model, "")
            {
                State = "resolved",
                PredictionId = open.Id,
                Horizon = _horizon,
                InputsUntil = now,
                RepairReportedBy = repair.By,
            };
            await PublishAsync(withdrawal, now, cancellationToken).ConfigureAwait(false);
        }

        if (repaired && _statePath is not null)
        {
            // The forgotten history and the closed prediction are kept at once: a restart must not bring the worn bearing back.
            await _saving.ConfigureAwait(false);
            var bytes = Snapshot();
            _saving = Task.Run(() => SaveAsync(_statePath, bytes, CancellationToken.None), CancellationToken.None);
        }

        var fed = 0;
        for (var i = 0; i < samples.Length; i++)
        {
            var sample = samples.Span[i];
            if (!sample.IsGood || sample.Series.IsNone)
            {
                continue;
            }

            var target = Target(sample.Series);
            if (target < 0)
            {
                continue;
            }

            fed++;
            if (_clock.Observe(sample.TimestampUnixMs) is var step and > 0)
            {
                // The windows re-anchor themselves (BearingFeatureWindow.Add); said once here, for the whole stage.
                SampleClock.LogSteppedBack(_logger, "Maintenance", step, sample.TimestampUnixMs, "each machine's partial averaging interval is dropped, its completed ones stay, and predictions go on from the new time");
            }

            if (_monitor.Observe(target >> 2, (BearingFeature)(target & 3), sample.Value, sample.TimestampUnixMs) is { } prediction)
            {
                await PublishAsync(prediction, sample.Timestamp, cancellationToken).ConfigureAwait(false);
            }
        }

        if (fed > 0)
        {
            _samples.Add(fed);
        }

        // A frozen transmitter: said once per machine when its intervals start being left out, and once when it reads again.
        for (var m = 0; m < _frozenLogged.Length; m++)
        {
            var frozen = _monitor.Frozen(m, out var value);
            if ((frozen is not null) != _frozenLogged[m])
            {
                _frozenLogged[m] = frozen is not null;
                if (frozen is { } feature)
                {
                    LogSignalFrozen(_logger, _monitor.Machines[m], MachineHealthInput.FeatureNames[(int)feature], value, _monitor.Interval.TotalMinutes);
                }
                else
                {
                    LogSignalVariesAgain(_logger, _monitor.Machines[m]);
                }
            }
        }

        // Said once (and again if it comes back after a fitting model): a horizon the model cannot answer raises nothing.
        var longest = _monitor.HorizonBeyondModel;
        if (longest.HasValue != _horizonBeyondLogged)
        {
            _horizonBeyondLogged = longest.HasValue;
            if (longest is { } hours)
            {
                LogHorizonBeyondModel(_logger, _horizon.TotalHours, _model, Math.Floor(hours));
            }
        }

        if (repaired || _monitor.IntervalsClosed != _statusAtIntervals)
        {
            _statusAtIntervals = _monitor.IntervalsClosed;
            _status = BuildStatus();
        }

        // An interval closed: the history changed (at most once per interval and machine, half an hour apart).
        if (_statePath is not null && _monitor.IntervalsClosed != _savedAtIntervals && _saving.IsCompleted)
        {
            var bytes = Snapshot();
            _saving = Task.Run(() => SaveAsync(_statePath, bytes, CancellationToken.None), CancellationToken.None);
        }
    }

    // On the stage's clock (the samples'), as every other prediction of it.
    private async ValueTask WithdrawOrphansAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_runtime.Events is not IEventSink)
        {
            return;
        }

        foreach (var (machine, state) in _orphans.ToList())
        {
            var withdrawal = new MaintenancePrediction(machine, state.LastProbability, state.LastRul, state.Open?.EstimatedFailureTime ?? now, "none: no longer monitored", 0, 0, _model, "")
            {
                State = "resolved",
                PredictionId = state.Open?.Id ?? machine,
                Horizon = _horizon,
                InputsUntil = now,
                WithdrawnBecause = "the machine is no longer in models.maintenance.machines of the site config",
            };
            await PublishAsync(withdrawal, now, cancellationToken).ConfigureAwait(false);
            _orphans.Remove(machine);
        }

        if (_statePath is not null && _saving.IsCompleted)
        {
            var bytes = Snapshot();
            _saving = Task.Run(() => SaveAsync(_statePath, bytes, CancellationToken.None), CancellationToken.None);
        }
    }

    private int Target(SeriesId id)
    {
        if (id.Value >= _map.Length)
        {
            // New series beyond the table: grow once (rare, at start-up), not per sample.
            var grown = new int[Math.Max(_map.Length * 2, id.Value + 1)];
            Array.Fill(grown, Unmapped);
            _map.CopyTo(grown, 0);
            _map = grown;
        }

        var t = _map[id.Value];
        if (t != Unmapped)
        {
            return t;
        }

        var descriptor = _runtime.Registry[id];
        t = Skip;
        if (_deviceMachine.TryGetValue(descriptor.DeviceId, out var machine) && FeatureOf(descriptor) is { } feature)
        {
            t = (_monitor!.IndexOf(machine) << 2) | (int)feature;
        }

        _map[id.Value] = t;
        return t;
    }

    /// <summary>The feature a series carries, from its role (<c>machine.vibration_rms</c>) or else its metric name.</summary>
    internal static BearingFeature? FeatureOf(SeriesDescriptor descriptor) => FeatureOf(descriptor.Role, descriptor.Metric);

    private static BearingFeature? FeatureOf(string? role, string metric)
    {
        var name = role is not null ? role[(role.IndexOf('.', StringComparison.Ordinal) + 1)..] : metric;
        return name.ToLowerInvariant() switch
        {
            "vibration_rms" or "vibration" or "vibration_velocity" => BearingFeature.VibrationRms,
            "vibration_kurtosis" or "kurtosis" => BearingFeature.Kurtosis,
            "bearing_temperature" => BearingFeature.BearingTemperature,
            _ => null,
        };
    }

    private async ValueTask PublishAsync(MaintenancePrediction prediction, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (prediction.State == "resolved")
        {
            _openIds.TryRemove(prediction.Machine, out _);
        }
        else
        {
            _openIds[prediction.Machine] = prediction.PredictionId;
        }

        _predictions.Add(1, new KeyValuePair<string, object?>("state", prediction.State));
        LogPrediction(_logger, prediction.Machine, prediction.State, prediction.PredictionId, prediction.FailureProbability.ToString("P0", CultureInfo.InvariantCulture), prediction.EstimatedFailureTime, prediction.CostSource);
        if (_runtime.Events is IEventSink events)
        {
            await events.PublishAsync(prediction.ToEvent(now), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _monitor?.Dispose();
        _meter.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: machine {Machine}: {Signal} read {Value} throughout the last {Minutes} min while the machine ran (a stuck or dead transmitter?); its intervals are left out until it varies again, so no RUL is made from it and its predictions stay as they were. Check the transmitter")]
    private static partial void LogSignalFrozen(ILogger logger, string machine, string signal, double value, double minutes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance: machine {Machine}: its signals vary again; its intervals count again")]
    private static partial void LogSignalVariesAgain(ILogger logger, string machine);

    [LoggerMessage(Level = LogLevel.Error, Message = "Maintenance: models.maintenance.horizon ({Horizon} h) is longer than model {Model} can answer (its RUL is capped; a healthy machine reads the cap): at most {Longest} h. No maintenance prediction is raised, updated or withdrawn until the horizon is shortened")]
    private static partial void LogHorizonBeyondModel(ILogger logger, double horizon, string model, double longest);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance: machine {Machine} reported repaired by {By} (open prediction: {Id}); its history restarts with the next samples")]
    private static partial void LogRepairReported(ILogger logger, string machine, string by, string id);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance: history of {Count} machines read from {Path} ({Machines}); their models go on from it")]
    private static partial void LogStateRestored(ILogger logger, int count, string path, string machines);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: machine {Machine} in {Path} is no longer in models.maintenance.machines; its open prediction {Id} is withdrawn (state resolved) with the first samples")]
    private static partial void LogOrphanWithdrawn(ILogger logger, string machine, string id, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance: the history kept for {Machine} in {Path} does not fit the model in use ({Reason}); it starts anew")]
    private static partial void LogStateDoesNotFit(ILogger logger, string machine, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: {Path} is corrupt ({Reason}); set aside ({Aside}), every machine's history starts anew")]
    private static partial void LogStateCorrupt(ILogger logger, string path, string reason, string aside);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: cannot read {Path} ({Reason}); every machine's history starts anew")]
    private static partial void LogStateUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: cannot write {Path} ({Reason}); the last good copy stays, retried when the next interval closes. Predictions go on")]
    private static partial void LogStateUnwritable(ILogger logger, Exception? ex, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: {Path} still cannot be written ({Reason}) since {Since:O}: {Attempts} saves failed; the last good copy stays. Predictions go on (logged again at most every 5 min while it lasts)")]
    private static partial void LogStateStillUnwritable(ILogger logger, string path, string reason, DateTimeOffset since, int attempts);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance: {Path} written again after {FailedFor} of failing saves ({Attempts} failed)")]
    private static partial void LogStateWritableAgain(ILogger logger, string path, string failedFor, int attempts);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance: watching {Machines} of {Configured} configured machines with model {Model} ({Devices} devices located on them)")]
    private static partial void LogWatching(ILogger logger, int machines, int configured, string model, int devices);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance: machine {Machine} has no {Missing} series (devices located on it: {Devices}); model {Model} needs {Needed} (by role or metric name), so no prediction can be raised for it")]
    private static partial void LogMachineLacksSignals(ILogger logger, string machine, string missing, string devices, string model, string needed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance prediction for {Machine} {State} ({Id}): failure probability {Probability}, estimated failure {Eta:O} (cost from {CostSource})")]
    private static partial void LogPrediction(ILogger logger, string machine, string state, string id, string probability, DateTimeOffset eta, string costSource);
}

/// <summary>One watched machine as <c>edgetwin maintenance status</c> shows it (null: not known yet).</summary>
/// <param name="RulHours">Last RUL, running hours (held to the model's cap).</param>
/// <param name="FailureProbability">P(failure within the horizon) at the last interval.</param>
/// <param name="History">Running time the machine's history holds (the model reads 24 h: less is warming up).</param>
/// <param name="InputsUntil">End of the last interval that counted.</param>
/// <param name="FrozenSignal">A signal that read one value throughout the last closed interval (a stuck transmitter), left out.</param>
/// <param name="Window">Running time the model reads.</param>
public sealed record MaintenanceMachineStatus(string Machine, double? RulHours, double? FailureProbability, TimeSpan History, TimeSpan Window, DateTimeOffset? InputsUntil, string? FrozenSignal, double? FrozenValue, string? OpenPrediction, DateTimeOffset? EstimatedFailureTime)
{
    /// <summary>The model's signals no device located on the machine carries (comma-separated), or null: it cannot be predicted.</summary>
    public string? MissingSignals { get; init; }
}

/// <summary>The answer to a reported repair: whether it was taken, the prediction it closes (null: none open) and what to tell the operator.</summary>
public sealed record MaintenanceRepairAnswer(bool Ok, string? PredictionId, string Message);
