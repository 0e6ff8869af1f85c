using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>
/// Makes a real mosquitto look like a broker that speaks only MQTT 3.1.1 (old mosquitto 1.4, several cloud IoT hubs,
/// SCADA brokers): a loopback front that reads each client's CONNECT and, when its protocol level is not 3 or 4 (MQTT
/// 5 is 5), answers as MQTT 3.1.1 section 3.1.2.2 requires — CONNACK return code 0x01 "unacceptable protocol version" —
/// and closes; any other connection is forwarded to the broker byte for byte. mosquitto itself has no setting for it.
/// </summary>
internal sealed class Mqtt311OnlyFront : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private readonly Task _accept;
    private int _refused;
    private int _forwarded;
    private int _disposed;

    public Mqtt311OnlyFront(int brokerPort)
    {
        _target = brokerPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>CONNECTs refused for their protocol level (MQTT 5 ones).</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>CONNECTs at 3.1 / 3.1.1 passed on to the broker.</summary>
    public int Forwarded => Volatile.Read(ref _forwarded);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            lock (_open)
            {
                _open.Add(client);
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        try
        {
            var stream = client.GetStream();
            var connect = await ReadPacketAsync(stream, _stop.Token);
            if (connect is null)
            {
                return;
            }

            // CONNECT: fixed header (1 byte, remaining length 1-4 bytes), then "\0\x04MQTT" (or "\0\x06MQIsdp") and the level.
            var at = 1;
            while ((connect[at] & 0x80) != 0)
            {
                at++;
            }

            at++;
            var nameLength = (connect[at] << 8) | connect[at + 1];
            var level = connect[at + 2 + nameLength];
            if (level is not (3 or 4))
            {
                Interlocked.Increment(ref _refused);
                await stream.WriteAsync(new byte[] { 0x20, 0x02, 0x00, 0x01 }, _stop.Token);
                await stream.FlushAsync(_stop.Token);
                return;
            }

            Interlocked.Increment(ref _forwarded);
            using var broker = new TcpClient();
            await broker.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            lock (_open)
            {
                _open.Add(broker);
            }

            var upstream = broker.GetStream();
            await upstream.WriteAsync(connect, _stop.Token);
            var up = stream.CopyToAsync(upstream, _stop.Token);
            var down = upstream.CopyToAsync(stream, _stop.Token);
            await Task.WhenAny(up, down);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client or the broker went away.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static async Task<byte[]?> ReadPacketAsync(NetworkStream stream, CancellationToken ct)
    {
        var header = new List<byte>(5);
        var one = new byte[1];
        int length = 0, shift = 0;
        do
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                return null;
            }

            header.Add(one[0]);
            if (header.Count > 1)
            {
                length |= (one[0] & 0x7F) << shift;
                shift += 7;
            }
        }
        while (header.Count == 1 || (one[0] & 0x80) != 0);

        var packet = new byte[header.Count + length];
        header.CopyTo(packet);
        await stream.ReadExactlyAsync(packet.AsMemory(header.Count), ct);
        return packet;
    }

    /// <summary>Closes every connection (no DISCONNECT: the broker publishes the wills) and stops listening; idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync();
        _listener.Stop();
        lock (_open)
        {
            foreach (var c in _open)
            {
                c.Dispose();
            }

            _open.Clear();
        }

        try
        {
            await _accept;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
