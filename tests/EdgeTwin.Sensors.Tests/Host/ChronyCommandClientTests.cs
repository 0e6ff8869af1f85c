using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Sensors.Host;

namespace EdgeTwin.Sensors.Tests.Host;

/// <summary>
/// The chronyd client against a real chronyd (<see cref="Chronyd"/>, its own on a random port), against nothing, and
/// against a UDP peer of the test's that answers what chronyd never would.
/// </summary>
public sealed class ChronyCommandClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_chronyd_without_sources_reports_the_clock_unsynchronised()
    {
        using var chronyd = await Chronyd.StartAsync(local: false, Ct);
        var t = await chronyd.Client().TrackingAsync(Ct);
        Assert.Equal(ChronyLeap.Unsynchronised, t.Leap);
        Assert.Equal(0u, t.RefId);
        Assert.False(t.Synchronized);
    }

    [Fact]
    public async Task A_chronyd_on_its_local_reference_reports_the_clock_synchronised()
    {
        using var chronyd = await Chronyd.StartAsync(local: true, Ct);
        var t = await chronyd.UntilAsync(t => t.Synchronized, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(ChronyTracking.LocalRefId, t.RefId);
        Assert.Equal("local", t.Reference);
        Assert.Equal(10, t.Stratum);
        Assert.Equal(ChronyLeap.Normal, t.Leap);
        Assert.NotNull(t.RefTime);
    }

    [Fact]
    public async Task Nothing_listening_is_a_clear_error_at_once_not_after_the_timeout()
    {
        var port = Chronyd.FreeUdpPort();
        var client = new ChronyCommandClient(new IPEndPoint(IPAddress.Loopback, port), TimeSpan.FromSeconds(20));
        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ChronyException>(() => client.TrackingAsync(Ct));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}: the port-unreachable answer was not used");
        Assert.Equal($"chronyd at 127.0.0.1:{port}: nothing listens on the command port (chronyd not running, or its cmdport elsewhere or 0)", ex.Message);
    }

    [Fact]
    public async Task A_peer_that_never_answers_is_a_timeout_naming_chronyd_and_its_address()
    {
        using var peer = new Peer(_ => null);
        var client = new ChronyCommandClient(peer.EndPoint, TimeSpan.FromMilliseconds(300));
        var ex = await Assert.ThrowsAsync<ChronyException>(() => client.TrackingAsync(Ct));
        Assert.StartsWith($"chronyd at {peer.EndPoint}: no answer within 300 ms", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, peer.Requests); // sent once, no retry: the caller asks again at its next check
    }

    public static TheoryData<string, Func<byte[], byte[]?>, string> BadPeers => new()
    {
        { "garbage", _ => "HTTP/1.1 400 Bad Request\r\n\r\n"u8.ToArray(), "protocol version 72, this agent speaks 6" },
        { "short", _ => [6, 2, 0, 0, 0, 33, 0, 5, 0, 0], "a reply of 10 bytes, shorter than the 28-byte reply header" },
        { "echo", request => request, "packet type 1 (reserved bytes 0, 0), not a command reply" },
        { "wrong sequence", request => Reply(request, sequenceDelta: 1), "(a stale or foreign reply)" },
        { "unauthorised", request => Reply(request, status: 2), "status 2 (STT_UNAUTH)" },
        { "header only", request => Reply(request)[..28], "a tracking report of 28 bytes, shorter than its 104" },
    };

    [Theory]
    [MemberData(nameof(BadPeers))]
    public async Task A_peer_answering_what_chronyd_never_would_is_a_clear_error(string what, Func<byte[], byte[]?> answer, string expected)
    {
        using var peer = new Peer(answer);
        var client = new ChronyCommandClient(peer.EndPoint, TimeSpan.FromSeconds(10));
        var ex = await Assert.ThrowsAsync<ChronyException>(() => client.TrackingAsync(Ct));
        Assert.StartsWith($"chronyd at {peer.EndPoint}: ", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {ex.Message}");
        Assert.IsType<ChronyReplyException>(ex.InnerException);
    }

    [Fact]
    public async Task The_request_is_padded_to_the_replys_length_and_a_well_formed_reply_is_read()
    {
        byte[]? seen = null;
        using var peer = new Peer(request =>
        {
            seen = request;
            return Reply(request);
        });
        var t = await new ChronyCommandClient(peer.EndPoint, TimeSpan.FromSeconds(10)).TrackingAsync(Ct);
        Assert.Equal(104, seen!.Length); // chronyd drops requests shorter than their reply (no amplification)
        Assert.Equal([6, 1, 0, 0, 0, 33, 0, 0], seen[..8]);
        Assert.All(seen[12..], b => Assert.Equal(0, b));
        Assert.True(t.Synchronized);
        Assert.Equal("192.0.2.7", t.Reference);
    }

    [Fact]
    public async Task Cancelling_is_a_cancellation_not_a_chronyd_error()
    {
        using var peer = new Peer(_ => null);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(100);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new ChronyCommandClient(peer.EndPoint, TimeSpan.FromSeconds(20)).TrackingAsync(cts.Token));
    }

    /// <summary>chronyd's reply to <paramref name="request"/>: synchronised to 192.0.2.7 at stratum 3, or as spoilt.</summary>
    private static byte[] Reply(byte[] request, ushort status = 0, uint sequenceDelta = 0)
    {
        var reply = new byte[ChronyCommand.TrackingReplyLength];
        reply[0] = 6;
        reply[1] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(4), 33);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(6), 5);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), status);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(16), BinaryPrimitives.ReadUInt32BigEndian(request.AsSpan(8)) + sequenceDelta);
        var data = reply.AsSpan(28);
        BinaryPrimitives.WriteUInt32BigEndian(data, 0xC0000207); // ref id: the IPv4 address
        data[4] = 192;
        data[5] = 0;
        data[6] = 2;
        data[7] = 7;
        BinaryPrimitives.WriteUInt16BigEndian(data[20..], 1); // IPv4
        BinaryPrimitives.WriteUInt16BigEndian(data[24..], 3); // stratum
        return reply;
    }

    /// <summary>A loopback UDP socket that answers each datagram with <c>answer(request)</c> (null: no answer).</summary>
    private sealed class Peer : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private int _requests;

        public Peer(Func<byte[], byte[]?> answer)
        {
            _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            EndPoint = (IPEndPoint)_socket.LocalEndPoint!;
            _loop = Task.Run(async () =>
            {
                var buffer = new byte[2048];
                while (!_stop.IsCancellationRequested)
                {
                    var r = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    Interlocked.Increment(ref _requests);
                    if (answer(buffer[..r.ReceivedBytes]) is { } reply)
                    {
                        await _socket.SendToAsync(reply, SocketFlags.None, r.RemoteEndPoint, _stop.Token);
                    }
                }
            });
        }

        public IPEndPoint EndPoint { get; }

        public int Requests => Volatile.Read(ref _requests);

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            try
            {
                _loop.Wait(TimeSpan.FromSeconds(5));
            }
            catch (AggregateException)
            {
                // cancelled or the socket closed under it
            }

            _stop.Dispose();
        }
    }
}
