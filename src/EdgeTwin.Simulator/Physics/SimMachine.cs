namespace EdgeTwin.Simulator.Physics;

public enum MachineState
{
    Running = 1,
    Stopped = 2,
    /// <summary>Tripped on a bearing failure: stopped until repaired.</summary>
    Failed = 3,
}

/// <summary>What happened to a machine's bearing during one step.</summary>
public enum BearingStep
{
    None = 0,
    /// <summary>A defect (first spall) initiated on a healthy bearing.</summary>
    DefectStarted = 1,
    /// <summary>The defect reached failure size: the drive tripped.</summary>
    Failed = 2,
}

/// <summary>
/// A motor on a variable-frequency drive with a rolling-element bearing that degrades in two phases:
/// <list type="number">
/// <item>Healthy until a defect initiates after a random running time (Weibull, shape 1.5, mean
///   <see cref="MachineSpec.MeanHoursToDefect"/>; without it the defect is there from the start).</item>
/// <item>The defect grows at a rate proportional to speed and to the damage already there
///   (dw/dt = k·(n/n_rated)·(1 + a·w), a spall widening under the rollers), k set from the hidden growth time
///   (<see cref="MachineSpec.HoursToFailure"/>, log-normally spread per defect); at w = 1 the drive trips.</item>
/// </list>
/// Symptoms follow the usual order of a bearing defect: impacts first raise the vibration's kurtosis (impulsive
/// signal while the spall is small; it falls back as damage spreads and the signal becomes broadband), then the
/// vibration RMS, then bearing temperature and, a little, motor current (friction torque). Healthy machines carry
/// confounders: a daily load cycle, ambient temperature swing and short process knocks. A fan
/// (<see cref="MachineSpec.Fan"/>) runs at a speed that follows the day instead, and its symptoms move with that speed.
/// </summary>
public sealed class SimMachine
{
    /// <summary>How strongly wear feeds itself (a): 3 means a worn bearing wears 4× as fast as a new one.</summary>
    internal const double WearFeedback = 3;

    /// <summary>Size of a freshly initiated defect (wear units).</summary>
    internal const double InitialDefect = 0.01;

    private const double OnsetWeibullShape = 1.5;
    private const double AmbientC = 30;
    private const double BearingTauSeconds = 600;
    private readonly SimRandom _random;
    private double _wearRatePerSecond;
    private double _loadNoise;
    private double _bearingC;
    private double _hoursToOnset;
    private double _knockSecondsLeft;
    private double _elapsedSeconds;

    /// <summary>A machine on its own (benchmarks and model training run machines without a data centre around them).</summary>
    public SimMachine(MachineSpec spec, int seed)
        : this(spec, new SimRandom(seed))
    {
    }

    internal SimMachine(MachineSpec spec, SimRandom random)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        _random = random;
        Wear = Math.Clamp(spec.InitialWear, 0, 1);
        _wearRatePerSecond = RateFor(spec.HoursToFailure);
        _hoursToOnset = spec.MeanHoursToDefect is null || Wear > 0 ? 0 : DrawOnsetHours();
        if (spec.MeanHoursToDefect is not null && Wear > 0)
        {
            _wearRatePerSecond = RateFor(DrawGrowthHours());
        }

        _bearingC = AmbientC + 20;
        VibrationSensor = new SensorChannel(2, 0.05, floor: 0);
        KurtosisSensor = new SensorChannel(30, 0.2, floor: 1.5);
        BearingSensor = new SensorChannel(30, 0.2);
    }

    public MachineSpec Spec { get; }

    public string Id => Spec.Id;

    public MachineState State { get; internal set; } = MachineState.Running;

    /// <summary>Bearing damage, 0 healthy, 1 failed.</summary>
    public double Wear { get; internal set; }

    /// <summary>True once a defect has initiated (and until the bearing is replaced).</summary>
    public bool DefectPresent => Wear > 0 || _hoursToOnset <= 0;

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

    /// <summary>True kurtosis of the vibration signal (3 for a Gaussian, healthy bearing).</summary>
    public double VibrationKurtosis { get; private set; } = 3;

    /// <summary>True bearing temperature.</summary>
    public double BearingTemperatureC => _bearingC;

    public double RunHours { get; private set; }

    public double DcBusVoltageV => State == MachineState.Running ? 540 + (5 * Load) : 560;

    /// <summary>Drive fault code: 0 none, 4210 (bearing over-temperature/vibration trip, ABB style) after a failure.</summary>
    public int FaultCode => State == MachineState.Failed ? 4210 : 0;

    public SensorChannel VibrationSensor { get; }

    public SensorChannel KurtosisSensor { get; }

    public SensorChannel BearingSensor { get; }

    /// <summary>
    /// Expected running hours until failure at rated speed from the present damage (the answer a maintenance model
    /// should approach); infinity while no defect has initiated.
    /// </summary>
    public double TrueRemainingHours =>
        State == MachineState.Failed ? 0
        : !DefectPresent ? double.PositiveInfinity
        : Math.Log((1 + WearFeedback) / (1 + (WearFeedback * Wear))) / (WearFeedback * _wearRatePerSecond * WearAcceleration) / 3600;

    /// <summary>Advances this machine alone by <paramref name="dt"/> (split into steps of at most 10 s).</summary>
    public BearingStep Step(TimeSpan dt)
    {
        var result = BearingStep.None;
        var left = dt.TotalSeconds;
        while (left > 1e-9)
        {
            var step = Math.Min(10, left);
            var r = Update(step);
            if (r != BearingStep.None)
            {
                result = r;
            }

            left -= step;
        }

        return result;
    }

    /// <summary>A new bearing: healthy, with a fresh onset time drawn when onsets are random.</summary>
    internal void ReplaceBearing()
    {
        Wear = 0;
        if (Spec.MeanHoursToDefect is not null)
        {
            _hoursToOnset = DrawOnsetHours();
        }
    }

    internal BearingStep Update(double dtSeconds)
    {
        var result = BearingStep.None;
        _elapsedSeconds += dtSeconds;
        var phi = Math.Exp(-dtSeconds / 60);
        _loadNoise = (phi * _loadNoise) + (0.05 * Math.Sqrt(1 - (phi * phi)) * _random.Gaussian());
        var day = Math.Sin(2 * Math.PI * _elapsedSeconds / 86400);
        if (State == MachineState.Running)
        {
            if (Spec.Fan is { } fan)
            {
                var speed = Math.Clamp(fan.MeanSpeed + (fan.DailySpeedSwing * day) + _loadNoise, FanDuty.MinSpeed, 1);
                SpeedRpm = Spec.RatedSpeedRpm * speed;
                Load = speed * speed * speed;
            }
            else
            {
                SpeedRpm = Spec.RatedSpeedRpm;
                Load = Math.Clamp(Spec.LoadFactor + (Spec.DailyLoadSwing * day) + _loadNoise, 0.05, 1.2);
            }

            var speedFraction = SpeedRpm / Spec.RatedSpeedRpm;
            RunHours += dtSeconds / 3600;
            if (_hoursToOnset > 0)
            {
                _hoursToOnset -= dtSeconds / 3600 * speedFraction;
                if (_hoursToOnset <= 0)
                {
                    Wear = InitialDefect;
                    _wearRatePerSecond = RateFor(DrawGrowthHours());
                    result = BearingStep.DefectStarted;
                }
            }
            else
            {
                Wear += _wearRatePerSecond * WearAcceleration * speedFraction * (1 + (WearFeedback * Wear)) * dtSeconds;
            }

            if (Wear >= 1)
            {
                Wear = 1;
                State = MachineState.Failed;
                result = BearingStep.Failed;
            }

            if (_knockSecondsLeft > 0)
            {
                _knockSecondsLeft -= dtSeconds;
            }
            else if (Spec.KnocksPerDay > 0 && _random.NextDouble() < Spec.KnocksPerDay * dtSeconds / 86400)
            {
                _knockSecondsLeft = _random.Uniform(60, 600);
            }
        }

        var ambient = AmbientC + (Spec.DailyLoadSwing > 0 || Spec.Fan is not null ? 3 * Math.Sin((2 * Math.PI * _elapsedSeconds / 86400) - 1) : 0);
        // A fan's symptoms scale with its speed: imbalance vibration with its square, a defect's impacts and friction heat
        // with the speed itself; a floor of structure-borne vibration from the unit around it stays at any speed.
        var fanSpeed = Spec.Fan is not null ? SpeedRpm / Spec.RatedSpeedRpm : 1;
        var knock = _knockSecondsLeft > 0 ? 1.0 : 0.0;
        if (State != MachineState.Running)
        {
            SpeedRpm = 0;
            Load = 0;
            CurrentA = 0;
            PowerKw = 0;
            VibrationRmsMmPerS = 0.05;
            VibrationKurtosis = 3;
        }
        else
        {
            // Friction of a damaged bearing costs a little extra torque.
            var friction = 1 + (0.08 * Wear * Wear);
            PowerKw = Spec.RatedKw * Load * friction / 0.92;
            CurrentA = Spec.RatedCurrentA * (0.3 + (0.7 * Load * friction));
            VibrationRmsMmPerS = Spec.Fan is null
                ? 0.8 + (0.6 * Load) + (9 * Math.Pow(Wear, 2.5)) + (0.8 * knock)
                : 0.4 + (0.9 * fanSpeed * fanSpeed) + (9 * Math.Pow(Wear, 2.5) * fanSpeed) + (0.8 * knock);
            // Impacts of a small spall make the signal impulsive (kurtosis peaks near w = 0.3), a spread defect
            // is broadband again but stays above a healthy 3.
            var x = Wear / 0.3;
            VibrationKurtosis = 3 + (Wear > 0 ? (5 * x * Math.Exp(1 - x)) + (1.5 * Wear) : 0) + (2.5 * knock);
        }

        var bearingTarget = State == MachineState.Running ? ambient + (25 * Load) + (40 * Wear * Wear * fanSpeed) : ambient;
        _bearingC += (bearingTarget - _bearingC) * (1 - Math.Exp(-dtSeconds / BearingTauSeconds));
        VibrationSensor.Update(VibrationRmsMmPerS, dtSeconds, _random);
        KurtosisSensor.Update(VibrationKurtosis, dtSeconds, _random);
        BearingSensor.Update(_bearingC, dtSeconds, _random);
        return result;
    }

    // Closed form of the wear ODE from 0 to 1 at rated speed: T = ln(1 + a) / (a·k).
    private static double RateFor(double hoursToFailure) => Math.Log(1 + WearFeedback) / (WearFeedback * hoursToFailure * 3600);

    private double DrawOnsetHours()
    {
        var mean = Spec.MeanHoursToDefect!.Value;
        if (double.IsPositiveInfinity(mean))
        {
            return double.PositiveInfinity;
        }

        // Weibull scale from the mean: mean = λ·Γ(1 + 1/β); Γ(1 + 1/1.5) = 0.9027.
        var scale = mean / 0.902745;
        return scale * Math.Pow(-Math.Log(1 - _random.NextDouble()), 1 / OnsetWeibullShape);
    }

    private double DrawGrowthHours()
    {
        var s = Spec.GrowthSpread;
        return s > 0 ? Spec.HoursToFailure * Math.Exp((s * _random.Gaussian()) - (s * s / 2)) : Spec.HoursToFailure;
    }
}
