using EdgeTwin.Snmp.Ber;
using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.Snmp.Tests.Codec;

public sealed class MalformedTests
{
    private static SnmpProtocolException Fails(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        var ex = Assert.Throws<SnmpProtocolException>(() => SnmpMessageCodec.Decode(bytes));
        Assert.Equal(bytes, ex.Data.ToArray());
        Assert.InRange(ex.Offset, 0, bytes.Length);
        return ex;
    }

    [Fact]
    public void Truncated_message_reports_offset_and_bytes()
    {
        var full = Captures.V2cGetResponse;
        for (var cut = 0; cut < full.Length; cut += 2)
        {
            Fails(full[..cut]);
        }
    }

    [Fact]
    public void Length_beyond_the_packet_is_rejected_without_allocating_it()
    {
        // OCTET STRING claiming 0x7fffffff bytes inside a tiny message.
        var ex = Fails("300b020101048400ffffff6162");
        Assert.Contains("exceeds", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Five_octet_length_is_rejected() => Fails("3085000000000102010100");

    [Fact]
    public void Indefinite_length_is_rejected() => Fails("3080020101040000");

    [Fact]
    public void Over_long_integer_is_rejected()
    {
        var r = Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("0209010203040506070809")).ReadValue());
        Assert.Contains("octets long", r.Message, StringComparison.Ordinal);
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("020500ffffffff")).ReadValue());
    }

    [Fact]
    public void Over_long_oid_arc_is_rejected()
    {
        // Arc of 6 base-128 octets (> 32 bits).
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("06072b8181818181 01".Replace(" ", "", StringComparison.Ordinal))).ReadValue());
        // Arc 2^32 exactly in 5 octets.
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("06062b9080808000")).ReadValue());
        // Non-minimal arc (leading 0x80).
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("0603 2b807f".Replace(" ", "", StringComparison.Ordinal))).ReadValue());
        // OID ending inside an arc.
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("06022b81")).ReadValue());
    }

    [Fact]
    public void Oid_with_more_than_128_arcs_is_rejected()
    {
        var hex = "068182" + "2b" + string.Concat(Enumerable.Repeat("01", 129)); // 06 81 82 = length 130, 131 arcs
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString(hex)).ReadValue());
    }

    [Fact]
    public void Deep_nesting_is_capped()
    {
        // 40 nested SEQUENCEs inside the message: hits the depth cap, not the stack.
        var inner = "0500";
        for (var i = 0; i < 40; i++)
        {
            var len = inner.Length / 2;
            inner = "30" + (len < 128 ? len.ToString("x2") : "81" + len.ToString("x2")) + inner;
        }
        var bytes = Convert.FromHexString(inner);
        void Descend()
        {
            var r = new BerReader(bytes);
            for (var i = 0; i < 100; i++)
            {
                r = r.ReadConstructed(0x30, "seq");
            }
        }
        var ex = Assert.Throws<SnmpProtocolException>(Descend);
        Assert.Contains("nesting", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_version_and_pdu_tag_are_rejected()
    {
        Fails("300b020102040170a0030201");
        Fails("301002010104067075626c6963af00");
    }

    [Fact]
    public void Trailing_garbage_after_message_is_rejected() => Fails(Captures.V1GetRequest + "00");

    [Fact]
    public void Bad_float_opaque_length_is_rejected() =>
        Assert.Throws<SnmpProtocolException>(() => new BerReader(Convert.FromHexString("44069f7803000000")).ReadValue());
}
