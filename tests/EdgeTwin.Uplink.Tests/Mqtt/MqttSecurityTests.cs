using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Payloads;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

public sealed class MqttSecurityTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static MqttTransport Transport(MqttUplinkOptions o) =>
        new(o, new JsonMqttEncoder(o.Identity, new TopicTemplate(o.TopicTemplate, o.Identity)), TimeProvider.System, NullLogger.Instance);

    private static async Task ConnectOnceAsync(MqttUplinkOptions o)
    {
        Assert.Empty(o.Validate());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var session = await Transport(o).ConnectAsync(cts.Token);
    }

    [Theory]
    [InlineData(MqttProtocol.V311)]
    [InlineData(MqttProtocol.V500)]
    public async Task Tls_with_a_validated_server_and_a_client_certificate_delivers(MqttProtocol protocol)
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#");
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 20).Select(i => Record("d", i))], CancellationToken.None);
        var options = Options(broker.TlsPort, protocol) with
        {
            Host = "localhost",
            Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile, ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile },
        };
        var uplink = new MqttUplink(options, outbox);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), 20, Long);
        await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == 20, Long, "20 messages over TLS");
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Tls_refuses_a_broker_signed_by_another_ca()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var options = Options(broker.TlsPort) with
        {
            Host = "localhost",
            Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.OtherCaFile, ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile },
        };
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectOnceAsync(options));
    }

    [Fact]
    public async Task Tls_refuses_a_broker_whose_name_does_not_match()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var options = Options(broker.TlsPort) with
        {
            Host = "localhost",
            Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile, ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile, ServerName = "broker.example.org" },
        };
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectOnceAsync(options));
    }

    [Fact]
    public async Task Tls_without_a_client_certificate_is_refused_by_a_broker_that_requires_one()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var options = Options(broker.TlsPort) with { Host = "localhost", Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile } };
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectOnceAsync(options));
    }

    [Theory]
    [InlineData(MqttProtocol.V311)]
    [InlineData(MqttProtocol.V500)]
    public async Task Username_and_password_are_sent_and_a_wrong_password_is_refused(MqttProtocol protocol)
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Account = ("edge", "s3cret") });
        await ConnectOnceAsync(Options(broker.Port, protocol) with { Username = "edge", Password = "s3cret" });
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectOnceAsync(Options(broker.Port, protocol) with { Username = "edge", Password = "wrong" }));
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectOnceAsync(Options(broker.Port, protocol)));
    }
}
