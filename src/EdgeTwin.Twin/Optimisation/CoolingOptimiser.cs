using System.Text.Json.Serialization;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Optimisation;

public sealed record UnitSetpoint(
    [property: JsonPropertyName("unit")] string Unit,
    [property: JsonPropertyName("supply_setpoint_now_c")] double SupplySetpointNowC,
    [property: JsonPropertyName("supply_setpoint_c")] double SupplySetpointC,
    [property: JsonPropertyName("fan_speed_now")] double FanSpeedNow,
    [property: JsonPropertyName("fan_speed")] double FanSpeed);

public sealed record CoolingRecommendation(
    [property: JsonPropertyName("zone")] string Zone,
    [property: JsonPropertyName("units")] IReadOnlyList<UnitSetpoint> Units,
    [property: JsonPropertyName("inlet_limit_c")] double InletLimitC,
    [property: JsonPropertyName("margin_k")] double MarginK,
    [property: JsonPropertyName("predicted_max_inlet_c")] double PredictedMaxInletC,
    [property: JsonPropertyName("hottest_rack")] string HottestRack,
    [property: JsonPropertyName("cooling_power_now_kw")] double CoolingPowerNowKw,
    [property: JsonPropertyName("cooling_power_kw")] double CoolingPowerKw,
    [property: JsonPropertyName("saving_kw")] double SavingKw,
    [property: JsonPropertyName("saving_percent")] double SavingPercent,
    [property: JsonPropertyName("evaluations")] int Evaluations,
    [property: JsonPropertyName("advisory")] bool Advisory);

/// <summary>
/// Energy model of the cooling plant (documented in Optimisation/README.md):
/// fan power = F_j·s_j³ (affinity laws); chiller power = Q_j / COP(S_j) with COP(S) = COP_18·(1 + k·(S − 18 °C)),
/// COP_18 = 3.5 and k = 0.035/K (a typical chilled-water plant gains 2–4 % efficiency per kelvin of supply temperature).
/// </summary>
public sealed record CoolingEnergyModel
{
    public double CopAt18C { get; init; } = 3.5;

    public double CopGainPerK { get; init; } = 0.035;

    public double Cop(double supplyC) => Math.Max(1.5, CopAt18C * (1 + (CopGainPerK * (supplyC - 18))));
}

/// <summary>
/// Finds supply set points and fan speeds that minimise cooling power (fans + chiller) subject to every rack inlet,
/// at the model's steady state, staying at or below the limit minus a margin. Nelder-Mead (MathNet.Numerics) over the
/// running units' (set point, fan speed) in [0, 1]-scaled coordinates; constraint violations cost a steep penalty.
/// Steady state: the room temperature solves the zone's heat balance (bisection), inlets follow the static rack relation
/// plus each rack's present residual.
/// </summary>
public static class CoolingOptimiser
{
    private const double Penalty = 1e4;

    /// <summary>Kelvin kept below the limit: the model's steady-state error at moved set points reached ~1.1 K in validation.</summary>
    public const double DefaultMarginK = 2;

    /// <summary>
    /// Share of each rack's predicted inlet rise (recommended against today's settings, both on the model) added to it
    /// before the limit is checked. The twin is calibrated at today's set points, so a rise it predicts for moved set points
    /// is an extrapolation whose error grows with the rise (validation: a predicted +3 K came out +5.5 K on one site).
    /// </summary>
    public const double DefaultRiseUncertainty = 0.5;

    /// <param name="inletLimitC">Inlet limit (default the model's <see cref="ThermalSettings.RecommendedInletC"/>, 27 °C); the search keeps every inlet ≤ limit − margin.</param>
    /// <param name="riseUncertainty">See <see cref="DefaultRiseUncertainty"/>; 0 trusts the model's predicted rise fully.</param>
    public static CoolingRecommendation Optimise(ZoneThermalModel model, ZoneFrame now, double marginK = DefaultMarginK, CoolingEnergyModel? energy = null, double? inletLimitC = null, double riseUncertainty = DefaultRiseUncertainty)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(now);
        energy ??= new CoolingEnergyModel();
        var zone = model.Zone;
        var s = model.Settings;
        var units = zone.Units.Count;
        var racks = zone.Racks.Count;
        var running = Enumerable.Range(0, units).Where(j => now.UnitRunning[j]).ToArray();
        var power = new double[racks];
        var bias = new double[racks];
        var fanNow = new double[units];
        var supplyNow = new double[units];
        var flow = new double[units];
        var room = now.RoomC();
        for (var j = 0; j < units; j++)
        {
            fanNow[j] = ZoneThermalModel.FanOf(now, j);
            supplyNow[j] = double.IsNaN(now.UnitSupplyC[j]) ? model.UnitSetpointC[j] : now.UnitSupplyC[j];
            flow[j] = now.UnitRunning[j] ? model.UnitConductanceKwPerK[j] * fanNow[j] : 0;
        }

        for (var i = 0; i < racks; i++)
        {
            power[i] = model.RackKw(now, i);
            var measured = now.RackInletC[i];
            bias[i] = double.IsNaN(measured) || double.IsNaN(room) ? 0 : Math.Clamp(measured - model.InletTarget(i, room, flow, supplyNow, power[i]), -3, 3);
        }

        var inletLimit = inletLimitC ?? s.RecommendedInletC;
        var limit = inletLimit - marginK;
        var fan = new double[units];
        var setpoint = new double[units];
        var supply = new double[units];
        var evaluations = 0;
        var inletToday = new double[racks];
        var recordToday = true;

        // Returns (cooling power kW, hottest predicted inlet, hottest rack, hottest guarded inlet) at the steady state of
        // the given settings; the guarded inlet adds the rise uncertainty and is what the limit is checked against.
        (double Kw, double MaxInlet, int Hottest, double MaxGuarded) Evaluate()
        {
            evaluations++;
            var tr = SteadyRoom(model, power, fan, setpoint, now.UnitRunning);
            double kw = 0;
            for (var j = 0; j < units; j++)
            {
                if (!now.UnitRunning[j])
                {
                    supply[j] = tr;
                    flow[j] = 0;
                    continue;
                }

                supply[j] = model.SupplyAt(j, tr, fan[j], setpoint[j]);
                flow[j] = model.UnitConductanceKwPerK[j] * fan[j];
                var q = Math.Max(0, flow[j] * (tr - supply[j]));
                kw += (model.UnitFanKw[j] * fan[j] * fan[j] * fan[j]) + (q / energy.Cop(supply[j]));
            }

            var max = double.NegativeInfinity;
            var guardedMax = double.NegativeInfinity;
            var hottest = 0;
            for (var i = 0; i < racks; i++)
            {
                var inlet = model.InletTarget(i, tr, flow, supply, power[i]) + bias[i];
                if (recordToday)
                {
                    inletToday[i] = inlet;
                }

                var guarded = inlet + (riseUncertainty * Math.Max(0, inlet - inletToday[i]));
                if (guarded > guardedMax)
                {
                    guardedMax = guarded;
                    hottest = i;
                }

                max = Math.Max(max, inlet);
            }

            recordToday = false;
            return (kw, max, hottest, guardedMax);
        }

        for (var j = 0; j < units; j++)
        {
            fan[j] = fanNow[j];
            setpoint[j] = model.UnitSetpointC[j];
        }

        var current = Evaluate();
        var lo = s.MinSupplySetpointC;
        var hi = s.MaxSupplySetpointC;
        void Apply(double[] x)
        {
            for (var k = 0; k < running.Length; k++)
            {
                var j = running[k];
                setpoint[j] = lo + ((hi - lo) * Math.Clamp(x[2 * k], 0, 1));
                fan[j] = model.UnitMinFan[j] + ((1 - model.UnitMinFan[j]) * Math.Clamp(x[(2 * k) + 1], 0, 1));
            }
        }

        double Objective(double[] x)
        {
            Apply(x);
            var r = Evaluate();
            var outside = 0.0;
            foreach (var v in x)
            {
                outside += Math.Max(0, v - 1) + Math.Max(0, -v);
            }

            return r.Kw + (Penalty * Math.Max(0, r.MaxGuarded - limit)) + (Penalty * outside);
        }

        var start = new double[2 * running.Length];
        for (var k = 0; k < running.Length; k++)
        {
            var j = running[k];
            start[2 * k] = Math.Clamp((model.UnitSetpointC[j] - lo) / (hi - lo), 0, 1);
            start[(2 * k) + 1] = Math.Clamp((fanNow[j] - model.UnitMinFan[j]) / Math.Max(1e-6, 1 - model.UnitMinFan[j]), 0, 1);
        }

        // If today's operating point already breaks the limit, start from full cooling, which is the feasible corner.
        Apply(start);
        if (Evaluate().MaxGuarded > limit)
        {
            for (var k = 0; k < running.Length; k++)
            {
                start[2 * k] = 0.2;
                start[(2 * k) + 1] = 1;
            }
        }

        var (best, _) = running.Length == 0 ? (start, 0.0) : Minimiser.Minimise(Objective, start, 0.15, 300 * Math.Max(1, running.Length), 1e-6);
        Apply(best);
        var result = Evaluate();
        if (result.MaxGuarded > limit + 1e-6 || result.Kw > current.Kw)
        {
            // Nothing better and feasible was found: recommend today's settings.
            Apply(start);
            for (var j = 0; j < units; j++)
            {
                fan[j] = fanNow[j];
                setpoint[j] = model.UnitSetpointC[j];
            }

            result = Evaluate();
        }

        var list = Enumerable.Range(0, units).Where(j => now.UnitRunning[j]).Select(j => new UnitSetpoint(
            zone.Units[j].Id,
            Math.Round(model.UnitSetpointC[j], 2),
            Math.Round(setpoint[j], 2),
            Math.Round(fanNow[j], 3),
            Math.Round(fan[j], 3))).ToList();
        var saving = current.Kw - result.Kw;
        return new CoolingRecommendation(
            zone.Id,
            list,
            inletLimit,
            marginK,
            Math.Round(result.MaxInlet, 2),
            zone.Racks.Count > 0 ? zone.Racks[result.Hottest].Id : "",
            Math.Round(current.Kw, 3),
            Math.Round(result.Kw, 3),
            Math.Round(saving, 3),
            current.Kw > 0 ? Math.Round(saving / current.Kw * 100, 1) : 0,
            evaluations,
            Advisory: true);
    }

    /// <summary>Room temperature where heat in equals heat out for fixed fans and set points (bisection; the balance is monotonic in T_r).</summary>
    internal static double SteadyRoom(ZoneThermalModel model, double[] power, double[] fan, double[] setpoint, bool[] running)
    {
        var it = power.Sum();
        double Net(double tr)
        {
            var heat = it - (model.EnvelopeUaKwPerK * (tr - model.OutsideC));
            for (var j = 0; j < fan.Length; j++)
            {
                if (!running[j])
                {
                    continue;
                }

                var supply = model.SupplyAt(j, tr, fan[j], setpoint[j]);
                heat += (model.UnitFanKw[j] * fan[j] * fan[j] * fan[j]) - (model.UnitConductanceKwPerK[j] * fan[j] * (tr - supply));
            }

            return heat;
        }

        double a = 0, b = 120;
        if (Net(b) > 0)
        {
            return b;
        }

        for (var k = 0; k < 60; k++)
        {
            var m = 0.5 * (a + b);
            if (Net(m) > 0)
            {
                a = m;
            }
            else
            {
                b = m;
            }
        }

        return 0.5 * (a + b);
    }
}
