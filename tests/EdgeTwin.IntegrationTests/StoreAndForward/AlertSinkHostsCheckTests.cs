using EdgeTwin.Agent.Cli;
using EdgeTwin.IntegrationTests.Agent;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// <c>hosts:</c> of an alert MQTT sink (an HA pair, as <c>uplinks.mqtt.hosts</c>): <c>edgetwin check</c> takes it and
/// names a bad entry at its own line and key; the JSON schema agrees.
/// </summary>
public sealed class AlertSinkHostsCheckTests
{
    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
        """;

    [Fact]
    public async Task A_sink_hosts_list_passes_check_and_the_schema()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            alerts:
              sinks:
                - { name: local, type: mqtt, hosts: ["127.0.0.1:1883", "10.0.0.6:1883"] }
                - { name: single, type: mqtt, host: 127.0.0.1, port: 1884 }
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.True(check.Exit == 0, check.Output);
        Assert.Empty(UplinkMaxRateCheckTests.SchemaErrors(config));
    }

    [Fact]
    public async Task A_bad_sink_hosts_entry_fails_check_at_its_line_and_the_schema()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            alerts:
              sinks:
                - name: local
                  type: mqtt
                  hosts:
                    - 127.0.0.1
                    - "mqtt://10.0.0.6:1883"
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Array.FindIndex(File.ReadAllLines(config), l => l.Contains("mqtt://10.0.0.6", StringComparison.Ordinal)) + 1;
        var problem = Assert.Single(check.Output.Split('\n'), l => l.Contains("is not host[:port]", StringComparison.Ordinal));
        Assert.StartsWith($"{config}:{line}:", problem, StringComparison.Ordinal);
        Assert.Contains("alerts.sinks[0].hosts[1]: 'mqtt://10.0.0.6:1883' is not host[:port]: give the broker's host (and port) alone, TLS in tls:", problem, StringComparison.Ordinal);
        Assert.Contains(UplinkMaxRateCheckTests.SchemaErrors(config), e => e.StartsWith("/alerts/sinks/0/hosts/1", StringComparison.Ordinal));

        var both = AgentFiles.WriteConfig(OnePdu, """
            alerts:
              sinks:
                - { name: local, type: mqtt, host: 127.0.0.1, hosts: ["10.0.0.6"] }
            """);
        Assert.NotEmpty(UplinkMaxRateCheckTests.SchemaErrors(both));
    }
}
