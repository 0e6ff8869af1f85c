using System.Security.Cryptography;
using EdgeTwin.Snmp.Ber;
using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.Snmp.Security;

/// <summary>
/// User-based security (RFC 3414) applied to whole messages: authenticate + encrypt outgoing, verify + decrypt incoming,
/// and the usmStats report OIDs.
/// </summary>
public static class Usm
{
    public static readonly Oid UsmStatsUnsupportedSecLevels = Oid.Parse("1.3.6.1.6.3.15.1.1.1.0");
    public static readonly Oid UsmStatsNotInTimeWindows = Oid.Parse("1.3.6.1.6.3.15.1.1.2.0");
    public static readonly Oid UsmStatsUnknownUserNames = Oid.Parse("1.3.6.1.6.3.15.1.1.3.0");
    public static readonly Oid UsmStatsUnknownEngineIds = Oid.Parse("1.3.6.1.6.3.15.1.1.4.0");
    public static readonly Oid UsmStatsWrongDigests = Oid.Parse("1.3.6.1.6.3.15.1.1.5.0");
    public static readonly Oid UsmStatsDecryptionErrors = Oid.Parse("1.3.6.1.6.3.15.1.1.6.0");

    /// <summary>RFC 3414 section 2.2.3: 150 seconds either way.</summary>
    public const int TimeWindowSeconds = 150;

    /// <summary>Maps a Report PDU's first varbind to the USM error it stands for, or null when it is not a usmStats report.</summary>
    public static UsmError? ReportError(SnmpPdu report)
    {
        if (report.VarBinds.Count == 0)
        {
            return null;
        }
        var oid = report.VarBinds[0].Oid;
        if (oid == UsmStatsUnsupportedSecLevels) { return UsmError.UnsupportedSecurityLevel; }
        if (oid == UsmStatsNotInTimeWindows) { return UsmError.NotInTimeWindow; }
        if (oid == UsmStatsUnknownUserNames) { return UsmError.UnknownUserName; }
        if (oid == UsmStatsUnknownEngineIds) { return UsmError.UnknownEngineId; }
        if (oid == UsmStatsWrongDigests) { return UsmError.WrongDigest; }
        if (oid == UsmStatsDecryptionErrors) { return UsmError.DecryptionError; }
        return null;
    }

    public static string Describe(UsmError error) => error switch
    {
        UsmError.UnsupportedSecurityLevel => "unsupported security level for this user (usmStatsUnsupportedSecLevels)",
        UsmError.NotInTimeWindow => "not in time window (usmStatsNotInTimeWindows)",
        UsmError.UnknownUserName => "unknown user name (usmStatsUnknownUserNames)",
        UsmError.UnknownEngineId => "unknown engine id (usmStatsUnknownEngineIDs)",
        UsmError.WrongDigest => "authentication failure: wrong auth password or protocol (usmStatsWrongDigests)",
        UsmError.DecryptionError => "decryption error: wrong privacy password or protocol (usmStatsDecryptionErrors)",
        UsmError.ResponseAuthenticationFailed => "response failed authentication: wrong auth password or protocol",
        UsmError.ResponseDecryptionFailed => "response could not be decrypted: wrong privacy password or protocol",
        _ => "unexpected report",
    };

    /// <summary>
    /// For a decryption failure of <paramref name="user"/>'s messages: when its AES-192/256 key extension decides the key
    /// (the auth hash is shorter than the AES key), which other variant to try and why; null otherwise (a wrong password).
    /// Regression: a Cisco device (IOS, IOS-XE, NX-OS) localises AES-192/256 keys with the Reeder extension, so polled
    /// with our AES-256 (Blumenthal, net-snmp's default) every request failed to decrypt, and the error said only "wrong
    /// privacy password or protocol", with nothing naming the variant that works.
    /// </summary>
    public static string? KeyExtensionHint(SnmpV3User user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!UsmCrypto.KeyExtensionMatters(user.Auth, user.Priv) || UsmCrypto.OtherKeyExtension(user.Priv) is not { } other)
        {
            return null;
        }
        var ours = UsmCrypto.Name(user.Priv);
        var theirs = UsmCrypto.Name(other);
        var bits = UsmCrypto.PrivKeyLength(user.Priv) * 8;
        return other is SnmpPrivProtocol.Aes192Reeder or SnmpPrivProtocol.Aes256Reeder
            ? $"{ours} is the Blumenthal key extension (net-snmp's default); a Cisco device (IOS, IOS-XE, NX-OS) with " +
              $"AES-{bits} needs priv protocol {theirs} (Reeder key extension)"
            : $"{ours} is the Reeder key extension (Cisco's); an agent using net-snmp's default AES-{bits} " +
              $"needs priv protocol {theirs} (Blumenthal key extension)";
    }

    /// <summary>
    /// Encodes <paramref name="message"/> for <paramref name="user"/> at the level its flags ask for: encrypts the scoped PDU,
    /// then computes the HMAC over the whole message and writes it into msgAuthenticationParameters.
    /// </summary>
    public static byte[] Encode(SnmpMessage message, SnmpV3User? user, byte[] engineId, int boots, int time)
    {
        var auth = (message.Flags & V3Flags.Auth) != 0;
        var priv = (message.Flags & V3Flags.Priv) != 0;
        if ((auth || priv) && user is null)
        {
            throw new ArgumentException("authenticated messages need a user", nameof(user));
        }
        var keys = auth ? user!.KeysFor(engineId) : null;
        var privParams = Array.Empty<byte>();
        message.EncryptedPdu = null;
        if (priv)
        {
            using var sw = new BerWriter();
            SnmpMessageCodec.EncodeScopedPdu(message, sw);
            message.EncryptedPdu = UsmPrivacy.Encrypt(user!.Priv, keys!.PrivKey, boots, time, sw.WrittenSpan, out privParams);
        }
        message.Usm = new UsmParameters(engineId, boots, time, user?.NameBytes ?? [],
            auth ? new byte[UsmCrypto.MacLength(user!.Auth)] : [], privParams);
        var bytes = SnmpMessageCodec.Encode(message);
        if (auth)
        {
            var (offset, length) = FindAuthParameters(bytes);
            UsmCrypto.Mac(user!.Auth, keys!.AuthKey, bytes).CopyTo(bytes.AsSpan(offset, length));
        }
        return bytes;
    }

    /// <summary>Checks the HMAC of a received message (constant-time compare).</summary>
    public static bool VerifyAuthentication(ReadOnlySpan<byte> packet, SnmpV3User user, ReadOnlySpan<byte> engineId)
    {
        var (offset, length) = FindAuthParameters(packet);
        if (length != UsmCrypto.MacLength(user.Auth))
        {
            return false;
        }
        var copy = packet.ToArray();
        copy.AsSpan(offset, length).Clear();
        var mac = UsmCrypto.Mac(user.Auth, user.KeysFor(engineId).AuthKey, copy);
        return CryptographicOperations.FixedTimeEquals(mac, packet.Slice(offset, length));
    }

    /// <summary>Decrypts the scoped PDU of a received message in place; false when the key is wrong (garbage does not parse).</summary>
    public static bool TryDecrypt(SnmpMessage message, SnmpV3User user, out string? error)
    {
        error = null;
        if (message.EncryptedPdu is null)
        {
            return true;
        }
        try
        {
            var keys = user.KeysFor(message.Usm.EngineId);
            var plain = UsmPrivacy.Decrypt(user.Priv, keys.PrivKey, message.Usm.EngineBoots, message.Usm.EngineTime,
                message.Usm.PrivacyParameters, message.EncryptedPdu);
            SnmpMessageCodec.DecodeScopedPdu(plain, message);
            message.EncryptedPdu = null;
            return true;
        }
        catch (Exception ex) when (ex is CryptographicException or SnmpProtocolException)
        {
            error = ex.Message;
            return false;
        }
    }

    /// <summary>Finds msgAuthenticationParameters' content inside an encoded v3 message.</summary>
    public static (int Offset, int Length) FindAuthParameters(ReadOnlySpan<byte> packet)
    {
        var r = new BerReader(packet);
        var msg = r.ReadConstructed(0x30, "message SEQUENCE");
        msg.ReadInt32("msgVersion");
        msg.ReadConstructed(0x30, "msgGlobalData");
        var sec = msg.ReadConstructed(0x04, "msgSecurityParameters");
        var usm = sec.ReadConstructed(0x30, "UsmSecurityParameters");
        usm.ReadOctetString("msgAuthoritativeEngineID");
        usm.ReadInt32("msgAuthoritativeEngineBoots");
        usm.ReadInt32("msgAuthoritativeEngineTime");
        usm.ReadOctetString("msgUserName");
        var len = usm.ReadHeader(out var tag, out var start);
        if (tag != 0x04)
        {
            throw usm.Error("msgAuthenticationParameters is not an OCTET STRING", start);
        }
        return (start, len);
    }
}
