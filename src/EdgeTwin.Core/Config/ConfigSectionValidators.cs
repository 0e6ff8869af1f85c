using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Validates one of the raw top-level sections (<c>uplinks</c>, <c>alerts</c>, <c>models</c>) on behalf of the
/// component that owns it, so <c>edgetwin check</c> and the agent's start report its problems with file, line
/// and key together with everything else. Implement it as a public sealed class with a parameterless
/// constructor in any EdgeTwin.* assembly; <see cref="ConfigSectionValidators.Discover"/> finds it.
/// </summary>
public interface IConfigSectionValidator
{
    /// <summary>The top-level key validated (<c>uplinks</c>, <c>alerts</c> or <c>models</c>).</summary>
    string Section { get; }

    /// <summary>Reports problems of the section through <paramref name="section"/> (its getters record them) or <see cref="ConfigReader.Diagnostics"/>.</summary>
    void Validate(ConfigReader section);

    /// <summary>
    /// Checks what the section refers to elsewhere in the site (devices, cooling units, credentials, roles, pins). Runs
    /// only when the whole config is otherwise valid, so that <c>edgetwin check</c> rejects what the agent's start would.
    /// </summary>
    void ValidateReferences(ConfigReader section, SiteReferences site)
    {
    }

    /// <summary>
    /// What a valid section sets up, in a few words for <c>edgetwin check</c>'s OK line (e.g. "line line1: 4 stations, …"),
    /// or null when the section has nothing worth a mention there.
    /// </summary>
    string? Describe(ConfigReader section) => null;

    /// <summary>
    /// The state files the section's stages will keep when the agent runs (none when kept off), so the loader can reject
    /// one that lands on the outbox's files or on another stage's. Asked once the whole config is otherwise valid, also
    /// when the section is left out (<paramref name="section"/> null: the stages' defaults).
    /// </summary>
    IEnumerable<StateFileSetting> StateFiles(ConfigReader? section) => [];
}

/// <summary>What a section may refer to: the loaded site and the roles known to the device-profile library.</summary>
public sealed class SiteReferences(SiteConfig config, Func<IReadOnlyList<Profiles.DeviceProfile>> library)
{
    private IReadOnlyList<Profiles.ProfileMetric>? _libraryMetrics;
    private IReadOnlySet<string>? _libraryRoles;
    private IReadOnlySet<string>? _siteRoles;

    public SiteConfig Config { get; } = config;

    /// <summary>
    /// Roles of series the agent derives itself rather than reads from a device (the site PUE, a room's partial PUE): rules may match them,
    /// though no profile has them.
    /// </summary>
    public static IReadOnlyList<string> DerivedRoles { get; } = [PowerChainConfig.PueRole, RoomConfig.PartialPueRole];

    /// <summary>Roles of the metrics of the profiles the site's devices use, and of the derived series this site gets.</summary>
    public IReadOnlySet<string> SiteRoles => _siteRoles ??= Config.Profiles.Values
        .SelectMany(p => p.AllMetrics).Select(m => m.Role).Where(r => !string.IsNullOrEmpty(r))
        .Concat(Config.Site.Power.FacilityMeter is null ? [] : [PowerChainConfig.PueRole])
        .Concat(Config.Site.Rooms.Any(r => r.InfrastructureMeters is { Count: > 0 }) ? [RoomConfig.PartialPueRole] : [])
        .ToHashSet(StringComparer.Ordinal)!;

    /// <summary>Roles of every profile in the profile directories (a role outside it can match no device anywhere), and the derived ones.</summary>
    public IReadOnlySet<string> LibraryRoles => _libraryRoles ??= LibraryMetrics
        .Select(m => m.Role).Where(r => !string.IsNullOrEmpty(r)).Concat(DerivedRoles).ToHashSet(StringComparer.Ordinal)!;

    /// <summary>The metrics of every profile in the profile directories (loaded once, on first use).</summary>
    public IReadOnlyList<Profiles.ProfileMetric> LibraryMetrics => _libraryMetrics ??= [.. library().SelectMany(p => p.AllMetrics)];

    /// <summary>The closest of <paramref name="candidates"/> to <paramref name="value"/> within a small edit distance, for "did you mean".</summary>
    public static string? Closest(string value, IEnumerable<string> candidates) => ConfigReader.Closest(value, candidates);
}

/// <summary>Finds <see cref="IConfigSectionValidator"/> implementations.</summary>
public static class ConfigSectionValidators
{
    /// <summary>
    /// Every validator in <paramref name="entry"/> and the EdgeTwin.* assemblies it references (one instance each),
    /// ordered by section and type name.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Validators live in EdgeTwin assemblies, which the agent roots.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "Validators live in EdgeTwin assemblies, which the agent roots.")]
    public static IReadOnlyList<IConfigSectionValidator> Discover(Assembly entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var assemblies = new List<Assembly> { entry };
        foreach (var name in entry.GetReferencedAssemblies())
        {
            if (name.Name is { } n && n.StartsWith("EdgeTwin.", StringComparison.Ordinal))
            {
                assemblies.Add(Assembly.Load(name));
            }
        }

        return [.. assemblies
            .Distinct()
            .SelectMany(a => a.GetTypes())
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IConfigSectionValidator).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal)
            .Select(t => (IConfigSectionValidator)Activator.CreateInstance(t)!)
            .OrderBy(v => v.Section, StringComparer.Ordinal)];
    }
}
