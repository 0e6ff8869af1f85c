namespace EdgeTwin.Simulator.Devices;

/// <summary>What a simulated device measures.</summary>
public enum SimEntityKind
{
    /// <summary>A rack's own sensors (inlet/outlet temperature, power).</summary>
    Rack,
    Pdu,
    Ups,
    CoolingUnit,
    Machine,
    /// <summary>The site's main power meter (sum of the UPS inputs) and room sensors.</summary>
    Meter,
    /// <summary>The PLC of one station of the production line (entity id = station id).</summary>
    LineStation,
    /// <summary>
    /// A temperature/humidity probe at one rack's inlet (entity id = rack id): one sensor row, unlike <see cref="Rack"/>'s
    /// front and rear pair, so a probe profile whose rows are all inlet readings does not serve an "outlet" row with the inlet.
    /// </summary>
    RackProbe,
    /// <summary>A room's infrastructure sub-meter (entity id = room id): its cooling units' fans and compressors and its lighting.</summary>
    RoomMeter,
}

/// <summary>A simulated device: its id in the site config, its profile, and the simulated thing it measures.</summary>
/// <param name="DeviceId">Device id (also the fault target for dark/slow/garble).</param>
/// <param name="Profile">Device profile id.</param>
/// <param name="Kind">What it measures.</param>
/// <param name="EntityId">Id of the rack, PDU, UPS, unit or machine (the room id for a meter).</param>
public sealed record SimDeviceBinding(string DeviceId, string Profile, SimEntityKind Kind, string EntityId);

/// <summary>
/// A simulated value in the simulator's canonical unit. State values also carry candidate words
/// separated by <c>|</c> (<c>on|running</c>, <c>battery</c>, <c>overload</c> …) matched, in order, against the
/// labels of a profile's states; without a match the number is used.
/// </summary>
public readonly record struct SimValue(double Value, string Unit, string? StateWord = null)
{
    public const string ActiveWords = "on|running|run|active|alarm|true|yes|tripped|fault";
    public const string InactiveWords = "off|stopped|stop|inactive|ok|normal|none|false|no";

    public static SimValue State(bool active, string activeWord = ActiveWords, string inactiveWord = InactiveWords) =>
        new(active ? 1 : 0, "1", active ? activeWord : inactiveWord);
}
