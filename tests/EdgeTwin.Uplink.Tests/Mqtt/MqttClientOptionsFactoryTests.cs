using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using MQTTnet;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// The uplink's connection settings for a second client (the twin request server's session) reach the same broker the
/// same way as the uplink: TLS with the broker validated against the configured CA and a client certificate, and
/// username/password; what the uplink refuses, this refuses too.
/// </summary>
public sealed class MqttClientOptionsFactoryTests
{
    private static async Task ConnectAsync(MqttUplinkOptions options)
    {
        var factory = new MqttClientOptionsFactory(options);
        using var client = new MqttClientFactory().CreateMqttClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var result = await client.ConnectAsync(factory.CreateBuilder(factory.UplinkClientId + "-rpc").WithCleanStart(true).Build(), cts.Token);
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), cts.Token);
    }

    [Fact]
    public async Task Tls_with_a_client_certificate_connects_and_a_foreign_ca_or_wrong_name_is_refused()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var options = Options(broker.TlsPort) with
        {
            Host = "localhost",
            Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile, ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile },
        };
        await ConnectAsync(options);
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(options with { Tls = options.Tls with { CaFile = pki.OtherCaFile } }));
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(options with { Tls = options.Tls with { ServerName = "broker.example.org" } }));
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(options with { Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile } }));
    }

    [Fact]
    public async Task Username_and_password_are_sent_and_a_wrong_password_is_refused()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Account = ("edge", "s3cret") });
        await ConnectAsync(Options(broker.Port) with { Username = "edge", Password = "s3cret" });
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(Options(broker.Port) with { Username = "edge", Password = "wrong" }));
    }

    [Fact]
    public void The_rpc_client_id_derives_from_the_uplinks()
    {
        Assert.Equal("edgetwin-gw1", new MqttClientOptionsFactory(Options(1883) with { ClientId = null }).UplinkClientId);
        Assert.Equal("mqtt://127.0.0.1:1883", new MqttClientOptionsFactory(Options(1883)).Peer);
    }
}
