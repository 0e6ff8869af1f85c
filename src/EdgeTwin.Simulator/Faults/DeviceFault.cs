namespace EdgeTwin.Simulator.Faults;

/// <summary>
/// How a simulated device misbehaves on the network. Applied by the serving layer to every request
/// the device receives.
/// </summary>
/// <param name="Dark">Drop every request without an answer.</param>
/// <param name="Delay">Answer this late.</param>
/// <param name="GarbleProbability">Chance that an answer's bytes are corrupted.</param>
public sealed record DeviceFault(bool Dark = false, TimeSpan Delay = default, double GarbleProbability = 0)
{
    public static DeviceFault None { get; } = new();

    public bool IsNone => !Dark && Delay <= TimeSpan.Zero && GarbleProbability <= 0;
}
