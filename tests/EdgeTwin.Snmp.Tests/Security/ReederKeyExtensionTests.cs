using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;

namespace EdgeTwin.Snmp.Tests.Security;

/// <summary>
/// AES-192/256 privacy keys in both key extensions, against vectors computed with an independent implementation:
/// pysnmp 4.4.12 (Debian python3-pysnmp4), <c>Aes192</c>/<c>Aes256</c> (Reeder, its usmAesCfb192/256Protocol) and
/// <c>AesBlumenthal192</c>/<c>AesBlumenthal256</c>, password "maplesyrup" and the RFC 3414 A.3 engine id, e.g.
/// <c>aes256.Aes256().localizeKey(authProtocol, Aes256().hashPassphrase(authProtocol, "maplesyrup"), engineId)</c>.
/// </summary>
public sealed class ReederKeyExtensionTests
{
    private static readonly byte[] RfcEngineId = Convert.FromHexString("000000000000000000000002");

    [Theory]
    // MD5 (16 octets) and SHA-1 (20): both extensions append, differently. The first 16/20 octets are Kul (RFC 3414 A.3).
    [InlineData(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes192Reeder, "526f5eed9fcce26f8964c2930787d82b79eff44a90650ee0")]
    [InlineData(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes256Reeder, "526f5eed9fcce26f8964c2930787d82b79eff44a90650ee0a3a40abfac5acc12")]
    [InlineData(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes192, "526f5eed9fcce26f8964c2930787d82bfa24a92467426c2f")]
    [InlineData(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes256, "526f5eed9fcce26f8964c2930787d82bfa24a92467426c2f4b09192be10dfaec")]
    [InlineData(SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes192Reeder, "6695febc9288e36282235fc7151f128497b38f3f9b8b6d78")]
    [InlineData(SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256Reeder, "6695febc9288e36282235fc7151f128497b38f3f9b8b6d78936ba6e7d19dfd9c")]
    [InlineData(SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes192, "6695febc9288e36282235fc7151f128497b38f3f505e07eb")]
    [InlineData(SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256, "6695febc9288e36282235fc7151f128497b38f3f505e07eb9af25568fa1f5dbe")]
    // SHA-224 (28 octets): enough for AES-192 (both the same), extended for AES-256.
    [InlineData(SnmpAuthProtocol.Sha224, SnmpPrivProtocol.Aes192Reeder, "0bd8827c6e29f8065e08e09237f177e410f69b90e1782be6")]
    [InlineData(SnmpAuthProtocol.Sha224, SnmpPrivProtocol.Aes192, "0bd8827c6e29f8065e08e09237f177e410f69b90e1782be6")]
    [InlineData(SnmpAuthProtocol.Sha224, SnmpPrivProtocol.Aes256Reeder, "0bd8827c6e29f8065e08e09237f177e410f69b90e1782be68207567422c34be4")]
    [InlineData(SnmpAuthProtocol.Sha224, SnmpPrivProtocol.Aes256, "0bd8827c6e29f8065e08e09237f177e410f69b90e1782be682075674e82d9bf0")]
    // SHA-256 (32): no extension, both variants are Kul cut to length.
    [InlineData(SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes256Reeder, "8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a6445c2d6776f0f8b")]
    [InlineData(SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes256, "8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a6445c2d6776f0f8b")]
    [InlineData(SnmpAuthProtocol.Sha256, SnmpPrivProtocol.Aes192Reeder, "8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a")]
    public void Privacy_key_matches_pysnmp(SnmpAuthProtocol auth, SnmpPrivProtocol priv, string expected)
    {
        var ku = UsmCrypto.PasswordToKey(auth, "maplesyrup"u8);
        Assert.Equal(expected, Convert.ToHexStringLower(UsmCrypto.PrivKey(auth, priv, ku, RfcEngineId)));
        Assert.Equal(UsmCrypto.HashLength(auth) < expected.Length / 2, UsmCrypto.KeyExtensionMatters(auth, priv));
    }

    [Fact]
    public void Reeder_extension_is_the_key_so_far_taken_as_a_password_and_localised_again()
    {
        // draft-reeder-snmpv3-usm-3desede-00 2.1: K2 = localize(passwordToKey(K1)); key = K1 || K2, cut to length.
        var ku = UsmCrypto.PasswordToKey(SnmpAuthProtocol.Md5, "maplesyrup"u8);
        var k1 = UsmCrypto.Localize(SnmpAuthProtocol.Md5, ku, RfcEngineId);
        var k2 = UsmCrypto.Localize(SnmpAuthProtocol.Md5, UsmCrypto.PasswordToKey(SnmpAuthProtocol.Md5, k1), RfcEngineId);
        Assert.Equal([.. k1, .. k2], UsmCrypto.PrivKey(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes256Reeder, ku, RfcEngineId));
    }

    // pysnmp's Aes256 (SHA-1) / Aes192 (MD5) encryptData of octets 0..49 with its salt counter set to the value given
    // (pysnmp pads to a block; CFB's first 50 octets do not depend on the padding).
    [Theory]
    [InlineData(SnmpAuthProtocol.Sha1, SnmpPrivProtocol.Aes256Reeder, 7, 12345, 0x0102030405060708L,
        "e70e8d0abc67692d7dee777a9cb523df346775f3dac8cc0f2a7c595165a373f90eb5813d85c448d26ed45b1e03d4fab3352c")]
    [InlineData(SnmpAuthProtocol.Md5, SnmpPrivProtocol.Aes192Reeder, 3, 99, 0x1122334455667788L,
        "83b90dba584fcef29fb78e361c2ddc9849dfbbd0bee7d68ea7991ef25d9715b80bcfeddfbf6dd6fe03c54147d5723b9c26ab")]
    public void Ciphertext_matches_pysnmp_both_ways(SnmpAuthProtocol auth, SnmpPrivProtocol priv, int boots, int time, long salt, string cipherHex)
    {
        var key = UsmCrypto.PrivKey(auth, priv, UsmCrypto.PasswordToKey(auth, "maplesyrup"u8), RfcEngineId);
        var plain = Enumerable.Range(0, 50).Select(i => (byte)i).ToArray();
        var cipher = Convert.FromHexString(cipherHex);
        var ours = UsmPrivacy.Encrypt(priv, key, boots, time, plain, salt, out var privParams);
        Assert.Equal(cipherHex, Convert.ToHexStringLower(ours));
        Assert.Equal(salt, System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(privParams));
        Assert.Equal(plain, UsmPrivacy.Decrypt(priv, key, boots, time, privParams, cipher));
        // The Blumenthal key of the same password does not decrypt it.
        var blumenthal = UsmCrypto.PrivKey(auth, UsmCrypto.OtherKeyExtension(priv)!.Value, UsmCrypto.PasswordToKey(auth, "maplesyrup"u8), RfcEngineId);
        Assert.NotEqual(plain, UsmPrivacy.Decrypt(priv, blumenthal, boots, time, privParams, cipher));
    }

    [Fact]
    public void Whole_messages_round_trip_in_both_reeder_variants_and_fail_in_the_other_variant()
    {
        var engine = RfcEngineId;
        foreach (var (priv, other) in new[] { (SnmpPrivProtocol.Aes256Reeder, SnmpPrivProtocol.Aes256), (SnmpPrivProtocol.Aes192Reeder, SnmpPrivProtocol.Aes192) })
        {
            var user = new SnmpV3User("cisco", SnmpAuthProtocol.Sha1, "authpass123", priv, "privpass123");
            var wrong = new SnmpV3User("cisco", SnmpAuthProtocol.Sha1, "authpass123", other, "privpass123");
            var pdu = new SnmpPdu(PduType.GetRequest, 9, [new VarBind(Oid.Parse("1.3.6.1.2.1.1.5.0"), SnmpValue.Null)]);
            var msg = new SnmpMessage { Version = SnmpVersion.V3, MessageId = 9, Pdu = pdu, ContextEngineId = engine, Flags = V3Flags.Auth | V3Flags.Priv };
            var bytes = Usm.Encode(msg, user, engine, 1, 100);
            Assert.True(Usm.TryDecrypt(SnmpMessageCodec.Decode(bytes), user, out var error), error);
            // Same auth key, so the digest still verifies: only privacy tells the variants apart.
            Assert.True(Usm.VerifyAuthentication(bytes, wrong, engine));
            Assert.False(Usm.TryDecrypt(SnmpMessageCodec.Decode(bytes), wrong, out _));
        }
    }

    [Fact]
    public void Hint_names_the_other_variant_only_when_the_key_extension_decides_the_key()
    {
        var blumenthal = Usm.KeyExtensionHint(new SnmpV3User("u", SnmpAuthProtocol.Sha1, "authpass123", SnmpPrivProtocol.Aes256, "privpass123"));
        Assert.Equal("AES-256 is the Blumenthal key extension (net-snmp's default); a Cisco device (IOS, IOS-XE, NX-OS) with AES-256 needs priv protocol AES-256-C (Reeder key extension)", blumenthal);
        var reeder = Usm.KeyExtensionHint(new SnmpV3User("u", SnmpAuthProtocol.Md5, "authpass123", SnmpPrivProtocol.Aes192Reeder, "privpass123"));
        Assert.Equal("AES-192-C is the Reeder key extension (Cisco's); an agent using net-snmp's default AES-192 needs priv protocol AES-192 (Blumenthal key extension)", reeder);
        // SHA-256's 32 octets are the whole key either way: the variants are the same, a failure is the password.
        Assert.Null(Usm.KeyExtensionHint(new SnmpV3User("u", SnmpAuthProtocol.Sha256, "authpass123", SnmpPrivProtocol.Aes256, "privpass123")));
        Assert.Null(Usm.KeyExtensionHint(new SnmpV3User("u", SnmpAuthProtocol.Sha1, "authpass123", SnmpPrivProtocol.Aes128, "privpass123")));
    }
}
