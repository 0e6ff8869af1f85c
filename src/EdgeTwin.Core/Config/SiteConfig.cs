using EdgeTwin.Core.Profiles;

namespace EdgeTwin.Core.Config;

/// <summary>
/// The whole site config after loading and validation: topology, devices, credentials and settings, plus the
/// device profiles the devices name. Immutable; built by <c>SiteConfigLoader</c> from YAML or in code
/// (the simulator) and written back with <c>SiteConfigWriter</c>.
/// </summary>
/// <param name="Site">Rooms, racks, cooling units, power chain and lines.</param>
/// <param name="Devices">Every device to poll, in file order.</param>
/// <param name="Credentials">Named credentials, keyed by the name devices use in <c>credentials:</c>.</param>
/// <param name="Outbox">Store-and-forward settings.</param>
public sealed record SiteConfig(
    SiteTopology Site,
    IReadOnlyList<DeviceConfig> Devices,
    IReadOnlyDictionary<string, CredentialsConfig> Credentials,
    OutboxSettings Outbox)
{
    /// <summary>
    /// Directory the profiles were (or will be) resolved from, as written in the file; null means the default
    /// search (<c>device-profiles</c> beside the binary, then <c>./device-profiles</c>).
    /// </summary>
    public string? ProfilesDir { get; init; }

    /// <summary>Profiles the devices reference, keyed by profile id. Filled by the loader.</summary>
    public IReadOnlyDictionary<string, DeviceProfile> Profiles { get; init; } = new Dictionary<string, DeviceProfile>(StringComparer.Ordinal);

    /// <summary>The <c>uplinks:</c> section as written (owned by the uplink code), or null when absent.</summary>
    public ConfigMapping? Uplinks { get; init; }

    /// <summary>The <c>alerts:</c> section as written (owned by the alerting code), or null when absent.</summary>
    public ConfigMapping? Alerts { get; init; }

    /// <summary>The <c>models:</c> section as written (owned by the twin code), or null when absent.</summary>
    public ConfigMapping? Models { get; init; }

    /// <summary>
    /// Every raw top-level section owned by another component (<c>uplinks</c>, <c>alerts</c>, <c>models</c> and each
    /// section an <see cref="IConfigSectionValidator"/> claims, e.g. <c>twin</c>, <c>line</c>), by key.
    /// </summary>
    public IReadOnlyDictionary<string, ConfigMapping> Sections { get; init; } = new Dictionary<string, ConfigMapping>(StringComparer.Ordinal);

    /// <summary>
    /// The loader's warnings about the config and the profiles it uses (<c>check</c> prints them; the agent logs them at
    /// start); empty when built in code.
    /// </summary>
    public IReadOnlyList<ConfigDiagnostic> Warnings { get; init; } = [];

    /// <summary>Full path of the file this config was loaded from, or null when built in code.</summary>
    public string? SourcePath { get; init; }

    /// <summary>
    /// SHA-256 of the loaded file's text with every inline secret replaced by <see cref="ConfigSecrets.Marker"/>
    /// (<see cref="ConfigSecrets.RedactedSha256"/>): which config runs, without a hash over its secrets; empty when built in code.
    /// </summary>
    public string ConfigSha256 { get; init; } = "";

    /// <summary>The directory relative paths in the config resolve against: the config file's, else the working directory.</summary>
    public string ConfigDirectory() =>
        SourcePath is { } p ? Path.GetDirectoryName(Path.GetFullPath(p)) ?? "." : Directory.GetCurrentDirectory();

    /// <summary>The device with this id, or null.</summary>
    public DeviceConfig? FindDevice(string id)
    {
        foreach (var d in Devices)
        {
            if (string.Equals(d.Id, id, StringComparison.Ordinal))
            {
                return d;
            }
        }

        return null;
    }

    /// <summary>
    /// The cooling unit whose state and air temperatures <paramref name="device"/> reads: the unit naming it as its
    /// <c>device</c>, else its <c>location.cooling_unit</c>; null for a device of no unit. The loader refuses a device
    /// claimed by two units, so the answer is unique. The thermal twin, set-point control and check all ask this.
    /// </summary>
    public string? CoolingUnitOf(DeviceConfig device)
    {
        ArgumentNullException.ThrowIfNull(device);
        foreach (var unit in Site.CoolingUnits)
        {
            if (string.Equals(unit.Device, device.Id, StringComparison.Ordinal))
            {
                return unit.Id;
            }
        }

        return device.Location.CoolingUnit;
    }

    /// <summary>The resolved profile of <paramref name="device"/>.</summary>
    /// <exception cref="KeyNotFoundException">The profile was not loaded (config built in code without profiles).</exception>
    public DeviceProfile ProfileOf(DeviceConfig device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return Profiles.TryGetValue(device.Profile, out var p)
            ? p
            : throw new KeyNotFoundException($"device '{device.Id}': profile '{device.Profile}' is not loaded");
    }
}
