using System.Net;
using EdgeTwin.Snmp.Messages;
using static EdgeTwin.Snmp.Tests.Codec.Captures;

namespace EdgeTwin.Snmp.Tests.Codec;

public sealed class CaptureTests
{
    private static readonly string[] SysOids = ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.9.9.9"];
    private static readonly Oid SysDescr = Oid.Parse("1.3.6.1.2.1.1.1.0");

    [Fact]
    public void V2cGetRequest_decodes_and_reencodes_byte_for_byte()
    {
        var msg = SnmpMessageCodec.Decode(Hex(V2cGetRequest));
        Assert.Equal(SnmpVersion.V2c, msg.Version);
        Assert.Equal("public", System.Text.Encoding.ASCII.GetString(msg.Community));
        Assert.Equal(PduType.GetRequest, msg.Pdu!.Type);
        Assert.Equal(0x5880074e, msg.Pdu.RequestId);
        Assert.Equal(4, msg.Pdu.VarBinds.Count);
        Assert.Equal(SysDescr, msg.Pdu.VarBinds[0].Oid);
        Assert.All(msg.Pdu.VarBinds, vb => Assert.Equal(SnmpType.Null, vb.Value.Type));
        Assert.Equal(V2cGetRequest, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
    }

    [Fact]
    public void We_encode_a_get_exactly_as_snmpget_does()
    {
        var pdu = SnmpPdu.Get(0x5880074e, SysOids.Select(Oid.Parse));
        var bytes = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V2c, "public", pdu));
        Assert.Equal(V2cGetRequest, Convert.ToHexStringLower(bytes));
    }

    [Fact]
    public void Snmpds_tooBig_answer_decodes_with_index_0_and_the_request_echoed_and_we_encode_that_get_as_snmpget_does()
    {
        // What the client's tooBig sizing (FittingSize) reacts to: snmpd over its sendMessageMaxSize answers a GET with
        // tooBig, error-index 0 and the request's own varbinds (NULL values), and never sends part of the values.
        var oids = Enumerable.Range(1, 7).Select(i => Oid.Parse($"1.3.6.1.4.1.99996.1.{i}")).ToArray();
        var request = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V2c, "public", SnmpPdu.Get(0x1f4060b2, oids)));
        Assert.Equal(V2cTooBigRequest, Convert.ToHexStringLower(request));

        var msg = SnmpMessageCodec.Decode(Hex(V2cTooBigResponse));
        Assert.Equal(PduType.Response, msg.Pdu!.Type);
        Assert.Equal(0x1f4060b2, msg.Pdu.RequestId);
        Assert.Equal((SnmpErrorStatus.TooBig, 0), (msg.Pdu.ErrorStatus, msg.Pdu.ErrorIndex));
        Assert.Equal(oids, msg.Pdu.VarBinds.Select(vb => vb.Oid));
        Assert.All(msg.Pdu.VarBinds, vb => Assert.Equal(SnmpType.Null, vb.Value.Type));
        Assert.Equal(V2cTooBigResponse, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
    }

    [Fact]
    public void We_encode_a_getbulk_and_a_v1_get_exactly_as_net_snmp_does()
    {
        var bulk = SnmpPdu.GetBulk(0x331e6d40, 0, 3, [Oid.Parse("1.3.6.1.2.1.2.2.1.2")]);
        Assert.Equal(V2cBulkRequest, Convert.ToHexStringLower(SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V2c, "public", bulk))));
        var v1 = SnmpPdu.Get(0x54ec955e, [Oid.Parse("1.3.6.1.2.1.1.5.0")]);
        Assert.Equal(V1GetRequest, Convert.ToHexStringLower(SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V1, "public", v1))));
    }

    [Fact]
    public void V2cGetResponse_from_snmpd_decodes_every_value()
    {
        var msg = SnmpMessageCodec.Decode(Hex(V2cGetResponse));
        var vbs = msg.Pdu!.VarBinds;
        Assert.Equal(PduType.Response, msg.Pdu.Type);
        Assert.Equal(".1.3.6.1.2.1.1.1.0 = STRING: \"EdgeTwin test agent\"", vbs[0].ToString());
        Assert.Equal(".1.3.6.1.2.1.1.3.0 = Timeticks: (414) 0:00:04.14", vbs[1].ToString());
        Assert.Equal(".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.8072.3.2.10", vbs[2].ToString());
        Assert.Equal(".1.3.6.1.2.1.1.9.9.9 = No Such Object available on this agent at this OID", vbs[3].ToString());
        Assert.Equal(V2cGetResponse, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
    }

    [Fact]
    public void Every_type_snmpd_sent_decodes_and_prints_as_snmpget_printed_it()
    {
        var msg = SnmpMessageCodec.Decode(Hex(V2cTypesResponse));
        // Lines as printed by: snmpget -v2c -c public -On (net-snmp 5.9.3, no MIBs).
        string[] expected =
        [
            ".1.3.6.1.4.1.2021.10.1.6.1 = Opaque: Float: 12.605469",
            ".1.3.6.1.2.1.31.1.1.1.6.1 = Counter64: 12718",
            ".1.3.6.1.2.1.4.20.1.1.127.0.0.1 = IpAddress: 127.0.0.1",
            ".1.3.6.1.2.1.2.2.1.5.1 = Gauge32: 10000000",
            ".1.3.6.1.2.1.2.2.1.10.1 = Counter32: 12718",
            ".1.3.6.1.2.1.2.2.1.3.1 = INTEGER: 24",
            ".1.3.6.1.2.1.2.2.1.6.2 = Hex-STRING: 8A 83 D9 E5 C1 2F ",
            ".1.3.6.1.2.1.1.7.0 = No Such Instance currently exists at this OID",
        ];
        Assert.Equal(expected, msg.Pdu!.VarBinds.Select(v => v.ToString()));
        Assert.Equal(12.605469f, msg.Pdu.VarBinds[0].Value.AsFloat(), 5);
        Assert.Equal(IPAddress.Loopback, msg.Pdu.VarBinds[2].Value.AsIPAddress());
        Assert.Equal(V2cTypesResponse, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
    }

    [Fact]
    public void Bulk_and_v1_responses_roundtrip()
    {
        foreach (var hex in new[] { V2cBulkResponse, V1GetResponse, V2cTypesRequest })
        {
            var msg = SnmpMessageCodec.Decode(Hex(hex));
            Assert.Equal(hex, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
        }
        var bulk = SnmpMessageCodec.Decode(Hex(V2cBulkResponse));
        Assert.Equal(["\"lo\"", "\"ifb0\"", "\"ifb1\""], bulk.Pdu!.VarBinds.Select(v => SnmpFormatter.ValueText(v.Value)));
    }

    [Fact]
    public void V3_discovery_report_exposes_engine_id_boots_time_and_the_usmStats_counter()
    {
        var msg = SnmpMessageCodec.Decode(Hex(V3DiscoveryReport));
        Assert.Equal(SnmpVersion.V3, msg.Version);
        Assert.Equal(EngineId, Convert.ToHexStringLower(msg.Usm.EngineId));
        Assert.Equal(1, msg.Usm.EngineBoots);
        Assert.Equal(25, msg.Usm.EngineTime);
        Assert.Equal(PduType.Report, msg.Pdu!.Type);
        Assert.Equal(".1.3.6.1.6.3.15.1.1.4.0 = Counter32: 8", msg.Pdu.VarBinds[0].ToString());
        Assert.Equal(V3DiscoveryReport, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
        var probe = SnmpMessageCodec.Decode(Hex(V3DiscoveryRequest));
        Assert.Equal(V3Flags.Reportable, probe.Flags);
        Assert.Equal(V3DiscoveryRequest, Convert.ToHexStringLower(SnmpMessageCodec.Encode(probe)));
    }

    [Fact]
    public void V3_encrypted_message_keeps_ciphertext_and_roundtrips()
    {
        var msg = SnmpMessageCodec.Decode(Hex(V3Md5DesResponse));
        Assert.Equal(V3Flags.Auth | V3Flags.Priv, msg.Flags);
        Assert.Equal("md5des", System.Text.Encoding.ASCII.GetString(msg.Usm.UserName));
        Assert.Equal(12, msg.Usm.AuthenticationParameters.Length);
        Assert.Equal(8, msg.Usm.PrivacyParameters.Length);
        Assert.NotNull(msg.EncryptedPdu);
        Assert.Null(msg.Pdu);
        Assert.Equal(V3Md5DesResponse, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
    }

    [Fact]
    public void V1_trap_roundtrips()
    {
        var pdu = new SnmpPdu(PduType.TrapV1, 0, [new VarBind(Oid.Parse("1.3.6.1.4.1.318.2.3.1"), SnmpValue.OctetString("on battery"))])
        {
            TrapV1 = new TrapV1Fields(Oid.Parse("1.3.6.1.4.1.318"), IPAddress.Parse("10.0.0.5"), 6, 5, 12345),
        };
        var bytes = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V1, "public", pdu));
        var back = SnmpMessageCodec.Decode(bytes);
        Assert.Equal(pdu.TrapV1, back.Pdu!.TrapV1);
        Assert.Equal(pdu.VarBinds, back.Pdu.VarBinds);
    }

    [Fact]
    public void Opaque_double_uses_net_snmp_9f79_encoding()
    {
        using var w = new Ber.BerWriter();
        w.WriteValue(SnmpValue.OpaqueDouble(1.5));
        Assert.Equal("440b9f79083ff8000000000000", Convert.ToHexStringLower(w.WrittenSpan));
        var r = new Ber.BerReader(w.WrittenSpan);
        Assert.Equal(1.5, r.ReadValue().AsDouble());
    }

    [Theory]
    [InlineData("020100", 0)]
    [InlineData("02017f", 127)]
    [InlineData("02020080", 128)]
    [InlineData("020180", -128)]
    [InlineData("0204ffffff7f", -129)]
    [InlineData("0204ffffffff", -1)]
    [InlineData("02047fffffff", int.MaxValue)]
    [InlineData("020480000000", int.MinValue)]
    public void Integers_decode(string hex, int expected)
    {
        var r = new Ber.BerReader(Hex(hex));
        Assert.Equal(expected, r.ReadValue().AsInt32());
    }

    [Fact]
    public void Counter32_with_high_bit_and_no_leading_zero_is_accepted_as_unsigned()
    {
        // Some agents encode 4294967295 as 41 04 FF FF FF FF; net-snmp accepts it, so do we.
        var r = new Ber.BerReader(Hex("4104ffffffff"));
        Assert.Equal(uint.MaxValue, r.ReadValue().AsUInt32());
        using var w = new Ber.BerWriter();
        w.WriteValue(SnmpValue.Counter32(uint.MaxValue));
        Assert.Equal("410500ffffffff", Convert.ToHexStringLower(w.WrittenSpan));
    }
}
