using EdgeTwin.Agent.Cli;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.IntegrationTests.StoreAndForward;

namespace EdgeTwin.IntegrationTests.Alerting;

/// <summary>
/// <c>alerts.for_outage_tolerance</c> (how long the agent may be down and still resume a pending <c>for:</c> hold):
/// <c>edgetwin check</c> takes a duration, 0s included, and names a bad value at its line and key; the JSON schema agrees.
/// </summary>
public sealed class ForOutageToleranceCheckTests
{
    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
        """;

    [Theory]
    [InlineData("1h")]
    [InlineData("0s")]
    [InlineData("30m")]
    public async Task A_duration_passes_check_and_the_schema(string value)
    {
        var config = AgentFiles.WriteConfig(OnePdu, $"""
            alerts:
              for_outage_tolerance: {value}
              rules: []
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.True(check.Exit == 0, check.Output);
        Assert.Empty(UplinkMaxRateCheckTests.SchemaErrors(config));
    }

    [Theory]
    [InlineData("-5m")]
    [InlineData("an hour")]
    public async Task A_value_that_is_not_a_duration_fails_check_at_its_line_and_the_schema(string value)
    {
        var config = AgentFiles.WriteConfig(OnePdu, $"""
            alerts:
              for_outage_tolerance: "{value}"
              rules: []
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Array.FindIndex(File.ReadAllLines(config), l => l.Contains("for_outage_tolerance:", StringComparison.Ordinal)) + 1;
        var problem = Assert.Single(check.Output.Split('\n'), l => l.Contains("alerts.for_outage_tolerance:", StringComparison.Ordinal));
        Assert.StartsWith($"{config}:{line}:", problem, StringComparison.Ordinal);
        Assert.Contains($"alerts.for_outage_tolerance: expected a duration like 500ms, 10s, 5m, 1h or 7d, got '{value}'", problem, StringComparison.Ordinal);
        Assert.Contains(UplinkMaxRateCheckTests.SchemaErrors(config), e => e.StartsWith("/alerts/for_outage_tolerance", StringComparison.Ordinal));
    }
}
