using EdgeTwin.Core.Profiles;

namespace EdgeTwin.Simulator.Devices;

/// <summary>The device slots of a simulated site whose profile the user picks (<see cref="SimProfiles"/>).</summary>
public enum SimProfileSlot
{
    /// <summary><see cref="SimProfiles.Ups"/>: a profile with <c>ups.*</c>/<c>battery.*</c> roles.</summary>
    Ups,

    /// <summary><see cref="SimProfiles.Meter"/>: a profile with <c>meter.*</c> roles.</summary>
    Meter,

    /// <summary><see cref="SimProfiles.RackProbe"/>: a profile whose measuring roles are all <c>rack.*</c>.</summary>
    RackProbe,
}

/// <summary>A profile asked for a slot is unknown or of the wrong kind for it; <see cref="Known"/> are the ones that fit.</summary>
public sealed class SimProfileChoiceException(SimProfileSlot slot, string profile, string reason, IReadOnlyList<string> known)
    : ArgumentException($"SimProfiles.{slot}: {Describe(profile, reason, known)}")
{
    public SimProfileSlot Slot { get; } = slot;

    public string Profile { get; } = profile;

    public IReadOnlyList<string> Known { get; } = known;

    /// <summary>What is wrong and the known choices, without the property name (the CLI puts its option name first).</summary>
    public string Reason { get; } = Describe(profile, reason, known);

    private static string Describe(string profile, string reason, IReadOnlyList<string> known) =>
        $"{(profile.Length == 0 ? "" : $"'{profile}' ")}{reason}; known: {(known.Count == 0 ? "(none)" : string.Join(", ", known))}";
}

/// <summary>
/// Which profiles fit a slot: judged from the profile's roles (what the simulator fills them from), never from a list of
/// names, so a profile added to the directory is a choice as soon as its roles say what it measures.
/// </summary>
public static class SimProfileChoices
{
    private static readonly string[] UpsPrefixes = ["ups", "battery"];
    private static readonly string[] MeterPrefixes = ["meter"];
    private static readonly string[] RackPrefixes = ["rack"];

    // Role prefixes of the other simulated things: a profile with any of these measures more than a rack's air.
    private static readonly string[] EntityPrefixes = ["pdu", "outlet", "feed", "ups", "battery", "crac", "crah", "cooling", "cooling_unit", "machine", "drive", "motor", "vfd", "meter"];

    /// <summary>True when the simulator can serve <paramref name="profile"/> in <paramref name="slot"/>.</summary>
    public static bool Fits(SimProfileSlot slot, DeviceProfile profile) => WhyNot(slot, profile) is null;

    /// <summary>The ids of the profiles in <paramref name="directory"/> that fit <paramref name="slot"/>, sorted.</summary>
    public static IReadOnlyList<string> Known(SimProfileSlot slot, string directory)
    {
        var known = new List<string>();
        foreach (var path in Directory.EnumerateFiles(directory, "*.yaml"))
        {
            var diagnostics = new EdgeTwin.Core.Config.ConfigDiagnostics();
            if (DeviceProfileLoader.LoadFile(path, diagnostics) is { } profile && Fits(slot, profile))
            {
                known.Add(profile.Id);
            }
        }

        known.Sort(StringComparer.Ordinal);
        return known;
    }

    /// <summary>Loads profile <paramref name="id"/> from <paramref name="directory"/> for <paramref name="slot"/>.</summary>
    /// <exception cref="SimProfileChoiceException">No such profile, or it does not fit the slot.</exception>
    public static DeviceProfile Load(SimProfileSlot slot, string id, string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var path = Path.Combine(directory, id + ".yaml");
        if (id.IndexOfAny(['/', '\\']) >= 0 || !File.Exists(path))
        {
            throw new SimProfileChoiceException(slot, id, $"is not a profile in {directory}", Known(slot, directory));
        }

        var profile = DeviceProfileLoader.LoadFileOrThrow(path);
        Check(slot, profile, () => Known(slot, directory));
        return profile;
    }

    /// <summary>Throws when <paramref name="profile"/> does not fit <paramref name="slot"/>; <paramref name="known"/> lists the choices.</summary>
    /// <exception cref="SimProfileChoiceException">It does not fit.</exception>
    public static void Check(SimProfileSlot slot, DeviceProfile profile, Func<IReadOnlyList<string>> known)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(known);
        if (WhyNot(slot, profile) is { } reason)
        {
            throw new SimProfileChoiceException(slot, profile.Id, reason, known());
        }
    }

    private static string? WhyNot(SimProfileSlot slot, DeviceProfile profile)
    {
        if (profile.Protocol is not (DeviceProtocol.Snmp or DeviceProtocol.Modbus))
        {
            return $"speaks {profile.Protocol.ToString().ToLowerInvariant()} (the simulator serves SNMP and Modbus)";
        }

        var prefixes = profile.AllMetrics.Select(m => Prefix(m.Role)).ToHashSet(StringComparer.Ordinal);
        return slot switch
        {
            SimProfileSlot.Ups when !prefixes.Overlaps(UpsPrefixes) => "is not a UPS profile (no ups.* role)",
            SimProfileSlot.Meter when !prefixes.Overlaps(MeterPrefixes) => "is not a meter profile (no meter.* role)",
            SimProfileSlot.RackProbe when !prefixes.Overlaps(RackPrefixes) => "is not a rack probe profile (no rack.* role)",
            SimProfileSlot.RackProbe when prefixes.Intersect(EntityPrefixes).FirstOrDefault() is { } other => $"is not a rack probe profile (it measures {other}.* too)",
            _ => null,
        };
    }

    private static string Prefix(string role)
    {
        var dot = role.IndexOf('.', StringComparison.Ordinal);
        return (dot < 0 ? string.Empty : role[..dot]).ToLowerInvariant();
    }
}
