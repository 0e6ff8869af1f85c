namespace EdgeTwin.Twin.Thermal;

/// <summary>
/// Periodic batch calibration of a <see cref="ZoneThermalModel"/> from a window of telemetry (typically the last 24 h):
/// <list type="number">
/// <item>room: an output-error fit of (C, G-scale, U) — the room ODE is integrated over the whole window from the
///   measured inputs and compared with the measured return temperature, which is robust to sensor noise where an
///   equation-error fit of the differences is biased;</item>
/// <item>racks: for each rack, (b_i, A_ij) by Nelder-Mead on 2-minute means of its inlet, regularised toward a prior
///   built from the units' <c>serves</c> lists (racks that never ran short of cold air leave A_ij unidentified; the
///   prior keeps them plausible rather than arbitrary).</item>
/// </list>
/// </summary>
public static class ThermalCalibrator
{
    private const double PriorCouplingServed = 0.65;
    private const double PriorCouplingNeighbour = 0.25;
    private const double PriorCouplingOther = 0.2;
    private const double PriorAirReached = 0.9;
    private const double CouplingPenalty = 0.01;
    private const double WindowSeconds = 120;
    private const double MinProfileSeconds = 20 * 3600;
    private const double LoadLagSeconds = 300;

    /// <summary>The uncalibrated model: parameters from the config and <see cref="ThermalSettings"/> alone.</summary>
    public static ZoneThermalModel Prior(ThermalZone zone, ThermalSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(zone);
        settings ??= new ThermalSettings();
        var model = new ZoneThermalModel(zone, settings);
        var volume = zone.VolumeM3 ?? (settings.VolumePerRackM3 * Math.Max(1, zone.Racks.Count));
        model.HeatCapacityKjPerK = volume * 1.2 * 1.006 * settings.MassFactorPrior;
        model.EnvelopeUaKwPerK = 0.01 * zone.Racks.Count;
        for (var j = 0; j < zone.Units.Count; j++)
        {
            model.UnitConductanceKwPerK[j] = zone.Units[j].CapacityKw / settings.UnitDesignDeltaTK;
        }

        var prior = PriorCoupling(zone, settings);
        for (var i = 0; i < zone.Racks.Count; i++)
        {
            model.RackBaseRecirculation[i] = 0.05;
            prior[i].CopyTo(model.Coupling[i], 0);
            model.RackResidualSigmaK[i] = 0.5;
        }

        model.RestsOnDefaults = true;
        model.AssumptionList.Add(Inv($"zone '{zone.Id}' is not calibrated: its room (heat capacity, unit airflow, envelope), rack airflow and fan control are typical figures from the site config, not fitted to its telemetry"));
        return model;
    }

    /// <summary>Calibrates a zone from <paramref name="frames"/> (oldest first, missing readings NaN).</summary>
    public static ZoneThermalModel Calibrate(ThermalZone zone, IReadOnlyList<ZoneFrame> frames, ThermalSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(frames);
        var model = Prior(zone, settings);
        if (frames.Count < 10)
        {
            model.AssumptionList[0] += Inv($" ({frames.Count} frames of telemetry; a fit needs 10)");
            return model;
        }

        model.AssumptionList.Clear();
        model.RestsOnDefaults = false;
        EstimateSetpoints(model, frames);
        FitRoom(model, frames);
        FitRacks(model, frames);
        FitFanControl(model, frames);
        FitLoad(model, frames);
        model.CalibrationFrames = frames.Count;
        return model;
    }

    /// <summary>
    /// The daily load profile of each rack (least squares on [1, cos ωt, sin ωt], ω = 2π/24 h) and the size and
    /// correlation time of the zone total's deviation from it. Needs a window of ≥ 20 h; a shorter one cannot tell the
    /// daily swing from a trend, and the forecast then holds the present load as before.
    /// </summary>
    private static void FitLoad(ZoneThermalModel model, IReadOnlyList<ZoneFrame> frames)
    {
        var racks = model.Zone.Racks.Count;
        var n = frames.Count;
        if (racks == 0 || frames[n - 1].TimeSeconds - frames[0].TimeSeconds < MinProfileSeconds)
        {
            var span = frames[n - 1].TimeSeconds - frames[0].TimeSeconds;
            var window = span < 7200 ? Inv($"{span / 60:0} min") : Inv($"{span / 3600:0.#} h");
            model.AssumptionList.Add(Inv($"zone '{model.Zone.Id}': no daily load profile (calibration window {window}, a profile needs {MinProfileSeconds / 3600:0} h): the present load is held through the horizon"));
            return;
        }

        var cos = new double[n];
        var sin = new double[n];
        for (var k = 0; k < n; k++)
        {
            var phase = 2 * Math.PI * (frames[k].TimeSeconds % 86400) / 86400;
            cos[k] = Math.Cos(phase);
            sin[k] = Math.Sin(phase);
        }

        var ata = new double[3, 3];
        var atb = new double[3];
        for (var i = 0; i < racks; i++)
        {
            Array.Clear(ata);
            Array.Clear(atb);
            var count = 0;
            for (var k = 0; k < n; k++)
            {
                var p = frames[k].RackPowerKw[i];
                if (double.IsNaN(p))
                {
                    continue;
                }

                double x0 = 1, x1 = cos[k], x2 = sin[k];
                ata[0, 0] += x0 * x0;
                ata[0, 1] += x0 * x1;
                ata[0, 2] += x0 * x2;
                ata[1, 1] += x1 * x1;
                ata[1, 2] += x1 * x2;
                ata[2, 2] += x2 * x2;
                atb[0] += p;
                atb[1] += p * x1;
                atb[2] += p * x2;
                count++;
            }

            if (count < 100)
            {
                continue;
            }

            ata[1, 0] = ata[0, 1];
            ata[2, 0] = ata[0, 2];
            ata[2, 1] = ata[1, 2];
            var solution = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfArray(ata)
                .Solve(MathNet.Numerics.LinearAlgebra.Vector<double>.Build.DenseOfArray(atb));
            if (double.IsFinite(solution[0]) && double.IsFinite(solution[1]) && double.IsFinite(solution[2]) && solution[0] > 0)
            {
                model.RackLoadMeanKw[i] = solution[0];
                model.RackLoadCosKw[i] = solution[1];
                model.RackLoadSinKw[i] = solution[2];
            }
        }

        // The zone total's deviation from its profile: its spread and an AR(1) correlation time at a 5-minute lag.
        var residual = new double[n];
        double sum = 0, sumSq = 0;
        for (var k = 0; k < n; k++)
        {
            var r = 0.0;
            for (var i = 0; i < racks; i++)
            {
                var p = frames[k].RackPowerKw[i];
                if (!double.IsNaN(p) && model.RackLoadMeanKw[i] > 0)
                {
                    r += p - (model.RackLoadMeanKw[i] + (model.RackLoadCosKw[i] * cos[k]) + (model.RackLoadSinKw[i] * sin[k]));
                }
            }

            residual[k] = r;
            sum += r;
            sumSq += r * r;
        }

        var mean = sum / n;
        var variance = Math.Max(0, (sumSq / n) - (mean * mean));
        var step = (frames[n - 1].TimeSeconds - frames[0].TimeSeconds) / (n - 1);
        var lag = Math.Max(1, (int)Math.Round(LoadLagSeconds / Math.Max(step, 1e-3)));
        double cov = 0;
        var pairs = 0;
        for (var k = 0; k + lag < n; k++)
        {
            cov += (residual[k] - mean) * (residual[k + lag] - mean);
            pairs++;
        }

        var rho = variance <= 1e-12 || pairs == 0 ? 0 : cov / pairs / variance;
        model.LoadNoiseSigmaKw = Math.Sqrt(variance);
        model.LoadNoiseTauSeconds = rho <= 0.01 ? 60 : rho >= 0.999 ? 6 * 3600 : Math.Clamp(-lag * step / Math.Log(rho), 60, 6 * 3600);
        model.HasLoadProfile = true;
    }

    private static void EstimateSetpoints(ZoneThermalModel model, IReadOnlyList<ZoneFrame> frames)
    {
        var values = new List<double>(frames.Count);
        for (var j = 0; j < model.Zone.Units.Count; j++)
        {
            values.Clear();
            foreach (var f in frames)
            {
                if (f.UnitRunning[j] && !double.IsNaN(f.UnitSupplyC[j]))
                {
                    values.Add(f.UnitSupplyC[j]);
                }
            }

            if (values.Count > 0)
            {
                values.Sort();
                // The lower quartile: a unit that is sometimes capacity-limited supplies above its set point then.
                model.UnitSetpointC[j] = values[values.Count / 4];
            }
        }
    }

    private static void FitRoom(ZoneThermalModel model, IReadOnlyList<ZoneFrame> frames)
    {
        var n = frames.Count;
        var units = model.Zone.Units.Count;
        var time = new double[n];
        var room = new double[n];
        var it = new double[n];
        var fan = new double[n * units];
        var running = new bool[n * units];
        var supply = new double[n * units];
        var valid = 0;
        for (var k = 0; k < n; k++)
        {
            var f = frames[k];
            time[k] = f.TimeSeconds;
            room[k] = f.RoomC();
            it[k] = f.TotalPowerKw();
            valid += double.IsNaN(room[k]) ? 0 : 1;
            for (var j = 0; j < units; j++)
            {
                fan[(k * units) + j] = ZoneThermalModel.FanOf(f, j);
                running[(k * units) + j] = f.UnitRunning[j];
                supply[(k * units) + j] = double.IsNaN(f.UnitSupplyC[j]) ? model.UnitSetpointC[j] : f.UnitSupplyC[j];
            }
        }

        if (valid < 10)
        {
            // No return or outlet temperatures: the room node keeps its prior.
            model.RestsOnDefaults = true;
            model.AssumptionList.Add(Inv($"zone '{model.Zone.Id}': room not fitted ({valid} frames with a return or outlet temperature; a fit needs 10): its heat capacity, unit airflow and envelope are typical figures"));
            return;
        }

        var c0 = model.HeatCapacityKjPerK;
        var g0 = (double[])model.UnitConductanceKwPerK.Clone();
        var u0 = model.EnvelopeUaKwPerK;
        var outside = model.OutsideC;
        var maxConductance = g0.Sum() + u0 + 1e-9;

        double Simulate(double c, double gScale, double ua, double[]? predicted)
        {
            var sse = 0.0;
            var count = 0;
            var t = room[0];
            for (var k = 0; k < n - 1; k++)
            {
                var dt = time[k + 1] - time[k];
                if (double.IsNaN(t))
                {
                    t = room[k];
                }

                if (dt <= 0 || dt > 900 || double.IsNaN(t))
                {
                    t = room[k + 1];
                    continue;
                }

                // Explicit Euler, sub-stepped to stay well inside its stability limit.
                var stable = 0.5 * c / (maxConductance * Math.Max(gScale, 1e-3));
                var steps = (int)Math.Ceiling(dt / stable);
                var h = dt / steps;
                for (var s = 0; s < steps; s++)
                {
                    var heat = it[k] - (ua * (t - outside));
                    for (var j = 0; j < units; j++)
                    {
                        if (!running[(k * units) + j])
                        {
                            continue;
                        }

                        var sp = fan[(k * units) + j];
                        heat += (model.UnitFanKw[j] * sp * sp * sp) - (g0[j] * gScale * sp * (t - supply[(k * units) + j]));
                    }

                    t += h * heat / c;
                }

                predicted?[k + 1] = t;
                if (!double.IsNaN(room[k + 1]))
                {
                    var e = t - room[k + 1];
                    sse += e * e;
                    count++;
                }
            }

            return count == 0 ? double.MaxValue : sse / count;
        }

        var (x, _) = Minimiser.Minimise(
            p => Simulate(c0 * Math.Exp(p[0]), Math.Exp(p[1]), u0 * Math.Exp(p[2]), null) + (1e-4 * p[2] * p[2]),
            [0, 0, 0],
            0.3,
            200,
            1e-6);
        model.HeatCapacityKjPerK = c0 * Math.Exp(x[0]);
        for (var j = 0; j < units; j++)
        {
            model.UnitConductanceKwPerK[j] = g0[j] * Math.Exp(x[1]);
        }

        model.EnvelopeUaKwPerK = u0 * Math.Exp(x[2]);
        model.RoomFitRmseK = Math.Sqrt(Simulate(model.HeatCapacityKjPerK, Math.Exp(x[1]), model.EnvelopeUaKwPerK, null));
    }

    private static void FitRacks(ZoneThermalModel model, IReadOnlyList<ZoneFrame> frames)
    {
        var zone = model.Zone;
        var units = zone.Units.Count;
        var racks = zone.Racks.Count;

        // 2-minute means: averages out sensor noise and the fast inlet lag the static rack relation ignores.
        var windows = new List<(double Room, double[] Flow, double[] Supply, double[] Power, double[] Inlet)>();
        var start = 0;
        while (start < frames.Count)
        {
            var end = start;
            while (end < frames.Count && frames[end].TimeSeconds - frames[start].TimeSeconds < WindowSeconds)
            {
                end++;
            }

            var w = (Room: 0.0, Flow: new double[units], Supply: new double[units], Power: new double[racks], Inlet: new double[racks]);
            var roomCount = 0;
            var powerCount = new int[racks];
            var inletCount = new int[racks];
            for (var k = start; k < end; k++)
            {
                var f = frames[k];
                var r = f.RoomC();
                if (!double.IsNaN(r))
                {
                    w.Room += r;
                    roomCount++;
                }

                for (var j = 0; j < units; j++)
                {
                    w.Flow[j] += model.UnitConductanceKwPerK[j] * ZoneThermalModel.FanOf(f, j);
                    w.Supply[j] += double.IsNaN(f.UnitSupplyC[j]) ? model.UnitSetpointC[j] : f.UnitSupplyC[j];
                }

                for (var i = 0; i < racks; i++)
                {
                    if (!double.IsNaN(f.RackPowerKw[i]))
                    {
                        w.Power[i] += f.RackPowerKw[i];
                        powerCount[i]++;
                    }

                    if (!double.IsNaN(f.RackInletC[i]))
                    {
                        w.Inlet[i] += f.RackInletC[i];
                        inletCount[i]++;
                    }
                }
            }

            var m = end - start;
            if (roomCount > 0)
            {
                w.Room /= roomCount;
                for (var j = 0; j < units; j++)
                {
                    w.Flow[j] /= m;
                    w.Supply[j] /= m;
                }

                for (var i = 0; i < racks; i++)
                {
                    w.Power[i] = powerCount[i] == 0 ? double.NaN : w.Power[i] / powerCount[i];
                    w.Inlet[i] = inletCount[i] == 0 ? double.NaN : w.Inlet[i] / inletCount[i];
                }

                windows.Add(w);
            }

            start = end;
        }

        var prior = PriorCoupling(zone, model.Settings);
        double totalSse = 0;
        var totalCount = 0;
        var candidates = new List<int>(units);
        var unfitted = new List<string>();
        for (var i = 0; i < racks; i++)
        {
            var data = windows.Where(w => !double.IsNaN(w.Inlet[i]) && !double.IsNaN(w.Power[i])).ToList();
            if (data.Count < 5)
            {
                unfitted.Add(zone.Racks[i].Id);
                continue;
            }

            candidates.Clear();
            for (var j = 0; j < units; j++)
            {
                if (prior[i][j] > 0)
                {
                    candidates.Add(j);
                }
            }

            var coupling = model.Coupling[i];
            var priorB = 0.05;
            double Error(double[] p, bool penalised)
            {
                var b = 0.5 / (1 + Math.Exp(-p[0]));
                for (var c = 0; c < candidates.Count; c++)
                {
                    coupling[candidates[c]] = prior[i][candidates[c]] * Math.Exp(p[c + 1]);
                }

                model.RackBaseRecirculation[i] = b;
                var sse = 0.0;
                foreach (var w in data)
                {
                    var e = model.InletTarget(i, w.Room, w.Flow, w.Supply, w.Power[i]) - w.Inlet[i];
                    sse += e * e;
                }

                var mse = sse / data.Count;
                if (!penalised)
                {
                    return mse;
                }

                var penalty = 0.2 * (b - priorB) * (b - priorB);
                for (var c = 1; c < p.Length; c++)
                {
                    penalty += CouplingPenalty * p[c] * p[c];
                }

                return mse + penalty;
            }

            var startPoint = new double[candidates.Count + 1];
            startPoint[0] = Math.Log(priorB / (0.5 - priorB));
            var (x, _) = Minimiser.Minimise(p => Error(p, penalised: true), startPoint, 0.5, 60 * startPoint.Length, 1e-5);
            var mse = Error(x, penalised: false);
            model.RackResidualSigmaK[i] = Math.Max(0.05, Math.Sqrt(mse));
            totalSse += mse * data.Count;
            totalCount += data.Count;
        }

        model.InletFitRmseK = totalCount == 0 ? double.NaN : Math.Sqrt(totalSse / totalCount);
        if (unfitted.Count == racks && racks > 0)
        {
            model.RestsOnDefaults = true;
            model.AssumptionList.Add(Inv($"zone '{zone.Id}': no rack's inlet fitted (a fit needs 5 two-minute windows of inlet and power readings, 10 min of telemetry): how much of each unit's air reaches each rack is the prior from the units' serves lists"));
        }
        else if (unfitted.Count > 0)
        {
            model.AssumptionList.Add(Inv($"zone '{zone.Id}': inlet of {string.Join(", ", unfitted)} not fitted (fewer than 5 two-minute windows of inlet and power readings): prior airflow coupling"));
        }
    }

    /// <summary>
    /// Identifies each unit's fan control from 2-minute means by least squares on Δs = Kp·Δw + Ki·Δt·w − Ki·Δt·target
    /// (w the warmest served inlet), using only intervals where the fan is not pinned at a limit.
    /// </summary>
    private static void FitFanControl(ZoneThermalModel model, IReadOnlyList<ZoneFrame> frames)
    {
        var zone = model.Zone;
        for (var j = 0; j < zone.Units.Count; j++)
        {
            var served = model.UnitServed[j];
            if (served.Length == 0)
            {
                continue;
            }

            var times = new List<double>();
            var fans = new List<double>();
            var warmest = new List<double>();
            var minFan = double.MaxValue;
            var start = 0;
            while (start < frames.Count)
            {
                var end = start;
                double fanSum = 0, t = 0;
                var inlet = new double[served.Length];
                var count = new int[served.Length];
                var running = true;
                while (end < frames.Count && frames[end].TimeSeconds - frames[start].TimeSeconds < WindowSeconds)
                {
                    var f = frames[end];
                    running &= f.UnitRunning[j] && !double.IsNaN(f.UnitFanSpeed[j]);
                    fanSum += ZoneThermalModel.FanOf(f, j);
                    t += f.TimeSeconds;
                    for (var k = 0; k < served.Length; k++)
                    {
                        var v = f.RackInletC[served[k]];
                        if (!double.IsNaN(v))
                        {
                            inlet[k] += v;
                            count[k]++;
                        }
                    }

                    end++;
                }

                var m = end - start;
                start = end;
                var w = double.NegativeInfinity;
                for (var k = 0; k < served.Length; k++)
                {
                    if (count[k] > 0)
                    {
                        w = Math.Max(w, inlet[k] / count[k]);
                    }
                }

                if (!running || double.IsNegativeInfinity(w))
                {
                    times.Add(double.NaN);
                    fans.Add(double.NaN);
                    warmest.Add(double.NaN);
                    continue;
                }

                minFan = Math.Min(minFan, fanSum / m);
                times.Add(t / m);
                fans.Add(fanSum / m);
                warmest.Add(w);
            }

            if (minFan < double.MaxValue)
            {
                model.UnitMinFan[j] = Math.Clamp(minFan, 0.05, 1);
            }

            // Normal equations of the 3-parameter regression.
            var ata = new double[3, 3];
            var atb = new double[3];
            var rows = 0;
            for (var k = 1; k < fans.Count; k++)
            {
                var dt = times[k] - times[k - 1];
                if (double.IsNaN(fans[k]) || double.IsNaN(fans[k - 1]) || dt <= 0 || dt > 3 * WindowSeconds
                    || fans[k] >= 0.99 || fans[k - 1] >= 0.99 || fans[k] <= model.UnitMinFan[j] + 0.01 || fans[k - 1] <= model.UnitMinFan[j] + 0.01)
                {
                    continue;
                }

                double[] x = [warmest[k] - warmest[k - 1], dt * warmest[k], -dt];
                var y = fans[k] - fans[k - 1];
                for (var a = 0; a < 3; a++)
                {
                    atb[a] += x[a] * y;
                    for (var b = 0; b < 3; b++)
                    {
                        ata[a, b] += x[a] * x[b];
                    }
                }

                rows++;
            }

            if (rows < 30)
            {
                continue;
            }

            try
            {
                var solution = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfArray(ata)
                    .Solve(MathNet.Numerics.LinearAlgebra.Vector<double>.Build.DenseOfArray(atb));
                var kp = solution[0];
                var ki = solution[1];
                var target = ki > 0 ? solution[2] / ki : double.NaN;
                if (ki > 1e-6 && target is > 10 and < 40)
                {
                    // The 2-minute means blur the proportional kick (Kp comes out small, even slightly negative, when
                    // the integral action dominates at this scale); the integral gain and target are what matter over
                    // a failure's minutes, so a negative Kp is taken as 0 rather than discarding the loop.
                    model.UnitKp[j] = Math.Max(0, kp);
                    model.UnitKi[j] = ki;
                    model.UnitTargetC[j] = target;
                }
            }
            catch (ArgumentException)
            {
                // Singular: the fan never moved independently of the inlets; leave the control unidentified.
            }
        }

        BorrowPeerControl(model);
        var guessed = Enumerable.Range(0, zone.Units.Count).Where(j => double.IsNaN(model.UnitTargetC[j])).Select(j => zone.Units[j].Id).ToList();
        if (guessed.Count > 0)
        {
            model.AssumptionList.Add(Inv($"zone '{zone.Id}': fan control of {string.Join(", ", guessed)} not identified (fan never off a limit in the window): taken to full speed when a unit fails"));
        }
    }

    /// <summary>
    /// A unit whose fan sat pinned all window (typically at its minimum, because its racks never warmed) has no
    /// identifiable control loop. The units of one zone normally run the same BMS loop, so such a unit takes the median
    /// gains and target of the peers that were identified, rather than jumping to full speed the instant a neighbour
    /// fails (which overstated the cooling in the first minutes of a failure).
    /// </summary>
    private static void BorrowPeerControl(ZoneThermalModel model)
    {
        var identified = Enumerable.Range(0, model.Zone.Units.Count).Where(j => !double.IsNaN(model.UnitTargetC[j])).ToList();
        if (identified.Count == 0 || identified.Count == model.Zone.Units.Count)
        {
            return;
        }

        var kp = Median(identified.Select(j => model.UnitKp[j]));
        var ki = Median(identified.Select(j => model.UnitKi[j]));
        var target = Median(identified.Select(j => model.UnitTargetC[j]));
        for (var j = 0; j < model.Zone.Units.Count; j++)
        {
            if (double.IsNaN(model.UnitTargetC[j]) && model.UnitServed[j].Length > 0)
            {
                model.UnitKp[j] = kp;
                model.UnitKi[j] = ki;
                model.UnitTargetC[j] = target;
            }
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : 0.5 * (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]);
    }

    /// <summary>
    /// A_ij before any data: a unit's airflow shared over the racks its config says it serves (most of it), a little
    /// reaching their row neighbours, a trace elsewhere in small zones; in units of rack airflow demand per kW.
    /// </summary>
    internal static double[][] PriorCoupling(ThermalZone zone, ThermalSettings settings)
    {
        var racks = zone.Racks.Count;
        var units = zone.Units.Count;
        var result = new double[racks][];
        for (var i = 0; i < racks; i++)
        {
            result[i] = new double[units];
        }

        for (var j = 0; j < units; j++)
        {
            var served = zone.Units[j].Serves.Select(zone.RackIndex).Where(i => i >= 0).ToHashSet();
            if (served.Count == 0)
            {
                served = [.. Enumerable.Range(0, racks)];
            }

            var share = settings.ServerDeltaTK / served.Count;
            var outside = 0.0;
            for (var i = 0; i < racks; i++)
            {
                var rack = zone.Racks[i];
                if (served.Contains(i))
                {
                    result[i][j] = share * PriorCouplingServed;
                    continue;
                }

                var neighbour = served.Any(s => string.Equals(zone.Racks[s].Row, rack.Row, StringComparison.Ordinal) && Math.Abs(zone.Racks[s].Position - rack.Position) <= 2);
                result[i][j] = neighbour ? share * PriorCouplingNeighbour : units <= 4 ? share * PriorCouplingOther : 0;
                outside += result[i][j];
            }

            // Conservation: the served racks take 65 % of the unit's air and at most 25 % more reaches the others (some
            // always bypasses); without the cap a unit serving few of many racks handed out more air than it blows.
            var cap = settings.ServerDeltaTK * (PriorAirReached - PriorCouplingServed);
            if (outside > cap)
            {
                for (var i = 0; i < racks; i++)
                {
                    if (!served.Contains(i))
                    {
                        result[i][j] *= cap / outside;
                    }
                }
            }
        }

        return result;
    }

    private static string Inv(FormattableString text) => text.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
