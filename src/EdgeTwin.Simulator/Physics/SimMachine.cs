namespace EdgeTwin.Simulator.Physics;

public enum MachineState
{
    Running = 1,
    Stopped = 2,
    /// <summary>Tripped on a bearing failure: stopped until repaired.</summary>
    Failed = 3,
}

/// <summary>
/// A motor on a variable-frequency drive. Its bearing wears at a rate proportional to speed and growing
/// with the wear already there (dw/dt = k·(n/n_rated)·(1 + a·w)); vibration and bearing temperature
/// rise with wear, current a little; at wear 1 the drive trips on the failure and the motor stops.
/// </summary>
public sealed class SimMachine
{
    /// <summary>How strongly wear feeds itself (a): 3 means a worn bearing wears 4× as fast as a new one.</summary>
    internal const double WearFeedback = 3;
    private const double AmbientC = 30;
    private const double BearingTauSeconds = 600;
    private readonly SimRandom _random;
    private readonly double _wearRatePerSecond;
    private double _loadNoise;
    private double _bearingC;

    internal SimMachine(MachineSpec spec, SimRandom random)
    {
        Spec = spec;
        _random = random;
        Wear = Math.Clamp(spec.InitialWear, 0, 1);
        // Closed form of the wear ODE from 0 to 1 at rated speed: T = ln(1 + a) / (a·k).
        _wearRatePerSecond = Math.Log(1 + WearFeedback) / (WearFeedback * spec.HoursToFailure * 3600);
        _bearingC = AmbientC + 20;
        VibrationSensor = new SensorChannel(2, 0.05, floor: 0);
        BearingSensor = new SensorChannel(30, 0.2);
    }

    public MachineSpec Spec { get; }

    public string Id => Spec.Id;

    public MachineState State { get; internal set; } = MachineState.Running;

    /// <summary>Bearing wear, 0 new, 1 failed.</summary>
    public double Wear { get; internal set; }

    /// <summary>Multiplies the wear rate (a fault to bring a failure forward in a demo).</summary>
    public double WearAcceleration { get; internal set; } = 1;

    public double SpeedRpm { get; private set; }

    public double FrequencyHz => SpeedRpm / Spec.RatedSpeedRpm * 50;

    /// <summary>Load as a fraction of rated torque.</summary>
    public double Load { get; private set; }

    public double CurrentA { get; private set; }

    public double PowerKw { get; private set; }

    /// <summary>True vibration velocity RMS (mm/s, ISO 10816 style).</summary>
    public double VibrationRmsMmPerS { get; private set; }

    /// <summary>True bearing temperature.</summary>
    public double BearingTemperatureC => _bearingC;

    public double RunHours { get; private set; }

    public double DcBusVoltageV => State == MachineState.Running ? 540 + (5 * Load) : 560;

    /// <summary>Drive fault code: 0 none, 4210 (bearing over-temperature/vibration trip, ABB style) after a failure.</summary>
    public int FaultCode => State == MachineState.Failed ? 4210 : 0;

    public SensorChannel VibrationSensor { get; }

    public SensorChannel BearingSensor { get; }

    /// <summary>Expected hours until failure at rated speed from the present wear (the answer a maintenance model should approach).</summary>
    public double TrueRemainingHours =>
        State == MachineState.Failed ? 0
        : Math.Log((1 + WearFeedback) / (1 + (WearFeedback * Wear))) / (WearFeedback * _wearRatePerSecond * WearAcceleration) / 3600;

    /// <returns>True when the machine failed during this step.</returns>
    internal bool Update(double dtSeconds)
    {
        var failedNow = false;
        var phi = Math.Exp(-dtSeconds / 60);
        _loadNoise = (phi * _loadNoise) + (0.05 * Math.Sqrt(1 - (phi * phi)) * _random.Gaussian());
        if (State == MachineState.Running)
        {
            SpeedRpm = Spec.RatedSpeedRpm;
            Load = Math.Clamp(Spec.LoadFactor + _loadNoise, 0.05, 1.2);
            var speedFraction = SpeedRpm / Spec.RatedSpeedRpm;
            Wear += _wearRatePerSecond * WearAcceleration * speedFraction * (1 + (WearFeedback * Wear)) * dtSeconds;
            RunHours += dtSeconds / 3600;
            if (Wear >= 1)
            {
                Wear = 1;
                State = MachineState.Failed;
                failedNow = true;
            }
        }

        if (State != MachineState.Running)
        {
            SpeedRpm = 0;
            Load = 0;
            CurrentA = 0;
            PowerKw = 0;
            VibrationRmsMmPerS = 0.05;
        }
        else
        {
            // Friction of a worn bearing costs a little extra torque.
            var friction = 1 + (0.08 * Wear * Wear);
            PowerKw = Spec.RatedKw * Load * friction / 0.92;
            CurrentA = Spec.RatedCurrentA * (0.3 + (0.7 * Load * friction));
            VibrationRmsMmPerS = 0.8 + (0.6 * Load) + (9 * Math.Pow(Wear, 2.5));
        }

        var bearingTarget = State == MachineState.Running ? AmbientC + (25 * Load) + (40 * Wear * Wear) : AmbientC;
        _bearingC += (bearingTarget - _bearingC) * (1 - Math.Exp(-dtSeconds / BearingTauSeconds));
        VibrationSensor.Update(VibrationRmsMmPerS, dtSeconds, _random);
        BearingSensor.Update(_bearingC, dtSeconds, _random);
        return failedNow;
    }
}
