namespace EdgeTwin.Twin.Thermal;

/// <summary>
/// One snapshot of a zone's telemetry, indexed like <see cref="ThermalZone.Racks"/> and <see cref="ThermalZone.Units"/>.
/// Missing readings are NaN (for <see cref="UnitRunning"/>: assume running, with <see cref="UnitStateRead"/> false).
/// </summary>
public sealed class ZoneFrame
{
    public ZoneFrame(double timeSeconds, int racks, int units)
    {
        TimeSeconds = timeSeconds;
        RackPowerKw = new double[racks];
        RackInletC = new double[racks];
        RackOutletC = new double[racks];
        UnitFanSpeed = new double[units];
        UnitSupplyC = new double[units];
        UnitReturnC = new double[units];
        UnitRunning = new bool[units];
        UnitStateRead = new bool[units];
        Array.Fill(RackPowerKw, double.NaN);
        Array.Fill(RackInletC, double.NaN);
        Array.Fill(RackOutletC, double.NaN);
        Array.Fill(UnitFanSpeed, double.NaN);
        Array.Fill(UnitSupplyC, double.NaN);
        Array.Fill(UnitReturnC, double.NaN);
        Array.Fill(UnitRunning, true);
    }

    /// <summary>Seconds since an arbitrary origin (only differences matter).</summary>
    public double TimeSeconds { get; set; }

    public double[] RackPowerKw { get; }

    public double[] RackInletC { get; }

    public double[] RackOutletC { get; }

    /// <summary>Fan speed 0..1.</summary>
    public double[] UnitFanSpeed { get; }

    public double[] UnitSupplyC { get; }

    public double[] UnitReturnC { get; }

    /// <summary>
    /// Whether each unit runs, for the physics: true when its state was not read (a unit without a state reading is
    /// taken as moving air). Whether a unit runs or has failed is only known where <see cref="UnitStateRead"/> is true.
    /// </summary>
    public bool[] UnitRunning { get; }

    /// <summary>True where <see cref="UnitRunning"/> comes from a state reading of the unit, false where it is assumed.</summary>
    public bool[] UnitStateRead { get; }

    /// <summary>The room (hot-air) temperature: mean of the units' return readings, else of the rack outlets; NaN when neither.</summary>
    public double RoomC()
    {
        var r = Mean(UnitReturnC);
        return double.IsNaN(r) ? Mean(RackOutletC) : r;
    }

    public double TotalPowerKw()
    {
        var s = 0.0;
        foreach (var p in RackPowerKw)
        {
            if (!double.IsNaN(p))
            {
                s += p;
            }
        }

        return s;
    }

    /// <summary>
    /// A rack reading above this multiple of its power budget is a meter fault, not load: a rack's feeds are sized near
    /// its budget, so three times it cannot be drawn.
    /// </summary>
    public const double MaxPowerBudgetMultiple = 3;

    /// <summary>
    /// Makes each implausible rack power reading missing (NaN, so it is held from the previous frame) and returns the
    /// indices of those racks. Implausible: not finite, at or below 0 kW, or above <see cref="MaxPowerBudgetMultiple"/>
    /// times the rack's budget. Such readings (a PDU answering 0 after a reboot, a W value read as kW) reached the
    /// calibration, which fitted the room's heat capacity and airflow to heat that was never there, and the forecast's
    /// start, which moved the time to thermal shutdown by minutes. A rack that really goes dark keeps its last load in
    /// the twin: the safe side for a cooling-failure forecast.
    /// </summary>
    public List<int> DropImplausiblePower(IReadOnlyList<ThermalRack> racks)
    {
        ArgumentNullException.ThrowIfNull(racks);
        var dropped = new List<int>();
        for (var i = 0; i < RackPowerKw.Length && i < racks.Count; i++)
        {
            var p = RackPowerKw[i];
            if (double.IsNaN(p))
            {
                continue;
            }

            if (!double.IsFinite(p) || p <= 0 || (racks[i].BudgetKw > 0 && p > MaxPowerBudgetMultiple * racks[i].BudgetKw))
            {
                RackPowerKw[i] = double.NaN;
                dropped.Add(i);
            }
        }

        return dropped;
    }

    /// <summary>Copies readings missing here from <paramref name="previous"/> (sample-and-hold between polls).</summary>
    public void FillFrom(ZoneFrame previous)
    {
        ArgumentNullException.ThrowIfNull(previous);
        Hold(RackPowerKw, previous.RackPowerKw);
        Hold(RackInletC, previous.RackInletC);
        Hold(RackOutletC, previous.RackOutletC);
        Hold(UnitFanSpeed, previous.UnitFanSpeed);
        Hold(UnitSupplyC, previous.UnitSupplyC);
        Hold(UnitReturnC, previous.UnitReturnC);
    }

    public ZoneFrame Clone()
    {
        var c = new ZoneFrame(TimeSeconds, RackPowerKw.Length, UnitFanSpeed.Length);
        RackPowerKw.CopyTo(c.RackPowerKw, 0);
        RackInletC.CopyTo(c.RackInletC, 0);
        RackOutletC.CopyTo(c.RackOutletC, 0);
        UnitFanSpeed.CopyTo(c.UnitFanSpeed, 0);
        UnitSupplyC.CopyTo(c.UnitSupplyC, 0);
        UnitReturnC.CopyTo(c.UnitReturnC, 0);
        UnitRunning.CopyTo(c.UnitRunning, 0);
        UnitStateRead.CopyTo(c.UnitStateRead, 0);
        return c;
    }

    /// <summary>A copy with one more rack at the end, drawing <paramref name="powerKw"/>, its inlet not yet measured.</summary>
    public ZoneFrame WithRack(double powerKw)
    {
        var c = new ZoneFrame(TimeSeconds, RackPowerKw.Length + 1, UnitFanSpeed.Length);
        RackPowerKw.CopyTo(c.RackPowerKw, 0);
        RackInletC.CopyTo(c.RackInletC, 0);
        RackOutletC.CopyTo(c.RackOutletC, 0);
        UnitFanSpeed.CopyTo(c.UnitFanSpeed, 0);
        UnitSupplyC.CopyTo(c.UnitSupplyC, 0);
        UnitReturnC.CopyTo(c.UnitReturnC, 0);
        UnitRunning.CopyTo(c.UnitRunning, 0);
        UnitStateRead.CopyTo(c.UnitStateRead, 0);
        c.RackPowerKw[^1] = powerKw;
        return c;
    }

    private static void Hold(double[] now, double[] before)
    {
        for (var i = 0; i < now.Length; i++)
        {
            if (double.IsNaN(now[i]))
            {
                now[i] = before[i];
            }
        }
    }

    private static double Mean(double[] values)
    {
        double s = 0;
        var n = 0;
        foreach (var v in values)
        {
            if (!double.IsNaN(v))
            {
                s += v;
                n++;
            }
        }

        return n == 0 ? double.NaN : s / n;
    }
}
