using System.Net;
using EdgeTwin.Snmp.Ber;
using EdgeTwin.Snmp.Messages;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Snmp.Tests.Codec;

public sealed class PropertyTests
{
    internal static Gen<Oid> OidGen =>
        from first in Gen.Choose(0, 2)
        from second in Gen.Choose(0, first == 2 ? 1000 : 39)
        from rest in Gen.ArrayOf(ArbMap.Default.GeneratorFor<uint>()).Where(a => a.Length <= 100)
        select new Oid([(uint)first, (uint)second, .. rest]);

    internal static Gen<SnmpValue> ValueGen => Gen.OneOf(
        ArbMap.Default.GeneratorFor<int>().Select(SnmpValue.Integer),
        ArbMap.Default.GeneratorFor<byte[]>().Select(b => SnmpValue.OctetString(b ?? [])),
        Gen.Constant(SnmpValue.Null),
        OidGen.Select(SnmpValue.ObjectIdentifier),
        ArbMap.Default.GeneratorFor<uint>().Select(u => SnmpValue.IpAddress(new IPAddress(BitConverter.GetBytes(u)))),
        ArbMap.Default.GeneratorFor<uint>().Select(SnmpValue.Counter32),
        ArbMap.Default.GeneratorFor<uint>().Select(SnmpValue.Gauge32),
        ArbMap.Default.GeneratorFor<uint>().Select(SnmpValue.TimeTicks),
        ArbMap.Default.GeneratorFor<ulong>().Select(SnmpValue.Counter64),
        ArbMap.Default.GeneratorFor<float>().Select(SnmpValue.OpaqueFloat),
        ArbMap.Default.GeneratorFor<double>().Select(SnmpValue.OpaqueDouble),
        ArbMap.Default.GeneratorFor<byte[]>().Where(b => b is not null && (b.Length < 3 || b[0] != 0x9f)).Select(SnmpValue.Opaque),
        Gen.Elements(SnmpValue.NoSuchObject, SnmpValue.NoSuchInstance, SnmpValue.EndOfMibView));

    private static Gen<SnmpPdu> PduGen =>
        from type in Gen.Elements(PduType.GetRequest, PduType.GetNextRequest, PduType.Response, PduType.SetRequest,
            PduType.GetBulkRequest, PduType.InformRequest, PduType.TrapV2, PduType.Report)
        from id in ArbMap.Default.GeneratorFor<int>()
        from status in Gen.Choose(0, 18)
        from index in Gen.Choose(0, 100)
        from vbs in Gen.ListOf(from o in OidGen from v in ValueGen select new VarBind(o, v)).Where(l => l.Count <= 60)
        select new SnmpPdu(type, id, vbs.ToArray()) { ErrorStatus = (SnmpErrorStatus)status, ErrorIndex = index };

    [Property(MaxTest = 500)]
    public Property Every_value_roundtrips() => Prop.ForAll(ValueGen.ToArbitrary(), v =>
    {
        using var w = new BerWriter(8);
        w.WriteValue(v);
        var r = new BerReader(w.WrittenSpan);
        var back = r.ReadValue();
        return back.Equals(v) && !r.HasMore;
    });

    [Property(MaxTest = 300)]
    public Property Every_oid_roundtrips_and_keeps_order() => Prop.ForAll(OidGen.ToArbitrary(), OidGen.ToArbitrary(), (a, b) =>
    {
        using var w = new BerWriter(8);
        w.WriteOid(a.Arcs);
        var back = new BerReader(w.WrittenSpan).ReadOid("oid");
        return back == a && Math.Sign(a.CompareTo(b)) == -Math.Sign(b.CompareTo(a)) && (a.CompareTo(b) == 0) == (a == b);
    });

    [Property(MaxTest = 200)]
    public Property Messages_of_every_version_roundtrip() => Prop.ForAll(PduGen.ToArbitrary(), Gen.Elements(SnmpVersion.V1, SnmpVersion.V2c, SnmpVersion.V3).ToArbitrary(), (pdu, version) =>
    {
        var msg = version == SnmpVersion.V3
            ? new SnmpMessage
            {
                Version = version, MessageId = Math.Abs(pdu.RequestId % 1000000), Flags = V3Flags.Reportable, Pdu = pdu,
                Usm = new UsmParameters([0x80, 0, 0, 1], 3, 1000, "u"u8.ToArray(), [], []), ContextName = "c"u8.ToArray(),
            }
            : SnmpMessage.ForCommunity(version, "public", pdu);
        var bytes = SnmpMessageCodec.Encode(msg);
        var back = SnmpMessageCodec.Decode(bytes);
        return back.Pdu!.Type == pdu.Type && back.Pdu.RequestId == pdu.RequestId && back.Pdu.ErrorStatus == pdu.ErrorStatus
            && back.Pdu.ErrorIndex == pdu.ErrorIndex && back.Pdu.VarBinds.SequenceEqual(pdu.VarBinds)
            && SnmpMessageCodec.Encode(back).AsSpan().SequenceEqual(bytes);
    });

    /// <summary>
    /// What a hostile agent can put in a datagram: plain random bytes, and random bytes behind a SEQUENCE header and a
    /// version (so decoding gets past the first checks) with any length octets, definite, long-form or indefinite.
    /// </summary>
    internal static Gen<byte[]> HostileDatagramGen =>
        from body in ArbMap.Default.GeneratorFor<byte[]>().Select(b => b ?? [])
        from lengthOctets in Gen.Elements<byte[]>([], [0x80], [0x81, 0xff], [0x82, 0xff, 0xf0], [0x84, 0x7f, 0xff, 0xff, 0xff], [0x7f])
        from version in Gen.Elements<byte>(0, 1, 3, 2)
        from shape in Gen.Choose(0, 2)
        select shape switch
        {
            0 => body,
            1 => [0x30, .. (lengthOctets.Length == 0 ? [(byte)Math.Min(body.Length + 3, 0x7f)] : lengthOctets), 0x02, 0x01, version, .. body],
            _ => [0x30, (byte)Math.Min(body.Length + 5, 0x7f), 0x02, 0x01, version, 0x04, (byte)Math.Min(body.Length, 0x7f), .. body],
        };

    private static bool OnlyProtocolErrors(Action decode)
    {
        try
        {
            decode();
        }
        catch (SnmpProtocolException)
        {
        }
        return true; // any other exception fails the property
    }

    [Property(MaxTest = 3000)]
    public Property Random_datagrams_only_ever_throw_the_protocol_exception() => Prop.ForAll(HostileDatagramGen.ToArbitrary(), bytes =>
        OnlyProtocolErrors(() => SnmpMessageCodec.Decode(bytes))
        && OnlyProtocolErrors(() => new BerReader(bytes).ReadValue())
        && OnlyProtocolErrors(() => EdgeTwin.Snmp.Security.Usm.FindAuthParameters(bytes))
        && OnlyProtocolErrors(() => SnmpMessageCodec.DecodeScopedPdu(bytes, new SnmpMessage { Version = SnmpVersion.V3 })));
}
