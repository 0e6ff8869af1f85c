using EdgeTwin.Snmp.Messages;
using static EdgeTwin.Snmp.Tests.Codec.Captures;

namespace EdgeTwin.Snmp.Tests.Codec;

/// <summary>
/// The client decodes an answer with the OIDs its request asked (<c>Decode(packet, namesOf)</c>) so a GET's answer
/// reuses them instead of allocating each again: the result and every check must be those of a plain decode.
/// </summary>
public sealed class KnownNamesTests
{
    private static readonly Oid[] SysOids = [.. new[] { "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.9.9.9" }.Select(Oid.Parse)];

    [Fact]
    public void Snmpds_get_answer_decoded_with_the_asked_oids_reuses_them_and_is_the_same_message()
    {
        var asked = SnmpPdu.Get(0, SysOids).VarBinds;
        var plain = SnmpMessageCodec.Decode(Hex(V2cGetResponse));
        int? askedFor = null;
        var msg = SnmpMessageCodec.Decode(Hex(V2cGetResponse), id => { askedFor = id; return asked; });

        Assert.Equal(plain.Pdu!.RequestId, askedFor);
        Assert.Equal(plain.Pdu.VarBinds, msg.Pdu!.VarBinds);
        for (var i = 0; i < SysOids.Length; i++)
        {
            Assert.True(msg.Pdu.VarBinds[i].Oid.Arcs.Overlaps(SysOids[i].Arcs), $"varbind {i} decoded its OID again");
        }
        Assert.Equal(V2cGetResponse, Convert.ToHexStringLower(SnmpMessageCodec.Encode(msg)));
    }

    [Fact]
    public void Names_that_differ_in_order_length_or_count_are_not_taken_for_the_answers_oids()
    {
        Oid[][] lists =
        [
            [SysOids[1], SysOids[0], SysOids[2], SysOids[3]],                     // same lengths, other order
            [Oid.Parse("1.3.6.1.2.1.1.1"), Oid.Parse("1.3.6.1.2.1.1.3.0.0")],     // shorter and longer, fewer
            [.. SysOids, Oid.Parse("1.3.6.1.2.1.1.4.0")],                        // more names than varbinds
            [],
        ];
        var plain = SnmpMessageCodec.Decode(Hex(V2cGetResponse)).Pdu!.VarBinds;
        foreach (var names in lists)
        {
            var asked = SnmpPdu.Get(0, names).VarBinds;
            var vbs = SnmpMessageCodec.Decode(Hex(V2cGetResponse), _ => asked).Pdu!.VarBinds;
            Assert.Equal(plain, vbs);
            for (var i = 0; i < vbs.Count && i < names.Length; i++)
            {
                Assert.Equal(vbs[i].Oid == names[i], vbs[i].Oid.Arcs.Overlaps(names[i].Arcs));
            }
        }
    }

    [Fact]
    public void Every_capture_and_mutants_of_it_decode_or_fail_alike_with_and_without_names()
    {
        var rng = new Random(20261203);
        var mutants = 0;
        foreach (var capture in All.Select(Convert.FromHexString))
        {
            // The names a request would have asked: the capture's own OIDs where it decodes.
            var own = TryDecode(capture, null).Message?.Pdu?.VarBinds ?? [];
            for (var i = 0; i < 3000; i++)
            {
                var packet = (byte[])capture.Clone();
                packet[rng.Next(packet.Length)] = i % 2 == 0 ? (byte)rng.Next(256) : (byte)(packet[rng.Next(packet.Length)] ^ (1 << rng.Next(8)));
                var (expected, expectedError) = TryDecode(packet, null);
                var (actual, actualError) = TryDecode(packet, _ => own);
                Assert.Equal(expectedError, actualError);
                Assert.Equal(expected?.Pdu?.VarBinds, actual?.Pdu?.VarBinds);
                Assert.Equal(expected?.Pdu?.RequestId, actual?.Pdu?.RequestId);
                mutants++;
            }
        }
        Assert.Equal(All.Count() * 3000, mutants);
    }

    private static (SnmpMessage? Message, string? Error) TryDecode(byte[] packet, Func<int, IReadOnlyList<VarBind>?>? namesOf)
    {
        try
        {
            return (SnmpMessageCodec.Decode(packet, namesOf), null);
        }
        catch (SnmpProtocolException ex)
        {
            return (null, $"{ex.Reason} at {ex.Offset}");
        }
    }
}
