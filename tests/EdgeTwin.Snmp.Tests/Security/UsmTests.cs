using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Codec;

namespace EdgeTwin.Snmp.Tests.Security;

public sealed class UsmTests
{
    private static readonly byte[] RfcEngineId = Convert.FromHexString("000000000000000000000002");

    [Fact]
    public void Rfc3414_A3_1_md5_key_localisation()
    {
        var ku = UsmCrypto.PasswordToKey(SnmpAuthProtocol.Md5, "maplesyrup"u8);
        Assert.Equal("9faf3283884e92834ebc9847d8edd963", Convert.ToHexStringLower(ku));
        Assert.Equal("526f5eed9fcce26f8964c2930787d82b", Convert.ToHexStringLower(UsmCrypto.Localize(SnmpAuthProtocol.Md5, ku, RfcEngineId)));
    }

    [Fact]
    public void Rfc3414_A3_2_sha_key_localisation()
    {
        var ku = UsmCrypto.PasswordToKey(SnmpAuthProtocol.Sha1, "maplesyrup"u8);
        Assert.Equal("9fb5cc0381497b3793528939ff788d5d79145211", Convert.ToHexStringLower(ku));
        Assert.Equal("6695febc9288e36282235fc7151f128497b38f3f", Convert.ToHexStringLower(UsmCrypto.Localize(SnmpAuthProtocol.Sha1, ku, RfcEngineId)));
    }

    [Fact]
    public void Sha224_matches_fips_180_vectors()
    {
        Assert.Equal("23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7", Convert.ToHexStringLower(Sha224.HashData("abc"u8)));
        Assert.Equal("d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f", Convert.ToHexStringLower(Sha224.HashData([])));
        var million = new byte[1_000_000];
        Array.Fill(million, (byte)'a');
        Assert.Equal("20794655980c91d8bbb4c1ea97618a4bf03f42581948b2ee4ee7ad67", Convert.ToHexStringLower(Sha224.HashData(million)));
    }

    [Theory]
    [InlineData(SnmpAuthProtocol.Md5, 12)]
    [InlineData(SnmpAuthProtocol.Sha1, 12)]
    [InlineData(SnmpAuthProtocol.Sha224, 16)]
    [InlineData(SnmpAuthProtocol.Sha256, 24)]
    [InlineData(SnmpAuthProtocol.Sha384, 32)]
    [InlineData(SnmpAuthProtocol.Sha512, 48)]
    public void Rfc7860_mac_lengths(SnmpAuthProtocol p, int length) =>
        Assert.Equal(length, UsmCrypto.Mac(p, new byte[UsmCrypto.HashLength(p)], "x"u8).Length);

    [Theory]
    [InlineData("md5des", SnmpAuthProtocol.Md5, SnmpPrivProtocol.Des, Captures.V3Md5DesResponse)]
    [InlineData("md5des", SnmpAuthProtocol.Md5, SnmpPrivProtocol.Des, Captures.V3Md5DesRequest)]
    [InlineData("md5aes256", SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes256, Captures.V3Md5Aes256Response)]
    [InlineData("sha256aes", SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes128, Captures.V3Sha256AesResponse)]
    [InlineData("sha256aes", SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes128, Captures.V3Sha256AesRequest)]
    public void Net_snmp_v3_captures_authenticate_and_decrypt(string name, SnmpAuthProtocol auth, SnmpPrivProtocol priv, string hex)
    {
        var user = new SnmpV3User(name, auth, "authpass123", priv, "privpass123");
        var packet = Convert.FromHexString(hex);
        var msg = SnmpMessageCodec.Decode(packet);
        Assert.True(Usm.VerifyAuthentication(packet, user, msg.Usm.EngineId));
        Assert.True(Usm.TryDecrypt(msg, user, out var error), error);
        Assert.Equal(".1.3.6.1.2.1.1.5.0", msg.Pdu!.VarBinds[0].Oid.ToNumericString());
        if (msg.Pdu.Type == PduType.Response)
        {
            Assert.Equal(".1.3.6.1.2.1.1.5.0 = STRING: \"vm\"", msg.Pdu.VarBinds[0].ToString());
        }
    }

    [Fact]
    public void Wrong_passwords_are_detected_on_captures()
    {
        var packet = Convert.FromHexString(Captures.V3Md5DesResponse);
        var msg = SnmpMessageCodec.Decode(packet);
        Assert.False(Usm.VerifyAuthentication(packet, new SnmpV3User("md5des", SnmpAuthProtocol.Md5, "wrongpass1", SnmpPrivProtocol.Des, "privpass123"), msg.Usm.EngineId));
        Assert.False(Usm.TryDecrypt(msg, new SnmpV3User("md5des", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Des, "wrongpriv1"), out var error));
        Assert.NotNull(error);
    }

    public static TheoryData<SnmpAuthProtocol, SnmpPrivProtocol> Combinations()
    {
        var data = new TheoryData<SnmpAuthProtocol, SnmpPrivProtocol>();
        foreach (var a in Enum.GetValues<SnmpAuthProtocol>().Where(a => a != SnmpAuthProtocol.None))
        {
            foreach (var p in Enum.GetValues<SnmpPrivProtocol>())
            {
                data.Add(a, p);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void Our_encoding_verifies_and_decrypts_for_every_combination(SnmpAuthProtocol auth, SnmpPrivProtocol priv)
    {
        var user = new SnmpV3User("u", auth, "authpass123", priv, priv == SnmpPrivProtocol.None ? null : "privpass123");
        var engine = Convert.FromHexString(Captures.EngineId);
        var pdu = new SnmpPdu(PduType.Response, 42, [new VarBind(Oid.Parse("1.3.6.1.2.1.1.5.0"), SnmpValue.OctetString("hello"))]);
        var msg = new SnmpMessage
        {
            Version = SnmpVersion.V3, MessageId = 7, Pdu = pdu, ContextEngineId = engine,
            Flags = V3Flags.Auth | (priv == SnmpPrivProtocol.None ? 0 : V3Flags.Priv),
        };
        var bytes = Usm.Encode(msg, user, engine, 3, 12345);
        var back = SnmpMessageCodec.Decode(bytes);
        Assert.Equal(priv != SnmpPrivProtocol.None, back.EncryptedPdu is not null);
        Assert.True(Usm.VerifyAuthentication(bytes, user, engine));
        Assert.True(Usm.TryDecrypt(back, user, out var error), error);
        Assert.Equal(pdu.VarBinds, back.Pdu!.VarBinds);
        bytes[^1] ^= 1;
        Assert.False(Usm.VerifyAuthentication(bytes, user, engine));
    }

    [Fact]
    public void Aes256_key_with_md5_is_extended_blumenthal_style()
    {
        // MD5 localizes to 16 octets; AES-256 needs 32: key = Kul || MD5(Kul).
        var engine = Convert.FromHexString(Captures.EngineId);
        var ku = UsmCrypto.PasswordToKey(SnmpAuthProtocol.Md5, "privpass123"u8);
        var kul = UsmCrypto.Localize(SnmpAuthProtocol.Md5, ku, engine);
        var key = UsmCrypto.PrivKey(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes256, ku, engine);
        Assert.Equal(32, key.Length);
        Assert.Equal(kul, key[..16]);
        Assert.Equal(UsmCrypto.Hash(SnmpAuthProtocol.Md5, kul), key[16..]);
    }
}
