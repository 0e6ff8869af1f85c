namespace EdgeTwin.Simulator.Physics;

/// <summary>
/// The room's air and structure as one thermal mass at the temperature of the returning hot air.
/// IT heat and fan heat go in; cooling coils and the envelope take heat out.
/// </summary>
public sealed class SimRoom
{
    internal SimRoom(RoomSpec spec, double initialC)
    {
        Spec = spec;
        TemperatureC = initialC;
        HeatCapacityKjPerK = spec.VolumeM3 * Air.Density * Air.Cp * spec.MassFactor;
    }

    public RoomSpec Spec { get; }

    public string Id => Spec.Id;

    /// <summary>Temperature of the mixed hot air the cooling units take in (their return temperature).</summary>
    public double TemperatureC { get; internal set; }

    public double HeatCapacityKjPerK { get; }

    public double EnvelopeLossKw => Spec.EnvelopeUaKwPerK * (TemperatureC - Spec.OutsideC);
}
