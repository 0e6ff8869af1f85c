using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Agent;
using Json.Schema;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary><c>uplinks.*.max_rate</c> (a metered link's budget): <c>check</c> and the JSON schema take the same spellings.</summary>
public sealed class UplinkMaxRateCheckTests
{
    private const string OnePdu = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, enabled: false }
        """;

    [Theory]
    [InlineData("64kbit/s")]
    [InlineData("1.5Mbit/s")]
    [InlineData("8kB/s")]
    [InlineData("2KiB/s")]
    public async Task A_rate_with_its_unit_passes_check_and_the_schema(string rate)
    {
        var config = AgentFiles.WriteConfig(OnePdu, $$"""
            uplinks:
              mqtt: { host: 127.0.0.1, max_rate: {{rate}} }
              kafka: { bootstrap_servers: "127.0.0.1:9092", max_rate: {{rate}} }
            """);

        var check = await AgentProcess.RunCliAsync("check", "-c", config);
        Assert.True(check.Code == 0, check.Out + check.Err);
        Assert.Empty(SchemaErrors(config));
    }

    [Theory]
    [InlineData("64k", "expected a rate with its unit, like 64kbit/s, 1Mbit/s, 8kB/s or 2KiB/s", true)]
    [InlineData("64 kbits", "expected a rate with its unit", true)]
    [InlineData("500bit/s", "must be at least 800 bit/s (100 B/s), got '500bit/s'", false)]
    public async Task A_wrong_max_rate_is_an_error_at_its_key(string rate, string message, bool schemaRejects)
    {
        var config = AgentFiles.WriteConfig(OnePdu, $"""
            uplinks:
              mqtt:
                host: 127.0.0.1
                max_rate: {rate}
            """);

        var check = await AgentProcess.RunCliAsync("check", "-c", config);
        Assert.Equal(1, check.Code);
        var line = Array.FindIndex(File.ReadAllLines(config), l => l.Contains("max_rate:", StringComparison.Ordinal)) + 1;
        Assert.Contains($"{config}:{line}:", check.Out + check.Err, StringComparison.Ordinal);
        Assert.Contains($"uplinks.mqtt.max_rate: {message}", check.Out + check.Err, StringComparison.Ordinal);
        // The schema checks the spelling; the floor is check's alone.
        Assert.Equal(schemaRejects, SchemaErrors(config).Any(e => e.Contains("/uplinks/mqtt/max_rate", StringComparison.Ordinal)));
    }

    /// <summary>Where the shipped JSON schema refuses <paramref name="config"/> (instance locations), as an editor would show it.</summary>
    internal static List<string> SchemaErrors(string config)
    {
        var schema = JsonSchema.FromFile(Path.Combine(EdgeTwin.IntegrationTests.Deployment.Tool.RepoRoot(), "device-profiles", "schema", "site-config.schema.json"));
        var diagnostics = new ConfigDiagnostics();
        var tree = YamlTree.Parse(File.ReadAllText(config), config, diagnostics)!;
        var result = schema.Evaluate(ConfigNodeJson.ToJsonNode(tree), new EvaluationOptions { OutputFormat = OutputFormat.List });
        return result.IsValid
            ? []
            : [.. result.Details.Where(d => d.Errors is { Count: > 0 }).Select(d => d.InstanceLocation.ToString())];
    }
}
