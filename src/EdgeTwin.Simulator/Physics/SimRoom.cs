namespace EdgeTwin.Simulator.Physics;

/// <summary>
/// A room's air and structure as one thermal mass at the temperature of the returning hot air.
/// IT heat, fan heat and the room's lighting go in; cooling coils and the envelope take heat out.
/// </summary>
public sealed class SimRoom
{
    internal SimRoom(RoomSpec spec, int index, double initialC)
    {
        Spec = spec;
        Index = index;
        TemperatureC = initialC;
        HeatCapacityKjPerK = spec.VolumeM3 * Air.Density * Air.Cp * spec.MassFactor;
    }

    public RoomSpec Spec { get; }

    public string Id => Spec.Id;

    internal int Index { get; }

    /// <summary>Temperature of the mixed hot air the cooling units take in (their return temperature).</summary>
    public double TemperatureC { get; internal set; }

    public double HeatCapacityKjPerK { get; }

    public double EnvelopeLossKw => Spec.EnvelopeUaKwPerK * (TemperatureC - Spec.OutsideC);

    /// <summary>IT, fan and lighting heat put into this room since the last reset (kJ).</summary>
    public double HeatInKj { get; internal set; }

    /// <summary>Heat removed from this room by cooling and lost through its envelope since the last reset (kJ).</summary>
    public double HeatOutKj { get; internal set; }

    /// <summary>This room's temperature when the energy accounts were last reset.</summary>
    public double AccountStartC { get; internal set; }

    /// <summary>
    /// Energy drawn by the room's non-IT loads (its cooling units' fans and compressors, its lighting) from the utility
    /// since the site started (kWh): the energy counter of its infrastructure sub-meter.
    /// </summary>
    public double InfrastructureEnergyKwh { get; internal set; }
}
