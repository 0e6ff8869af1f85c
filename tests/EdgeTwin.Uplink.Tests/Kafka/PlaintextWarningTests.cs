using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Mqtt;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary>
/// Settings that work but expose a secret, or that the uplink silently overrides, give a warning (reported by
/// <c>check</c> and at start with file, line and key) with a text that says what is exposed.
/// </summary>
public sealed class PlaintextWarningTests
{
    private static KafkaUplinkOptions Kafka(KafkaSecurity security, KafkaSaslMechanism mechanism = KafkaSaslMechanism.ScramSha512, Dictionary<string, string>? settings = null) => new()
    {
        BootstrapServers = "kafka1:9092",
        Site = "s",
        Gateway = "g",
        Security = security,
        SaslMechanism = mechanism,
        SaslUsername = security is KafkaSecurity.SaslPlaintext or KafkaSecurity.SaslSsl ? "gw" : null,
        SaslPassword = security is KafkaSecurity.SaslPlaintext or KafkaSecurity.SaslSsl ? "pw" : null,
        Settings = settings ?? [],
    };

    [Fact]
    public void Regression_a_password_over_plaintext_mqtt_to_a_lan_broker_passed_without_a_warning()
    {
        var lan = Options(1883) with { Host = "192.0.2.10", Username = "gwuser", Password = "secret" };
        var warning = Assert.Single(lan.Warnings());
        Assert.Equal(("password", "the password goes to 192.0.2.10:1883 without TLS, readable by anyone on the network path; add tls: (port 8883) or reach the broker over loopback"),
            (warning.Key, warning.Message));

        // Nothing leaves the machine, TLS protects it, or there is no password: nothing to say.
        Assert.Empty((lan with { Host = "127.0.0.1" }).Warnings());
        Assert.Empty((lan with { Host = "localhost" }).Warnings());
        Assert.Empty((lan with { Host = "::1" }).Warnings());
        Assert.Empty((lan with { Tls = new MqttTlsOptions { Enabled = true } }).Warnings());
        Assert.Empty((lan with { Host = "10.1.2.3", Password = null }).Warnings());
    }

    [Fact]
    public void Regression_plain_mqtt_to_a_broker_off_the_private_networks_passed_without_a_warning_when_it_had_no_password()
    {
        // The whole telemetry stream crossed the internet in clear without a word, while an alert webhook to the same
        // host over plain http was warned about.
        var open = Options(1883) with { Host = "203.0.113.5" };
        var warning = Assert.Single(open.Warnings());
        Assert.Equal(("host", "plain MQTT to 203.0.113.5:1883, which is not a loopback, private (RFC 1918, ULA) or link-local address: the telemetry crosses the network unencrypted; add tls: (port 8883)"),
            (warning.Key, warning.Message));
        Assert.Equal("hosts", Assert.Single((open with { Host = "", Hosts = ["10.0.0.1:1883", "broker.example.net"] }).Warnings()).Key);

        // Loopback, the site's own networks (RFC 1918, link-local, ULA) or TLS: nothing to say.
        foreach (var host in (string[])["127.0.0.1", "localhost", "::1", "10.1.2.3", "172.16.0.9", "192.168.1.20", "169.254.1.1", "fd00::20", "fe80::1"])
        {
            Assert.Empty((open with { Host = host }).Warnings());
        }

        Assert.Empty((open with { Tls = new MqttTlsOptions { Enabled = true } }).Warnings());
    }

    [Fact]
    public void Regression_a_dot_localhost_broker_was_warned_about_for_mqtt_and_kafka_but_not_for_a_webhook()
    {
        // *.localhost resolves to loopback (RFC 6761); the webhook check knew that, the uplinks did not, so one config
        // got a "crosses the network" warning for a broker that never leaves the gateway.
        Assert.Empty((Options(1883) with { Host = "broker.localhost", Username = "gw", Password = "pw" }).Warnings());
        Assert.Empty((Kafka(KafkaSecurity.Plaintext) with { BootstrapServers = "kafka.localhost:9092" }).Warnings());
    }

    [Fact]
    public void Regression_plaintext_kafka_to_a_broker_off_the_private_networks_passed_without_a_warning()
    {
        var warning = Assert.Single((Kafka(KafkaSecurity.Plaintext) with { BootstrapServers = "10.0.0.5:9092, PLAINTEXT://kafka2.example.net:9092" }).Warnings());
        Assert.Equal(("bootstrap_servers", "plaintext to kafka2.example.net:9092, which is not a loopback, private (RFC 1918, ULA) or link-local address: the telemetry crosses the network unencrypted; use security: ssl"),
            (warning.Key, warning.Message));
        Assert.Contains("[2001:db8::1]:9092", Assert.Single((Kafka(KafkaSecurity.Plaintext) with { BootstrapServers = "[2001:db8::1]:9092" }).Warnings()).Message, StringComparison.Ordinal);

        Assert.Empty((Kafka(KafkaSecurity.Plaintext) with { BootstrapServers = "10.0.0.5:9092,[fd00::5]:9092,localhost:9092,127.0.0.1" }).Warnings());
        Assert.Empty(Kafka(KafkaSecurity.Ssl).Warnings());
    }

    [Fact]
    public void Regression_kafka_sasl_plaintext_with_plain_passed_without_a_warning()
    {
        var warning = Assert.Single(Kafka(KafkaSecurity.SaslPlaintext, KafkaSaslMechanism.Plain).Warnings());
        Assert.Equal(("security", "sasl_plaintext with sasl_mechanism plain sends the password in clear text to kafka1:9092 (and the data unencrypted); use security: sasl_ssl"),
            (warning.Key, warning.Message));
    }

    [Theory]
    [InlineData(KafkaSaslMechanism.ScramSha256)]
    [InlineData(KafkaSaslMechanism.ScramSha512)]
    public void Kafka_sasl_plaintext_with_scram_warns_of_offline_guessing(KafkaSaslMechanism mechanism)
    {
        var warning = Assert.Single(Kafka(KafkaSecurity.SaslPlaintext, mechanism).Warnings());
        Assert.Equal(("security", "sasl_plaintext with SCRAM does not send the password itself, but its handshake goes unencrypted to kafka1:9092 and lets an eavesdropper guess the password offline (and the data is unencrypted); use security: sasl_ssl"),
            (warning.Key, warning.Message));
        Assert.Empty(Kafka(KafkaSecurity.SaslSsl, mechanism).Warnings());
    }

    [Fact]
    public void Regression_kafka_settings_the_uplink_overrides_were_ignored_silently()
    {
        var options = Kafka(KafkaSecurity.Ssl, settings: new()
        {
            ["enable.ssl.certificate.verification"] = "false",
            ["ssl.endpoint.identification.algorithm"] = "none",
            ["client.id"] = "mine",
            ["compression.codec"] = "gzip",
            ["batch.size"] = "100000",
        });
        Assert.Equal(
            [
                ("settings.enable.ssl.certificate.verification", "'false' is ignored: the uplink always verifies the broker certificate"),
                ("settings.ssl.endpoint.identification.algorithm", "'none' is ignored: the uplink always checks the broker's host name (https)"),
                ("settings.client.id", "'mine' is ignored: the uplink sets it to edgetwin-<gateway>"),
                ("settings.compression.codec", "'gzip' is ignored (an alias of compression.type): set it with compression:"),
            ],
            options.Warnings().Select(w => (w.Key, w.Message)));

        // What the uplink leaves alone, or sets to the same value, passes without a word.
        Assert.Empty(Kafka(KafkaSecurity.Ssl, settings: new() { ["batch.size"] = "100000", ["enable.ssl.certificate.verification"] = "true" }).Warnings());
    }

    [Fact]
    public void Regression_the_warning_about_an_ignored_kafka_sasl_password_setting_showed_the_password()
    {
        // sasl.password in settings: is overridden by sasl_password[_file]; the warning said so, quoting the value.
        var options = Kafka(KafkaSecurity.SaslSsl, settings: new()
        {
            ["sasl.password"] = "S3CRET-sasl",
            ["ssl.key.password"] = "S3CRET-key",
            ["client.id"] = "mine",
        });
        Assert.Equal(
            [
                ("settings.sasl.password", "'***' is ignored: set it with sasl_password_file:"),
                ("settings.ssl.key.password", "'***' is ignored: set it with ssl_key_password_file:"),
                ("settings.client.id", "'mine' is ignored: the uplink sets it to edgetwin-<gateway>"),
            ],
            options.Warnings().Select(w => (w.Key, w.Message)));
    }

    [Theory]
    [InlineData("sasl.password", true)]
    [InlineData("ssl.key.password", true)]
    [InlineData("ssl.keystore.password", true)]
    [InlineData("ssl.truststore.password", true)]
    [InlineData("sasl.oauthbearer.client.secret", true)]
    [InlineData("my.vendor.Secret", true)]
    [InlineData("ssl.key.pem", true)]
    [InlineData("sasl.username", false)]
    [InlineData("ssl.keystore.location", false)]
    [InlineData("sasl.oauthbearer.client.id", false)]
    [InlineData("batch.size", false)]
    public void Settings_that_carry_a_secret_are_known_by_their_name(string key, bool secret) =>
        Assert.Equal(secret, KafkaUplinkOptions.IsSecretSetting(key));
}
