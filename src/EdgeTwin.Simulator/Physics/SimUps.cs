namespace EdgeTwin.Simulator.Physics;

public enum UpsOutputSource
{
    /// <summary>Utility power, double conversion.</summary>
    Normal = 3,
    Battery = 5,
    /// <summary>Battery exhausted: output off.</summary>
    None = 2,
}

/// <summary>
/// A UPS feeding PDUs. Output follows the downstream load; on a utility failure it runs from its
/// battery until it is empty, then its output drops (and the PDUs behind it lose power).
/// Runtime is the remaining battery energy at the present load.
/// </summary>
public sealed class SimUps
{
    private const double RechargeFractionPerHour = 0.2;

    internal SimUps(UpsSpec spec)
    {
        Spec = spec;
        BatteryTemperatureC = 25;
    }

    public UpsSpec Spec { get; }

    public string Id => Spec.Id;

    private const double NominalBatteryV = 192;
    private bool _utilityFailed;

    public bool UtilityFailed
    {
        get => _utilityFailed;
        internal set
        {
            if (value && !_utilityFailed)
            {
                InputLineBads++;
            }

            _utilityFailed = value;
        }
    }

    /// <summary>How often the input went out of tolerance (RFC 1628 upsInputLineBads), a counter.</summary>
    public long InputLineBads { get; private set; }

    public double SecondsOnBattery { get; private set; }

    /// <summary>Energy drawn from the utility since the start (kWh), a counter.</summary>
    public double InputEnergyKwh { get; private set; }

    /// <summary>DC battery voltage: follows the charge and sags under a discharge.</summary>
    public double BatteryVoltageV => OutputSource == UpsOutputSource.None ? 0
        : NominalBatteryV * (0.92 + (0.08 * BatteryChargePercent / 100)) - (OnBattery ? 6 * LoadPercent / 100 : 0);

    /// <summary>Battery current: positive discharging, negative charging.</summary>
    public double BatteryCurrentA => BatteryVoltageV <= 0 ? 0
        : OnBattery ? OutputKw * 1000 / Efficiency / BatteryVoltageV
        : BatteryChargePercent < 100 ? -Spec.BatteryKwh * RechargeFractionPerHour * 1000 / BatteryVoltageV
        : 0;

    public UpsOutputSource OutputSource { get; private set; } = UpsOutputSource.Normal;

    public bool OnBattery => OutputSource == UpsOutputSource.Battery;

    public bool OutputOn => OutputSource != UpsOutputSource.None;

    public double OutputKw { get; private set; }

    public double LoadPercent => OutputKw / Spec.CapacityKw * 100;

    /// <summary>Power drawn from the utility (output plus conversion losses and battery charging).</summary>
    public double InputKw { get; private set; }

    /// <summary>Battery charge, 0..100 %.</summary>
    public double BatteryChargePercent { get; private set; } = 100;

    /// <summary>Minutes the battery can carry the present load.</summary>
    public double RuntimeMinutes => OutputKw <= 0.01 ? 999 : Math.Min(999, BatteryChargePercent / 100 * Spec.BatteryKwh / OutputKw * 60);

    public double BatteryTemperatureC { get; private set; }

    public double InputVoltageV => UtilityFailed ? 0 : Spec.OutputVoltageV;

    public double OutputVoltageV => OutputOn ? Spec.OutputVoltageV : 0;

    public double OutputCurrentA => OutputVoltageV <= 0 ? 0 : OutputKw * 1000 / OutputVoltageV;

    public double FrequencyHz => OutputOn ? 50 : 0;

    /// <summary>Conversion efficiency rises with load (typical double-conversion curve).</summary>
    public double Efficiency => 0.97 - (0.08 * Math.Exp(-LoadPercent / 15));

    internal void Update(double dtSeconds, double downstreamKw)
    {
        OutputKw = OutputOn ? downstreamKw : 0;
        var hours = dtSeconds / 3600;
        SecondsOnBattery = OnBattery || (UtilityFailed && OutputOn) ? SecondsOnBattery + dtSeconds : 0;
        if (UtilityFailed)
        {
            if (OutputOn)
            {
                OutputSource = UpsOutputSource.Battery;
                var drawKwh = OutputKw / Efficiency * hours;
                BatteryChargePercent = Math.Max(0, BatteryChargePercent - (drawKwh / Spec.BatteryKwh * 100));
                if (BatteryChargePercent <= 0)
                {
                    OutputSource = UpsOutputSource.None;
                    OutputKw = 0;
                }
            }

            InputKw = 0;
        }
        else
        {
            OutputSource = UpsOutputSource.Normal;
            var charging = BatteryChargePercent < 100 ? Spec.BatteryKwh * RechargeFractionPerHour : 0;
            BatteryChargePercent = Math.Min(100, BatteryChargePercent + (RechargeFractionPerHour * 100 * hours));
            InputKw = (OutputKw / Efficiency) + charging;
            InputEnergyKwh += InputKw * hours;
        }

        // Batteries warm a little while discharging and cool back to room temperature.
        var target = 25 + (OnBattery ? 8 : 0);
        BatteryTemperatureC += (target - BatteryTemperatureC) * (1 - Math.Exp(-dtSeconds / 1800));
    }
}
