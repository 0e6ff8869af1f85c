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
