using System.Net;
using System.Net.Sockets;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// A UDP relay on a free loopback port in front of an agent, counting the datagrams (requests, PDUs) and bytes each way:
/// what one poll costs on the wire, seen by this device's traffic alone (snmpd's own counters would also see the reads
/// that ask for them).
/// </summary>
internal sealed class CountingUdpRelay : IAsyncDisposable
{
    private readonly UdpClient _front = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly UdpClient _back = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly IPEndPoint _agent;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _up;
    private readonly Task _down;
    private IPEndPoint? _client;
    private long _requests;
    private long _bytesOut;
    private long _bytesIn;

    public CountingUdpRelay(int agentPort)
    {
        _agent = new IPEndPoint(IPAddress.Loopback, agentPort);
        _up = Task.Run(UpAsync);
        _down = Task.Run(DownAsync);
    }

    public int Port => ((IPEndPoint)_front.Client.LocalEndPoint!).Port;

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Bytes of UDP payload both ways (requests and answers).</summary>
    public long Bytes => Interlocked.Read(ref _bytesOut) + Interlocked.Read(ref _bytesIn);

    private async Task UpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var got = await _front.ReceiveAsync(_stop.Token);
            Volatile.Write(ref _client, got.RemoteEndPoint);
            Interlocked.Increment(ref _requests);
            Interlocked.Add(ref _bytesOut, got.Buffer.Length);
            await _back.SendAsync(got.Buffer, _agent, _stop.Token);
        }
    }

    private async Task DownAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var got = await _back.ReceiveAsync(_stop.Token);
            Interlocked.Add(ref _bytesIn, got.Buffer.Length);
            if (Volatile.Read(ref _client) is { } client)
            {
                await _front.SendAsync(got.Buffer, client, _stop.Token);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_up, _down);
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
        _front.Dispose();
        _back.Dispose();
        _stop.Dispose();
    }
}
