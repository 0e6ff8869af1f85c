using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Payloads;

namespace EdgeTwin.Uplink.Tests.Payloads;

public sealed class TopicTemplateTests
{
    private static readonly UplinkIdentity Id = new("site1", "gw1");

    [Fact]
    public void Default_template_per_kind()
    {
        var t = new TopicTemplate("edgetwin/{site}/{gateway}/{kind}", Id);
        Assert.Equal("edgetwin/site1/gw1/summary", t.Format(OutboxKind.Summary, "x"));
        Assert.Equal("edgetwin/site1/gw1/twin_state", t.Format(OutboxKind.TwinState, "x"));
        Assert.Equal("edgetwin/site1/gw1/status", t.Format("status", "x"));
    }

    [Fact]
    public void Device_placeholder_is_cleaned_of_separators_and_wildcards()
    {
        var t = new TopicTemplate("dc/{site}/{kind}/{device}", Id);
        Assert.Equal("dc/site1/event/rack_1_+x".Replace("+", "_", StringComparison.Ordinal), t.Format(OutboxKind.Event, "rack/1/+x"));
    }

    [Theory]
    [InlineData("edgetwin/{site}", "{kind}")]
    [InlineData("edgetwin/{kind}/#", "wildcards")]
    [InlineData("edgetwin/{kind}/{rack}", "{rack}")]
    [InlineData("edgetwin/{kind", "unclosed")]
    public void Bad_templates_are_refused(string template, string mentions) =>
        Assert.Contains(TopicTemplate.Validate(template, "t"), e => e.Contains(mentions, StringComparison.Ordinal));
}
