using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>
/// A loopback TCP forwarder between the uplink and the broker. <see cref="Cut"/> drops every connection at once,
/// like a pulled cable, so the broker sees an unclean disconnect (and publishes the will).
/// </summary>
internal sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private readonly Task _accept;

    public TcpProxy(int targetPort)
    {
        _target = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptLoopAsync();
    }

    public int Port { get; }

    public int Connections { get; private set; }

    private long _bytesToTarget;

    /// <summary>Bytes forwarded from the client to the target (the broker) so far: what a metered link would count upstream.</summary>
    public long BytesToTarget => Interlocked.Read(ref _bytesToTarget);

    public void Cut()
    {
        lock (_open)
        {
            foreach (var c in _open)
            {
                try
                {
                    c.Client?.LingerState = new LingerOption(true, 0); // RST, not FIN
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Already closed by the other side.
                }

                c.Dispose();
            }

            _open.Clear();
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            var outbound = new TcpClient();
            try
            {
                await outbound.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            }
            catch (Exception)
            {
                inbound.Dispose();
                outbound.Dispose();
                continue;
            }

            lock (_open)
            {
                _open.Add(inbound);
                _open.Add(outbound);
                Connections++;
            }

            _ = PumpAsync(inbound, outbound, toTarget: true);
            _ = PumpAsync(outbound, inbound, toTarget: false);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to, bool toTarget)
    {
        var buffer = new byte[16384];
        try
        {
            var a = from.GetStream();
            var b = to.GetStream();
            int n;
            while ((n = await a.ReadAsync(buffer, _stop.Token)) > 0)
            {
                if (toTarget)
                {
                    Interlocked.Add(ref _bytesToTarget, n);
                }

                await b.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Cut();
        await _accept;
        _stop.Dispose();
    }
}
