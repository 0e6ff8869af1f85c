namespace EdgeTwin.Simulator.Physics;

public enum CoolingUnitState
{
    Running = 0,
    /// <summary>Switched off or tripped: no airflow, no cooling.</summary>
    Stopped = 1,
    /// <summary>The unit is on but its fans have failed: no airflow, so no cooling reaches the racks.</summary>
    FanFailed = 2,
}

/// <summary>
/// A CRAC/CRAH unit: takes room air in at the return temperature and blows it out at the supply
/// temperature. Its fans are driven by a PI controller on the warmest inlet among the racks it serves;
/// airflow scales with fan speed, fan power with its cube, and coil capacity sub-linearly with airflow.
/// The coil has thermal mass, so the supply temperature lags.
/// </summary>
public sealed class SimCoolingUnit
{
    private const double CoilTauSeconds = 45;
    private const double StoppedTauSeconds = 90;
    private const double Kp = 0.12;
    private const double Ki = 0.002;
    private double _integral;

    internal SimCoolingUnit(CoolingUnitSpec spec, int index, double initialSupplyC, double initialFanSpeed)
    {
        Spec = spec;
        Index = index;
        SupplySetpointC = spec.SupplySetpointC;
        SupplyC = initialSupplyC;
        FanSpeed = initialFanSpeed;
        _integral = initialFanSpeed;
        MaxAirflowKgPerS = spec.CapacityKw / (Air.Cp * spec.DesignDeltaTK);
        SupplySensor = new SensorChannel(10, 0.1);
        ReturnSensor = new SensorChannel(10, 0.1);
    }

    public CoolingUnitSpec Spec { get; }

    public string Id => Spec.Id;

    internal int Index { get; }

    public CoolingUnitState State { get; internal set; }

    public double SupplySetpointC { get; set; }

    /// <summary>A fan speed set from outside (a BMS or an optimiser's set point) that replaces the unit's own fan control; null: own control.</summary>
    public double? FanSpeedOverride { get; set; }

    /// <summary>True supply air temperature.</summary>
    public double SupplyC { get; private set; }

    /// <summary>True return air temperature (the room's hot air).</summary>
    public double ReturnC { get; private set; }

    /// <summary>Fan speed, 0..1.</summary>
    public double FanSpeed { get; private set; }

    public double MaxAirflowKgPerS { get; }

    public double AirflowKgPerS { get; private set; }

    public double AirflowCfm => AirflowKgPerS / Air.Density * Air.CubicMetresPerSecondToCfm;

    /// <summary>Heat taken out of the room (kW).</summary>
    public double CoolingKw { get; private set; }

    public double FanPowerKw { get; private set; }

    /// <summary>
    /// Coefficient of performance of the unit's refrigeration (heat removed per kW of compressor power): about 3 for an
    /// air-cooled DX unit. Only the site's main meter sees it, so a simulated PUE lands where real rooms do (1.3–1.8).
    /// </summary>
    public const double CompressorCop = 3.0;

    /// <summary>Electrical power of the refrigeration (compressor) for the heat removed now (kW).</summary>
    public double CompressorKw => CoolingKw / CompressorCop;

    /// <summary>True when the coil cannot reach the set point (supply above it by more than 0.5 K).</summary>
    public bool CapacityLimited { get; private set; }

    public SensorChannel SupplySensor { get; }

    public SensorChannel ReturnSensor { get; }

    public bool IsRunning => State == CoolingUnitState.Running;

    internal void Update(double dtSeconds, double roomC, double warmestServedInletC)
    {
        ReturnC = roomC;
        if (State != CoolingUnitState.Running)
        {
            // Without airflow the supply sensor ends up reading still room air.
            FanSpeed = State == CoolingUnitState.Stopped ? 0 : FanSpeed;
            AirflowKgPerS = 0;
            FanPowerKw = 0;
            CoolingKw = 0;
            CapacityLimited = false;
            SupplyC += (roomC - SupplyC) * (1 - Math.Exp(-dtSeconds / StoppedTauSeconds));
            return;
        }

        if (FanSpeedOverride is { } forced)
        {
            // Bumpless: the integrator follows the forced speed so releasing the override does not jump.
            FanSpeed = Math.Clamp(forced, Spec.MinFanSpeed, 1);
            _integral = FanSpeed;
        }
        else
        {
            var error = warmestServedInletC - Spec.InletTargetC;
            var unclamped = (Kp * error) + _integral;
            // Anti-windup: integrate only while the output is not pinned against the way the error pushes.
            if (!((unclamped >= 1 && error > 0) || (unclamped <= Spec.MinFanSpeed && error < 0)))
            {
                _integral = Math.Clamp(_integral + (Ki * error * dtSeconds), Spec.MinFanSpeed, 1);
            }

            FanSpeed = Math.Clamp((Kp * error) + _integral, Spec.MinFanSpeed, 1);
        }

        AirflowKgPerS = MaxAirflowKgPerS * FanSpeed;
        FanPowerKw = Spec.FanRatedKw * FanSpeed * FanSpeed * FanSpeed;
        var capacityKw = Spec.CapacityKw * Math.Sqrt(FanSpeed);
        var neededKw = AirflowKgPerS * Air.Cp * (roomC - SupplySetpointC);
        var targetSupplyC = roomC - (Math.Clamp(neededKw, 0, capacityKw) / (AirflowKgPerS * Air.Cp));
        SupplyC += (targetSupplyC - SupplyC) * (1 - Math.Exp(-dtSeconds / CoilTauSeconds));
        CapacityLimited = SupplyC > SupplySetpointC + 0.5;
        CoolingKw = Math.Max(0, AirflowKgPerS * Air.Cp * (roomC - SupplyC));
    }

    internal void UpdateSensors(double dtSeconds, SimRandom random)
    {
        SupplySensor.Update(SupplyC, dtSeconds, random);
        ReturnSensor.Update(ReturnC, dtSeconds, random);
    }
}
