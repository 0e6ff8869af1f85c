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

    [Fact]
    public void Regression_a_kafka_topic_longer_than_249_characters_was_refused_and_its_entries_passed_over()
    {
        // A long device id (an event source under a long rack name) gave a 300-character topic the cluster refused.
        var t = new TopicTemplate("edgetwin.{site}.{kind}.{device}", Id, kafkaNames: true);
        var longId = new string('r', 280) + "-a";
        var twin = new string('r', 280) + "-b";
        var topic = t.Format(OutboxKind.Event, longId);
        var other = t.Format(OutboxKind.Event, twin);

        Assert.Equal(TopicTemplate.KafkaMaxTopicLength, topic.Length);
        Assert.StartsWith("edgetwin.site1.event.rrrr", topic, StringComparison.Ordinal);
        Assert.Matches("-[0-9a-f]{8}$", topic);
        Assert.NotEqual(topic, other); // same prefix, different ids: the hash keeps them apart
        Assert.Equal(topic, t.Format(OutboxKind.Event, longId)); // stable across records (and restarts: no random seed)
        Assert.Equal("edgetwin.site1.event.rack-a01", t.Format(OutboxKind.Event, "rack-a01")); // short ids unchanged

        // MQTT has no such limit: the id stays whole.
        Assert.Equal(21 + longId.Length, new TopicTemplate("edgetwin/{site}/{kind}/{device}", Id).Format(OutboxKind.Event, longId).Length);
    }

    [Fact]
    public void A_kafka_template_whose_fixed_part_leaves_no_room_for_the_id_keeps_only_its_hash()
    {
        var site = new string('s', 249 - "..event".Length - 8);
        var t = new TopicTemplate("{site}.{kind}.{device}", new UplinkIdentity(site, "gw1"), kafkaNames: true);
        var topic = t.Format(OutboxKind.Event, "pdu-a01-a-long");
        Assert.Equal(249, topic.Length);
        Assert.Matches($"^{site}\\.event\\.[0-9a-f]{{8}}$", topic);
    }

    [Theory]
    [InlineData("edgetwin/{site}", "{kind}")]
    [InlineData("edgetwin/{kind}/#", "wildcards")]
    [InlineData("edgetwin/{kind}/{rack}", "{rack}")]
    [InlineData("edgetwin/{kind", "unclosed")]
    public void Bad_templates_are_refused(string template, string mentions) =>
        Assert.Contains(TopicTemplate.Validate(template, "t"), e => e.Contains(mentions, StringComparison.Ordinal));
}
