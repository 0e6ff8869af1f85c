using System.CommandLine;
using System.Diagnostics.CodeAnalysis;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// One subcommand of <c>edgetwin</c>. Each lives in its own file under Cli/ as a sealed class with a
/// public parameterless constructor; adding a command means adding a file, never editing a central list.
/// </summary>
internal interface ICliCommand
{
    Command Create();
}

internal static class CliCommands
{
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Command types live in this assembly, which is rooted.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "Command types live in this assembly, which is rooted.")]
    public static IEnumerable<Command> All() =>
        typeof(CliCommands).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(ICliCommand).IsAssignableFrom(t))
            .Select(t => ((ICliCommand)Activator.CreateInstance(t)!).Create())
            .OrderBy(c => c.Name, StringComparer.Ordinal);
}
