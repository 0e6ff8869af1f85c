using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using EdgeTwin.Core.Config;

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

    /// <summary>
    /// How long a command has after SIGTERM/SIGINT cancelled its token before System.CommandLine cuts the process with
    /// 143/130 (Program.cs): <c>run --shutdown-timeout</c> must end before it.
    /// </summary>
    public static readonly TimeSpan ProcessTerminationTimeout = TimeSpan.FromSeconds(45);

    /// <summary>
    /// Parses and runs <paramref name="args"/>. A parse error prints the errors, the typo suggestions and the command's
    /// help all to standard error and exits with the usage code: System.CommandLine writes the suggestions and the help
    /// to standard output, where <c>--json | jq</c> read them as the command's answer and <c>2&gt;/dev/null</c> did not
    /// silence them.
    /// </summary>
    public static async Task<int> InvokeAsync(RootCommand root, string[] args, InvocationConfiguration configuration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(configuration);
        CliOptionRanges.NameExpectedTypes(root);
        var parse = root.Parse(args);
        if (parse.Errors.Count == 0)
        {
            return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }

        var usage = new InvocationConfiguration
        {
            Output = configuration.Error,
            Error = configuration.Error,
            EnableDefaultExceptionHandler = configuration.EnableDefaultExceptionHandler,
            ProcessTerminationTimeout = configuration.ProcessTerminationTimeout,
        };
        if (parse.Action is ParseErrorAction action)
        {
            // Its typo corrections suggest for every unmatched token: the value of a misspelt option got "did you mean -h".
            action.ShowTypoCorrections = false;
            await WriteSuggestionsAsync(parse, configuration.Error).ConfigureAwait(false);
        }

        await parse.InvokeAsync(usage, cancellationToken).ConfigureAwait(false);
        return ExitCode(parse);
    }

    /// <summary>
    /// "Did you mean" for an unmatched token that is a misspelt option (<c>--timout</c>: <c>--timeout</c>) or, where
    /// the command takes a subcommand, a misspelt subcommand (<c>chekc</c>: <c>check</c>); nothing for other tokens,
    /// which are values or extra arguments.
    /// </summary>
    private static async Task WriteSuggestionsAsync(ParseResult parse, TextWriter error)
    {
        var command = parse.CommandResult.Command;
        var options = new List<Option>(command.Options);
        for (var r = parse.CommandResult.Parent; r is CommandResult parent; r = parent.Parent)
        {
            options.AddRange(parent.Command.Options.Where(o => o.Recursive));
        }

        var optionNames = options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).Distinct(StringComparer.Ordinal).ToList();
        var subcommands = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        var firstWord = true;
        foreach (var token in parse.UnmatchedTokens)
        {
            var isOption = token.StartsWith('-');
            if (!isOption && !firstWord)
            {
                continue;
            }

            firstWord &= isOption;
            var candidates = isOption ? optionNames : subcommands;
            var best = Closest(isOption ? token.Split('=', 2)[0] : token, candidates);
            if (best.Count > 0)
            {
                await error.WriteLineAsync($"'{token}' is not {(isOption ? "an option" : "a command")} of '{CommandPath(parse.CommandResult)}'; did you mean {string.Join(" or ", best)}?").ConfigureAwait(false);
            }
        }
    }

    // The nearest names by edit distance (at most a third of the name, and 3), and names the token begins (--conf).
    private static List<string> Closest(string token, IReadOnlyList<string> names)
    {
        var prefixed = names.Where(n => token.Length >= 3 && n.StartsWith(token, StringComparison.Ordinal)).ToList();
        if (prefixed.Count > 0)
        {
            return prefixed;
        }

        var scored = names.Select(n => (Name: n, Distance: ConfigReader.EditDistance(token, n))).Where(s => s.Distance <= Math.Min(3, Math.Max(1, s.Name.Length / 3))).ToList();
        if (scored.Count == 0)
        {
            return [];
        }

        var min = scored.Min(s => s.Distance);
        return [.. scored.Where(s => s.Distance == min).Select(s => s.Name)];
    }

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent)
        {
            names.Add(c.Parent is CommandResult ? c.Command.Name : "edgetwin");
        }

        names.Reverse();
        return string.Join(' ', names);
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
