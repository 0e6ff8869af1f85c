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
}
