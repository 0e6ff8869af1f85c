using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Transport;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// The receive loop names a datagram's sender from one reused socket address through a cache of endpoints (it used to
/// allocate an endpoint per datagram): senders that differ only in address or only in port must still be told apart,
/// every time, and an answer from anywhere but the address and port asked is still not the request's answer.
/// </summary>
public sealed class SourceAddressTests
{
    private static readonly Oid Name = Oid.Parse(".1.3.6.1.2.1.1.5.0");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Datagrams_from_senders_differing_only_in_address_or_port_are_each_named_by_their_own_sender()
    {
        await using var transport = SnmpUdpTransport.Bind();
        var seen = new BlockingCollection<(byte Tag, IPEndPoint From)>();
        transport.Start((data, from) => seen.Add((data.Span[0], from)));
        using var a = Bound(IPAddress.Loopback, 0);
        var port = ((IPEndPoint)a.LocalEndPoint!).Port;
        using var sameAddressOtherPort = Bound(IPAddress.Loopback, 0);
        using var samePortOtherAddress = Bound(IPAddress.Parse("127.0.0.2"), port);
        var to = new IPEndPoint(IPAddress.Loopback, transport.LocalEndPoint.Port);
        Socket[] senders = [a, sameAddressOtherPort, samePortOtherAddress];

        var first = new IPEndPoint?[senders.Length];
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < senders.Length; i++)
            {
                await senders[i].SendToAsync(new[] { (byte)i }, SocketFlags.None, to, Ct);
                Assert.True(seen.TryTake(out var got, 5000, Ct), $"datagram {i} of round {round} not received");
                Assert.Equal((byte)i, got.Tag);
                // Plain IPv4 endpoints (not IPv4-mapped IPv6), as before.
                Assert.Equal((IPEndPoint)senders[i].LocalEndPoint!, got.From);
                // Later datagrams from a sender reuse its endpoint instead of allocating one.
                first[i] ??= got.From;
                Assert.Same(first[i], got.From);
            }
        }
    }

    [Fact]
    public async Task An_answer_from_another_address_on_the_asked_port_is_ignored_and_the_agents_own_answer_taken()
    {
        using var agent = Bound(IPAddress.Loopback, 0);
        var port = ((IPEndPoint)agent.LocalEndPoint!).Port;
        using var impostor = Bound(IPAddress.Parse("127.0.0.2"), port);
        await using var client = new SnmpClient();
        var target = new SnmpTarget { EndPoint = new IPEndPoint(IPAddress.Loopback, port), Timeout = TimeSpan.FromSeconds(2), Retries = 0 };

        for (var i = 0; i < 3; i++)
        {
            var get = client.GetAsync(target, [Name], Ct);
            var (request, from) = await ReceiveAsync(agent);
            // The impostor answers first, with the right request-id; the agent after it.
            await impostor.SendToAsync(Answer(request, "impostor"), SocketFlags.None, from, Ct);
            await Task.Delay(100, Ct);
            await agent.SendToAsync(Answer(request, $"agent {i}"), SocketFlags.None, from, Ct);

            var values = await get;
            Assert.Equal($"agent {i}", System.Text.Encoding.UTF8.GetString(Assert.Single(values).Value.AsBytes().Span));
        }

        var alone = client.GetAsync(target, [Name], Ct);
        var (last, lastFrom) = await ReceiveAsync(agent);
        await impostor.SendToAsync(Answer(last, "impostor"), SocketFlags.None, lastFrom, Ct);
        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => alone);
        Assert.Contains($"answered from 127.0.0.2:{port} instead of 127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
    }

    private static Socket Bound(IPAddress address, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(address, port));
        return socket;
    }

    private static async Task<(SnmpMessage Request, EndPoint From)> ReceiveAsync(Socket agent)
    {
        var buffer = new byte[SnmpUdpTransport.MaxDatagram];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        var r = await agent.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
        return (SnmpMessageCodec.Decode(buffer.AsSpan(0, r.ReceivedBytes)), r.RemoteEndPoint);
    }

    private static byte[] Answer(SnmpMessage request, string value) =>
        SnmpMessageCodec.Encode(new SnmpMessage
        {
            Version = request.Version,
            Community = request.Community,
            Pdu = new SnmpPdu(PduType.Response, request.Pdu!.RequestId, [new VarBind(Name, SnmpValue.OctetString(value))]),
        });
}
