using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Snmp.Transport;

/// <summary>
/// One UDP socket with a receive loop. Socket errors are translated here (and only here) into
/// <see cref="SnmpCommunicationException"/>. A dual-mode IPv6 socket serves IPv4 and IPv6 peers alike.
/// </summary>
public sealed partial class SnmpUdpTransport : IAsyncDisposable
{
    public const int MaxDatagram = 65_535;

    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;
    private Task? _loop;

    private SnmpUdpTransport(Socket socket, ILogger logger)
    {
        _socket = socket;
        _logger = logger;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Binds to <paramref name="bind"/>; when null, to an ephemeral port on all addresses (dual-mode when IPv6 exists).</summary>
    public static SnmpUdpTransport Bind(IPEndPoint? bind = null, ILogger? logger = null)
    {
        Socket socket;
        try
        {
            if (bind is null)
            {
                if (Socket.OSSupportsIPv6)
                {
                    socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
                    socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
                }
                else
                {
                    socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                    socket.Bind(new IPEndPoint(IPAddress.Any, 0));
                }
            }
            else
            {
                socket = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                if (bind.AddressFamily == AddressFamily.InterNetworkV6 && bind.Address.Equals(IPAddress.IPv6Any))
                {
                    socket.DualMode = true;
                }
                socket.Bind(bind);
            }
            socket.ReceiveBufferSize = 4 * 1024 * 1024;
        }
        catch (SocketException ex)
        {
            throw new SnmpCommunicationException($"cannot bind UDP socket to {bind?.ToString() ?? "an ephemeral port"}: {ex.SocketErrorCode}", ex);
        }
        return new SnmpUdpTransport(socket, logger ?? NullLogger.Instance);
    }

    /// <summary>Starts the receive loop. The handler runs on the loop: it must not block.</summary>
    public void Start(Action<ReadOnlyMemory<byte>, IPEndPoint> handler)
    {
        if (_loop is not null)
        {
            throw new InvalidOperationException("transport already started");
        }
        _loop = Task.Run(() => ReceiveLoopAsync(handler));
    }

    private async Task ReceiveLoopAsync(Action<ReadOnlyMemory<byte>, IPEndPoint> handler)
    {
        var buffer = new byte[MaxDatagram];
        // Received into one reusable SocketAddress and turned into an endpoint through a cache: the EndPoint overload
        // allocated an IPEndPoint (and, on the dual-mode socket, a second one unmapping the address) per datagram.
        var from = new SocketAddress(_socket.AddressFamily);
        var senders = new Dictionary<SocketAddress, IPEndPoint>();
        var family = _socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            int received;
            try
            {
                received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, from, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
            {
                // ICMP errors from an earlier send to a dead peer surface here; they concern that peer only.
                LogReceiveError(_logger, LocalEndPoint, ex.SocketErrorCode);
                continue;
            }
            catch (SocketException ex)
            {
                LogReceiveError(_logger, LocalEndPoint, ex.SocketErrorCode);
                if (_stop.IsCancellationRequested)
                {
                    return;
                }
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }
            var remote = Sender(senders, from, family);
            try
            {
                handler(buffer.AsMemory(0, received), remote);
            }
            catch (Exception ex)
            {
                // A handler bug must not kill the loop for every other peer.
                LogHandlerFailed(_logger, ex, remote);
            }
        }
    }

    /// <summary>Most senders this socket keeps an endpoint for; past it the cache starts again (a flood of spoofed
    /// sources costs allocations, not memory).</summary>
    internal const int MaxCachedSenders = 4096;

    /// <summary>
    /// The (normalized) endpoint of the datagram's sender, the same instance for every datagram from it. Only the receive
    /// loop calls this, so the cache needs no lock; the instances are never mutated, so handlers may keep them.
    /// </summary>
    private static IPEndPoint Sender(Dictionary<SocketAddress, IPEndPoint> senders, SocketAddress from, IPEndPoint family)
    {
        if (senders.TryGetValue(from, out var known))
        {
            return known;
        }
        if (senders.Count >= MaxCachedSenders)
        {
            senders.Clear();
        }
        // The key must be a copy: `from` is overwritten by the next receive.
        var key = new SocketAddress(from.Family, from.Size);
        from.Buffer.Span[..from.Size].CopyTo(key.Buffer.Span);
        var endPoint = Normalize((IPEndPoint)family.Create(key));
        senders.Add(key, endPoint);
        return endPoint;
    }

    public async ValueTask SendAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken)
    {
        var target = remote;
        if (_socket.AddressFamily == AddressFamily.InterNetworkV6 && remote.AddressFamily == AddressFamily.InterNetwork)
        {
            target = new IPEndPoint(remote.Address.MapToIPv6(), remote.Port);
        }
        try
        {
            await _socket.SendToAsync(datagram, SocketFlags.None, target, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            throw new SnmpCommunicationException($"cannot send to {remote}: {ex.SocketErrorCode}", ex);
        }
        catch (ObjectDisposedException ex)
        {
            throw new SnmpCommunicationException($"cannot send to {remote}: the SNMP socket is closed", ex);
        }
    }

    /// <summary>IPv4-mapped IPv6 addresses become plain IPv4 so endpoints compare equal.</summary>
    public static IPEndPoint Normalize(IPEndPoint ep) =>
        ep.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ep.Address.MapToIPv4(), ep.Port) : ep;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "UDP receive error on {Local}: {Error}")]
    private static partial void LogReceiveError(ILogger logger, IPEndPoint local, SocketError error);

    [LoggerMessage(Level = LogLevel.Error, Message = "SNMP packet handler failed for a packet from {Remote}")]
    private static partial void LogHandlerFailed(ILogger logger, Exception ex, IPEndPoint remote);
}
