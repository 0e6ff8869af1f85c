using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

/// <summary>URLs as logs, exception messages and <c>edgetwin check</c> show them: no user info, no query values.</summary>
public sealed class RedactTests
{
    [Theory]
    [InlineData("http://hookuser:HOOKPASS@127.0.0.1:48773/fail?token=HOOKTOKEN", "http://***@127.0.0.1:48773/fail?token=***")]
    [InlineData("https://noc.example.com/alerts", "https://noc.example.com/alerts")]
    [InlineData("https://noc.example.com:443/alerts?", "https://noc.example.com/alerts")]
    [InlineData("http://u@10.0.0.5:8080/a/b?x=1&y=&SECRET&&z=3#frag-secret", "http://***@10.0.0.5:8080/a/b?x=***&y=***&***&&z=***")]
    [InlineData("http://u:p@[fd00::1]:9000/hook", "http://***@[fd00::1]:9000/hook")]
    [InlineData("http://u:p%40x@host/?a%3Db=c%26d", "http://***@host/?a%3Db=***")]
    public void A_parsed_url_keeps_scheme_host_port_and_path_only(string url, string shown) =>
        Assert.Equal(shown, Redact.Url(new Uri(url)));

    [Theory]
    [InlineData("htp://u:URLPW@h/x?token=URLTOKEN", "htp://***@h/x?token=***")]
    [InlineData("http://a@b:c@host:1/p?q", "http://***@host:1/p?***")]
    [InlineData("hookuser:pw@10.0.0.1/x", "***@10.0.0.1/x")]
    [InlineData("not a url", "not a url")]
    [InlineData("http://host/p@th?k=v#f", "http://host/p@th?k=***")]
    public void Text_that_is_no_url_is_redacted_the_same_way(string text, string shown) =>
        Assert.Equal(shown, Redact.Url(text));

    [Theory]
    [InlineData("https://hooks.example/services/T000/B000/Xq7kP2mN9vR4sT8wY3zA", "https://hooks.example/services/T000/B000/***")]
    [InlineData("https://discord.example/api/webhooks/123456789012345678/aB3_dE6-gH9iJ2kL5mN8oP1qR4sT7uV0", "https://discord.example/api/webhooks/123456789012345678/***")]
    [InlineData("https://x.webhook.example/webhookb2/IncomingWebhook/0123456789abcdef0123456789abcdef/x?k=v", "https://x.webhook.example/webhookb2/IncomingWebhook/***/x?k=***")]
    [InlineData("https://noc.example.com/incoming-webhook/alerts", "https://noc.example.com/incoming-webhook/alerts")]
    public void Regression_a_webhook_key_in_the_url_path_was_shown_in_full(string url, string shown)
    {
        Assert.Equal(shown, Redact.Url(new Uri(url)));
        Assert.Equal(shown, Redact.Url(url));
    }

    [Theory]
    [InlineData("Xq7kP2mN9vR4sT8wY3zA", true)] // letters and digits, 20
    [InlineData("0123456789abcdef", true)] // hex, exactly 16
    [InlineData("0123456789abcde", false)] // 15: too short
    [InlineData("IncomingWebhookService", false)] // a long name without digits
    [InlineData("123456789012345678", false)] // a numeric id
    [InlineData("abc.def0123456789", false)] // '.' is not a token character
    [InlineData("abc%20def0123456789", false)]
    public void A_path_segment_is_a_token_when_long_random_looking_letters_and_digits(string segment, bool token) =>
        Assert.Equal(token, Redact.IsTokenSegment(segment));

    [Theory]
    [InlineData("https://noc.example.com/alerts", false)]
    [InlineData("https://u:p@noc.example.com/alerts", true)]
    [InlineData("https://noc.example.com/alerts?token=x", true)]
    [InlineData("https://hooks.example/services/T000/B000/Xq7kP2mN9vR4sT8wY3zA", true)]
    public void A_url_has_a_secret_when_redaction_hides_something(string url, bool secret) =>
        Assert.Equal(secret, Redact.HasSecret(new Uri(url)));
}
