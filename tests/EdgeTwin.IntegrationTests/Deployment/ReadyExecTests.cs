namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The role's readiness check in <c>exec</c> mode (image builds, chroots) against a real process that behaves like the
/// agent: READY=1 on $NOTIFY_SOCKET, logs on stdout, a clean exit on SIGTERM. Runs the role's files/edgetwin-ready.
/// </summary>
public sealed class ReadyExecTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string ReadyScript => Path.Combine(Tool.RepoRoot(), "ansible", "roles", "edgetwin", "files", "edgetwin-ready");

    // An agent that logs without pause (1 KB lines) until SIGTERM, then logs its stop and exits 0. The handler only
    // sets a flag, as .NET's host does, so the stop line is written from the logging loop.
    private const string ChattyAgent = """
        import os, signal, socket, sys, time
        stop = []
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])
        deadline = time.monotonic() + 120
        while not stop and time.monotonic() < deadline:
            sys.stdout.write('info: polled 12 devices ' + 'x' * 1000 + '\n'); sys.stdout.flush(); time.sleep(0.001)
        sys.stdout.write('stopping\n'); sys.stdout.flush()
        """;

    [Fact]
    public async Task Regression_edgetwin_ready_exec_hung_on_SIGTERM_when_the_agent_logged_more_than_a_pipe_holds()
    {
        var python = Tool.DebianPython();
        // Before: nobody read the agent's output until it failed, so 64 KiB of logs filled the pipe, the agent blocked
        // in its next write, and its clean stop became "did not stop within 60s of SIGTERM" (a good release rolled back).
        var result = await Tool.RunAsync(python, [ReadyScript, "exec", "--timeout", "30", "--settle", "1", "--", python, "-c", ChattyAgent], Timeout, Ct);
        output.WriteLine(result.All);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("clean stop", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_release_that_fails_after_SIGTERM_is_reported_with_its_last_output()
    {
        var python = Tool.DebianPython();
        var agent = ChattyAgent.Replace("sys.stdout.write('stopping\\n'); sys.stdout.flush()", "sys.stdout.write('fatal: outbox flush failed\\n'); sys.stdout.flush(); sys.exit(3)", StringComparison.Ordinal);
        Assert.NotEqual(ChattyAgent, agent);
        var result = await Tool.RunAsync(python, [ReadyScript, "exec", "--timeout", "30", "--settle", "1", "--", python, "-c", agent], Timeout, Ct);
        output.WriteLine(result.StdErr);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("exited with 3 after SIGTERM", result.StdErr, StringComparison.Ordinal);
        // The tail of what it wrote, not the megabytes before it.
        Assert.Contains("fatal: outbox flush failed", result.StdErr, StringComparison.Ordinal);
        Assert.True(result.StdErr.Length < 8000, $"stderr is {result.StdErr.Length} chars");
    }
}
