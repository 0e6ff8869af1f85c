using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using EdgeTwin.Uplink.Mqtt;
using Json.Schema;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// <c>uplinks.mqtt.hosts</c>, the brokers of an HA pair or cluster: <c>edgetwin check</c> takes it instead of
/// <c>host</c> (one of the two, not both, not neither) and names each bad entry at its own line; the JSON schema agrees.
/// </summary>
public sealed class UplinkHostsCheckTests
{
    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
        """;

    /// <summary><c>FILE:LINE:</c> of the first line holding <paramref name="text"/>.</summary>
    private static string At(string config, string text) =>
        $"{config}:{Array.FindIndex(File.ReadAllLines(config), l => l.Contains(text, StringComparison.Ordinal)) + 1}:";

    [Fact]
    public async Task A_hosts_list_passes_check_and_the_schema_and_reaches_the_options_in_order()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            uplinks:
              mqtt:
                hosts: ["broker-a:8883", "[fd00::20]:1883", broker-c]
                tls: {}
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.True(check.Exit == 0, check.Output);
        Assert.Empty(UplinkMaxRateCheckTests.SchemaErrors(config));

        var loaded = SiteConfigLoader.Load(config, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(UplinksConfig).Assembly) });
        var mqtt = UplinksConfig.From(loaded.Config!, Path.GetTempPath()).Mqtt!;
        Assert.Equal([new MqttBrokerAddress("broker-a", 8883), new MqttBrokerAddress("fd00::20", 1883), new MqttBrokerAddress("broker-c", 8883)], mqtt.Servers);
        Assert.Equal("broker-a", mqtt.Host); // the first broker for single-broker readers (the connectivity probe's default)
    }

    [Fact]
    public async Task Host_and_hosts_together_are_an_error_at_hosts()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            uplinks:
              mqtt:
                host: broker-a
                hosts: [broker-a, broker-b]
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Assert.Single(check.Output.Split('\n'), l => l.Contains("host: and hosts: are both set", StringComparison.Ordinal));
        Assert.StartsWith(At(config, "hosts:"), line, StringComparison.Ordinal);
        Assert.Contains("uplinks.mqtt.hosts: host: and hosts: are both set: keep hosts: (the brokers, tried in order) or host: (one broker), not both", line, StringComparison.Ordinal);
        Assert.False(SchemaValid(config)); // its "not": { "required": ["host", "hosts"] }
    }

    [Fact]
    public async Task Neither_host_nor_hosts_is_an_error_naming_both()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            uplinks:
              mqtt:
                port: 1883
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var lines = check.Output.Split('\n').Where(l => l.Contains("uplinks.mqtt.host", StringComparison.Ordinal)).ToList();
        // Once: the options' own "Host is required" is not repeated at the section.
        var line = Assert.Single(lines);
        Assert.Contains("missing required key 'host' (one broker) or 'hosts' (a list of brokers, tried in order)", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"mqtt://broker-b:1883\"", "'mqtt://broker-b:1883' is not host[:port]: give the broker's host (and port) alone, TLS in tls:")]
    [InlineData("\"broker-b:70000\"", "'broker-b:70000' has port '70000': must be 1..65535")]
    [InlineData("\"fd00::20\"", "'fd00::20': write an IPv6 address in brackets, [fd00::20] or [fd00::20]:port")]
    [InlineData("\"BROKER-A:1883\"", "'BROKER-A:1883' is the same broker as hosts[0] (broker-a:1883): each broker once")]
    [InlineData("{ host: broker-b }", "expected a broker as host, host:port or [IPv6]:port, got a mapping")]
    public async Task A_bad_entry_is_named_at_its_own_line(string second, string message)
    {
        var config = AgentFiles.WriteConfig(OnePdu, $"""
            uplinks:
              mqtt:
                hosts:
                  - broker-a
                  - {second}
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Assert.Single(check.Output.Split('\n'), l => l.Contains(message, StringComparison.Ordinal));
        Assert.StartsWith(At(config, "- " + second), line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_hosts_list_is_an_error_at_the_key()
    {
        var config = AgentFiles.WriteConfig(OnePdu, """
            uplinks:
              mqtt:
                hosts: []
            """);

        var check = await InProcessCli.RunAsync("check", "--config", config);
        Assert.Equal(1, check.Exit);
        var line = Assert.Single(check.Output.Split('\n'), l => l.Contains("is empty: list at least one broker", StringComparison.Ordinal));
        Assert.StartsWith(At(config, "hosts:"), line, StringComparison.Ordinal);
        Assert.Contains("uplinks.mqtt.hosts: is empty: list at least one broker, or use host: for a single one", line, StringComparison.Ordinal);
        Assert.Contains(UplinkMaxRateCheckTests.SchemaErrors(config), e => e.StartsWith("/uplinks/mqtt/hosts", StringComparison.Ordinal));
    }

    private static bool SchemaValid(string config) => Schema().Evaluate(Tree(config)).IsValid;

    private static JsonSchema Schema() => JsonSchema.FromFile(Path.Combine(EdgeTwin.IntegrationTests.Deployment.Tool.RepoRoot(), "device-profiles", "schema", "site-config.schema.json"));

    private static System.Text.Json.Nodes.JsonNode? Tree(string config) =>
        ConfigNodeJson.ToJsonNode(YamlTree.Parse(File.ReadAllText(config), config, new ConfigDiagnostics())!);
}
