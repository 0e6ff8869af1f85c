using EdgeTwin.Alerting.Rules;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Alerting.Tests.Rules;

/// <summary>The webhook sink's <c>format:</c> and the keys that go with it, as <c>edgetwin check</c> and the start read them.</summary>
public sealed class WebhookFormatConfigTests
{
    /// <summary>The sink read from a one-sink <c>alerts:</c> section, and the errors and warnings, one per line.</summary>
    private static (WebhookSinkConfig? Sink, string Problems) Read(string sink)
    {
        var diagnostics = new ConfigDiagnostics();
        var yaml = $$"""
            alerts:
              sinks:
                - {{sink}}
            """;
        var root = (ConfigMapping)YamlTree.Parse(yaml, "site.yaml", diagnostics)!;
        var config = AlertsConfig.Read(new ConfigReader((ConfigMapping)root["alerts"]!, diagnostics), Path.GetTempPath());
        return (config.Sinks.OfType<WebhookSinkConfig>().SingleOrDefault(), string.Join("\n", diagnostics.Sorted().Concat(diagnostics.Warnings)));
    }

    [Fact]
    public void Without_format_a_webhook_sends_edgetwins_own_message()
    {
        var (sink, problems) = Read("""{ name: noc, type: webhook, url: "https://10.0.0.20/alerts", secret: s }""");
        Assert.Equal("", problems);
        Assert.Equal(WebhookFormat.EdgeTwin, sink!.Format);
        Assert.Equal("s", sink.Secret);
    }

    [Fact]
    public void The_alertmanager_and_slack_formats_are_read_with_their_keys()
    {
        var (am, problems) = Read("""{ name: pager, type: webhook, format: alertmanager, url: "http://10.0.0.9:9093", resend_interval: 30s }""");
        Assert.Equal("", problems);
        Assert.Equal(WebhookFormat.Alertmanager, am!.Format);
        Assert.Equal(TimeSpan.FromSeconds(30), am.ResendInterval);

        var (chat, chatProblems) = Read("""{ name: chat, type: webhook, format: slack, url: "https://10.0.0.30/hooks/abc", username: edgetwin, channel: "#noc" }""");
        Assert.Equal("", chatProblems);
        Assert.Equal(WebhookFormat.Slack, chat!.Format);
        Assert.Equal(("edgetwin", "#noc"), (chat.Username, chat.Channel));
    }

    [Fact]
    public void An_unknown_format_names_the_file_the_key_and_the_closest_format()
    {
        var (_, problems) = Read("""{ name: pager, type: webhook, format: alertmanger, url: "http://10.0.0.9:9093" }""");
        Assert.Equal("site.yaml:3:45: alerts.sinks[0].format: expected one of edgetwin, alertmanager, slack, got 'alertmanger' (did you mean 'alertmanager'?)", problems);
    }

    [Theory]
    [InlineData("http://10.0.0.9:9093/api/v2/alerts", "/api/v2/alerts", "http://10.0.0.9:9093/")]
    [InlineData("http://10.0.0.9:9093/api/v1/alerts/", "/api/v1/alerts", "http://10.0.0.9:9093/")]
    [InlineData("https://noc.lan/alertmanager/api/v2", "/api/v2", "https://noc.lan/alertmanager/")]
    public void An_alertmanager_url_with_its_api_path_is_refused_with_the_base_to_write(string url, string api, string baseUrl)
    {
        var (_, problems) = Read($$"""{ name: pager, type: webhook, format: alertmanager, url: "{{url}}" }""");
        Assert.EndsWith($"alerts.sinks[0].url: format: alertmanager takes Alertmanager's base URL, not its API path '{api}': the sink posts to <url>/api/v2/alerts; write '{baseUrl}'", problems, StringComparison.Ordinal);
    }

    [Fact]
    public void An_alertmanager_url_with_a_reverse_proxy_prefix_is_accepted()
    {
        var (sink, problems) = Read("""{ name: pager, type: webhook, format: alertmanager, url: "https://noc.lan/alertmanager/" }""");
        Assert.Equal("", problems);
        Assert.Equal("/alertmanager/", sink!.Url.AbsolutePath);
    }

    [Theory]
    [InlineData("500ms", "alerts.sinks[0].resend_interval: must be at least 1s, got '500ms'")]
    [InlineData("10m", "alerts.sinks[0].resend_interval: resend_interval 10m is longer than 5m: Alertmanager would resolve the firing alerts between two re-sends (its resolve_timeout defaults to 5m)")]
    [InlineData("3m", "warning: alerts.sinks[0].resend_interval: resend_interval 3m is more than half of Alertmanager's default resolve_timeout (5m): unless its resolve_timeout is at least twice this, it resolves firing alerts between re-sends and pages again at the next one")]
    public void Resend_interval_is_bounded_by_alertmanagers_resolve_timeout(string value, string expected)
    {
        var (_, problems) = Read($$"""{ name: pager, type: webhook, format: alertmanager, url: "http://10.0.0.9:9093", resend_interval: {{value}} }""");
        Assert.EndsWith(expected, problems, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_of_another_format_are_errors_at_the_key()
    {
        var (_, problems) = Read("""{ name: chat, type: webhook, format: slack, url: "https://10.0.0.30/hooks/abc", resend_interval: 30s }""");
        Assert.EndsWith("alerts.sinks[0].resend_interval: resend_interval applies only to format: alertmanager (this sink's format is slack: it sends each change once)", problems, StringComparison.Ordinal);

        var (_, more) = Read("""{ name: pager, type: webhook, format: alertmanager, url: "http://10.0.0.9:9093", channel: "#noc" }""");
        Assert.EndsWith("alerts.sinks[0].channel: channel applies only to format: slack (this sink's format is alertmanager)", more, StringComparison.Ordinal);
    }

    [Fact]
    public void A_secret_with_a_format_that_checks_no_signature_is_a_warning_and_not_used()
    {
        var (sink, problems) = Read("""{ name: pager, type: webhook, format: alertmanager, url: "https://10.0.0.9:9093", secret: s3cret }""");
        Assert.EndsWith("warning: alerts.sinks[0].secret: format: alertmanager sends no signature headers (the receiver has no way to check them), so the secret is not used; authenticate with a user:password in the url or bearer_token_file, over https", problems, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", problems, StringComparison.Ordinal);
        Assert.Null(sink!.Secret);
    }
}
