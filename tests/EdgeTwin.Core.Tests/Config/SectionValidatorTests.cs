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

    [Fact]
    public void Discover_finds_public_validators_in_the_entry_assembly()
    {
        var found = ConfigSectionValidators.Discover(typeof(SectionValidatorTests).Assembly);
        Assert.Contains(found, v => v is TestUplinksValidator);
    }
}
