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

/// <summary>
/// A command under a group (<c>bench nab</c>, <c>simulate cooling-failure</c>, <c>line oee</c>): a file per command, attached
/// to the group named by <see cref="Parent"/>. The group is an <see cref="ICliCommand"/> of that name when one exists,
/// otherwise it is created with the description from <see cref="CliCommands.GroupDescriptions"/>.
/// </summary>
internal interface ICliSubcommand
{
    string Parent { get; }

    Command Create();
}

internal static class CliCommands
{
    /// <summary>Descriptions of groups that exist only through their subcommands.</summary>
    public static readonly IReadOnlyDictionary<string, string> GroupDescriptions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bench"] = "Benchmarks of the agent and its models.",
        ["simulate"] = "What-if scenarios on the live or recorded twin; never touches real devices.",
        ["optimize"] = "Setpoint recommendations from the calibrated twin.",
        ["line"] = "Production line twin: machine states, OEE, bottleneck.",
        ["alerts"] = "Local alerts of the running agent: list, history, acknowledge, silence.",
        ["models"] = "Models on this gateway: list, verify.",
        ["maintenance"] = "Maintenance predictions of the running agent: each machine's status, report a machine repaired.",
    };

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Command types live in this assembly, which is rooted.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "Command types live in this assembly, which is rooted.")]
    public static IEnumerable<Command> All()
    {
        var types = typeof(CliCommands).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false }).ToList();
        var commands = types
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t))
            .Select(t => ((ICliCommand)Activator.CreateInstance(t)!).Create())
            .ToDictionary(c => c.Name, StringComparer.Ordinal);
        foreach (var sub in types.Where(t => typeof(ICliSubcommand).IsAssignableFrom(t))
                     .Select(t => (ICliSubcommand)Activator.CreateInstance(t)!)
                     .OrderBy(s => s.GetType().Name, StringComparer.Ordinal))
        {
            if (!commands.TryGetValue(sub.Parent, out var group))
            {
                group = new Command(sub.Parent, GroupDescriptions.GetValueOrDefault(sub.Parent, sub.Parent));
                commands.Add(sub.Parent, group);
            }

            group.Subcommands.Add(sub.Create());
        }

        return commands.Values.OrderBy(c => c.Name, StringComparer.Ordinal);
    }
}
