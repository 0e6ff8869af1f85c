using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

public sealed class SectionValidatorTests
{
    /// <summary>What an uplink owner would write: typed reads with the shared messages, unknown keys flagged.</summary>
    public sealed class TestUplinksValidator : IConfigSectionValidator
    {
        public string Section => "uplinks";

        public void Validate(ConfigReader section)
        {
            var mqtt = section.Section("mqtt");
            if (mqtt is not null)
            {
                mqtt.String("host", required: true);
                mqtt.Int("port", min: 1, max: 65535);
                mqtt.ReportUnknownKeys();
            }

            section.ReportUnknownKeys();
        }
    }

    [Fact]
    public void Owner_validators_report_with_file_line_and_key()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            uplinks:
              mqtt: { port: 70000, hots: broker }
              kafak: {}
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new TestUplinksValidator()] });
        Assert.Equal(
        [
            "site.yaml:4:9: uplinks.mqtt.host: missing required key 'host'",
            "site.yaml:4:17: uplinks.mqtt.port: must be at most 65535, got 70000",
            "site.yaml:4:24: uplinks.mqtt.hots: unknown key 'hots' (did you mean 'host'?)",
            "site.yaml:5:3: uplinks.kafak: unknown key 'kafak' (known keys: mqtt)",
        ], result.Problems.Select(p => p.ToString()));
    }

    /// <summary>An owner with a risky but valid setting (as the webhook's plain http).</summary>
    private sealed class WarningValidator : IConfigSectionValidator
    {
        public string Section => "line";

        public void Validate(ConfigReader section)
        {
            if (section.String("url") is { } url && url.StartsWith("http:", StringComparison.Ordinal))
            {
                section.Diagnostics.AddWarning(section.Node("url")!, "plain http");
            }

            section.ReportUnknownKeys();
        }
    }

    [Fact]
    public void A_warning_is_printed_by_check_in_text_and_json_and_leaves_the_config_valid()
    {
        using var dir = new TempDir();
        var path = dir.Write("site.yaml", """
            site: { id: s1, gateway_id: g1 }
            devices: []
            line: { url: "http://x/" }
            """);
        var report = ConfigCheck.Run(path, new SiteConfigLoadOptions { SectionValidators = [new WarningValidator()] });
        Assert.True(report.Ok);
        var text = new StringWriter();
        ConfigCheck.WriteText(report, text);
        var lines = text.ToString().TrimEnd().Split(Environment.NewLine);
        Assert.Equal($"{path}:3:14: warning: line.url: plain http", lines[0]);
        Assert.StartsWith("OK: ", lines[1], StringComparison.Ordinal);
        using var json = new MemoryStream();
        ConfigCheck.WriteJson(report, json);
        using var doc = System.Text.Json.JsonDocument.Parse(json.ToArray());
        Assert.Empty(doc.RootElement.GetProperty("problems").EnumerateArray());
        var warning = Assert.Single(doc.RootElement.GetProperty("warnings").EnumerateArray());
        Assert.Equal(("line.url", 3, "plain http"), (warning.GetProperty("path").GetString(), warning.GetProperty("line").GetInt32(), warning.GetProperty("message").GetString()));
    }

    [Fact]
    public void Discover_finds_public_validators_in_the_entry_assembly()
    {
        var found = ConfigSectionValidators.Discover(typeof(SectionValidatorTests).Assembly);
        Assert.Contains(found, v => v is TestUplinksValidator);
    }

    /// <summary>An owner of a section the core does not know (<c>line:</c>).</summary>
    private sealed class LineValidator : IConfigSectionValidator
    {
        public string Section => "line";

        public void Validate(ConfigReader section)
        {
            section.Int("stations", required: true, min: 1);
            section.ReportUnknownKeys();
        }
    }

    [Fact]
    public void A_section_claimed_by_a_validator_is_known_validated_and_kept_raw()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            line: { stations: 0 }
            """;
        var withOwner = SiteConfigLoader.Parse(yaml, "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new LineValidator()] });
        Assert.Equal(["site.yaml:3:19: line.stations: must be at least 1, got 0"], withOwner.Problems.Select(p => p.ToString()));

        var ok = SiteConfigLoader.Parse(yaml.Replace("stations: 0", "stations: 3", StringComparison.Ordinal), "site.yaml", new SiteConfigLoadOptions { SectionValidators = [new LineValidator()] });
        Assert.True(ok.IsValid, string.Join("\n", ok.Problems));
        Assert.Equal("3", ((ConfigScalar)ok.Config!.Sections["line"]["stations"]!).Value);

        // Without its owner in the binary the key is a typo as far as anyone can tell.
        var orphan = SiteConfigLoader.Parse(yaml, "site.yaml");
        Assert.Contains(orphan.Problems, p => p.ToString().Contains("unknown key 'line'", StringComparison.Ordinal));
    }

    [Fact]
    public void Summary_window_is_read_from_the_outbox_section_and_written_back()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            outbox: { path: /tmp/o.db, summary_window: 15s }
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml");
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal(TimeSpan.FromSeconds(15), result.Config!.Outbox.SummaryWindow);
        Assert.Contains("summary_window: 15s", SiteConfigWriter.ToYaml(result.Config), StringComparison.Ordinal);

        var bad = SiteConfigLoader.Parse(yaml.Replace("15s", "0s", StringComparison.Ordinal), "site.yaml");
        Assert.Contains(bad.Problems, p => p.ToString().Contains("outbox.summary_window", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("", 10_000)] // the default
    [InlineData("checkpoint_interval: 30s", 30_000)]
    [InlineData("checkpoint_interval: 0s", 0)] // off
    public void Checkpoint_interval_is_read_from_the_outbox_section_and_written_back(string key, int expectedMs)
    {
        var (read, again) = OutboxWrittenBack(key);
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), read.CheckpointInterval);
        Assert.Equal(read.CheckpointInterval, again.CheckpointInterval);
    }

    /// <summary>An outbox section with <paramref name="key"/>, read, written back by the config writer and read again.</summary>
    private static (OutboxSettings Read, OutboxSettings Again) OutboxWrittenBack(string key)
    {
        var yaml = $$"""
            site: { id: s1, gateway_id: g1 }
            devices: []
            outbox:
              path: /tmp/o.db
              {{key}}
            """;
        var result = SiteConfigLoader.Parse(yaml, "site.yaml");
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        var again = SiteConfigLoader.Parse(SiteConfigWriter.ToYaml(result.Config!), "again.yaml");
        return (result.Config!.Outbox, again.Config!.Outbox);
    }

    [Theory]
    [InlineData("500ms")]
    [InlineData("2h")]
    public void A_checkpoint_interval_out_of_range_names_file_line_and_key(string value)
    {
        var yaml = $$"""
            site: { id: s1, gateway_id: g1 }
            devices: []
            outbox:
              path: /tmp/o.db
              checkpoint_interval: {{value}}
            """;
        var problem = Assert.Single(SiteConfigLoader.Parse(yaml, "site.yaml").Problems);
        Assert.Equal($"site.yaml:5:24: outbox.checkpoint_interval: must be 0s (off) or between 1s and 1h, got '{value}'", problem.ToString());
    }

    [Theory]
    [InlineData("", 1000)]
    [InlineData("commit_interval: 0s", 0)]
    [InlineData("commit_interval: 5s", 5000)]
    public void A_commit_interval_is_read_and_written_back(string key, int expectedMs)
    {
        var (read, again) = OutboxWrittenBack(key);
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), read.CommitInterval);
        Assert.Equal(read.CommitInterval, again.CommitInterval);
    }

    [Theory]
    [InlineData("50ms", "", "between 100ms and checkpoint_interval (10s)")]
    [InlineData("20s", "", "between 100ms and checkpoint_interval (10s)")]
    [InlineData("5s", "checkpoint_interval: 2s", "between 100ms and checkpoint_interval (2s)")]
    [InlineData("2m", "checkpoint_interval: 0s", "between 100ms and 1m")]
    public void A_commit_interval_out_of_range_names_file_line_and_key(string value, string checkpoint, string range)
    {
        var yaml = $$"""
            site: { id: s1, gateway_id: g1 }
            devices: []
            outbox:
              path: /tmp/o.db
              commit_interval: {{value}}
              {{checkpoint}}
            """;
        var problem = Assert.Single(SiteConfigLoader.Parse(yaml, "site.yaml").Problems);
        Assert.Equal($"site.yaml:5:20: outbox.commit_interval: must be 0s (a commit per poll) or {range}, got '{value}'", problem.ToString());
    }

    [Theory]
    [InlineData("", 64)]
    [InlineData("memory_budget_mb: 0", 0)]
    [InlineData("memory_budget_mb: 16", 16)]
    public void A_memory_budget_is_read_and_written_back(string key, int expectedMb)
    {
        var (read, again) = OutboxWrittenBack(key);
        Assert.Equal(expectedMb, read.MemoryBudgetMb);
        Assert.Equal(read.MemoryBudgetMb, again.MemoryBudgetMb);
    }

    [Fact]
    public void A_negative_memory_budget_names_file_line_and_key()
    {
        const string yaml = """
            site: { id: s1, gateway_id: g1 }
            devices: []
            outbox:
              path: /tmp/o.db
              memory_budget_mb: -1
            """;
        var problem = Assert.Single(SiteConfigLoader.Parse(yaml, "site.yaml").Problems);
        Assert.StartsWith("site.yaml:5:21: outbox.memory_budget_mb:", problem.ToString(), StringComparison.Ordinal);
    }
}
