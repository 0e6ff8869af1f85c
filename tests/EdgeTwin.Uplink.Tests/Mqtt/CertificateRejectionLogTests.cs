using System.Security.Cryptography.X509Certificates;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>
/// A broker certificate the uplink refuses is logged with why (name, trust, validity) and the certificate's subject and
/// SANs, once per streak of failed connects, against a real mosquitto TLS listener.
/// </summary>
public sealed class CertificateRejectionLogTests
{
    private const string Presented = "CN=localhost (SAN DNS:localhost, IP:127.0.0.1)";

    /// <summary>Runs the uplink until it has failed <paramref name="attempts"/> connects; returns the rejection lines.</summary>
    private static async Task<List<string>> RejectionsAsync(MqttUplinkOptions options, int attempts = 3)
    {
        await using var outbox = new TestOutbox();
        var log = new RecordingLogger();
        var uplink = new MqttUplink(options, outbox, log);
        using var cts = new CancellationTokenSource();
        var run = uplink.RunAsync(cts.Token);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (log.Lines.Count(l => l.Message.Contains("could not connect", StringComparison.Ordinal)) < attempts)
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for failed connects: " + string.Join("\n", log.Lines.Select(l => l.Message)));
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        await cts.CancelAsync();
        await run;
        return [.. log.Lines.Where(l => l.Level == LogLevel.Warning && l.Message.Contains("broker certificate", StringComparison.Ordinal)).Select(l => l.Message)];
    }

    private static MqttUplinkOptions Over(Mosquitto broker, TestPki pki, string? ca = null, string? serverName = null) => Options(broker.TlsPort) with
    {
        Host = "localhost",
        Tls = new MqttTlsOptions { Enabled = true, CaFile = ca ?? pki.CaFile, ClientCertificateFile = pki.ClientCertFile, ClientKeyFile = pki.ClientKeyFile, ServerName = serverName },
    };

    [Fact]
    public async Task Regression_a_broker_certificate_for_another_name_was_rejected_without_a_reason()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var line = Assert.Single(await RejectionsAsync(Over(broker, pki, serverName: "broker.example.org")));
        Assert.Equal($"Uplink mqtt: mqtts://localhost:{broker.TlsPort}: broker certificate {Presented} does not match host broker.example.org", line);
    }

    [Fact]
    public async Task A_broker_certificate_from_a_ca_not_in_ca_file_is_logged_as_an_untrusted_root()
    {
        using var pki = new TestPki();
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        var line = Assert.Single(await RejectionsAsync(Over(broker, pki, ca: pki.OtherCaFile)));
        Assert.Equal($"Uplink mqtt: mqtts://localhost:{broker.TlsPort}: broker certificate {Presented} untrusted root (issued by CN=EdgeTwin Test CA, which is not a CA in {pki.OtherCaFile})", line);
    }

    [Fact]
    public async Task An_expired_broker_certificate_is_logged_with_its_expiry()
    {
        using var pki = new TestPki(serverExpired: true);
        await using var broker = await Mosquitto.StartAsync(new MosquittoSettings { Tls = pki });
        using var served = X509Certificate2.CreateFromPem(File.ReadAllText(pki.ServerCertFile));
        var line = Assert.Single(await RejectionsAsync(Over(broker, pki)));
        Assert.Equal($"Uplink mqtt: mqtts://localhost:{broker.TlsPort}: broker certificate {Presented} expired {served.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC", line);
    }
}
