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

    [Theory]
    [InlineData("broker-a:8883", "broker-a", 8883)]
    [InlineData("broker-c", "broker-c", 1883)]
    [InlineData("[fd00::20]:1884", "fd00::20", 1884)]
    [InlineData("[fd00::20]", "fd00::20", 1883)]
    [InlineData(" 10.0.0.5:1885 ", "10.0.0.5", 1885)]
    public void A_hosts_entry_takes_its_own_port_or_the_default(string entry, string host, int port)
    {
        Assert.Equal(new MqttBrokerAddress(host, port), MqttBrokerAddress.Parse(entry, 1883, out var error));
        Assert.Null(error);
    }

    [Fact]
    public void Hosts_entries_without_a_port_take_port_or_the_tls_default()
    {
        var tls = Valid with { Host = "", Hosts = ["a", "b:1883"], Tls = new MqttTlsOptions { Enabled = true } };
        Assert.Equal([new MqttBrokerAddress("a", 8883), new MqttBrokerAddress("b", 1883)], tls.Servers);
        Assert.Equal([new MqttBrokerAddress("a", 2883), new MqttBrokerAddress("b", 1883)], (Valid with { Hosts = ["a", "b:1883"], Port = 2883 }).Servers);
        Assert.Equal([new MqttBrokerAddress("broker", 1883)], Valid.Servers);
        Assert.Empty((Valid with { Host = "", Hosts = ["a:8883", "[fd00::20]:1883", "broker-c"] }).Validate());
    }

    [Theory]
    [InlineData("mqtt://broker:1883", "uplinks.mqtt.Hosts[1] 'mqtt://broker:1883' is not host[:port]")]
    [InlineData("broker:0", "uplinks.mqtt.Hosts[1] 'broker:0' has port '0': must be 1..65535")]
    [InlineData("broker:x", "uplinks.mqtt.Hosts[1] 'broker:x' has port 'x': must be 1..65535")]
    [InlineData("fd00::20", "uplinks.mqtt.Hosts[1] 'fd00::20': write an IPv6 address in brackets")]
    [InlineData("[fd00::zz]:1883", "uplinks.mqtt.Hosts[1] '[fd00::zz]:1883' is not [IPv6 address][:port]")]
    [InlineData("", "uplinks.mqtt.Hosts[1] is empty")]
    [InlineData(":1883", "uplinks.mqtt.Hosts[1] ':1883' has no host")]
    [InlineData("A:1883", "uplinks.mqtt.Hosts[1] 'A:1883' is the same broker as Hosts[0] (a:1883): each broker once")]
    [InlineData("a", "uplinks.mqtt.Hosts[1] 'a' is the same broker as Hosts[0] (a:1883): each broker once")]
    public void A_bad_or_repeated_hosts_entry_is_named_with_its_index(string entry, string message)
    {
        var errors = (Valid with { Host = "", Hosts = ["a:1883", entry] }).Validate();
        Assert.Contains(errors, e => e.StartsWith(message, StringComparison.Ordinal));
    }

    [Fact]
    public void An_empty_hosts_list_is_refused()
    {
        var errors = (Valid with { Host = "", Hosts = [] }).Validate();
        Assert.Contains("uplinks.mqtt.Hosts is empty: list at least one broker, or use host: for a single one", errors);
        Assert.Contains("uplinks.mqtt.Host is required", (Valid with { Host = "" }).Validate());
    }

    [Fact]
    public void The_password_warning_names_the_first_broker_off_loopback_of_the_list()
    {
        var options = Valid with { Host = "", Hosts = ["127.0.0.1:1883", "broker-b:1883"], Username = "u", Password = "p" };
        Assert.Contains("the password goes to broker-b:1883 without TLS", Assert.Single(options.Warnings()).Message, StringComparison.Ordinal);
        Assert.Empty((options with { Hosts = ["127.0.0.1:1883", "[::1]:1884"] }).Warnings());
    }
}
