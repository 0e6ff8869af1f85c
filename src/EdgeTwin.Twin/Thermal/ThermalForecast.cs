namespace EdgeTwin.Twin.Thermal;

/// <summary>What a forecast changes from the present state (a what-if; nothing touches real devices).</summary>
public sealed class ForecastActions
{
    public ForecastActions(ZoneThermalModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var units = model.Zone.Units.Count;
        var racks = model.Zone.Racks.Count;
        UnitFailed = new bool[units];
        FanSpeed = new double[units];
        SetpointC = new double[units];
        RackPowerScale = new double[racks];
        RackExtraKw = new double[racks];
        RackBiasK = new double[racks];
        Array.Fill(RackBiasK, double.NaN);
        Array.Fill(FanSpeed, double.NaN);
        Array.Fill(SetpointC, double.NaN);
        Array.Fill(RackPowerScale, 1);
    }

    /// <summary>Units that stop (no airflow, no cooling) at <see cref="FailAfter"/> (at once by default).</summary>
    public bool[] UnitFailed { get; }

    /// <summary>
    /// When the units of <see cref="UnitFailed"/> stop, from now: a planned stop later in the day rather than a failure
    /// now. Until then every unit runs as it does now under its own control and the load follows its profile; the
    /// forecast's crossings, peaks and <see cref="Horizon"/> count from that moment.
    /// </summary>
    public TimeSpan FailAfter { get; set; }

    /// <summary>How long the failed units stay stopped (null: through the horizon); they then run again under their own control.</summary>
    public TimeSpan? Outage { get; set; }

    /// <summary>Fan speed forced on a unit (NaN: the unit's own control, see <see cref="RemainingFansToFull"/>).</summary>
    public double[] FanSpeed { get; }

    /// <summary>Supply set point forced on a unit (NaN: as observed).</summary>
    public double[] SetpointC { get; }

    /// <summary>
    /// Running units follow their identified fan control (PI on the warmest served inlet); a unit whose control could not
    /// be identified goes to full speed when any unit fails (what its control would do). False: fans stay as they are.
    /// </summary>
    public bool UseFanControl { get; set; } = true;

    /// <summary>Factor on each rack's present power (load capped or shed &lt; 1, load migrated in &gt; 1).</summary>
    public double[] RackPowerScale { get; }

    /// <summary>Power added to a rack (a new rack, load moved in), kW.</summary>
    public double[] RackExtraKw { get; }

    /// <summary>
    /// Residual (measured − modelled inlet) each rack keeps as a bias through the forecast; NaN: taken from the present
    /// frame. The live twin freezes the biases of the last frame before a failure, because during the transient the
    /// measured inlets lag the model's quasi-static targets and their difference is not the rack's steady offset.
    /// </summary>
    public double[] RackBiasK { get; }

    /// <summary>Extra conductance to a neighbouring space (doors or containment opened), kW/K.</summary>
    public double ExtraUaKwPerK { get; set; }

    /// <summary>
    /// When the forced actions (<see cref="FanSpeed"/>, <see cref="SetpointC"/>, <see cref="RackPowerScale"/>,
    /// <see cref="RackExtraKw"/>, <see cref="ExtraUaKwPerK"/>) take effect, from now (zero: at once). Until then the room
    /// runs as it does now: a measure prepared for a planned stop is taken at the stop, and the hours before it must
    /// not pre-cool the room under it.
    /// </summary>
    public TimeSpan ActionsFrom { get; set; }

    /// <summary>How far the forecast looks, from the moment the units stop (<see cref="FailAfter"/>).</summary>
    public TimeSpan Horizon { get; set; } = TimeSpan.FromHours(2);

    /// <summary>
    /// Racks' load follows the calibrated daily profile through the horizon, with the present deviation from it fading
    /// at the load's own correlation time (see <see cref="ZoneThermalModel.HasLoadProfile"/>); false: the present load is held.
    /// </summary>
    public bool FollowLoadProfile { get; set; }

    /// <summary>
    /// Shift of the forecast by this many standard deviations of its uncertainty, derived from the calibration: the
    /// zone load's deviation from its profile (growing with lead time as an AR(1) forecast error) and the room fit's
    /// RMS error as a heat error (RMSE × the room's present conductance). 0: the expected forecast.
    /// </summary>
    public double UncertaintySigmas { get; set; }

    /// <summary>
    /// Servers at the shutdown inlet trip (true, a failure forecast). False for a steady-state what-if (a rack added, a
    /// load changed): every server keeps running, so the inlet answers "what would this rack see" — with trips a rack
    /// too hot to run shed its own load and read cooler the more kW it was given. Server fans then stop ramping at the
    /// shutdown inlet (they are at full speed there).
    /// </summary>
    public bool ServersTrip { get; set; } = true;
}

/// <summary>Per rack, when its inlet crosses the three limits (null: not within the horizon).</summary>
public sealed class RackForecast
{
    public required string Rack { get; init; }

    public double InletNowC { get; init; }

    public double? SecondsTo27 { get; set; }

    public double? SecondsTo32 { get; set; }

    public double? SecondsToShutdown { get; set; }

    public double PeakInletC { get; set; }

    /// <summary>Inlet at the end of the horizon (the steady state when the horizon is long).</summary>
    public double FinalInletC { get; set; }
}

public sealed class ZoneForecast
{
    public required IReadOnlyList<RackForecast> Racks { get; init; }

    public double FinalRoomC { get; init; }

    public double HorizonSeconds { get; init; }

    /// <summary>Earliest time any rack reaches the thermal shutdown inlet (null: none within the horizon).</summary>
    public double? FirstShutdownSeconds => Racks.Min(r => r.SecondsToShutdown);

    public double? First32Seconds => Racks.Min(r => r.SecondsTo32);

    public double? First27Seconds => Racks.Min(r => r.SecondsTo27);
}

/// <summary>
/// Integrates the calibrated zone model forward from the present frame under <see cref="ForecastActions"/>. Each rack
/// keeps its present residual (measured − modelled inlet) as a bias, so a rack that runs warmer than the model
/// explains stays warmer in the forecast. Servers of a rack at the shutdown inlet trip one at a time while the inlet is still being pushed up (the rack sheds load
/// until its inlet holds), rather than the whole rack going dark at once.
/// </summary>
public static class ThermalForecast
{
    private const double StepSeconds = 2;
    private const double CoarseStepSeconds = 10;
    private const double FineSeconds = 900;

    public static ZoneForecast Run(ZoneThermalModel model, ZoneFrame now, ForecastActions actions)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(now);
        ArgumentNullException.ThrowIfNull(actions);
        var zone = model.Zone;
        var units = zone.Units.Count;
        var racks = zone.Racks.Count;
        var s = model.Settings;
        var room = now.RoomC();
        var fan0 = new double[units];
        var supply0 = new double[units];
        var flow0 = new double[units];
        for (var j = 0; j < units; j++)
        {
            fan0[j] = ZoneThermalModel.FanOf(now, j);
            supply0[j] = double.IsNaN(now.UnitSupplyC[j]) ? model.UnitSetpointC[j] : now.UnitSupplyC[j];
            flow0[j] = now.UnitRunning[j] ? model.UnitConductanceKwPerK[j] * fan0[j] : 0;
        }

        // Forced actions wait for ActionsFrom; until then the room runs as now.
        var actionsAt = Math.Max(0, actions.ActionsFrom.TotalSeconds);
        var acting = actionsAt == 0;
        var present = new double[racks];
        var power = new double[racks];
        var inlet = new double[racks];
        var bias = new double[racks];
        var forecasts = new RackForecast[racks];
        if (double.IsNaN(room))
        {
            room = now.RackInletC.Where(v => !double.IsNaN(v)).DefaultIfEmpty(25).Max() + 5;
        }

        for (var i = 0; i < racks; i++)
        {
            var p = model.RackKw(now, i);
            var modelled = model.InletTarget(i, room, flow0, supply0, p);
            var measured = now.RackInletC[i];
            // The bias is bounded: a residual much larger than the fit's spread is a fault the forecast should not extrapolate.
            bias[i] = !double.IsNaN(actions.RackBiasK[i]) ? actions.RackBiasK[i] : double.IsNaN(measured) ? 0 : Math.Clamp(measured - modelled, -3, 3);
            inlet[i] = double.IsNaN(measured) ? modelled : measured;
            present[i] = p;
            power[i] = acting ? (p * actions.RackPowerScale[i]) + actions.RackExtraKw[i] : p;
            forecasts[i] = new RackForecast { Rack = zone.Racks[i].Id, InletNowC = inlet[i], PeakInletC = inlet[i] };
            Mark(forecasts[i], inlet[i], 0, s);
        }

        // The load through the horizon: the daily profile plus the present deviation fading (AR(1)), when calibrated.
        var profile = actions.FollowLoadProfile && model.HasLoadProfile;
        var tau = Math.Max(1, model.LoadNoiseTauSeconds);
        var deviation = new double[racks];
        var profiled = new bool[racks];
        for (var i = 0; i < racks; i++)
        {
            var fit = profile && model.RackLoadMeanKw[i] > 0 ? model.ProfileKw(i, now.TimeSeconds) : double.NaN;
            profiled[i] = !double.IsNaN(fit) && !double.IsNaN(now.RackPowerKw[i]);
            deviation[i] = profiled[i] ? now.RackPowerKw[i] - fit : 0;
        }

        var z = Math.Max(0, actions.UncertaintySigmas);
        var heatBandKw = 0.0;
        if (z > 0 && !double.IsNaN(model.RoomFitRmseK))
        {
            var conductance = model.EnvelopeUaKwPerK;
            for (var j = 0; j < units; j++)
            {
                conductance += flow0[j];
            }

            heatBandKw = z * model.RoomFitRmseK * conductance;
        }

        var loadSigmaKw = z * (profile ? model.LoadNoiseSigmaKw : 0);
        var basePower = new double[racks];

        var anyFailed = actions.UnitFailed.Any(f => f);
        // A planned stop later on: every unit runs until then, and the crossings count from that moment.
        var origin = Math.Max(0, actions.FailAfter.TotalSeconds);
        var restoreAt = actions.Outage is { } outage ? origin + Math.Max(0, outage.TotalSeconds) : double.PositiveInfinity;
        var stopped = origin == 0;
        var restored = false;
        var running = new bool[units];
        var forced = new bool[units];
        var controlled = new bool[units];
        var warmestBefore = new double[units];
        var fan = new double[units];
        var setpoint = new double[units];
        for (var j = 0; j < units; j++)
        {
            running[j] = now.UnitRunning[j] && !(stopped && actions.UnitFailed[j]);
            forced[j] = acting && !double.IsNaN(actions.FanSpeed[j]);
            // A unit stopped in the forecast keeps its control for when it runs again (after an outage).
            controlled[j] = now.UnitRunning[j] && !forced[j] && actions.UseFanControl && !double.IsNaN(model.UnitTargetC[j]);
            fan[j] = !running[j] ? 0
                : forced[j] ? Math.Clamp(actions.FanSpeed[j], 0, 1)
                : controlled[j] ? fan0[j]
                : stopped && anyFailed && actions.UseFanControl ? 1
                : fan0[j];
            setpoint[j] = acting && !double.IsNaN(actions.SetpointC[j]) ? actions.SetpointC[j] : model.UnitSetpointC[j];
        }

        var flow = new double[units];
        var supply = new double[units];
        // Share of each rack's servers still running: servers protect themselves one by one, so a rack at the
        // shutdown inlet sheds servers only while its inlet is still being pushed up (see Thermal/README.md).
        var on = new double[racks];
        var shedStep = new double[racks];
        Array.Fill(on, 1);
        for (var i = 0; i < racks; i++)
        {
            shedStep[i] = 1.0 / Math.Max(1, zone.Racks[i].Servers);
        }

        // Without trips the server fans saturate at the shutdown inlet; with them the trips bound the inlet instead.
        var overCap = actions.ServersTrip ? double.PositiveInfinity : Math.Max(0, s.ShutdownInletC - s.RecommendedInletC);
        var horizon = actions.Horizon.TotalSeconds;
        var end = origin + horizon;
        var alphaFine = 1 - Math.Exp(-StepSeconds / model.InletLagSeconds);
        var alphaCoarse = 1 - Math.Exp(-CoarseStepSeconds / model.InletLagSeconds);
        for (var j = 0; j < units; j++)
        {
            warmestBefore[j] = Warmest(model.UnitServed[j], inlet);
        }

        var t = 0.0;
        while (t < end)
        {
            if (!acting && t >= actionsAt)
            {
                acting = true;
                TakeActions(actions, profile, present, power, running, forced, controlled, fan, setpoint);
            }

            if (!stopped && t >= origin)
            {
                stopped = true;
                StopOrRestart(actions, stop: true, now, model, inlet, running, controlled, forced, fan, fan0, warmestBefore);
                for (var i = 0; i < racks; i++)
                {
                    forecasts[i] = new RackForecast { Rack = zone.Racks[i].Id, InletNowC = inlet[i], PeakInletC = inlet[i] };
                    Mark(forecasts[i], inlet[i], 0, s);
                }
            }
            else if (stopped && !restored && t >= restoreAt)
            {
                restored = true;
                StopOrRestart(actions, stop: false, now, model, inlet, running, controlled, forced, fan, fan0, warmestBefore);
            }

            // Fine steps through the first minutes from now and from the stop, where the inlets move fastest; a step
            // ends on the stop and the restart so that they happen where asked.
            var fine = t < FineSeconds || (stopped && t - origin < FineSeconds) || (restored && t - restoreAt < FineSeconds) || (acting && actionsAt > 0 && t - actionsAt < FineSeconds);
            var dt = fine ? StepSeconds : CoarseStepSeconds;
            var alpha = fine ? alphaFine : alphaCoarse;
            var next = Math.Min(t + dt, Math.Min(!acting ? actionsAt : double.PositiveInfinity, !stopped ? origin : !restored ? restoreAt : double.PositiveInfinity));
            if (next - t < dt)
            {
                dt = next - t;
                alpha = 1 - Math.Exp(-dt / model.InletLagSeconds);
            }

            for (var j = 0; j < units; j++)
            {
                supply[j] = running[j] ? model.SupplyAt(j, room, fan[j], setpoint[j]) : room;
                flow[j] = running[j] ? model.UnitConductanceKwPerK[j] * fan[j] : 0;
            }

            if (profile || loadSigmaKw > 0)
            {
                UpdateLoad(model, now.TimeSeconds + t, t, tau, loadSigmaKw, profiled, deviation, present, acting ? actions : null, basePower, power);
            }

            var it = heatBandKw;
            for (var i = 0; i < racks; i++)
            {
                it += on[i] * power[i] * (1 + (s.ServerFanPowerPerK * Math.Min(Math.Max(0, inlet[i] - s.RecommendedInletC), overCap)));
            }

            var dRoom = model.RoomDerivative(room, it, fan, running, supply, acting ? actions.ExtraUaKwPerK : 0);
            for (var i = 0; i < racks; i++)
            {
                // Above the recommended limit server fans speed up: more heat, and more air demanded of the aisle.
                var over = Math.Min(Math.Max(0, inlet[i] - s.RecommendedInletC), overCap);
                var demand = on[i] * power[i] * (1 + (s.ServerAirflowPerK * over));
                var target = (on[i] > 1e-9 ? model.InletTarget(i, room, flow, supply, demand) : room) + bias[i];
                var previous = inlet[i];
                inlet[i] += (target - inlet[i]) * alpha;
                if (stopped)
                {
                    var f = forecasts[i];
                    f.PeakInletC = Math.Max(f.PeakInletC, inlet[i]);
                    Cross(f, previous, inlet[i], t - origin, dt, s);
                }

                if (actions.ServersTrip && on[i] > 1e-9 && inlet[i] >= s.ShutdownInletC && (dRoom > 0 || target > inlet[i] + 1e-6))
                {
                    // One more server trips while the inlet is still being pushed up (the room warming with the present
                    // load, or the inlet lagging below its target); the rest keep running and heating.
                    on[i] = Math.Max(0, on[i] - shedStep[i]);
                }
            }

            room += dRoom * dt;
            for (var j = 0; j < units; j++)
            {
                if (controlled[j] && running[j])
                {
                    var w = Warmest(model.UnitServed[j], inlet);
                    fan[j] = Math.Clamp(fan[j] + (model.UnitKp[j] * (w - warmestBefore[j])) + (model.UnitKi[j] * (w - model.UnitTargetC[j]) * dt), model.UnitMinFan[j], 1);
                    warmestBefore[j] = w;
                }
            }

            t = next;
        }

        for (var i = 0; i < racks; i++)
        {
            forecasts[i].FinalInletC = inlet[i];
        }

        return new ZoneForecast { Racks = forecasts, FinalRoomC = room, HorizonSeconds = horizon };
    }

    /// <summary>
    /// The failed units stop (or run again after <see cref="ForecastActions.Outage"/>); the running units without an
    /// identified control go to full speed while any is stopped, as their control would, and back after.
    /// </summary>
    private static void StopOrRestart(ForecastActions actions, bool stop, ZoneFrame now, ZoneThermalModel model, double[] inlet, bool[] running, bool[] controlled, bool[] forced, double[] fan, double[] fan0, double[] warmestBefore)
    {
        for (var j = 0; j < running.Length; j++)
        {
            if (actions.UnitFailed[j])
            {
                running[j] = !stop && now.UnitRunning[j];
                fan[j] = running[j] ? forced[j] ? Math.Clamp(actions.FanSpeed[j], 0, 1) : fan0[j] : 0;
                // A unit starting again must not read the inlets' rise while it was stopped as a step of its error.
                warmestBefore[j] = Warmest(model.UnitServed[j], inlet);
            }
            else if (running[j] && !forced[j] && !controlled[j] && actions.UseFanControl)
            {
                fan[j] = stop ? 1 : fan0[j];
            }
        }
    }

    /// <summary>
    /// The forced actions take effect (<see cref="ForecastActions.ActionsFrom"/>): forced fans leave their control, set
    /// points move, and the held load (without a profile; <see cref="UpdateLoad"/> scales a profiled one) is scaled.
    /// </summary>
    private static void TakeActions(ForecastActions actions, bool profile, double[] present, double[] power, bool[] running, bool[] forced, bool[] controlled, double[] fan, double[] setpoint)
    {
        for (var j = 0; j < forced.Length; j++)
        {
            if (!double.IsNaN(actions.FanSpeed[j]))
            {
                forced[j] = true;
                controlled[j] = false;
                fan[j] = running[j] ? Math.Clamp(actions.FanSpeed[j], 0, 1) : 0;
            }

            if (!double.IsNaN(actions.SetpointC[j]))
            {
                setpoint[j] = actions.SetpointC[j];
            }
        }

        if (!profile)
        {
            for (var i = 0; i < power.Length; i++)
            {
                power[i] = (present[i] * actions.RackPowerScale[i]) + actions.RackExtraKw[i];
            }
        }
    }

    /// <param name="present">Each rack's present power (<see cref="ZoneThermalModel.RackKw"/>).</param>
    /// <param name="actions">The forced actions in effect (null: not yet, the load unscaled).</param>
    private static void UpdateLoad(ZoneThermalModel model, double time, double lead, double tau, double loadSigmaKw, bool[] profiled, double[] deviation, double[] present, ForecastActions? actions, double[] basePower, double[] power)
    {
        var fade = Math.Exp(-lead / tau);
        var phase = 2 * Math.PI * (time % 86400) / 86400;
        var (sin, cos) = Math.SinCos(phase);
        var total = 0.0;
        for (var i = 0; i < basePower.Length; i++)
        {
            var p = present[i];
            if (profiled[i])
            {
                p = Math.Max(0, model.RackLoadMeanKw[i] + (model.RackLoadCosKw[i] * cos) + (model.RackLoadSinKw[i] * sin) + (deviation[i] * fade));
            }

            basePower[i] = p;
            total += p;
        }

        // The upper band: the zone total's AR(1) forecast error at this lead, shared over the racks by their load.
        var factor = total > 1e-9 && loadSigmaKw > 0 ? 1 + (loadSigmaKw * Math.Sqrt(1 - (fade * fade)) / total) : 1;
        for (var i = 0; i < basePower.Length; i++)
        {
            power[i] = actions is null ? basePower[i] * factor : (basePower[i] * factor * actions.RackPowerScale[i]) + actions.RackExtraKw[i];
        }
    }

    /// <summary>Each rack's present residual (measured − modelled inlet, bounded to ±3 K; 0 without a reading), as a forecast would take it.</summary>
    public static double[] Biases(ZoneThermalModel model, ZoneFrame now)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(now);
        var zone = model.Zone;
        var units = zone.Units.Count;
        var flow = new double[units];
        var supply = new double[units];
        for (var j = 0; j < units; j++)
        {
            flow[j] = now.UnitRunning[j] ? model.UnitConductanceKwPerK[j] * ZoneThermalModel.FanOf(now, j) : 0;
            supply[j] = double.IsNaN(now.UnitSupplyC[j]) ? model.UnitSetpointC[j] : now.UnitSupplyC[j];
        }

        var room = now.RoomC();
        var bias = new double[zone.Racks.Count];
        for (var i = 0; i < bias.Length; i++)
        {
            var measured = now.RackInletC[i];
            bias[i] = double.IsNaN(measured) || double.IsNaN(room) ? 0 : Math.Clamp(measured - model.InletTarget(i, room, flow, supply, model.RackKw(now, i)), -3, 3);
        }

        return bias;
    }

    private static double Warmest(int[] served, double[] inlet)
    {
        var w = double.NegativeInfinity;
        foreach (var i in served)
        {
            w = Math.Max(w, inlet[i]);
        }

        return w;
    }

    private static void Mark(RackForecast f, double inlet, double t, ThermalSettings s)
    {
        if (inlet >= s.RecommendedInletC)
        {
            f.SecondsTo27 ??= t;
        }

        if (inlet >= s.AllowableInletC)
        {
            f.SecondsTo32 ??= t;
        }

        if (inlet >= s.ShutdownInletC)
        {
            f.SecondsToShutdown ??= t;
        }
    }

    private static void Cross(RackForecast f, double before, double after, double t, double dt, ThermalSettings s)
    {
        if (f.SecondsTo27 is null && after >= s.RecommendedInletC)
        {
            f.SecondsTo27 = Interpolate(before, after, s.RecommendedInletC, t, dt);
        }

        if (f.SecondsTo32 is null && after >= s.AllowableInletC)
        {
            f.SecondsTo32 = Interpolate(before, after, s.AllowableInletC, t, dt);
        }

        if (f.SecondsToShutdown is null && after >= s.ShutdownInletC)
        {
            f.SecondsToShutdown = Interpolate(before, after, s.ShutdownInletC, t, dt);
        }
    }

    private static double Interpolate(double before, double after, double limit, double t, double dt) =>
        after <= before ? t + dt : t + (dt * Math.Clamp((limit - before) / (after - before), 0, 1));
}
