namespace EdgeTwin.Simulator.Physics;

/// <summary>
/// A rack of servers. Each server's utilisation follows the site's daily pattern plus its own slow
/// noise; its power follows utilisation, its fans speed up when its inlet gets warm (power and airflow
/// rise non-linearly), and it switches itself off when its inlet passes the shutdown temperature.
/// Servers higher in the rack draw more recirculated hot air.
/// </summary>
public sealed class SimRack
{
    // Air temperature rise across a server at nominal fan speed.
    internal const double ServerDeltaTK = 12;
    private const double IdleFraction = 0.35;
    private const double NoiseTauSeconds = 300;
    private const double NoiseSigma = 0.06;
    private const double InletTauSeconds = 20;

    private readonly double[] _utilisation;
    private readonly double[] _noise;
    private readonly double[] _powerW;
    private readonly double[] _inletC;
    private readonly bool[] _on;
    private readonly SimRandom _random;
    private double _sharedNoise;

    internal SimRack(RackSpec spec, int index, double initialInletC, SimRandom random)
    {
        Spec = spec;
        Index = index;
        _random = random;
        _utilisation = new double[spec.Servers];
        _noise = new double[spec.Servers];
        _powerW = new double[spec.Servers];
        _inletC = new double[spec.Servers];
        _on = new bool[spec.Servers];
        Array.Fill(_on, true);
        Array.Fill(_inletC, initialInletC);
        InletC = initialInletC;
        OutletC = initialInletC + ServerDeltaTK;
        InletSensor = new SensorChannel(15, 0.1);
        OutletSensor = new SensorChannel(15, 0.15);
    }

    public RackSpec Spec { get; }

    public string Id => Spec.Id;

    internal int Index { get; }

    /// <summary>IT power drawn by the servers plus any extra load plugged into its PDUs (kW).</summary>
    public double PowerKw { get; private set; }

    /// <summary>Air the servers pull through (kg/s).</summary>
    public double AirflowKgPerS { get; private set; }

    /// <summary>Cold air reaching the rack front from the cooling units (kg/s).</summary>
    public double ColdAirKgPerS { get; internal set; }

    /// <summary>Fraction of the inlet air that is recirculated hot air.</summary>
    public double Recirculation { get; private set; }

    /// <summary>True inlet temperature at mid height (where the rack's sensor sits).</summary>
    public double InletC { get; private set; }

    /// <summary>True outlet (hot aisle) temperature.</summary>
    public double OutletC { get; private set; }

    public SensorChannel InletSensor { get; }

    public SensorChannel OutletSensor { get; }

    /// <summary>
    /// The high temperature threshold of a rack probe's card (<c>probe-RACK</c>) until <c>probe-threshold</c> sets one: none
    /// (+∞), so the alarm status reads normal whatever the inlet, as a simulated probe always did.
    /// </summary>
    public const double DefaultProbeHighThresholdC = double.PositiveInfinity;

    /// <summary>How far above its high threshold the card's critical (maximum) threshold is, K.</summary>
    public const double ProbeCriticalMarginK = 5;

    /// <summary>True while the rack's inlet probe (device <c>probe-RACK</c>) is disconnected from its card (<c>probe-lost</c>).</summary>
    public bool ProbeLost { get; internal set; }

    /// <summary>
    /// The card's high temperature threshold of the rack's probe (<c>probe-threshold</c>), °C: above it the alarm status is a
    /// warning, <see cref="ProbeCriticalMarginK"/> above it critical.
    /// </summary>
    public double ProbeHighThresholdC { get; internal set; } = DefaultProbeHighThresholdC;

    public int ServerCount => Spec.Servers;

    public int ServersRunning { get; private set; }

    /// <summary>Servers that switched off on over-temperature (they stay off until <see cref="RestartServers"/>).</summary>
    public int ServersShutDown => Spec.Servers - ServersRunning;

    public double ServerPowerW(int server) => _powerW[server];

    public double ServerInletC(int server) => _inletC[server];

    public bool ServerRunning(int server) => _on[server];

    /// <summary>Mean utilisation of the running servers.</summary>
    public double Utilisation { get; private set; }

    internal double ExtraLoadKw { get; set; }

    internal bool Powered { get; set; } = true;

    internal void RestartServers() => Array.Fill(_on, true);

    /// <summary>Updates load, power and airflow demand for this step.</summary>
    /// <returns>How many servers shut down on over-temperature during this step.</returns>
    internal int UpdateLoad(double dtSeconds, double dailyLevel, double shutdownInletC)
    {
        var phi = Math.Exp(-dtSeconds / NoiseTauSeconds);
        var innovation = NoiseSigma * Math.Sqrt(1 - (phi * phi));
        _sharedNoise = (phi * _sharedNoise) + (innovation * _random.Gaussian());
        var maxServerW = Spec.DesignKw * 1000 / Spec.Servers;
        var baseLevel = Spec.BaseUtilisation + (Spec.DailyAmplitude * dailyLevel) + _sharedNoise;
        double powerW = 0, airflow = 0, utilSum = 0;
        var running = 0;
        var shutdowns = 0;
        for (var s = 0; s < _utilisation.Length; s++)
        {
            _noise[s] = (phi * _noise[s]) + (innovation * _random.Gaussian());
            _utilisation[s] = Math.Clamp(baseLevel + _noise[s], 0.02, 1);
            if (_on[s] && _inletC[s] >= shutdownInletC)
            {
                _on[s] = false;
                shutdowns++;
            }

            if (!_on[s] || !Powered)
            {
                _powerW[s] = 0;
                continue;
            }

            // Server fans hold speed up to 27 °C inlet, then ramp; fan power grows with speed cubed.
            var fan = Math.Clamp(1 + (0.08 * (_inletC[s] - 27)), 1, 1.8);
            var fanExtraW = 0.04 * maxServerW * ((fan * fan * fan) - 1);
            var w = (maxServerW * (IdleFraction + ((1 - IdleFraction) * _utilisation[s]))) + fanExtraW;
            _powerW[s] = w;
            powerW += w;
            airflow += fan * w / 1000 / (Air.Cp * ServerDeltaTK);
            utilSum += _utilisation[s];
            running++;
        }

        ServersRunning = running;
        Utilisation = running == 0 ? 0 : utilSum / running;
        PowerKw = (powerW / 1000) + ExtraLoadKw;
        AirflowKgPerS = airflow + (ExtraLoadKw / (Air.Cp * ServerDeltaTK));
        return shutdowns;
    }

    /// <summary>Mixes cold and recirculated air at the inlet and moves the inlet temperatures toward it.</summary>
    internal void UpdateTemperatures(double dtSeconds, double coldAirC, double roomC)
    {
        var fraction = AirflowKgPerS <= 0 ? 1 : Math.Min(1, ColdAirKgPerS / AirflowKgPerS);
        Recirculation = Spec.BaseRecirculation + ((1 - Spec.BaseRecirculation) * (1 - fraction));
        var target = ((1 - Recirculation) * coldAirC) + (Recirculation * roomC);
        var alpha = 1 - Math.Exp(-dtSeconds / InletTauSeconds);
        InletC += (target - InletC) * alpha;
        OutletC = AirflowKgPerS <= 0 ? InletC + ((roomC - InletC) * 0.5) : InletC + (PowerKw / (AirflowKgPerS * Air.Cp));
        var top = Math.Max(1, _inletC.Length - 1);
        for (var s = 0; s < _inletC.Length; s++)
        {
            // Bottom server sees the mid-height temperature minus a little, top one the most hot air.
            var height = (double)s / top;
            var serverTarget = InletC + ((roomC - InletC) * Spec.TopRecirculation * ((height * height) - 0.25));
            _inletC[s] += (serverTarget - _inletC[s]) * alpha;
        }
    }
}
