using System.CommandLine;

namespace EdgeTwin.Agent.Cli;

/// <summary>Every subcommand of <c>edgetwin</c>. Each lives in its own file under Cli/ and exposes <c>Create()</c>.</summary>
internal static class CliCommands
{
    public static IEnumerable<Command> All()
    {
        yield break;
    }
}
