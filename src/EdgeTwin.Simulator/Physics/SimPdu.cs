namespace EdgeTwin.Simulator.Physics;

public enum PduLoadState
{
    Normal = 1,
    /// <summary>A phase above 80 % of its breaker rating (the continuous-load derating).</summary>
    NearOverload = 2,
    /// <summary>A phase above its breaker rating.</summary>
    Overload = 3,
}

/// <summary>
/// A rack PDU: one outlet per server, outlets spread round-robin over its phases. Each server's power
/// is shared evenly by the rack's live feeds. An injected overload adds load on outlet 1.
/// </summary>
public sealed class SimPdu
{
    private readonly double[] _outletCurrentA;
    private readonly double[] _outletPowerW;
    private readonly double[] _phaseCurrentA;
    private readonly double[] _phasePowerW;

    internal SimPdu(PduSpec spec, SimRack rack)
    {
        Spec = spec;
        Rack = rack;
        _outletCurrentA = new double[rack.ServerCount];
        _outletPowerW = new double[rack.ServerCount];
        _phaseCurrentA = new double[spec.Phases];
        _phasePowerW = new double[spec.Phases];
    }

    public PduSpec Spec { get; }

    public string Id => Spec.Id;

    public SimRack Rack { get; }

    /// <summary>Whether power reaches this PDU (its UPS output is on).</summary>
    public bool Powered { get; internal set; } = true;

    public double OverloadKw { get; internal set; }

    public int OutletCount => _outletCurrentA.Length;

    public int PhaseCount => _phaseCurrentA.Length;

    public double OutletCurrentA(int outlet) => _outletCurrentA[outlet];

    public double OutletPowerW(int outlet) => _outletPowerW[outlet];

    public double PhaseCurrentA(int phase) => _phaseCurrentA[phase];

    public double PhasePowerW(int phase) => _phasePowerW[phase];

    public double PowerKw { get; private set; }

    public double ApparentPowerKva => PowerKw / Spec.PowerFactor;

    public double CurrentA { get; private set; }

    public double VoltageV => Powered ? Spec.VoltageV : 0;

    /// <summary>Energy delivered since the simulation started (kWh), a counter.</summary>
    public double EnergyKwh { get; private set; }

    public PduLoadState LoadState { get; private set; } = PduLoadState.Normal;

    /// <summary>Highest phase current as a fraction of the breaker rating.</summary>
    public double MaxPhaseLoadFraction { get; private set; }

    internal void Update(double dtSeconds, int liveFeeds)
    {
        Array.Clear(_phaseCurrentA);
        Array.Clear(_phasePowerW);
        var totalW = 0.0;
        for (var o = 0; o < _outletCurrentA.Length; o++)
        {
            var w = Powered && liveFeeds > 0 ? Rack.ServerPowerW(o) / liveFeeds : 0;
            if (o == 0 && Powered)
            {
                w += OverloadKw * 1000;
            }

            _outletPowerW[o] = w;
            _outletCurrentA[o] = w / (Spec.VoltageV * Spec.PowerFactor);
            _phaseCurrentA[o % _phaseCurrentA.Length] += _outletCurrentA[o];
            _phasePowerW[o % _phasePowerW.Length] += w;
            totalW += w;
        }

        PowerKw = totalW / 1000;
        CurrentA = _phaseCurrentA.Sum();
        EnergyKwh += PowerKw * dtSeconds / 3600;
        MaxPhaseLoadFraction = _phaseCurrentA.Max() / Spec.BreakerA;
        LoadState = MaxPhaseLoadFraction > 1 ? PduLoadState.Overload
            : MaxPhaseLoadFraction > 0.8 ? PduLoadState.NearOverload
            : PduLoadState.Normal;
    }
}
