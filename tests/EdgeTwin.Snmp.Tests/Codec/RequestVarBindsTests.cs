using EdgeTwin.Snmp.Messages;
using static EdgeTwin.Snmp.Tests.Codec.Captures;

namespace EdgeTwin.Snmp.Tests.Codec;

/// <summary>
/// The client's requests read the caller's OIDs (<c>SnmpPdu.Asking</c>) instead of copying them into a varbind array
/// per request: on the wire they must be net-snmp's bytes, as the public builders' are.
/// </summary>
public sealed class RequestVarBindsTests
{
    private static readonly string[] SysOids = ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.9.9.9"];

    [Fact]
    public void Requests_reading_the_callers_oids_encode_exactly_as_net_snmp_does()
    {
        Oid[] sys = [.. SysOids.Select(Oid.Parse)];
        Assert.Equal(V2cGetRequest, Encode(SnmpVersion.V2c, SnmpPdu.Asking(PduType.GetRequest, 0x5880074e, sys)));
        Assert.Equal(V1GetRequest, Encode(SnmpVersion.V1, SnmpPdu.Asking(PduType.GetRequest, 0x54ec955e, [Oid.Parse("1.3.6.1.2.1.1.5.0")])));
        Assert.Equal(V2cBulkRequest, Encode(SnmpVersion.V2c, SnmpPdu.Asking(PduType.GetBulkRequest, 0x331e6d40, [Oid.Parse("1.3.6.1.2.1.2.2.1.2")], 0, 3)));

        var pdu = SnmpPdu.Asking(PduType.GetNextRequest, 1, sys);
        Assert.Equal(SnmpPdu.GetNext(1, sys).VarBinds, pdu.VarBinds);
        Assert.Equal(sys.Length, pdu.VarBinds.Count);
        Assert.Equal(SnmpValue.Null, pdu.VarBinds[3].Value);
    }

    private static string Encode(SnmpVersion version, SnmpPdu pdu) =>
        Convert.ToHexStringLower(SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(version, "public", pdu)));
}
