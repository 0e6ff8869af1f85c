using System.CommandLine;
using EdgeTwin.Agent.Cli;

var root = new RootCommand("EdgeTwin: the edge gateway agent for data centers and factory lines.");
foreach (var command in CliCommands.All())
{
    root.Subcommands.Add(command);
}

// SIGTERM/SIGINT cancel the command's token; the command then has this long to finish (the agent flushes polls in
// flight and drains its queues) before the process is cut with 143/130. The default of 2 s is too short for a flush.
var invocation = new InvocationConfiguration { ProcessTerminationTimeout = CliUsage.ProcessTerminationTimeout };
return await CliUsage.InvokeAsync(root, args, invocation).ConfigureAwait(false);
