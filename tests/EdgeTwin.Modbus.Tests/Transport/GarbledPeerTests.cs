using System.Net;
using System.Net.Sockets;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>A raw socket peer that answers with bytes of our choosing, to check garbled frames end in protocol errors.</summary>
public sealed class GarbledPeerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Accepts connections; for each request read, writes answer(requestBytes, index).</summary>
    private sealed class RawPeer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private int _index;

        public RawPeer(Func<byte[], int, byte[]> answer)
        {
            _listener.Start();
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    using var socket = await _listener.AcceptSocketAsync(_stop.Token);
                    var buffer = new byte[512];
                    while (true)
                    {
                        int n = await socket.ReceiveAsync(buffer, _stop.Token);
                        if (n == 0)
                        {
                            break;
                        }

                        var reply = answer(buffer[..n], _index++);
                        await socket.SendAsync(reply, _stop.Token);
                    }
                }
            });
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stop.Dispose();
        }
    }

    private static byte[] TcpAnswer(byte[] request, ushort value)
    {
        var response = new byte[MbapFrame.MaxFrameLength];
        var pdu = new byte[5];
        int pduLength = ModbusPdu.WriteReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, [value]);
        int n = MbapFrame.Write(response, (ushort)((request[0] << 8) | request[1]), request[6], pdu.AsSpan(0, pduLength));
        return response[..n];
    }

    [Fact]
    public async Task Tcp_garbled_header_is_a_protocol_error_and_the_next_request_reconnects()
    {
        // Two garbled answers: a read whose connection is reset under it is sent once more on a new one.
        await using var peer = new RawPeer((req, i) =>
        {
            if (i <= 1)
            {
                var bad = TcpAnswer(req, 1);
                bad[3] = 0x07; // protocol id 7
                return bad;
            }

            return TcpAnswer(req, 99);
        });
        await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions
        {
            Host = "127.0.0.1",
            Port = peer.Port,
            RequestTimeout = TimeSpan.FromSeconds(5),
            ReconnectBackoffMin = TimeSpan.FromMilliseconds(10),
        }));
        var ex = await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Equal(7, ex.Frame[3]);
        Assert.Equal(new ushort[] { 99 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
    }

    [Fact]
    public async Task Tcp_byte_count_that_disagrees_with_the_mbap_length_is_a_framing_error_carrying_the_frame()
    {
        // Which of the two lies cannot be told, so the stream position is unknown: a framing error, and the connection is
        // rebuilt. The frame holds the header and as much of the PDU as both lengths agree on.
        await using var peer = new RawPeer((req, i) =>
        {
            var answer = TcpAnswer(req, (ushort)(5 + i));
            if (i == 0)
            {
                answer[8] = 4; // byte count 4 but 2 bytes follow
            }

            return answer;
        });
        await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = peer.Port }));
        var ex = await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        Assert.Contains("MBAP length 5 disagrees with the 7 its PDU implies (function 0x03, byte count 4)", ex.Message, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 0x05, 0x01, 0x03, 0x04, 0x00, 0x05 }, ex.Frame.Skip(2));
        Assert.Equal(new ushort[] { 6 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
    }

    [Fact]
    public async Task Rtu_bad_crc_is_a_protocol_error_and_the_next_answer_is_read_cleanly()
    {
        await using var peer = new RawPeer((req, i) =>
        {
            var pdu = new byte[5];
            int n = ModbusPdu.WriteReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, [(ushort)(i + 1)]);
            var frame = new byte[RtuFrame.MaxFrameLength];
            int len = RtuFrame.Write(frame, req[0], pdu.AsSpan(0, n));
            if (i == 0)
            {
                frame[len - 1] ^= 0xFF;
            }

            return frame[..len];
        });
        await using var client = new ModbusClient(new ModbusRtuTransport(new TcpRtuChannel("127.0.0.1", peer.Port, TimeSpan.FromSeconds(5))));
        var ex = await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(4, 0, 1, Ct));
        Assert.Contains("CRC", ex.Message, StringComparison.Ordinal);
        Assert.Equal(7, ex.Frame.Count);
        Assert.Equal(new ushort[] { 2 }, await client.ReadHoldingRegistersAsync(4, 0, 1, Ct));
    }

    [Fact]
    public async Task Rtu_answer_from_another_unit_is_discarded()
    {
        // Answers first as unit 9 (a late answer from someone else), then as the asked unit.
        await using var peer = new RawPeer((req, _) =>
        {
            var pdu = new byte[5];
            int n = ModbusPdu.WriteReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, [9]);
            var other = new byte[RtuFrame.MaxFrameLength];
            int a = RtuFrame.Write(other, 9, pdu.AsSpan(0, n));
            n = ModbusPdu.WriteReadRegistersResponse(pdu, ModbusFunctionCode.ReadHoldingRegisters, [req[0]]);
            var mine = new byte[RtuFrame.MaxFrameLength];
            int b = RtuFrame.Write(mine, req[0], pdu.AsSpan(0, n));
            return [.. other[..a], .. mine[..b]];
        });
        await using var client = new ModbusClient(new ModbusRtuTransport(new TcpRtuChannel("127.0.0.1", peer.Port, TimeSpan.FromSeconds(5))));
        Assert.Equal(new ushort[] { 5 }, await client.ReadHoldingRegistersAsync(5, 0, 1, Ct));
    }

    [Fact]
    public async Task Rtu_unknown_function_in_answer_is_a_protocol_error()
    {
        await using var peer = new RawPeer((req, _) => [req[0], 0x41, 0x00, 0x00, 0x00]);
        await using var client = new ModbusClient(new ModbusRtuTransport(new TcpRtuChannel("127.0.0.1", peer.Port, TimeSpan.FromSeconds(5))));
        await Assert.ThrowsAsync<ModbusProtocolException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
    }
}
