using EdgeTwin.Agent.Cli;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary><c>edgetwin check</c> on the trap listener's credentials: what it would accept without authentication.</summary>
public sealed class SnmpTrapsCheckTests
{
    private const string OneSwitch = """
          - { id: tor-a01, profile: ietf-if-mib, address: "udp:127.0.0.1:161", credentials: pub, enabled: false }
        """;

    [Fact]
    public async Task Regression_a_trap_listener_taking_v3_noAuthNoPriv_passed_check_without_a_warning()
    {
        // AgentFiles' credentials: pub (v2c) and ops (v3, noAuthNoPriv). Any host naming user 'ops' could raise alerts.
        var config = AgentFiles.WriteConfig(OneSwitch, """
            snmp_traps:
              port: 0
              credentials: [pub, ops]
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(0, check.Exit);
        var lines = check.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var warning = Assert.Single(lines, l => l.Contains(": warning: snmp_traps.", StringComparison.Ordinal));
        Assert.EndsWith(
            ": warning: snmp_traps.credentials[1]: credentials 'ops' are v3 noAuthNoPriv: the listener accepts traps and informs from any host that names user 'ops', unauthenticated, and raises events and alerts from them; use level authNoPriv or authPriv",
            warning,
            StringComparison.Ordinal);

        // A community (v1/v2c) alone: the usual trade-off, documented, not warned about.
        var community = AgentFiles.WriteConfig(OneSwitch, """
            snmp_traps:
              port: 0
              credentials: [pub]
            """);
        Assert.DoesNotContain("warning: snmp_traps", (await InProcessCli.RunAsync("check", "--config", community)).Output, StringComparison.Ordinal);
    }
}
