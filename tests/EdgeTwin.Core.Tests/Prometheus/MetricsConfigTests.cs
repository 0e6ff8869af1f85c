using System.Net;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Prometheus;
using EdgeTwin.Core.Tests.Config;
using Json.Schema;

namespace EdgeTwin.Core.Tests.Prometheus;

/// <summary>The <c>metrics:</c> section: problems at the key with file and line, a warning for a non-loopback listen.</summary>
public sealed class MetricsConfigTests
{
    private static ConfigLoadResult Load(string metrics) => SiteConfigLoader.Parse(
        "site: { id: s1, gateway_id: g1 }\ndevices: []\n" + metrics,
        "/etc/edgetwin/edgetwin.yaml",
        new SiteConfigLoadOptions { SectionValidators = [new MetricsSectionValidator()] });

    [Theory]
    [InlineData("127.0.0.1:99999", "'127.0.0.1:99999': port '99999' is not a number from 1 to 65535")]
    [InlineData("127.0.0.1:0", "'127.0.0.1:0': port '0' is not a number from 1 to 65535")]
    [InlineData("9464", "'9464': expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface")]
    [InlineData("gateway.example:9464", "'gateway.example:9464': 'gateway.example' is not an IP address (a host name is not resolved here); expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface")]
    [InlineData("::1:9464", "'::1:9464': an IPv6 address needs brackets, e.g. [::1]:9464")]
    [InlineData("127.0.0.1:", "'127.0.0.1:': expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface")]
    [InlineData("[::1:9464", "'[::1:9464': expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface")]
    [InlineData("[::1]9464", "'[::1]9464': expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface")]
    [InlineData("[::1]:65536", "'[::1]:65536': port '65536' is not a number from 1 to 65535")]
    [InlineData("[gateway]:9464", "'[gateway]:9464': 'gateway' is not an IP address (a host name is not resolved here); expected HOST:PORT with an IP address, e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 for every interface")]
    public void A_bad_listen_is_a_problem_at_the_key_with_file_and_line(string listen, string message)
    {
        var result = Load($"metrics:\n  prometheus:\n    listen: \"{listen}\"\n");

        var problem = Assert.Single(result.Problems);
        Assert.Equal($"/etc/edgetwin/edgetwin.yaml:5:13: metrics.prometheus.listen: {message}", problem.ToString());
    }

    [Fact]
    public void Unknown_keys_and_a_missing_listen_are_problems()
    {
        var result = Load("metrics:\n  prometheus: { max_label_sets: 0 }\n  promethus: {}\n");

        Assert.Equal(
        [
            "/etc/edgetwin/edgetwin.yaml:4:15: metrics.prometheus.listen: missing required key 'listen'",
            "/etc/edgetwin/edgetwin.yaml:4:33: metrics.prometheus.max_label_sets: must be at least 1, got 0",
            "/etc/edgetwin/edgetwin.yaml:5:3: metrics.promethus: unknown key 'promethus' (did you mean 'prometheus'?)",
        ], result.Problems.Select(p => p.ToString()));
    }

    [Fact]
    public void A_loopback_listen_is_quiet_and_read_as_an_endpoint()
    {
        var result = Load("metrics: { prometheus: { listen: \"[::1]:9464\", max_label_sets: 200 } }\n");

        Assert.Empty(result.Problems);
        Assert.Empty(result.Warnings);
        var config = MetricsConfig.From(result.Config!);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 9464), config.Listen);
        Assert.Equal(200, config.MaxLabelSets);
    }

    [Fact]
    public void Localhost_is_loopback()
    {
        var result = Load("metrics: { prometheus: { listen: \"localhost:9464\" } }\n");

        Assert.Empty(result.Warnings);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9464), MetricsConfig.From(result.Config!).Listen);
    }

    [Fact]
    public void A_listen_on_every_interface_is_allowed_with_a_warning_that_it_is_unauthenticated()
    {
        var result = Load("metrics:\n  prometheus:\n    listen: \"0.0.0.0:9464\"\n");

        Assert.Empty(result.Problems);
        var warning = Assert.Single(result.Warnings);
        Assert.StartsWith("/etc/edgetwin/edgetwin.yaml:5:13: warning: metrics.prometheus.listen: '0.0.0.0:9464' is not a loopback address: the metrics endpoint has no authentication", warning.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void No_section_means_no_endpoint()
    {
        var result = Load("");

        Assert.Null(MetricsConfig.From(result.Config!).Listen);
    }

    [Fact]
    public void The_schema_knows_the_section_and_rejects_a_listen_without_a_port()
    {
        using var dir = new TempDir();
        var schema = JsonSchema.FromFile(Path.Combine(TestFiles.SchemaDir, "site-config.schema.json"));
        var good = dir.Write("good.yaml", "site: { id: s1, gateway_id: g1 }\ndevices: []\nmetrics: { prometheus: { listen: \"[::1]:9464\", max_label_sets: 50 } }\n");
        var bad = dir.Write("bad.yaml", "site: { id: s1, gateway_id: g1 }\ndevices: []\nmetrics: { prometheus: { listen: \"9464\" } }\n");

        Assert.Empty(SchemaTests.SchemaErrors(schema, SchemaTests.YamlToJson(good)));
        Assert.Contains(SchemaTests.SchemaErrors(schema, SchemaTests.YamlToJson(bad)), e => e.Contains("/metrics/prometheus/listen", StringComparison.Ordinal));
    }
}
