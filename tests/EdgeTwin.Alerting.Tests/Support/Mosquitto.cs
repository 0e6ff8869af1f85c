using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>
/// A real mosquitto on 127.0.0.1 and a random port, config in a temp directory; skips the test when it is not installed.
/// With a <see cref="EdgeTwin.Uplink.Tests.Support.TestPki"/> it also listens with TLS on <see cref="TlsPort"/> (client
/// certificate required); with an account, anonymous clients are refused. With <c>keepSessions</c> it keeps persistent
/// sessions over <see cref="StopKeepingSessionsAsync"/> and <see cref="RestartAsync"/>, as a production broker with
/// persistence does: a consumer subscribed with a session id gets what was published while it was away.
/// </summary>
internal sealed class Mosquitto : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/mosquitto";
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-alerts-mosquitto-").FullName;
    private readonly EdgeTwin.Uplink.Tests.Support.TestPki? _tls;
    private readonly (string User, string Password)? _account;
    private readonly bool _keepSessions;
    private Process? _process;

    private readonly int? _maxPacketSize;
    private readonly string? _clientIdPrefix;
    private readonly (string Cert, string Key)? _serverCertificate;

    private Mosquitto(EdgeTwin.Uplink.Tests.Support.TestPki? tls, (string User, string Password)? account, bool keepSessions, int? maxPacketSize = null, string? clientIdPrefix = null, (string Cert, string Key)? serverCertificate = null)
    {
        _serverCertificate = serverCertificate;
        _maxPacketSize = maxPacketSize;
        _clientIdPrefix = clientIdPrefix;
        _tls = tls;
        _account = account;
        _keepSessions = keepSessions;
        var tlsPort = tls is null ? 0 : Ports.FreeTcp();
        while (tlsPort != 0 && tlsPort == Port)
        {
            tlsPort = Ports.FreeTcp();
        }

        TlsPort = tlsPort;
    }

    public int Port { get; } = Ports.FreeTcp();

    public int TlsPort { get; }

    public string LogFile => Path.Combine(_dir, "mosquitto.log");

    /// <param name="maxPacketSize">mosquitto's <c>max_packet_size</c>: it closes the connection of a client that sends a larger packet (MQTT 3.1.1 has no refusal).</param>
    /// <param name="clientIdPrefix">mosquitto's <c>clientid_prefixes</c>: any other client id is refused as not authorised, as brokers that tie client ids to accounts do.</param>
    /// <param name="serverCertificate">The TLS listener's certificate instead of the PKI's default (localhost and 127.0.0.1), e.g. <see cref="EdgeTwin.Uplink.Tests.Support.TestPki.ServerFor"/>.</param>
    public static async Task<Mosquitto> StartAsync(EdgeTwin.Uplink.Tests.Support.TestPki? tls = null, (string User, string Password)? account = null, bool keepSessions = false, int? maxPacketSize = null, string? clientIdPrefix = null, (string Cert, string Key)? serverCertificate = null)
    {
        if (!File.Exists(Binary))
        {
            Assert.Skip($"{Binary} not installed (apt-get install mosquitto)");
        }

        var m = new Mosquitto(tls, account, keepSessions, maxPacketSize, clientIdPrefix, serverCertificate);
        await m.LaunchAsync();
        return m;
    }

    /// <summary>Starts it again on the same port (after <see cref="Stop"/>): the uplink outage ends.</summary>
    public Task RestartAsync()
    {
        Stop();
        return LaunchAsync();
    }

    private async Task LaunchAsync()
    {
        var conf = Path.Combine(_dir, "mosquitto.conf");
        var text = new System.Text.StringBuilder($"per_listener_settings false\nlistener {Port} 127.0.0.1\nlog_dest file {LogFile}\n");
        if (_keepSessions)
        {
            // Queued for an absent persistent session: everything, QoS 0 included, however many.
            text.Append($"persistence true\npersistence_location {_dir}/\nmax_queued_messages 0\nqueue_qos0_messages true\n");
        }

        if (_clientIdPrefix is { } prefix)
        {
            text.Append($"clientid_prefixes {prefix}\n");
        }

        if (_maxPacketSize is { } packet)
        {
            text.Append($"max_packet_size {packet}\n");
        }

        if (_account is not null || _tls is not null || _keepSessions)
        {
            // Else mosquitto started as root drops to user mosquitto, who cannot read the 0700 temp directories' files.
            text.Append("user root\n");
        }

        if (_account is { } account)
        {
            var passwd = Path.Combine(_dir, "passwd");
            using (var p = Process.Start(new ProcessStartInfo("/usr/bin/mosquitto_passwd", ["-c", "-b", passwd, account.User, account.Password]) { UseShellExecute = false, RedirectStandardError = true })!)
            {
                await p.WaitForExitAsync();
                Assert.True(p.ExitCode == 0, "mosquitto_passwd failed: " + await p.StandardError.ReadToEndAsync());
            }

            text.Append($"allow_anonymous false\npassword_file {passwd}\n");
        }
        else
        {
            text.Append("allow_anonymous true\n");
        }

        if (_tls is { } pki)
        {
            var (cert, key) = _serverCertificate ?? (pki.ServerCertFile, pki.ServerKeyFile);
            text.Append($"listener {TlsPort} 127.0.0.1\ncafile {pki.CaFile}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\n");
        }

        await File.WriteAllTextAsync(conf, text.ToString());
        _process?.Dispose();
        _process = Process.Start(new ProcessStartInfo(Binary, ["-c", conf]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })!;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, Port);
                if (TlsPort != 0)
                {
                    using var t = new TcpClient();
                    await t.ConnectAsync(IPAddress.Loopback, TlsPort);
                }

                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>
    /// Subscribes (QoS 1, SUBACK awaited) and collects every message on <paramref name="filter"/>. With a
    /// <paramref name="sessionId"/> the session persists (MQTT 5, clean start off, an hour's expiry): subscribing again
    /// under the same id after a disconnect or a <see cref="StopKeepingSessionsAsync"/> delivers what was queued meanwhile.
    /// </summary>
    public async Task<MQTTnet.IMqttClient> SubscribeAsync(string filter, System.Collections.Concurrent.ConcurrentQueue<(string Topic, byte[] Payload)> into, string? sessionId = null)
    {
        var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            into.Enqueue((e.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload)));
            return Task.CompletedTask;
        };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var options = new MQTTnet.MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", Port).WithClientId(sessionId ?? "test-" + Guid.NewGuid().ToString("N"));
        if (sessionId is not null)
        {
            Assert.True(_keepSessions, "a session id needs a broker started with keepSessions");
            options = options.WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500).WithCleanStart(false).WithSessionExpiryInterval(3600);
        }

        if (_account is { } account)
        {
            options = options.WithCredentials(account.User, account.Password);
        }

        await client.ConnectAsync(options.Build(), cts.Token);
        await client.SubscribeAsync(new MQTTnet.MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build(), cts.Token);
        return client;
    }

    /// <summary>SIGTERM and wait: mosquitto writes its persistence file (sessions, subscriptions, queued messages).</summary>
    public async Task StopKeepingSessionsAsync()
    {
        Assert.True(_keepSessions, "start the broker with keepSessions");
        if (_process is not { HasExited: false } p)
        {
            return;
        }

        using (var kill = Process.Start(new ProcessStartInfo("/bin/kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!)
        {
            await kill.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(cts.Token);
        Assert.True(File.Exists(Path.Combine(_dir, "mosquitto.db")), "mosquitto wrote no persistence file on SIGTERM: " + File.ReadAllText(LogFile));
    }

    public void Stop()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit(10_000);
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _process?.Dispose();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }
}
