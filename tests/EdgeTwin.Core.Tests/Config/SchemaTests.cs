using System.Text.Json.Nodes;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Tests.Config;
using Json.Schema;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>Every shipped profile and example config passes both the JSON Schema and the loader.</summary>
public sealed class SchemaTests
{
    private static readonly Lazy<JsonSchema> SiteSchema = new(() => JsonSchema.FromFile(Path.Combine(TestFiles.SchemaDir, "site-config.schema.json")));
    private static readonly Lazy<JsonSchema> ProfileSchema = new(() => JsonSchema.FromFile(Path.Combine(TestFiles.SchemaDir, "device-profile.schema.json")));

    public static TheoryData<string> ProfileFiles() => [.. TestFiles.ShippedProfiles().Select(f => Path.GetFileName(f))];

    public static TheoryData<string> ExampleFiles() => [.. TestFiles.Examples().Select(f => Path.GetFileName(f))];

    internal static JsonNode? YamlToJson(string path)
    {
        var d = new ConfigDiagnostics();
        var root = YamlTree.Parse(File.ReadAllText(path), path, d);
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
        return ConfigNodeJson.ToJsonNode(root!);
    }

    internal static IReadOnlyList<string> SchemaErrors(JsonSchema schema, JsonNode? json)
    {
        var result = schema.Evaluate(json, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
        {
            return [];
        }

        return [.. result.Details
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))];
    }

    [Theory]
    [MemberData(nameof(ProfileFiles))]
    public void Shipped_profile_passes_the_schema_and_the_loader(string file)
    {
        var path = Path.Combine(TestFiles.ProfilesDir, file);
        var errors = SchemaErrors(ProfileSchema.Value, YamlToJson(path));
        Assert.True(errors.Count == 0, string.Join("\n", errors));

        var d = new ConfigDiagnostics();
        Assert.NotNull(DeviceProfileLoader.LoadFile(path, d));
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
    }

    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Example_config_passes_the_schema_and_the_loader(string file)
    {
        var path = Path.Combine(TestFiles.ExamplesDir, file);
        var errors = SchemaErrors(SiteSchema.Value, YamlToJson(path));
        Assert.True(errors.Count == 0, string.Join("\n", errors));

        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
    }

    [Fact]
    public void Schema_and_loader_both_reject_an_unknown_device_key()
    {
        using var dir = new TempDir();
        var text = File.ReadAllText(Path.Combine(TestFiles.ExamplesDir, "machine-line.yaml"))
            .Replace("    interval: 1s\n", "    intervall: 1s\n", StringComparison.Ordinal);
        var path = dir.Write("line.yaml", text);

        var errors = SchemaErrors(SiteSchema.Value, YamlToJson(path));
        Assert.Contains(errors, e => e.StartsWith("/devices/0", StringComparison.Ordinal) && e.Contains("intervall", StringComparison.Ordinal));

        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.Contains(result.Problems, p => p.Path == "devices[0].intervall");
    }

    /// <summary>
    /// <c>row_retention</c> is a device key the loader reads and the SNMP source uses (Core Config README), and
    /// <c>twin_requests:</c> a section the agent runs (Twin/Requests README), but the schema (additionalProperties: false)
    /// listed neither: an editor or CI check against the schema refused what check and the agent accept.
    /// </summary>
    [Fact]
    public void Regression_the_schema_rejected_row_retention_and_twin_requests_that_the_loader_reads()
    {
        using var dir = new TempDir();
        var text = File.ReadAllText(Path.Combine(TestFiles.ExamplesDir, "machine-line.yaml"))
            .Replace("    interval: 1s\n", "    interval: 1s\n    row_retention: 6h\n", StringComparison.Ordinal);
        Assert.Contains("row_retention: 6h", text, StringComparison.Ordinal);
        var path = dir.Write("line.yaml", text);

        // twin_requests is claimed by the agent's validator (not in this assembly): the schema part only.
        Assert.Empty(SchemaErrors(SiteSchema.Value, YamlToJson(dir.Write("requests.yaml", text + "\ntwin_requests:\n  timeout: 30s\n"))));
        Assert.Empty(SchemaErrors(SiteSchema.Value, YamlToJson(path)));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(TimeSpan.FromHours(6), result.Config!.Devices[0].RowRetention);
    }

    /// <summary>
    /// <c>runbook_url</c> and <c>action</c> of an alert rule or input, as editors check them: the alerting loader refuses
    /// the same values (<c>RunbookActionConfigTests</c> in EdgeTwin.Alerting.Tests; its validator is not in this assembly).
    /// </summary>
    [Theory]
    [InlineData("runbook_url: \"https://wiki.example/dc1/runbooks/inlet-hot?v=2#first\"", true)]
    [InlineData("runbook_url: \"http://10.0.0.5:8080/leak\"", true)]
    [InlineData("action: \"Check the CRAC of rack {key}'s row\"", true)]
    [InlineData("runbook_url: \"ftp://wiki.example/inlet\"", false)]
    [InlineData("runbook_url: \"wiki/inlet-hot\"", false)]
    [InlineData("runbook_url: \"https://ops:pw@wiki.example/inlet\"", false)]
    [InlineData("runbook_url: \"https://wiki.example/inlet hot\"", false)]
    [InlineData("action: \"\"", false)]
    public void The_schema_checks_an_alert_rules_runbook_url_and_action(string key, bool valid)
    {
        using var dir = new TempDir();
        var yaml = "site: { id: dc1, gateway_id: gw1 }\ndevices: []\nalerts:\n  rules:\n    - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, " + key + " }\n"
            + "  inputs:\n    - { name: leak, pin: 5, " + key + " }\n";
        var errors = SchemaErrors(SiteSchema.Value, YamlToJson(dir.Write("site.yaml", yaml)));
        if (valid)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.Equal(2, errors.Count(e => e.Contains("/alerts/rules/0/", StringComparison.Ordinal) || e.Contains("/alerts/inputs/0/", StringComparison.Ordinal)));
        }
    }

    /// <summary>The Reeder AES variants (Cisco) as editors check them; the loader takes the same names (BrokenConfigTests).</summary>
    [Theory]
    [InlineData("AES-256-C", true)]
    [InlineData("AES-192-C", true)]
    [InlineData("AES-256", true)]
    [InlineData("AES256C", false)]
    public void The_schema_takes_the_cisco_aes_c_privacy_protocols(string priv, bool valid)
    {
        using var dir = new TempDir();
        var yaml = "site: { id: dc1, gateway_id: gw1 }\ndevices: []\ncredentials:\n  sw: { version: 3, user: ops, level: authPriv, auth: SHA, auth_password: longenough1, priv: " + priv + ", priv_password: longenough2 }\n";
        var errors = SchemaErrors(SiteSchema.Value, YamlToJson(dir.Write("site.yaml", yaml)));
        Assert.Equal(valid, !errors.Any(e => e.Contains("/credentials/sw/priv", StringComparison.Ordinal)));
        if (valid)
        {
            Assert.Empty(errors);
        }
    }

    [Fact]
    public void The_schema_refuses_an_alert_action_longer_than_200_characters()
    {
        using var dir = new TempDir();
        string Yaml(int length) => "site: { id: dc1, gateway_id: gw1 }\ndevices: []\nalerts:\n  rules:\n    - { name: a, type: uplink, action: \"" + new string('x', length) + "\" }\n";
        Assert.Empty(SchemaErrors(SiteSchema.Value, YamlToJson(dir.Write("ok.yaml", Yaml(200)))));
        Assert.Contains(SchemaErrors(SiteSchema.Value, YamlToJson(dir.Write("long.yaml", Yaml(201)))), e => e.Contains("/alerts/rules/0/action", StringComparison.Ordinal));
    }

    /// <summary>
    /// The schema accepted a top-level <c>machines:</c> ("per-machine maintenance figures") that no component reads and the
    /// loader refuses as an unknown key; the figures are <c>models.maintenance.machines</c>.
    /// </summary>
    [Fact]
    public void Regression_the_schema_accepted_a_top_level_machines_section_the_loader_refuses()
    {
        using var dir = new TempDir();
        var path = dir.Write("site.yaml", File.ReadAllText(Path.Combine(TestFiles.ExamplesDir, "machine-line.yaml"))
            + "\nmachines:\n  m1: { downtime_hours: 6, cost_per_hour: 1200 }\n");

        Assert.Contains(SchemaErrors(SiteSchema.Value, YamlToJson(path)), e => e.Contains("machines", StringComparison.Ordinal));
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { ProfilesDir = TestFiles.ProfilesDir });
        Assert.Contains(result.Problems, p => p.Path == "machines" && p.Message.Contains("unknown key 'machines'", StringComparison.Ordinal));
    }

    [Fact]
    public void Schema_and_loader_both_reject_a_modbus_metric_with_an_oid()
    {
        var profile = """
            profile: x
            vendor: v
            model: m
            protocol: modbus
            source: s
            metrics:
              - { name: a, table: input, address: 0, type: int16, oid: .1.3.6, unit: V, kind: gauge, role: m.a }
            """;
        var d = new ConfigDiagnostics();
        var json = ConfigNodeJson.ToJsonNode(YamlTree.Parse(profile, "x.yaml", d)!);
        Assert.NotEmpty(SchemaErrors(ProfileSchema.Value, json));
        Assert.Null(DeviceProfileLoader.Parse(profile, "x.yaml", d, "x"));
        Assert.Contains(d.Items, p => p.Path == "metrics[0].oid");
    }

    [Fact]
    public void Yaml_scalars_get_core_schema_types()
    {
        var d = new ConfigDiagnostics();
        var json = ConfigNodeJson.ToJsonNode(YamlTree.Parse("a: 1\nb: 0x34\nc: 1.5\nd: true\ne: 'true'\nf: ~\ng: 2c\nh: \"7\"\n", "t.yaml", d)!)!;
        Assert.Equal("""{"a":1,"b":52,"c":1.5,"d":true,"e":"true","f":null,"g":"2c","h":"7"}""", json.ToJsonString());
    }
}
