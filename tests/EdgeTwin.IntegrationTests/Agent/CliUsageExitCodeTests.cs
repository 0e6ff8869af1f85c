namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// A command line that does not parse exits with the usage code each command documents. It exited 1, which
/// <c>status</c> documents as "problems", <c>poll</c> as "the device could not be read", <c>simulate add-rack</c> as
/// "verdict not ok" and <c>bench nab</c> as "unreadable data"; a script or systemd (which restarts <c>run</c> on 1 and
/// not on 2) read a typo as one of those.
/// </summary>
public sealed class CliUsageExitCodeTests
{
    [Theory]
    [InlineData(2, "status", "--timout", "5s")]
    [InlineData(2, "poll", "pdu-1")]
    [InlineData(2, "simulate", "add-rack", "--kw")]
    [InlineData(2, "bench", "nab", "--data", "/nonexistent")]
    [InlineData(2, "alerts", "silence", "rule-1")]
    [InlineData(2, "run")]
    [InlineData(3, "snmp", "get", "udp:127.0.0.1:9")]
    [InlineData(1, "modbus", "read")]
    public async Task Regression_a_command_line_that_did_not_parse_exited_1_which_these_commands_give_another_meaning(int expected, params string[] args)
    {
        var (exit, _, error) = await InProcessCli.RunAsync(args);

        Assert.Equal(expected, exit);
        Assert.False(string.IsNullOrWhiteSpace(error), "the parse error is still printed");
    }

    [Fact]
    public async Task The_binary_exits_with_the_usage_code_too()
    {
        // Program.cs goes through the same CliUsage as the in-process runner.
        var run = await AgentProcess.RunCliAsync("status", "--timout", "5s");

        Assert.Equal(2, run.Code);
        Assert.Contains("--timout", run.Err, StringComparison.Ordinal);
    }
}
