namespace EdgeTwin.Twin.Thermal;

/// <summary>
/// The calibrated reduced-order model of one cooling zone (equations in Thermal/README.md):
/// <list type="bullet">
/// <item>room node: C·dT_r/dt = ΣP_i + Σ_j F_j·s_j³ − Σ_j G_j·s_j·(T_r − S_j) − U·(T_r − T_o);</item>
/// <item>rack inlet (quasi-static target, first-order lag τ): T_in,i = T_r − (1 − b_i)·f_i·(T_r − T_cold,i) with
///   f_i = min(1, Σ_j A_ij·G_j·s_j / P_i) the share of the rack's airflow demand met by cold air and
///   T_cold,i the coupling-weighted supply temperature;</item>
/// <item>supply under a capacity limit: S_j = max(set point_j, T_r − Q_j·√s_j / (G_j·s_j)).</item>
/// </list>
/// Parameters C, G_j (through one scale on the rated capacities) and U are fitted to the room temperature,
/// b_i and A_ij to each rack's inlet (see <see cref="ThermalCalibrator"/>).
/// </summary>
public sealed class ZoneThermalModel
{
    internal ZoneThermalModel(ThermalZone zone, ThermalSettings settings)
    {
        Zone = zone;
        Settings = settings;
        var units = zone.Units.Count;
        var racks = zone.Racks.Count;
        UnitConductanceKwPerK = new double[units];
        UnitSetpointC = new double[units];
        UnitFanKw = new double[units];
        UnitKp = new double[units];
        UnitKi = new double[units];
        UnitTargetC = new double[units];
        UnitMinFan = new double[units];
        UnitServed = new int[units][];
        RackBaseRecirculation = new double[racks];
        Coupling = new double[racks][];
        RackResidualSigmaK = new double[racks];
        RackLoadMeanKw = new double[racks];
        RackLoadCosKw = new double[racks];
        RackLoadSinKw = new double[racks];
        for (var i = 0; i < racks; i++)
        {
            Coupling[i] = new double[units];
        }

        for (var j = 0; j < units; j++)
        {
            UnitFanKw[j] = zone.Units[j].CapacityKw * settings.FanKwPerCoolingKw;
            UnitSetpointC[j] = 18;
            UnitTargetC[j] = double.NaN;
            UnitMinFan[j] = settings.MinFanSpeed;
            UnitServed[j] = [.. zone.Units[j].Serves.Select(zone.RackIndex).Where(i => i >= 0)];
        }

        OutsideC = settings.OutsideC;
        InletLagSeconds = settings.InletLagSeconds;
    }

    public ThermalZone Zone { get; }

    public ThermalSettings Settings { get; }

    /// <summary>Room air plus structure heat capacity C (kJ/K).</summary>
    public double HeatCapacityKjPerK { get; internal set; }

    /// <summary>Envelope conductance U (kW/K).</summary>
    public double EnvelopeUaKwPerK { get; internal set; }

    public double OutsideC { get; internal set; }

    /// <summary>G_j: airflow × c_p of each unit at full fan speed (kW/K).</summary>
    public double[] UnitConductanceKwPerK { get; }

    /// <summary>Supply set point of each unit as observed (median supply while not capacity-limited).</summary>
    public double[] UnitSetpointC { get; }

    public double[] UnitFanKw { get; }

    /// <summary>
    /// Identified fan control of each unit (velocity-form PI on the warmest inlet among the racks it serves):
    /// Δs = Kp·Δw + Ki·(w − target)·Δt. NaN target: not identified, the forecast takes the fans to full speed instead.
    /// </summary>
    public double[] UnitKp { get; }

    public double[] UnitKi { get; }

    public double[] UnitTargetC { get; }

    /// <summary>Lowest fan speed seen (the unit's minimum).</summary>
    public double[] UnitMinFan { get; }

    /// <summary>Rack indices each unit's controller watches (its <c>serves</c> list).</summary>
    public int[][] UnitServed { get; }

    /// <summary>b_i: share of hot air a rack draws even when cold air is plentiful.</summary>
    public double[] RackBaseRecirculation { get; }

    /// <summary>A_ij (rack, unit): coupling of unit j's airflow to rack i, in units of the rack's airflow demand per kW.</summary>
    public double[][] Coupling { get; }

    public double InletLagSeconds { get; internal set; }

    /// <summary>Standard deviation of each rack's inlet residual during calibration (K).</summary>
    public double[] RackResidualSigmaK { get; }

    /// <summary>RMS error of the room temperature fit (K).</summary>
    public double RoomFitRmseK { get; internal set; }

    /// <summary>RMS error of the rack inlet fit over all racks (K).</summary>
    public double InletFitRmseK { get; internal set; }

    /// <summary>
    /// Daily load profile of each rack, P_i(t) = mean + cos·cos(ωt) + sin·sin(ωt) with ω = 2π/24 h and t the frames'
    /// time (seconds; Unix time on a gateway), fitted to the calibration window when it spans ≥ 20 h (see
    /// <see cref="HasLoadProfile"/>); the forecast follows it instead of holding the present load.
    /// </summary>
    public double[] RackLoadMeanKw { get; }

    public double[] RackLoadCosKw { get; }

    public double[] RackLoadSinKw { get; }

    /// <summary>Whether <see cref="RackLoadMeanKw"/> and the load-noise figures were fitted (window ≥ 20 h).</summary>
    public bool HasLoadProfile { get; internal set; }

    /// <summary>Standard deviation of the zone's total load about its daily profile in the calibration window (kW).</summary>
    public double LoadNoiseSigmaKw { get; internal set; }

    /// <summary>Correlation time of that deviation (AR(1) fitted at a 5-minute lag), s: how fast a present excursion fades.</summary>
    public double LoadNoiseTauSeconds { get; internal set; } = 300;

    /// <summary>Frames the model was calibrated from (0: prior only).</summary>
    public int CalibrationFrames { get; internal set; }

    /// <summary>
    /// True when the room node or every rack's airflow rests on the priors (typical figures from the site config, not this
    /// zone's telemetry): not calibrated, no room temperature to fit, or too short a window to fit a rack. A forecast
    /// from such a model is a guess, and its answers say so (<see cref="Assumptions"/>); a NaN fit error alone did not.
    /// </summary>
    public bool RestsOnDefaults { get; internal set; } = true;

    /// <summary>What of this model is assumed rather than fitted, in the words an operator reads (empty: all fitted).</summary>
    public IReadOnlyList<string> Assumptions => AssumptionList;

    internal List<string> AssumptionList { get; } = [];

    /// <summary>
    /// A copy of this model with one more rack standing next to rack <paramref name="likeRack"/>: it draws from the same
    /// cold-air supply, so the neighbour's coupling is shared half and half between the two.
    /// </summary>
    public ZoneThermalModel WithRack(ThermalRack rack, int likeRack)
    {
        ArgumentNullException.ThrowIfNull(rack);
        var zone = Zone with { Racks = [.. Zone.Racks, rack] };
        var copy = new ZoneThermalModel(zone, Settings)
        {
            HeatCapacityKjPerK = HeatCapacityKjPerK,
            EnvelopeUaKwPerK = EnvelopeUaKwPerK,
            OutsideC = OutsideC,
            InletLagSeconds = InletLagSeconds,
            RoomFitRmseK = RoomFitRmseK,
            InletFitRmseK = InletFitRmseK,
            CalibrationFrames = CalibrationFrames,
            RestsOnDefaults = RestsOnDefaults,
            HasLoadProfile = HasLoadProfile,
            LoadNoiseSigmaKw = LoadNoiseSigmaKw,
            LoadNoiseTauSeconds = LoadNoiseTauSeconds,
        };
        copy.AssumptionList.AddRange(AssumptionList);
        UnitConductanceKwPerK.CopyTo(copy.UnitConductanceKwPerK, 0);
        UnitSetpointC.CopyTo(copy.UnitSetpointC, 0);
        UnitFanKw.CopyTo(copy.UnitFanKw, 0);
        UnitKp.CopyTo(copy.UnitKp, 0);
        UnitKi.CopyTo(copy.UnitKi, 0);
        UnitTargetC.CopyTo(copy.UnitTargetC, 0);
        UnitMinFan.CopyTo(copy.UnitMinFan, 0);
        for (var j = 0; j < UnitServed.Length; j++)
        {
            copy.UnitServed[j] = UnitServed[j].Contains(likeRack) ? [.. UnitServed[j], Zone.Racks.Count] : UnitServed[j];
        }

        for (var i = 0; i < Zone.Racks.Count; i++)
        {
            copy.RackBaseRecirculation[i] = RackBaseRecirculation[i];
            copy.RackResidualSigmaK[i] = RackResidualSigmaK[i];
            copy.RackLoadMeanKw[i] = RackLoadMeanKw[i];
            copy.RackLoadCosKw[i] = RackLoadCosKw[i];
            copy.RackLoadSinKw[i] = RackLoadSinKw[i];
            Coupling[i].CopyTo(copy.Coupling[i], 0);
        }

        var n = Zone.Racks.Count;
        copy.RackBaseRecirculation[n] = RackBaseRecirculation[likeRack];
        copy.RackResidualSigmaK[n] = RackResidualSigmaK[likeRack];
        // The new rack's load has no history: it keeps its given power (no profile of its own).
        for (var j = 0; j < Zone.Units.Count; j++)
        {
            copy.Coupling[likeRack][j] = Coupling[likeRack][j] / 2;
            copy.Coupling[n][j] = Coupling[likeRack][j] / 2;
        }

        return copy;
    }

    /// <summary>The fitted daily-profile load of rack <paramref name="rack"/> at time <paramref name="timeSeconds"/> (NaN without a profile).</summary>
    public double ProfileKw(int rack, double timeSeconds)
    {
        if (!HasLoadProfile || rack >= RackLoadMeanKw.Length)
        {
            return double.NaN;
        }

        var phase = 2 * Math.PI * (timeSeconds % 86400) / 86400;
        return RackLoadMeanKw[rack] + (RackLoadCosKw[rack] * Math.Cos(phase)) + (RackLoadSinKw[rack] * Math.Sin(phase));
    }

    /// <summary>Quasi-static rack inlet temperature for the given room state and unit airflows.</summary>
    /// <param name="flowKwPerK">G_j·s_j of each unit (0 when stopped).</param>
    public double InletTarget(int rack, double roomC, ReadOnlySpan<double> flowKwPerK, ReadOnlySpan<double> supplyC, double powerKw)
    {
        var a = Coupling[rack];
        double sum = 0, weighted = 0;
        for (var j = 0; j < a.Length; j++)
        {
            var q = a[j] * flowKwPerK[j];
            sum += q;
            weighted += q * supplyC[j];
        }

        if (sum <= 1e-12)
        {
            return roomC;
        }

        var f = Math.Min(1, sum / Math.Max(powerKw, 0.05));
        var cold = weighted / sum;
        return roomC - ((1 - RackBaseRecirculation[rack]) * f * (roomC - cold));
    }

    /// <summary>Supply temperature a running unit reaches at fan speed <paramref name="fan"/> with set point <paramref name="setpointC"/>.</summary>
    public double SupplyAt(int unit, double roomC, double fan, double setpointC)
    {
        var flow = UnitConductanceKwPerK[unit] * fan;
        if (flow <= 1e-9)
        {
            return roomC;
        }

        var capacity = Zone.Units[unit].CapacityKw * Math.Sqrt(fan);
        return Math.Max(setpointC, roomC - (capacity / flow));
    }

    /// <summary>dT_r/dt (K/s) of the room node.</summary>
    public double RoomDerivative(double roomC, double itKw, ReadOnlySpan<double> fan, ReadOnlySpan<bool> running, ReadOnlySpan<double> supplyC, double extraUaKwPerK = 0)
    {
        var heat = itKw;
        for (var j = 0; j < fan.Length; j++)
        {
            if (!running[j])
            {
                continue;
            }

            var s = fan[j];
            heat += (UnitFanKw[j] * s * s * s) - (UnitConductanceKwPerK[j] * s * (roomC - supplyC[j]));
        }

        heat -= (EnvelopeUaKwPerK + extraUaKwPerK) * (roomC - OutsideC);
        return heat / HeatCapacityKjPerK;
    }

    /// <summary>Predicted inlet of every rack for a frame's inputs (room from the frame), for residuals and hot spots.</summary>
    public void PredictInlets(ZoneFrame frame, Span<double> inlets)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var units = Zone.Units.Count;
        Span<double> flow = units <= 64 ? stackalloc double[units] : new double[units];
        Span<double> supply = units <= 64 ? stackalloc double[units] : new double[units];
        var room = frame.RoomC();
        for (var j = 0; j < units; j++)
        {
            var s = FanOf(frame, j);
            flow[j] = frame.UnitRunning[j] ? UnitConductanceKwPerK[j] * s : 0;
            supply[j] = double.IsNaN(frame.UnitSupplyC[j]) ? UnitSetpointC[j] : frame.UnitSupplyC[j];
        }

        for (var i = 0; i < inlets.Length; i++)
        {
            inlets[i] = InletTarget(i, room, flow, supply, RackKw(frame, i));
        }
    }

    /// <summary>A unit's fan speed in a frame: the reading, else full speed when running (a unit without fan telemetry).</summary>
    /// <summary>Share of its power budget a rack without a power reading is taken to draw.</summary>
    public const double AssumedBudgetShare = 0.6;

    /// <summary>A rack's power in a frame: the reading, else <see cref="AssumedBudgetShare"/> of its budget.</summary>
    public double RackKw(ZoneFrame frame, int rack)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var p = frame.RackPowerKw[rack];
        return double.IsNaN(p) ? AssumedBudgetShare * Zone.Racks[rack].BudgetKw : p;
    }

    internal static double FanOf(ZoneFrame frame, int unit) =>
        !frame.UnitRunning[unit] ? 0 : double.IsNaN(frame.UnitFanSpeed[unit]) ? 1 : Math.Clamp(frame.UnitFanSpeed[unit], 0, 1);
}
