using System.CommandLine;
using EdgeTwin.Agent.Cli;

var root = new RootCommand("EdgeTwin: the edge gateway agent for data centers and factory lines.");
foreach (var command in CliCommands.All())
{
    root.Subcommands.Add(command);
}

return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
