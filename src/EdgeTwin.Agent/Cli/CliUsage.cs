using System.CommandLine;
using System.CommandLine.Parsing;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// The exit code of a command line that does not parse (an unknown option, a missing argument, a value out of range):
/// the usage code each command documents, not System.CommandLine's 1, which several commands give another meaning
/// (<c>status</c>: problems; <c>poll</c>: the device did not answer; <c>simulate add-rack</c>: verdict not ok; <c>run</c>:
/// a runtime failure, which systemd restarts, where a bad command line, like a bad config, should stop it).
/// </summary>
internal static class CliUsage
{
    /// <summary>Commands whose usage error is not 2: <c>snmp</c> keeps 2 for a timeout, <c>modbus</c> documents 1.</summary>
    private static readonly Dictionary<string, int> Codes = new(StringComparer.Ordinal)
    {
        ["snmp"] = 3,
        ["modbus"] = 1,
    };

    /// <summary>Parses and runs <paramref name="args"/>; a parse error prints as before and exits with the usage code.</summary>
    public static async Task<int> InvokeAsync(RootCommand root, string[] args, InvocationConfiguration configuration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(root);
        var parse = root.Parse(args);
        var exit = await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        return parse.Errors.Count > 0 ? ExitCode(parse) : exit;
    }

    /// <summary>The usage exit code of the top-level command the parse reached (2 unless it says otherwise).</summary>
    public static int ExitCode(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        string? topLevel = null;
        for (SymbolResult? r = parse.CommandResult; r is CommandResult command && command.Parent is CommandResult; r = command.Parent)
        {
            topLevel = command.Command.Name;
        }

        return topLevel is not null && Codes.TryGetValue(topLevel, out var code) ? code : 2;
    }
}
