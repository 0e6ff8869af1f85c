using System.Net;
using System.Net.Sockets;
using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>GetEach against a scripted v1 agent that blames a varbind in every answer: the re-sends stay bounded.</summary>
public sealed class GetEachTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(SnmpErrorStatus.NoSuchName)]
    [InlineData(SnmpErrorStatus.BadValue)]
    public async Task An_agent_that_blames_every_varbind_gets_one_request_per_varbind_and_no_more(SnmpErrorStatus status)
    {
        using var agent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var requests = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var serve = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                UdpReceiveResult r;
                try
                {
                    r = await agent.ReceiveAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                requests++;
                var request = SnmpMessageCodec.Decode(r.Buffer).Pdu!;
                var answer = new SnmpPdu(PduType.Response, request.RequestId, request.VarBinds) { ErrorStatus = status, ErrorIndex = request.VarBinds.Count };
                await agent.SendAsync(SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V1, "public", answer)), r.RemoteEndPoint, stop.Token);
            }
        }, Ct);
        await using var client = new SnmpClient();
        var target = new SnmpTarget { EndPoint = (IPEndPoint)agent.Client.LocalEndPoint!, Version = SnmpVersion.V1, Community = "public", Timeout = TimeSpan.FromSeconds(2), Retries = 0 };
        Oid[] oids = [Oid.Parse("1.3.6.1.2.1.1.1.0"), Oid.Parse("1.3.6.1.2.1.1.2.0"), Oid.Parse("1.3.6.1.2.1.1.3.0")];
        var errors = new SnmpErrorStatus[oids.Length];

        var vbs = await client.GetEachAsync(target, oids, errors, Ct);

        Assert.Equal(3, requests);
        Assert.All(errors, e => Assert.Equal(status, e));
        Assert.Equal(oids, vbs.Select(v => v.Oid));
        await stop.CancelAsync();
        await serve;
    }

    [Fact]
    public async Task Other_error_statuses_and_an_error_index_out_of_range_still_throw()
    {
        using var agent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var answers = new Queue<(SnmpErrorStatus, int)>([(SnmpErrorStatus.GenErr, 1), (SnmpErrorStatus.NoSuchName, 0), (SnmpErrorStatus.NoSuchName, 5)]);
        var serve = Task.Run(async () =>
        {
            while (answers.Count > 0)
            {
                var r = await agent.ReceiveAsync(Ct);
                var request = SnmpMessageCodec.Decode(r.Buffer).Pdu!;
                var (status, index) = answers.Dequeue();
                var answer = new SnmpPdu(PduType.Response, request.RequestId, request.VarBinds) { ErrorStatus = status, ErrorIndex = index };
                await agent.SendAsync(SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V1, "public", answer)), r.RemoteEndPoint, Ct);
            }
        }, Ct);
        await using var client = new SnmpClient();
        var target = new SnmpTarget { EndPoint = (IPEndPoint)agent.Client.LocalEndPoint!, Version = SnmpVersion.V1, Community = "public", Timeout = TimeSpan.FromSeconds(2), Retries = 0 };
        Oid[] oids = [Oid.Parse("1.3.6.1.2.1.1.1.0"), Oid.Parse("1.3.6.1.2.1.1.2.0")];
        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<SnmpErrorStatusException>(() => client.GetEachAsync(target, oids, new SnmpErrorStatus[2], Ct));
        }
        await serve;
    }
}
