using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MQTTnet.Server;

namespace EdgeTwin.Agent.Demo;

/// <summary>
/// An MQTT broker inside the demo process (MQTTnet.Server) on a free loopback port, standing in for the
/// central site's broker. It counts what arrives per topic and keeps the latest payload of each, so the
/// demo can show what the uplink delivered.
/// </summary>
internal sealed class EmbeddedBroker : IAsyncDisposable
{
    private readonly MqttServer _server;
    private readonly ConcurrentDictionary<string, TopicStats> _topics = new(StringComparer.Ordinal);
    private long _messages;
    private int _clients;

    private EmbeddedBroker(MqttServer server, int port)
    {
        _server = server;
        Port = port;
        _server.InterceptingPublishAsync += e =>
        {
            var topic = e.ApplicationMessage.Topic;
            var payload = Encoding.UTF8.GetString(e.ApplicationMessage.Payload);
            _topics.AddOrUpdate(topic, _ => new TopicStats(1, payload, DateTimeOffset.UtcNow), (_, s) => new TopicStats(s.Count + 1, payload, DateTimeOffset.UtcNow));
            Interlocked.Increment(ref _messages);
            return Task.CompletedTask;
        };
        _server.ClientConnectedAsync += _ =>
        {
            Interlocked.Increment(ref _clients);
            return Task.CompletedTask;
        };
        _server.ClientDisconnectedAsync += _ =>
        {
            Interlocked.Decrement(ref _clients);
            return Task.CompletedTask;
        };
    }

    public int Port { get; }

    public long Messages => Interlocked.Read(ref _messages);

    public int ConnectedClients => Volatile.Read(ref _clients);

    public IReadOnlyDictionary<string, TopicStats> Topics => _topics;

    /// <summary>Starts a broker on a free loopback port (retrying if another process takes the port first).</summary>
    public static async Task<EmbeddedBroker> StartAsync(CancellationToken cancellationToken)
    {
        var factory = new MqttServerFactory();
        Exception? last = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var port = FreeTcpPort();
            var options = factory.CreateServerOptionsBuilder()
                .WithDefaultEndpoint()
                .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback)
                .WithDefaultEndpointBoundIPV6Address(IPAddress.None)
                .WithDefaultEndpointPort(port)
                .Build();
            var server = factory.CreateMqttServer(options);
            var broker = new EmbeddedBroker(server, port);
            try
            {
                await server.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                return broker;
            }
            catch (SocketException ex)
            {
                last = ex;
                server.Dispose();
            }
        }

        throw new InvalidOperationException("embedded MQTT broker: no free loopback port after 5 attempts", last);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _server.StopAsync().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Disposing below closes the sockets regardless.
        }

        _server.Dispose();
    }

    private static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    internal sealed record TopicStats(long Count, string LastPayload, DateTimeOffset LastAt);
}
