using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>
/// The site config's JSON Schema (what editors check a config against) names the same top-level sections as
/// <c>edgetwin check</c> and the agent know: a section only one of them knows passes one and fails the other.
/// </summary>
public sealed partial class SiteSchemaSectionsTests
{
    [Fact]
    public async Task Regression_the_schema_offered_a_machines_section_check_rejects_and_refused_twin_requests()
    {
        // Before: the schema had a top-level machines: (the figures live under models.maintenance.machines), which
        // check refused as an unknown key, and lacked twin_requests:, which the agent reads, so editors flagged it.
        var dir = AgentFiles.TempDir("edgetwin-schema-sections-");
        var path = Path.Combine(dir.FullName, "site.yaml");
        File.WriteAllText(path, $$"""
            site: { id: dc1, gateway_id: gw-test }
            devices:
              - { id: pdu-a, profile: apc-rpdu2, address: "udp:127.0.0.1:9", credentials: pub }
            credentials:
              pub: { version: 2c, community_file: {{Path.Combine(dir.FullName, "community")}} }
            outbox: { path: {{Path.Combine(dir.FullName, "outbox.db")}} }
            zz_no_section: {}
            """);
        File.WriteAllText(Path.Combine(dir.FullName, "community"), "public\n");

        var (exit, output, error) = await InProcessCli.RunAsync("check", "--config", path);
        Assert.Equal(1, exit);
        var known = KnownKeys().Match(output + error);
        Assert.True(known.Success, $"no known keys in:\n{output}{error}");
        var checkKeys = known.Groups[1].Value.Split(", ").Order(StringComparer.Ordinal).ToList();

        var schema = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "device-profiles", "schema", "site-config.schema.json")))!;
        var schemaKeys = schema["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(checkKeys, schemaKeys);
        Assert.Contains("twin_requests", schemaKeys);
        Assert.DoesNotContain("machines", schemaKeys);
    }

    [GeneratedRegex(@"unknown key 'zz_no_section' \(known keys: ([a-z_, ]+)\)")]
    private static partial Regex KnownKeys();

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"EdgeTwin.sln not found above {AppContext.BaseDirectory}");
    }
}
