using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using MQTTnet.Server;

namespace EdgeTwin.Agent.Demo;

/// <summary>
/// An MQTT broker inside the demo process (MQTTnet.Server) on a free loopback port, standing in for the
/// central site's broker. It counts what arrives per topic, keeps the latest payload of each and which outbox
/// sequences (<c>seq</c> of the JSON envelope) arrived, so the demo can show what the uplink delivered. It can be
/// stopped and started again on the same port, as a central broker going away and coming back.
/// </summary>
internal sealed class EmbeddedBroker : IAsyncDisposable
{
    private readonly MqttServerFactory _factory;
    private readonly MqttServerOptions _options;
    private readonly ConcurrentDictionary<string, TopicStats> _topics = new(StringComparer.Ordinal);
    private readonly Lock _serverGate = new();
    private MqttServer? _server;
    private long _messages;
    private int _clients;

    private EmbeddedBroker(MqttServerFactory factory, MqttServerOptions options, int port)
    {
        _factory = factory;
        _options = options;
        Port = port;
    }

    public int Port { get; }

    /// <summary>
    /// How to watch what the agent sends, as the central twins would receive it: MQTT 5, so that the broker assigns the
    /// client id (a 3.1.1 client without <c>-i</c> is refused, "identifier rejected").
    /// </summary>
    public string WatchCommand => string.Create(CultureInfo.InvariantCulture, $"mosquitto_sub -h 127.0.0.1 -p {Port} -V 5 -t 'edgetwin/#' -v");

    public long Messages => Interlocked.Read(ref _messages);

    public int ConnectedClients => Volatile.Read(ref _clients);

    /// <summary>False between <see cref="StopAsync"/> and <see cref="RestartAsync"/>.</summary>
    public bool IsUp
    {
        get
        {
            lock (_serverGate)
            {
                return _server is not null;
            }
        }
    }

    public IReadOnlyDictionary<string, TopicStats> Topics => _topics;

    /// <summary>The outbox sequences received, to check that nothing went missing across an outage.</summary>
    public SequenceTracker Sequences { get; } = new();

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
            var broker = new EmbeddedBroker(factory, options, port);
            try
            {
                await broker.StartServerAsync(cancellationToken).ConfigureAwait(false);
                return broker;
            }
            catch (SocketException ex)
            {
                last = ex;
            }
        }

        throw new InvalidOperationException("embedded MQTT broker: no free loopback port after 5 attempts", last);
    }

    /// <summary>Stops the broker: its clients are disconnected and its port refuses connections, as a broker that went away.</summary>
    public async Task StopAsync()
    {
        MqttServer? server;
        lock (_serverGate)
        {
            server = _server;
            _server = null;
        }

        if (server is not null)
        {
            await StopServerAsync(server).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Starts the broker again on the same port, so the agent's uplink reconnects to the address it knows. A new server,
    /// as a restarted broker is: no sessions kept. Retries for <paramref name="within"/> while the port is still held.
    /// </summary>
    public async Task RestartAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            try
            {
                await StartServerAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private async Task StartServerAsync(CancellationToken cancellationToken)
    {
        var server = _factory.CreateMqttServer(_options);
        server.InterceptingPublishAsync += e =>
        {
            var topic = e.ApplicationMessage.Topic;
            var payload = e.ApplicationMessage.Payload;
            _topics.AddOrUpdate(topic, _ => new TopicStats(1, Encoding.UTF8.GetString(payload), DateTimeOffset.UtcNow), (_, s) => new TopicStats(s.Count + 1, Encoding.UTF8.GetString(payload), DateTimeOffset.UtcNow));
            if (SequenceOf(payload) is { } seq)
            {
                Sequences.Record(seq);
            }

            Interlocked.Increment(ref _messages);
            return Task.CompletedTask;
        };
        // A watcher that sends no client id (`mosquitto_sub` does not unless given -i) gets one assigned, as a broker
        // does for MQTT 5 ([MQTT-3.1.3-6]); MQTTnet refuses an empty id from a 3.1.1 client whatever we assign.
        server.ValidatingConnectionAsync += e =>
        {
            if (string.IsNullOrEmpty(e.ClientId))
            {
                e.AssignedClientIdentifier = "watcher-" + Guid.NewGuid().ToString("N")[..12];
            }

            return Task.CompletedTask;
        };
        server.ClientConnectedAsync += _ =>
        {
            Interlocked.Increment(ref _clients);
            return Task.CompletedTask;
        };
        server.ClientDisconnectedAsync += _ =>
        {
            Interlocked.Decrement(ref _clients);
            return Task.CompletedTask;
        };
        try
        {
            await server.StartAsync().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            server.Dispose();
            throw;
        }

        lock (_serverGate)
        {
            _server = server;
        }
    }

    private static async Task StopServerAsync(MqttServer server)
    {
        try
        {
            await server.StopAsync().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Disposing below closes the sockets regardless.
        }

        server.Dispose();
    }

    /// <summary>The top-level <c>seq</c> of a JSON envelope; null for the status topic's birth and will, which have none.</summary>
    private static long? SequenceOf(ReadOnlySequence<byte> payload)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isSeq = reader.ValueTextEquals("seq"u8);
                reader.Read();
                if (isSeq)
                {
                    return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var seq) ? seq : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
            // Not the agent's JSON: nothing to count.
        }

        return null;
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

/// <summary>
/// Which outbox sequences arrived, kept as "every one through N" plus the few beyond it, so a long run does not keep a
/// set of every sequence. The outbox numbers its entries without gaps from its first, and the uplink sends them in order,
/// so the first one received is where counting starts.
/// </summary>
internal sealed class SequenceTracker
{
    private readonly Lock _gate = new();
    private readonly HashSet<long> _beyond = [];
    private long _first = -1;
    private long _through = -1;
    private long _highest = -1;
    private long _duplicates;

    /// <summary>Every sequence from the first received up to this one has arrived (-1 before the first).</summary>
    public long ContiguousThrough
    {
        get
        {
            lock (_gate)
            {
                return _through;
            }
        }
    }

    /// <summary>Different sequences received.</summary>
    public long Distinct
    {
        get
        {
            lock (_gate)
            {
                return _through < 0 ? 0 : _through - _first + 1 + _beyond.Count;
            }
        }
    }

    /// <summary>Sequences received more than once (a publish in flight when the connection dropped, sent again).</summary>
    public long Duplicates
    {
        get
        {
            lock (_gate)
            {
                return _duplicates;
            }
        }
    }

    /// <summary>Sequences after <see cref="ContiguousThrough"/> and below the highest received that have not arrived.</summary>
    public long Missing
    {
        get
        {
            lock (_gate)
            {
                return _highest <= _through ? 0 : _highest - _through - _beyond.Count;
            }
        }
    }

    public void Record(long seq)
    {
        lock (_gate)
        {
            if (_through < 0)
            {
                _first = seq;
                _through = seq;
                _highest = seq;
                return;
            }

            if (seq <= _through || !_beyond.Add(seq))
            {
                _duplicates++;
                return;
            }

            _highest = Math.Max(_highest, seq);
            while (_beyond.Remove(_through + 1))
            {
                _through++;
            }
        }
    }
}
