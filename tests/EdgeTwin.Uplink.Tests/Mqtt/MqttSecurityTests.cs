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

    /// <summary>
    /// Connects once expecting a refusal, and returns it. The options are validated outside the expected failure: these
    /// tests passed <see cref="ConnectOnceAsync"/> to <c>ThrowsAnyAsync&lt;Exception&gt;</c>, so options the uplink
    /// rejects (the <c>Assert.Empty</c> failing) or a connect that timed out counted as the broker's refusal.
    /// </summary>
    private static async Task<Exception> RefusedAsync(MqttUplinkOptions o)
    {
        Assert.Empty(o.Validate());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var refused = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var session = await Transport(o).ConnectAsync(cts.Token);
        });
        Assert.False(refused is OperationCanceledException, $"the connect timed out instead of being refused: {refused}");
        return refused;
    }

    /// <summary>Whether the TLS handshake itself refused the broker's certificate (not some other failure).</summary>
    internal static bool RejectedCertificate(Exception refused)
    {
        for (var e = refused; e is not null; e = e.InnerException)
        {
            if (e is System.Security.Authentication.AuthenticationException)
            {
                return true;
            }
        }

        return false;
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
        var refused = await RefusedAsync(options);
        Assert.True(RejectedCertificate(refused), refused.ToString());
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
        var refused = await RefusedAsync(options);
        Assert.True(RejectedCertificate(refused), refused.ToString());
    }

    [Fact]
    public async Task Tls_without_a_client_certificate_is_refused_by_a_broker_that_requires_one()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var options = Options(broker.TlsPort) with { Host = "localhost", Tls = new MqttTlsOptions { Enabled = true, CaFile = pki.CaFile } };
        await ConnectOnceAsync(options with { Tls = options.Tls with { ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile } });
        var refused = await RefusedAsync(options);
        Assert.False(RejectedCertificate(refused), $"the gateway refused the broker, not the broker the gateway: {refused}");
    }

    [Theory]
    [InlineData(MqttProtocol.V311)]
    [InlineData(MqttProtocol.V500)]
    public async Task Username_and_password_are_sent_and_a_wrong_password_is_refused(MqttProtocol protocol)
    {
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Account = ("edge", "s3cret") });
        await ConnectOnceAsync(Options(broker.Port, protocol) with { Username = "edge", Password = "s3cret" });
        Assert.Contains("refused the connection: NotAuthorized", Assert.IsType<UplinkConnectException>(await RefusedAsync(Options(broker.Port, protocol) with { Username = "edge", Password = "wrong" })).Message, StringComparison.Ordinal);
        Assert.Contains("refused the connection: NotAuthorized", Assert.IsType<UplinkConnectException>(await RefusedAsync(Options(broker.Port, protocol))).Message, StringComparison.Ordinal);
    }
}
