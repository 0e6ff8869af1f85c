using System.CommandLine;
using EdgeTwin.Agent.Cli;

namespace EdgeTwin.IntegrationTests;

/// <summary>The agent's command line run in the test process, built from the same discovered commands as <c>edgetwin</c>.</summary>
internal static class InProcessCli
{
    public static RootCommand Root()
    {
        var root = new RootCommand();
        foreach (var command in CliCommands.All())
        {
            root.Subcommands.Add(command);
        }

        return root;
    }

    /// <summary>Runs the command line writing to the given writers (tests that read the output while it runs).</summary>
    public static Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error) =>
        CliUsage.InvokeAsync(Root(), args, new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);

    /// <summary>Runs the command line to its end: exit code, standard output and standard error.</summary>
    public static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await InvokeAsync(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
