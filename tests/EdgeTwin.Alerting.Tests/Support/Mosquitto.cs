using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>A real mosquitto on 127.0.0.1 and a random port, config in a temp directory; skips the test when it is not installed.</summary>
internal sealed class Mosquitto : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/mosquitto";
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-alerts-mosquitto-").FullName;
    private Process? _process;

    public int Port { get; } = FreePort();

    public static async Task<Mosquitto> StartAsync()
    {
        if (!File.Exists(Binary))
        {
            Assert.Skip($"{Binary} not installed (apt-get install mosquitto)");
        }

        var m = new Mosquitto();
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
        await File.WriteAllTextAsync(conf, $"per_listener_settings false\nallow_anonymous true\nlistener {Port} 127.0.0.1\nlog_dest file {_dir}/mosquitto.log\n");
        _process?.Dispose();
        _process = Process.Start(new ProcessStartInfo(Binary, ["-c", conf]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })!;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Subscribes (QoS 1, SUBACK awaited) and collects every message on <paramref name="filter"/>.</summary>
    public async Task<MQTTnet.IMqttClient> SubscribeAsync(string filter, System.Collections.Concurrent.ConcurrentQueue<(string Topic, byte[] Payload)> into)
    {
        var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            into.Enqueue((e.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload)));
            return Task.CompletedTask;
        };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await client.ConnectAsync(new MQTTnet.MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", Port).WithClientId("test-" + Guid.NewGuid().ToString("N")).Build(), cts.Token);
        await client.SubscribeAsync(new MQTTnet.MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build(), cts.Token);
        return client;
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

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
