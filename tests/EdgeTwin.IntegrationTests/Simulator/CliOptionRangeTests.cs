using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.Simulator;

/// <summary>The numeric options of demo and sim through the real binary: a bad value is one line naming the option.</summary>
public sealed class CliOptionRangeTests
{
    [Theory]
    [InlineData("demo", "--duration", "30x", "--duration takes seconds (30) or a duration (30s, 5m, 1h), got '30x'")]
    [InlineData("demo", "--duration", "-5", "--duration must be a positive number of seconds, got -5")]
    [InlineData("demo", "--racks", "x", "--racks takes a whole number, got 'x'")]
    [InlineData("demo", "--racks", "0", "--racks must be at least 1, got 0")]
    [InlineData("demo", "--uplink-outage-at", "-5", "--uplink-outage-at must be from 0 (off) to 604800 seconds, got -5")]
    [InlineData("demo", "--uplink-outage-for", "soon", "--uplink-outage-for takes seconds (45) or a duration (45s, 2m), got 'soon'")]
    [InlineData("demo", "--uplink-outage-for", "1e300", "--uplink-outage-for must be from 0 (off) to 604800 seconds, got 1e300")]
    [InlineData("sim", "--time-scale", "abc", "--time-scale takes a number, got 'abc'")]
    [InlineData("sim", "--time-scale", "-1", "--time-scale must be positive, got -1")]
    public async Task Regression_a_value_that_did_not_parse_crashed_the_range_check_with_an_exception(string command, string option, string value, string expected)
    {
        // demo --duration 30s printed "Unhandled exception. System.InvalidOperationException: Cannot parse argument …"
        // and a stack trace: the range validator read a value that had not parsed.
        var run = await AgentProcess.RunCliAsync(command, option, value);

        Assert.Equal(2, run.Code); // usage (the Simulator README: "2 on bad input"; CliUsageExitCodeTests)
        Assert.Equal(expected, run.Err.Split('\n')[0].TrimEnd());
        Assert.DoesNotContain("Exception", run.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_takes_its_duration_as_seconds_or_as_a_config_duration()
    {
        var run = await AgentProcess.RunCliAsync("demo", "--racks", "1", "--duration", "0.05m");

        Assert.Equal(0, run.Code);
        var stopped = System.Text.RegularExpressions.Regex.Match(run.Out, @"edgetwin demo: stopped after (\d+) s");
        Assert.True(stopped.Success, run.Out);
        // 0.05m is 3 s (a start on a loaded machine may round up), not 0.05 s and not the default of running until Ctrl-C.
        Assert.InRange(int.Parse(stopped.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 3, 10);
    }
}
