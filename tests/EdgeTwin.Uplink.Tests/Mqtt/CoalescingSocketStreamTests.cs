using System.Net;
using System.Net.Sockets;
using EdgeTwin.Uplink.Mqtt;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>The broker stream against a real loopback TCP peer: byte order, read buffering, failures, close.</summary>
public sealed class CoalescingSocketStreamTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    /// <summary>A connected pair: our stream on one end, a plain socket (the "broker") on the other.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        private Pair(CoalescingSocketStream stream, Socket peer)
        {
            Stream = stream;
            Peer = peer;
        }

        public CoalescingSocketStream Stream { get; }

        public Socket Peer { get; }

        public static async Task<Pair> ConnectAsync(int? peerReceiveBuffer = null)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (peerReceiveBuffer is { } size)
            {
                listener.ReceiveBufferSize = size; // inherited by the accepted socket
            }

            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            using var cts = new CancellationTokenSource(Long);
            var accept = listener.AcceptAsync(cts.Token).AsTask();
            var stream = (CoalescingSocketStream)await new CoalescingStreamProvider().ConnectAsync(listener.LocalEndPoint!, cts.Token);
            return new Pair(stream, await accept);
        }

        public async Task<byte[]> ReceiveExactlyAsync(int count)
        {
            var buffer = new byte[count];
            using var cts = new CancellationTokenSource(Long);
            var read = 0;
            while (read < count)
            {
                var n = await Peer.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cts.Token);
                Assert.True(n > 0, $"the peer saw the connection close after {read} of {count} bytes");
                read += n;
            }

            return buffer;
        }

        public async ValueTask DisposeAsync()
        {
            await Stream.DisposeAsync();
            Peer.Dispose();
        }
    }

    private static byte[] Bytes(int count, int seed)
    {
        var b = new byte[count];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Property(MaxTest = 30)]
    public Property Any_sequence_of_writes_arrives_whole_and_in_order(NonEmptyArray<PositiveInt> sizes, int seed)
    {
        var chunks = sizes.Get.Select((s, i) => Bytes(Math.Min(s.Get, 70_000), seed + i)).ToArray();
        return Run().GetAwaiter().GetResult().ToProperty();

        async Task<bool> Run()
        {
            await using var pair = await Pair.ConnectAsync();
            foreach (var chunk in chunks)
            {
                await pair.Stream.WriteAsync(chunk);
            }

            var expected = chunks.SelectMany(c => c).ToArray();
            return (await pair.ReceiveExactlyAsync(expected.Length)).AsSpan().SequenceEqual(expected);
        }
    }

    [Fact]
    public async Task Writes_from_many_packets_in_a_burst_arrive_in_order()
    {
        // What a replay does: thousands of small packets written back to back while earlier sends are under way.
        await using var pair = await Pair.ConnectAsync();
        var packets = Enumerable.Range(0, 5_000).Select(i => BitConverter.GetBytes(i).Concat(Bytes(20 + (i % 300), i)).ToArray()).ToArray();
        var writes = packets.Select(p => pair.Stream.WriteAsync(p).AsTask()).ToArray();
        await Task.WhenAll(writes);

        var received = await pair.ReceiveExactlyAsync(packets.Sum(p => p.Length));
        Assert.Equal(packets.SelectMany(p => p).ToArray(), received);
    }

    [Fact]
    public async Task Reads_hand_out_what_the_peer_sent_in_any_slice_size()
    {
        await using var pair = await Pair.ConnectAsync();
        var sent = Bytes(200_000, 7);
        await pair.Peer.SendAsync(sent, SocketFlags.None);

        var received = new List<byte>();
        var sizes = new[] { 1, 2, 4, 5, 1000, 70_000 };
        using var cts = new CancellationTokenSource(Long);
        for (var i = 0; received.Count < sent.Length; i++)
        {
            var buffer = new byte[sizes[i % sizes.Length]];
            var n = await pair.Stream.ReadAsync(buffer, cts.Token);
            Assert.True(n > 0);
            received.AddRange(buffer.AsSpan(0, n));
        }

        Assert.Equal(sent, received);
    }

    [Fact]
    public async Task A_peer_that_closes_ends_reads_with_zero()
    {
        await using var pair = await Pair.ConnectAsync();
        await pair.Peer.SendAsync(new byte[] { 1, 2, 3 }, SocketFlags.None);
        pair.Peer.Shutdown(SocketShutdown.Both);

        using var cts = new CancellationTokenSource(Long);
        var buffer = new byte[16];
        Assert.Equal(3, await pair.Stream.ReadAsync(buffer, cts.Token));
        Assert.Equal(0, await pair.Stream.ReadAsync(buffer, cts.Token));
    }

    [Fact]
    public async Task Writes_after_the_peer_reset_the_connection_fail_with_an_io_error_naming_the_broker()
    {
        await using var pair = await Pair.ConnectAsync();
        pair.Peer.LingerState = new LingerOption(true, 0); // close with RST
        pair.Peer.Close();

        // The first writes may still be accepted by the kernel; the reset surfaces on a later one.
        using var cts = new CancellationTokenSource(Long);
        var error = await Assert.ThrowsAsync<IOException>(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                await pair.Stream.WriteAsync(new byte[1024], cts.Token);
                await Task.Delay(5, cts.Token);
            }
        });
        Assert.Contains("Sending to the broker failed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_sends_what_was_written_before_closing()
    {
        var pair = await Pair.ConnectAsync();
        var data = Bytes(300_000, 3);
        await pair.Stream.WriteAsync(data, TestContext.Current.CancellationToken);
        await pair.Stream.DisposeAsync();

        Assert.Equal(data, await pair.ReceiveExactlyAsync(data.Length));
        using var cts = new CancellationTokenSource(Long);
        Assert.Equal(0, await pair.Peer.ReceiveAsync(new byte[1], SocketFlags.None, cts.Token));
        pair.Peer.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pair.Stream.WriteAsync(new byte[1], TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_peer_that_stops_reading_holds_writers_back_instead_of_growing_memory()
    {
        await using var pair = await Pair.ConnectAsync(peerReceiveBuffer: 4096);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        long written = 0;
        var chunk = new byte[64 * 1024];

        // The kernel buffers take a few MB; after that a write must wait (and honour its token) rather than queue forever.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            while (true)
            {
                await pair.Stream.WriteAsync(chunk, cts.Token);
                written += chunk.Length;
                Assert.True(written < 256L * 1024 * 1024, "256 MB accepted by a peer that reads nothing");
            }
        });
    }
}
