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

    /// <summary>
    /// How the broker (or the handshake) refused a connect with <paramref name="options"/>: the exception, or a CONNACK
    /// code as text. These tests passed <see cref="ConnectAsync"/> to <c>ThrowsAnyAsync&lt;Exception&gt;</c>, so a timeout
    /// or the success assertion failing counted as a refusal without saying which.
    /// </summary>
    private static async Task<(Exception? Error, MqttClientConnectResultCode? Code)> RefusalAsync(MqttUplinkOptions options)
    {
        var factory = new MqttClientOptionsFactory(options);
        using var client = new MqttClientFactory().CreateMqttClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            var result = await client.ConnectAsync(factory.CreateBuilder(factory.UplinkClientId + "-rpc").WithCleanStart(true).Build(), cts.Token);
            Assert.NotEqual(MqttClientConnectResultCode.Success, result.ResultCode);
            return (null, result.ResultCode);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not Xunit.Sdk.XunitException)
        {
            return (ex, null);
        }
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
        foreach (var foreign in new[] { options with { Tls = options.Tls with { CaFile = pki.OtherCaFile } }, options with { Tls = options.Tls with { ServerName = "broker.example.org" } } })
        {
            var (error, _) = await RefusalAsync(foreign);
            Assert.True(error is not null && MqttSecurityTests.RejectedCertificate(error), $"the handshake did not reject the broker's certificate: {error}");
        }

        // Without a client certificate the broker refuses us (not we the broker).
        var (withoutCertificate, code) = await RefusalAsync(options with { Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile } });
        Assert.True(code is not null || (withoutCertificate is not null && !MqttSecurityTests.RejectedCertificate(withoutCertificate)), $"{withoutCertificate}");
    }

    [Fact]
    public async Task Username_and_password_are_sent_and_a_wrong_password_is_refused()
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Account = ("edge", "s3cret") });
        await ConnectAsync(Options(broker.Port) with { Username = "edge", Password = "s3cret" });
        var (error, code) = await RefusalAsync(Options(broker.Port) with { Username = "edge", Password = "wrong" });
        var refusal = $"{code} {error?.Message}";
        Assert.True(refusal.Contains("NotAuthorized", StringComparison.Ordinal) || refusal.Contains("BadUserNameOrPassword", StringComparison.Ordinal), refusal);
    }

    [Fact]
    public void The_rpc_client_id_derives_from_the_uplinks()
    {
        Assert.Equal("edgetwin-gw1", new MqttClientOptionsFactory(Options(1883) with { ClientId = null }).UplinkClientId);
        Assert.Equal("mqtt://127.0.0.1:1883", new MqttClientOptionsFactory(Options(1883)).Peer);
    }
}
