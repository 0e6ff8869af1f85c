using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;

namespace EdgeTwin.Uplink.Tests.Mqtt;

public sealed class MqttUplinkOptionsTests
{
    private static readonly MqttUplinkOptions Valid = new() { Host = "broker", Site = "s", Gateway = "g" };

    [Fact]
    public void Defaults_with_host_site_and_gateway_are_valid() => Assert.Empty(Valid.Validate());

    [Fact]
    public void Every_problem_is_reported_at_once_naming_its_setting()
    {
        var bad = new MqttUplinkOptions
        {
            Host = "",
            Port = 70000,
            Site = "a/b",
            Gateway = "",
            Password = "x",
            TopicTemplate = "edgetwin/{site}/{unknown}",
            Delivery = new DeliveryOptions { Window = 0, AckTimeout = TimeSpan.Zero },
        };
        var errors = bad.Validate();
        Assert.Contains(errors, e => e.Contains("uplinks.mqtt.Host", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("uplinks.mqtt.Port", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("uplinks.mqtt.Site", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("uplinks.mqtt.Gateway", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Password is set without Username", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("{kind}", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("{unknown}", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Delivery.Window", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Delivery.AckTimeout", StringComparison.Ordinal));
    }

    [Fact]
    public void The_uplink_refuses_to_start_with_invalid_settings()
    {
        var ex = Assert.Throws<UplinkOptionsException>(() => new MqttUplink(Valid with { Host = "" }, new TestOutbox()));
        Assert.Contains(ex.Errors, e => e.Contains("Host", StringComparison.Ordinal));
    }

    [Fact]
    public void Tls_files_must_exist()
    {
        var errors = (Valid with { Tls = new MqttTlsOptions { Enabled = true, CaFile = "/nonexistent/ca.pem" } }).Validate();
        Assert.Contains(errors, e => e.Contains("Tls.CaFile '/nonexistent/ca.pem' does not exist", StringComparison.Ordinal));
    }

    [Fact]
    public void Backlog_window_must_leave_live_data_a_slot()
    {
        var errors = (Valid with { Delivery = new DeliveryOptions { Window = 10, BacklogWindow = 10 } }).Validate();
        Assert.Contains(errors, e => e.Contains("BacklogWindow", StringComparison.Ordinal));
        Assert.Equal(8, new DeliveryOptions().EffectiveBacklogWindow(10));
        Assert.Equal(15, new DeliveryOptions().EffectiveBacklogWindow(20)); // mosquitto's MQTT 5 receive maximum
        Assert.Equal(192, new DeliveryOptions().EffectiveBacklogWindow(256));
        Assert.Equal(1, new DeliveryOptions().EffectiveBacklogWindow(2));
    }

    /// <summary>
    /// A Sparkplug group id is a topic level in UTF-8 ([tck-id-topic-structure-namespace-valid-group-id]); a NUL (MQTT
    /// forbids U+0000 in a topic name, 3.1.1 §1.5.3: a broker closes the connection) or an unpaired surrogate
    /// (no UTF-8 form) passed the check that only looked for '/', '+', '#'. Other non-ASCII text stays valid.
    /// </summary>
    [Theory]
    [InlineData(0x0000)]
    [InlineData(0xD800)]
    [InlineData(0xDC00)]
    public void Regression_a_sparkplug_group_id_with_nul_or_an_unpaired_surrogate_was_accepted(int character)
    {
        var options = Valid with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = "/var/lib/edgetwin", SparkplugGroupId = $"hall{(char)character}a" };
        Assert.Contains(options.Validate(), e => e.Contains("uplinks.mqtt.SparkplugGroupId", StringComparison.Ordinal));
        Assert.Empty((options with { SparkplugGroupId = "Halle-S\u00fcd \U0001F3ED" }).Validate());
    }

    [Theory]
    [InlineData("")]
    [InlineData("scada/a")]
    [InlineData("scada+")]
    [InlineData("#")]
    [InlineData("sca\0da")]
    public void A_sparkplug_primary_host_id_that_cannot_be_the_last_token_of_the_state_topic_is_refused(string id)
    {
        var options = Valid with { Encoding = MqttPayloadEncoding.SparkplugB, StateDirectory = "/var/lib/edgetwin", SparkplugPrimaryHostId = id };
        Assert.Contains($"uplinks.mqtt.SparkplugPrimaryHostId '{id}' may not be empty or contain '/', '+', '#', NUL or an unpaired surrogate (no UTF-8 form)", options.Validate());
        Assert.Empty((options with { SparkplugPrimaryHostId = "Ignition-SCADA.1" }).Validate());
    }
}
