using EdgeTwin.Uplink.Kafka;
using EdgeTwin.Uplink.Mqtt;

namespace EdgeTwin.Uplink.Tests;

/// <summary>
/// The uplinks' options are records, and a record's ToString prints every property: one <c>{Options}</c> in a log
/// line or an exception message would have put the broker password, the SASL password or a secret librdkafka setting
/// in the journal. They print identity and connection, secrets as <c>***</c>.
/// </summary>
public sealed class OptionsPrintingTests
{
    [Fact]
    public void Regression_mqtt_uplink_options_printed_the_password_and_the_certificate_password()
    {
        var options = new MqttUplinkOptions
        {
            Host = "broker.example.net",
            Port = 8883,
            Username = "gw1",
            Password = "mqtt-pw-51aa",
            Tls = new MqttTlsOptions { Enabled = true, ClientCertificateFile = "/etc/edgetwin/tls/gw1.p12", ClientCertificatePassword = "p12-pw-9c1e" },
        };

        var text = options.ToString();

        Assert.DoesNotContain("mqtt-pw-51aa", text, StringComparison.Ordinal);
        Assert.DoesNotContain("p12-pw-9c1e", text, StringComparison.Ordinal);
        Assert.Contains("Host = broker.example.net, Port = 8883", text, StringComparison.Ordinal);
        Assert.Contains("Username = gw1, Password = ***", text, StringComparison.Ordinal);
        Assert.Contains("ClientCertificateFile = /etc/edgetwin/tls/gw1.p12, ClientKeyFile = , ClientCertificatePassword = ***", text, StringComparison.Ordinal);
        Assert.Contains("Password = null", (options with { Password = null }).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_kafka_uplink_options_printed_the_sasl_password_and_secret_settings()
    {
        var options = new KafkaUplinkOptions
        {
            BootstrapServers = "kafka1:9093",
            Security = KafkaSecurity.SaslSsl,
            SaslUsername = "gw1",
            SaslPassword = "sasl-pw-3b1f",
            SslKeyPassword = "key-pw-77c0",
            Settings = new Dictionary<string, string> { ["sasl.oauthbearer.client.secret"] = "oauth-4e0d", ["socket.timeout.ms"] = "30000" },
        };

        var text = options.ToString();

        foreach (var secret in new[] { "sasl-pw-3b1f", "key-pw-77c0", "oauth-4e0d" })
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }

        Assert.Contains("BootstrapServers = kafka1:9093", text, StringComparison.Ordinal);
        Assert.Contains("SaslUsername = gw1, SaslPassword = ***", text, StringComparison.Ordinal);
        Assert.Contains("Settings = [sasl.oauthbearer.client.secret=***, socket.timeout.ms=30000]", text, StringComparison.Ordinal);
    }
}
