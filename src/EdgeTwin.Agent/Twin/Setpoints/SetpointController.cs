using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Sources.Modbus;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Thermal;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Twin.Setpoints;

/// <summary>The set points of one unit as restored by a rollback (JSON in the event).</summary>
public sealed record RestoredSetpoints(
    [property: JsonPropertyName("unit")] string Unit,
    [property: JsonPropertyName("supply_setpoint_c")] double? SupplySetpointC,
    [property: JsonPropertyName("fan_speed_percent")] double? FanSpeedPercent,
    [property: JsonPropertyName("restored")] bool Restored);

/// <summary>
/// The cooling optimiser on the live twin, and — only when <c>thermal_twin.setpoint_control.enabled</c> — the closed loop:
/// <list type="bullet">
/// <item>every <see cref="ThermalTwinConfig.OptimiseEvery"/> (calibrated twin, every unit running, no live failure) a
///   <c>recommendation</c> event <c>{zone}/cooling_recommendation</c> with the set points and the predicted saving;</item>
/// <item>with writing enabled, the recommendation becomes the target: each <see cref="SetpointControlOptions.MinWriteInterval"/>
///   every unit moves one rate-limited step toward it inside its bounds (<see cref="SetpointLimiter"/>), each write verified
///   by read-back. The values before the first step are remembered as known-good; once the target has held for
///   <see cref="SetpointControlOptions.SettleTime"/> it becomes the new known-good;</item>
/// <item>while moved off known-good, every <see cref="SetpointControlOptions.CheckEvery"/>: a rack inlet at or above
///   <c>rollback_inlet_c</c>, a stopped unit or live cooling failure, a fit error above <c>max_fit_rmse_k</c>, or a failed
///   write/read-back rolls every unit back to its known-good set points at once, publishes an anomaly event
///   <c>{zone}/setpoint_rollback</c> (critical) and pauses writing for <see cref="SetpointControlOptions.RollbackHold"/>.</item>
/// </list>
/// With writing disabled (the default) no channel to a device is ever opened.
/// </summary>
public sealed partial class SetpointController : BackgroundService
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly AgentRuntime _runtime;
    private readonly ThermalTwinStage _stage;
    private readonly ThermalTwinConfig _config;
    private readonly IEventSink _events;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggers;
    private readonly SetpointMetrics _metrics;
    private readonly ZoneControl[] _zones;
    private readonly ModbusBusRegistry? _modbusBuses;
    private SnmpClient? _snmp;

    /// <param name="modbusBuses">The pollers' Modbus buses: a unit on a serial line is written over its poller's bus.</param>
    public SetpointController(AgentRuntime runtime, ThermalTwinStage stage, ThermalTwinConfig config, IEventSink events, ILoggerFactory loggers, SetpointMetrics metrics, ModbusBusRegistry? modbusBuses = null)
    {
        _modbusBuses = modbusBuses;
        _runtime = runtime ?? throw new ArgumentNullException(nameof(runtime));
        _stage = stage ?? throw new ArgumentNullException(nameof(stage));
        _config = config ?? throw new ArgumentNullException(nameof(config));
        _events = events ?? throw new ArgumentNullException(nameof(events));
        _loggers = loggers ?? throw new ArgumentNullException(nameof(loggers));
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _logger = loggers.CreateLogger<SetpointController>();
        _zones = [.. stage.Twin.Zones.Select((z, i) => new ZoneControl(i, z))];
    }

    /// <summary>Latest recommendation of a zone (null before the first).</summary>
    public CoolingRecommendation? LatestRecommendation(int zone) => Volatile.Read(ref _zones[zone].Latest);

    /// <summary>Set points the loop last wrote to a zone's units (null: nothing written since start or the last rollback hold).</summary>
    public IReadOnlyList<UnitSetpoints>? Commanded(int zone) => _zones[zone].Commanded;

    /// <summary>Known-good set points of a zone's units (read before the first write, updated after a settled target).</summary>
    public IReadOnlyList<UnitSetpoints>? KnownGood(int zone) => _zones[zone].KnownGood;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_zones.Length == 0)
        {
            return;
        }

        try
        {
            await _runtime.Started.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return; // the agent did not start; it reports why
        }

        if (_config.Setpoints.Enabled)
        {
            OpenChannels();
        }

        var time = _runtime.TimeProvider;
        var period = _config.Setpoints.Enabled ? _config.Setpoints.CheckEvery : TimeSpan.FromSeconds(Math.Min(10, _config.OptimiseEvery.TotalSeconds / 2));
        var clock = new EdgeTwin.Core.Samples.WallClockWatch(time);
        using var timer = new PeriodicTimer(period, time);
        try
        {
            do
            {
                var nowMs = clock.Read(out var stepMs);
                if (stepMs != 0)
                {
                    ShiftSchedules(stepMs);
                }

                foreach (var zone in _zones)
                {
                    try
                    {
                        await TickAsync(zone, nowMs, stoppingToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or ArithmeticException or MathNet.Numerics.NonConvergenceException)
                    {
                        LogTickFailed(_logger, zone.Zone.Id, ex);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        foreach (var unit in _zones.SelectMany(z => z.Units).OfType<UnitControl>())
        {
            foreach (var c in unit.Channels())
            {
                await c.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (_snmp is not null)
        {
            await _snmp.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Moves every zone's wall-clock schedule (next optimisation, last write, settle start, rollback pause) by a clock step,
    /// so that each interval keeps its length: before, a step back of an hour held recommendations and writes for an hour,
    /// and a step forward ended a rollback pause early.
    /// </summary>
    internal void ShiftSchedules(long stepMs)
    {
        foreach (var zone in _zones)
        {
            zone.Shift(stepMs);
        }

        LogClockStepped(_logger, stepMs < 0 ? "back" : "forward", Durations.Approximate(TimeSpan.FromMilliseconds(Math.Abs(stepMs))));
    }

    internal async Task TickAsync(ZoneControl zone, long nowMs, CancellationToken ct)
    {
        var z = zone.Index;
        var model = _stage.Twin.Model(z);
        var frame = _stage.Snapshot(z, nowMs);
        var sp = _config.Setpoints;
        var failure = _stage.ActivePrediction(z) is not null || Enumerable.Range(0, zone.Zone.Units.Count).Any(j => !frame.UnitRunning[j]);
        var fitBad = model.CalibrationFrames > 0 && !(model.InletFitRmseK <= sp.MaxFitRmseK);
        var (hottest, inlet) = Hottest(zone.Zone, frame);

        if (zone.Moved)
        {
            var reason = inlet >= _config.RollbackInletC ? "inlet_limit"
                : failure ? "cooling_unit_failed"
                : fitBad ? "fit_error"
                : null;
            if (reason is not null)
            {
                await RollbackAsync(zone, reason, hottest, inlet, nowMs, ct).ConfigureAwait(false);
                return;
            }

            if (zone.Target is not null && zone.ReachedMs > 0 && nowMs - zone.ReachedMs >= (long)sp.SettleTime.TotalMilliseconds)
            {
                // The target held without a trigger: it is the new known-good.
                zone.KnownGood = [.. zone.Commanded!];
                zone.Moved = false;
                LogSettled(_logger, zone.Zone.Id);
            }
        }

        // Recommend from live readings only: right after start the frame may not hold every rack's inlet yet.
        var live = frame.RackInletC.All(double.IsFinite);
        if (model.CalibrationFrames > 0 && live && !failure && nowMs - zone.LastOptimiseMs >= (long)_config.OptimiseEvery.TotalMilliseconds)
        {
            zone.LastOptimiseMs = nowMs;
            var rec = await Task.Run(() => CoolingOptimiser.Optimise(model, frame, _config.MarginK, inletLimitC: _config.InletLimitC), ct).ConfigureAwait(false);
            Volatile.Write(ref zone.Latest, rec);
            var writing = sp.Enabled && zone.Units.Any(u => u is not null) && nowMs >= zone.PausedUntilMs && !fitBad;
            await PublishRecommendationAsync(zone, rec, writing, nowMs, ct).ConfigureAwait(false);
            if (writing)
            {
                zone.Target = rec;
                zone.ReachedMs = 0;
            }
        }

        if (sp.Enabled && zone.Target is { } target && !failure && !fitBad && nowMs >= zone.PausedUntilMs
            && nowMs - zone.LastWriteMs >= (long)sp.MinWriteInterval.TotalMilliseconds)
        {
            await StepAsync(zone, target, frame, hottest, inlet, nowMs, ct).ConfigureAwait(false);
        }
    }

    private async Task StepAsync(ZoneControl zone, CoolingRecommendation target, ZoneFrame frame, string hottest, double inlet, long nowMs, CancellationToken ct)
    {
        var sp = _config.Setpoints;
        if (zone.KnownGood is null)
        {
            // Remember what the units run at before the first write: that is where a rollback returns.
            var good = new UnitSetpoints[zone.Units.Length];
            var present = new UnitSetpoints[zone.Units.Length];
            try
            {
                for (var j = 0; j < zone.Units.Length; j++)
                {
                    (good[j], present[j]) = zone.Units[j] is { } u ? await ReadPresentAsync(u, frame, ct).ConfigureAwait(false) : (new UnitSetpoints(double.NaN, double.NaN), new UnitSetpoints(double.NaN, double.NaN));
                }
            }
            catch (SetpointWriteException ex)
            {
                LogReadFailed(_logger, zone.Zone.Id, ex.Message);
                zone.LastWriteMs = nowMs; // retry after the write interval, not every check
                return;
            }

            if (zone.Units.Any(u => u is not null && (u.Supply is not null && double.IsNaN(present[u.Index].SupplyC) || u.Fan is not null && double.IsNaN(present[u.Index].FanPercent))))
            {
                zone.LastWriteMs = nowMs; // a fan in auto without a speed reading yet: nothing to step from
                return;
            }

            zone.KnownGood = good;
            zone.Commanded = present;
        }

        var next = new UnitSetpoints[zone.Units.Length];
        var changed = false;
        var reached = true;
        for (var j = 0; j < zone.Units.Length; j++)
        {
            next[j] = zone.Commanded![j];
            if (zone.Units[j] is not { } u || target.Units.FirstOrDefault(x => x.Unit == u.Id) is not { } want)
            {
                continue;
            }

            var goal = new UnitSetpoints(u.Supply is null ? double.NaN : want.SupplySetpointC, u.Fan is null ? double.NaN : Math.Round(want.FanSpeed * 100, 1));
            next[j] = SetpointLimiter.Step(zone.Commanded[j], goal, u.Bounds, sp.MaxSupplyStepK, sp.MaxFanStepPercent);
            changed |= !next[j].Near(zone.Commanded[j]);
            reached &= next[j].Near(SetpointLimiter.Clamp(goal, u.Bounds), 0.011);
        }

        if (!changed)
        {
            if (reached && zone.ReachedMs == 0)
            {
                zone.ReachedMs = nowMs;
            }

            return;
        }

        zone.LastWriteMs = nowMs;
        var previous = zone.Commanded!;
        try
        {
            for (var j = 0; j < zone.Units.Length; j++)
            {
                if (zone.Units[j] is not { } u || next[j].Near(previous[j]))
                {
                    continue;
                }

                if (u.Supply is { } s && !double.IsNaN(next[j].SupplyC) && Math.Abs(next[j].SupplyC - previous[j].SupplyC) > 1e-6)
                {
                    await s.WriteAsync(next[j].SupplyC, ct).ConfigureAwait(false);
                    zone.Commanded![j] = zone.Commanded[j] with { SupplyC = next[j].SupplyC };
                }

                if (u.Fan is { } f && !double.IsNaN(next[j].FanPercent) && Math.Abs(next[j].FanPercent - previous[j].FanPercent) > 1e-6)
                {
                    await f.WriteAsync(next[j].FanPercent, ct).ConfigureAwait(false);
                    zone.Commanded![j] = zone.Commanded[j] with { FanPercent = next[j].FanPercent };
                }
            }
        }
        catch (SetpointWriteException ex)
        {
            LogReadFailed(_logger, zone.Zone.Id, ex.Message);
            zone.Moved = true;
            await RollbackAsync(zone, "write_failed", hottest, inlet, nowMs, ct, ex.Message).ConfigureAwait(false);
            return;
        }

        zone.Moved = true; // written since the known-good set points: the rollback triggers are armed
        if (reached)
        {
            zone.ReachedMs = nowMs;
        }

        var units = string.Join(", ", zone.Units.OfType<UnitControl>().Select(u => Describe(u.Id, zone.Commanded![u.Index])));
        await _events.PublishAsync(
            new EdgeEvent(
                EdgeEventKind.Recommendation,
                zone.Zone.Id + "/setpoint_write",
                DateTimeOffset.FromUnixTimeMilliseconds(nowMs),
                EventSeverity.Info,
                $"cooling set points of {zone.Zone.Id} stepped toward the optimiser's target: {units}",
                new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["type"] = "setpoint_write",
                    ["model"] = ThermalTwinStage.ModelName,
                    ["model_version"] = ThermalTwinStage.ModelVersion,
                    ["zone"] = zone.Zone.Id,
                    ["units"] = JsonSerializer.Serialize(zone.Units.OfType<UnitControl>().Select(u => Restored(u, zone.Commanded![u.Index], true)), Json),
                    ["target_reached"] = reached ? "true" : "false",
                }),
            ct).ConfigureAwait(false);
    }

    /// <summary>The set points as read (the known-good ones) and where stepping starts from (a fan in auto: its measured speed).</summary>
    private static async Task<(UnitSetpoints Good, UnitSetpoints Present)> ReadPresentAsync(UnitControl u, ZoneFrame frame, CancellationToken ct)
    {
        var supply = u.Supply is { } s ? await s.ReadAsync(ct).ConfigureAwait(false) : double.NaN;
        double fan = double.NaN, fanFrom = double.NaN;
        if (u.Fan is { } f)
        {
            fan = fanFrom = await f.ReadAsync(ct).ConfigureAwait(false);
            if (fan <= 0)
            {
                // 0 hands the fans to the unit's own control (restored as 0 by a rollback); steps start from the speed they run at now.
                var measured = frame.UnitFanSpeed[u.Index];
                fanFrom = double.IsNaN(measured) ? double.NaN : Math.Round(measured * 100, 1);
            }
        }

        return (new UnitSetpoints(supply, fan), new UnitSetpoints(supply, fanFrom));
    }

    private async Task RollbackAsync(ZoneControl zone, string reason, string rack, double inlet, long nowMs, CancellationToken ct, string? detail = null)
    {
        var good = zone.KnownGood!;
        var hold = _config.Setpoints.RollbackHold;
        _metrics.Rollbacks.Add(1, new KeyValuePair<string, object?>("reason", reason));

        // Every unit at once: a slow or failed unit must not delay the others.
        var results = await Task.WhenAll(zone.Units.OfType<UnitControl>().Select(async u =>
        {
            var ok = true;
            foreach (var (channel, value) in new[] { (u.Supply, good[u.Index].SupplyC), (u.Fan, good[u.Index].FanPercent) })
            {
                if (channel is null || double.IsNaN(value))
                {
                    continue;
                }

                try
                {
                    await channel.WriteAsync(value, ct).ConfigureAwait(false);
                }
                catch (SetpointWriteException ex)
                {
                    ok = false;
                    LogRestoreFailed(_logger, u.Id, ex.Message);
                }
            }

            return Restored(u, good[u.Index], ok);
        })).ConfigureAwait(false);

        zone.Commanded = [.. good];
        zone.Moved = results.Any(r => !r.Restored);
        zone.Target = null;
        zone.ReachedMs = 0;
        zone.PausedUntilMs = nowMs + (long)hold.TotalMilliseconds;
        var limit = _config.RollbackInletC;
        LogRolledBack(_logger, zone.Zone.Id, reason, rack, inlet, limit);
        var restored = string.Join(", ", results.Select(r => r.Unit + (r.Restored ? "" : " (failed)")));
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["type"] = "setpoint_rollback",
            ["model"] = ThermalTwinStage.ModelName,
            ["model_version"] = ThermalTwinStage.ModelVersion,
            ["zone"] = zone.Zone.Id,
            ["reason"] = reason,
            ["rack"] = rack,
            ["inlet_c"] = Num(Math.Round(inlet, 2)),
            ["limit_c"] = Num(limit),
            ["units_restored"] = JsonSerializer.Serialize(results, Json),
            ["hold_s"] = Num(hold.TotalSeconds),
            ["paused_until"] = WireTime.Instant(zone.PausedUntilMs),
        };
        if (detail is not null)
        {
            attributes["detail"] = detail;
        }

        await _events.PublishAsync(
            new EdgeEvent(
                EdgeEventKind.Anomaly,
                zone.Zone.Id + "/setpoint_rollback",
                DateTimeOffset.FromUnixTimeMilliseconds(nowMs),
                EventSeverity.Critical,
                Inv($"setpoint_rollback in {zone.Zone.Id} ({reason}): {rack} inlet {inlet:0.0} °C, limit {limit:0.0} °C; restored {restored}; writing paused for {hold.TotalMinutes:0.#} min")
                    + (detail is null ? "" : "; " + detail),
                attributes),
            ct).ConfigureAwait(false);
    }

    private async Task PublishRecommendationAsync(ZoneControl zone, CoolingRecommendation rec, bool applied, long nowMs, CancellationToken ct)
    {
        _metrics.Recommendations.Add(1);
        var units = string.Join(", ", rec.Units.Select(u => Inv($"{u.Unit} supply {u.SupplySetpointNowC:0.0}→{u.SupplySetpointC:0.0} °C fan {u.FanSpeedNow * 100:0}→{u.FanSpeed * 100:0} %")));
        await _events.PublishAsync(
            new EdgeEvent(
                EdgeEventKind.Recommendation,
                zone.Zone.Id + "/cooling_recommendation",
                DateTimeOffset.FromUnixTimeMilliseconds(nowMs),
                EventSeverity.Info,
                Inv($"cooling recommendation for {zone.Zone.Id} ({(applied ? "applied stepwise" : "advisory")}): {units}; predicted saving {rec.SavingKw:0.00} kW ({rec.SavingPercent:0.0} %), hottest inlet {rec.PredictedMaxInletC:0.0} °C"),
                new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["type"] = "cooling_recommendation",
                    ["model"] = ThermalTwinStage.ModelName,
                    ["model_version"] = ThermalTwinStage.ModelVersion,
                    ["zone"] = zone.Zone.Id,
                    ["advisory"] = applied ? "false" : "true",
                    ["units"] = JsonSerializer.Serialize(rec.Units, Json),
                    ["saving_kw"] = Num(rec.SavingKw),
                    ["saving_percent"] = Num(rec.SavingPercent),
                    ["cooling_power_now_kw"] = Num(rec.CoolingPowerNowKw),
                    ["cooling_power_kw"] = Num(rec.CoolingPowerKw),
                    ["predicted_max_inlet_c"] = Num(rec.PredictedMaxInletC),
                    ["hottest_rack"] = rec.HottestRack,
                    ["inlet_limit_c"] = Num(rec.InletLimitC),
                    ["margin_k"] = Num(rec.MarginK),
                }),
            ct).ConfigureAwait(false);
    }

    /// <summary>Opens a channel per writable set point of every cooling unit (only when writing is enabled).</summary>
    private void OpenChannels()
    {
        var config = _runtime.Config;
        var sp = _config.Setpoints;
        foreach (var zone in _zones)
        {
            for (var j = 0; j < zone.Zone.Units.Count; j++)
            {
                var id = zone.Zone.Units[j].Id;
                var devices = config.Devices.Where(d => d.Enabled && config.CoolingUnitOf(d) == id).ToList();
                SetpointChannel? supply = null, fan = null;
                foreach (var device in devices)
                {
                    if (!config.Profiles.TryGetValue(device.Profile, out var profile))
                    {
                        continue;
                    }

                    foreach (var (metric, table) in profile.Metrics.Select(m => (m, (ProfileTable?)null)).Concat(profile.Tables.SelectMany(t => t.Columns.Select(c => (c, (ProfileTable?)t)))))
                    {
                        if (!metric.Writable || KindOf(metric.Role) is not { } kind || (kind == SetpointKind.Supply ? supply : fan) is not null)
                        {
                            continue;
                        }

                        try
                        {
                            var channel = Open(id, device, profile, metric, table, kind, config, sp);
                            if (kind == SetpointKind.Supply)
                            {
                                supply = channel;
                            }
                            else
                            {
                                fan = channel;
                            }
                        }
                        catch (SetpointWriteException ex)
                        {
                            LogNoChannel(_logger, id, ex.Message);
                        }
                    }
                }

                if (supply is not null || fan is not null)
                {
                    zone.Units[j] = new UnitControl(id, j, supply, fan, sp.BoundsOf(id));
                    LogChannels(_logger, id, supply?.Metric.Name ?? "-", fan?.Metric.Name ?? "-");
                }
                else
                {
                    LogNoWritable(_logger, id);
                }
            }
        }
    }

    private SetpointChannel Open(string unit, DeviceConfig device, DeviceProfile profile, ProfileMetric metric, ProfileTable? table, SetpointKind kind, SiteConfig config, SetpointControlOptions sp)
    {
        var timeout = sp.WriteTimeout;
        if (profile.Protocol == DeviceProtocol.Modbus)
        {
            var settings = profile.Modbus ?? ModbusProfileSettings.Default;
            if (device.Address.Scheme is AddressScheme.Rtu or AddressScheme.RtuTcp)
            {
                var buses = _modbusBuses ?? throw new SetpointWriteException($"cooling unit {unit}: device {device.Id} is on a serial line and this agent has no Modbus bus registry to share it");
                return new ModbusSetpointChannel(unit, device, metric, settings, kind, timeout, _metrics, _loggers, buses.Acquire(device, _loggers, _runtime.TimeProvider, timeout));
            }

            return new ModbusSetpointChannel(unit, device, metric, settings, kind, timeout, _metrics, _loggers, _runtime.TimeProvider);
        }

        if (profile.Protocol != DeviceProtocol.Snmp)
        {
            throw new SetpointWriteException($"cooling unit {unit}: device {device.Id} speaks {profile.Protocol}, set points are written over SNMP or Modbus");
        }

        var name = sp.WriteCredentials ?? device.Credentials;
        if (name is null || !config.Credentials.TryGetValue(name, out var credentials))
        {
            throw new SetpointWriteException($"cooling unit {unit}: device {device.Id} has no credentials '{name}' to write with");
        }

        SnmpTargetTemplate template;
        try
        {
            template = SnmpSourceFactory.Target(device with { Timeout = timeout }, credentials);
        }
        catch (EdgeTwin.Core.Sources.SourceCreationException ex)
        {
            throw new SetpointWriteException($"cooling unit {unit}: {ex.Message}", ex);
        }

        _snmp ??= new SnmpClient(_loggers.CreateLogger<SnmpClient>());
        return new SnmpSetpointChannel(unit, device, metric, table, kind, template, _snmp, timeout, _metrics, _loggers.CreateLogger<SetpointChannel>());
    }

    /// <summary>Which set point a writable role is: the supply air set point or the fan speed set point.</summary>
    internal static SetpointKind? KindOf(string role)
    {
        var quantity = role[(role.IndexOf('.', StringComparison.Ordinal) + 1)..];
        return quantity switch
        {
            "supply_setpoint" or "supply_temperature_setpoint" or "temperature_setpoint" or "setpoint" => SetpointKind.Supply,
            "fan_speed_setpoint" or "fan_setpoint" => SetpointKind.Fan,
            _ => null,
        };
    }

    private static (string Rack, double Inlet) Hottest(ThermalZone zone, ZoneFrame frame)
    {
        var rack = zone.Racks.Count > 0 ? zone.Racks[0].Id : "";
        var max = double.NegativeInfinity;
        for (var i = 0; i < zone.Racks.Count; i++)
        {
            if (frame.RackInletC[i] > max)
            {
                max = frame.RackInletC[i];
                rack = zone.Racks[i].Id;
            }
        }

        return (rack, max);
    }

    private static RestoredSetpoints Restored(UnitControl u, UnitSetpoints s, bool ok) =>
        new(u.Id, double.IsNaN(s.SupplyC) ? null : s.SupplyC, double.IsNaN(s.FanPercent) ? null : s.FanPercent, ok);

    private static string Describe(string unit, UnitSetpoints s) =>
        unit + (double.IsNaN(s.SupplyC) ? "" : Inv($" supply {s.SupplyC:0.0#} °C")) + (double.IsNaN(s.FanPercent) ? "" : Inv($" fan {s.FanPercent:0.#} %"));

    // Attribute numbers are the wire's (WireNumber: 12 significant digits); "R" sent fit errors as 0.514320195239356.
    private static string Num(double v) => WireNumber.Format(v);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set-point control: the wall clock stepped {Direction} by {Step}; the optimisation and write schedule, the settle time and any rollback pause moved with it")]
    private static partial void LogClockStepped(ILogger logger, string direction, string step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set points of {Zone} rolled back ({Reason}): {Rack} inlet {Inlet:0.0} °C, limit {Limit:0.0} °C")]
    private static partial void LogRolledBack(ILogger logger, string zone, string reason, string rack, double inlet, double limit);

    [LoggerMessage(Level = LogLevel.Error, Message = "Rollback of cooling unit {Unit} failed: {Reason}")]
    private static partial void LogRestoreFailed(ILogger logger, string unit, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set-point control of {Zone}: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string zone, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Set points of {Zone} settled at the target: now the known-good ones")]
    private static partial void LogSettled(ILogger logger, string zone);

    [LoggerMessage(Level = LogLevel.Information, Message = "Set-point control of cooling unit {Unit}: supply {Supply}, fan {Fan}")]
    private static partial void LogChannels(ILogger logger, string unit, string supply, string fan);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set-point control of cooling unit {Unit}: {Reason}")]
    private static partial void LogNoChannel(ILogger logger, string unit, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Set-point control is enabled but cooling unit {Unit} has no device with a writable set point (profile metric with writable: true and role crac.supply_setpoint / crac.temperature_setpoint / crac.fan_speed_setpoint)")]
    private static partial void LogNoWritable(ILogger logger, string unit);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cooling optimisation / set-point control of {Zone} failed")]
    private static partial void LogTickFailed(ILogger logger, string zone, Exception exception);

    internal sealed class ZoneControl(int index, ThermalZone zone)
    {
        public int Index { get; } = index;

        public ThermalZone Zone { get; } = zone;

        /// <summary>Per zone unit: its writable channels, null when it has none (or writing is disabled).</summary>
        public UnitControl?[] Units { get; } = new UnitControl?[zone.Units.Count];

        public CoolingRecommendation? Latest;

        public CoolingRecommendation? Target { get; set; }

        public UnitSetpoints[]? KnownGood { get; set; }

        public UnitSetpoints[]? Commanded { get; set; }

        /// <summary>True while any unit runs off its known-good set points (rollback triggers armed).</summary>
        public bool Moved { get; set; }

        public long LastOptimiseMs { get; set; } = long.MinValue / 2;

        public long LastWriteMs { get; set; } = long.MinValue / 2;

        public long PausedUntilMs { get; set; }

        /// <summary>When the commanded set points reached the target (0: not yet).</summary>
        public long ReachedMs { get; set; }

        /// <summary>Moves the wall-clock times above by a clock step (0 = "not yet" stays 0).</summary>
        public void Shift(long stepMs)
        {
            LastOptimiseMs += stepMs;
            LastWriteMs += stepMs;
            PausedUntilMs = PausedUntilMs == 0 ? 0 : PausedUntilMs + stepMs;
            ReachedMs = ReachedMs == 0 ? 0 : ReachedMs + stepMs;
        }
    }

    internal sealed record UnitControl(string Id, int Index, SetpointChannel? Supply, SetpointChannel? Fan, SetpointBounds Bounds)
    {
        public IEnumerable<SetpointChannel> Channels() => new[] { Supply, Fan }.OfType<SetpointChannel>();
    }
}
