using System.Diagnostics;
using System.Net.Sockets;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>How a Modbus TCP answer that is late, or only partly there, at the request timeout is reported (a loopback peer).</summary>
public sealed class TcpTimeoutBoundaryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Answers each read (2 registers: a count of the answers given and 0x1234, 13 bytes) with its MBAP header (7 bytes)
    /// at once, the rest around the request timeout after the request came (from 30 ms before to 30 ms after it, in
    /// turn). The first request gets its header only; the stream is then off by a frame, so the connection is closed at
    /// the next request (the client sends that read again on a new connection, as it does when a device resets).
    /// </summary>
    private static async Task SplitAnswersAsync(TcpListener listener, CancellationToken ct)
    {
        int answers = 0;
        bool first = true, broken = false;
        while (true)
        {
            using var socket = await listener.AcceptSocketAsync(ct);
            var request = new byte[12];
            try
            {
                while (true)
                {
                    int got = 0;
                    for (int n = 1; got < request.Length && n > 0; got += n)
                    {
                        n = await socket.ReceiveAsync(request.AsMemory(got), ct);
                    }

                    if (got < request.Length || broken)
                    {
                        broken = false;
                        break;
                    }

                    var came = Stopwatch.StartNew();
                    ushort value = first ? (ushort)0 : (ushort)++answers;
                    byte[] answer = [request[0], request[1], 0, 0, 0, 7, request[6], 0x03, 0x04, (byte)(value >> 8), (byte)value, 0x12, 0x34];
                    await socket.SendAsync(answer.AsMemory(0, 7), ct);
                    if (first)
                    {
                        (first, broken) = (false, true);
                        continue;
                    }

                    var at = Timeout + TimeSpan.FromMilliseconds(((answers % 7) - 3) * 10);
                    if (at > came.Elapsed)
                    {
                        await Task.Delay(at - came.Elapsed, ct);
                    }

                    await socket.SendAsync(answer.AsMemory(7), ct);
                }
            }
            catch (SocketException)
            {
                // the client dropped the connection (consecutive timeouts): it connects again
            }
        }
    }

    [Fact]
    public async Task Regression_a_tcp_answer_begun_before_the_timeout_was_reported_as_no_answer()
    {
        // The unit's answer had begun (its header, 7 of 13 bytes) when the timeout fired, and the error said only "no
        // answer", which sends the engineer after the unit id or the wiring. It says how much came now. And an answer the
        // reader took off the stream just as the timeout fired is this request's answer, not "no answer" with the answer
        // thrown away. Which side of the boundary each try falls on is the machine's; every outcome must be one of the two.
        await TimeoutBoundary.WithLoopbackPeerAsync(SplitAnswersAsync, async port =>
        {
            await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions
            {
                Host = "127.0.0.1",
                Port = port,
                RequestTimeout = Timeout,
                ReconnectBackoffMin = TimeSpan.FromMilliseconds(10),
            }));

            var begun = await Assert.ThrowsAsync<ModbusTimeoutException>(() => client.ReadHoldingRegistersAsync(1, 0, 2, Ct));
            Assert.Contains("within 1 s (its answer was cut short: 7 of its 13 bytes arrived)", begun.Message, StringComparison.Ordinal);

            await TimeoutBoundary.EveryReadIsItsAnswerOrCutShortAsync<ModbusTimeoutException>(client, @"its answer was cut short: ([7-9]|1[0-2]) of its 13 bytes arrived", Ct);
        }, Ct);
    }
}
