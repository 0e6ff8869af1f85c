using System.Security.Cryptography;

namespace EdgeTwin.Snmp.Security;

/// <summary>Authentication protocols: HMAC-MD5-96 / HMAC-SHA-96 (RFC 3414) and the SHA-2 family of RFC 7860.</summary>
public enum SnmpAuthProtocol
{
    None,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// <summary>
/// Privacy protocols: CBC-DES (RFC 3414), CFB128-AES-128 (RFC 3826), and CFB128-AES-192/256 in the two key extensions
/// in use: Blumenthal (draft-blumenthal-aes-usm-04; net-snmp's <c>AES-192</c>/<c>AES-256</c>) and Reeder
/// (draft-reeder-snmpv3-usm-3desede-00; net-snmp's <c>AES-192-C</c>/<c>AES-256-C</c>, what Cisco devices use).
/// The cipher is the same; only the privacy key differs, and only when the auth hash is shorter than the AES key.
/// </summary>
public enum SnmpPrivProtocol
{
    None,
    Des,
    Aes128,
    /// <summary>AES-192, Blumenthal key extension (net-snmp <c>AES-192</c>).</summary>
    Aes192,
    /// <summary>AES-256, Blumenthal key extension (net-snmp <c>AES-256</c>).</summary>
    Aes256,
    /// <summary>AES-192, Reeder key extension (net-snmp <c>AES-192-C</c>, pysnmp <c>usmAesCfb192Protocol</c>; Cisco).</summary>
    Aes192Reeder,
    /// <summary>AES-256, Reeder key extension (net-snmp <c>AES-256-C</c>, pysnmp <c>usmAesCfb256Protocol</c>; Cisco).</summary>
    Aes256Reeder,
}

public enum SnmpSecurityLevel
{
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

/// <summary>Hash and HMAC primitives per protocol, with the RFC 7860 truncation lengths.</summary>
internal static class UsmCrypto
{
    public static int HashLength(SnmpAuthProtocol p) => p switch
    {
        SnmpAuthProtocol.Md5 => 16,
        SnmpAuthProtocol.Sha1 => 20,
        SnmpAuthProtocol.Sha224 => 28,
        SnmpAuthProtocol.Sha256 => 32,
        SnmpAuthProtocol.Sha384 => 48,
        SnmpAuthProtocol.Sha512 => 64,
        _ => 0,
    };

    /// <summary>Length of msgAuthenticationParameters: 12 for MD5/SHA-1 (RFC 3414), 16/24/32/48 for SHA-2 (RFC 7860).</summary>
    public static int MacLength(SnmpAuthProtocol p) => p switch
    {
        SnmpAuthProtocol.Md5 or SnmpAuthProtocol.Sha1 => 12,
        SnmpAuthProtocol.Sha224 => 16,
        SnmpAuthProtocol.Sha256 => 24,
        SnmpAuthProtocol.Sha384 => 32,
        SnmpAuthProtocol.Sha512 => 48,
        _ => 0,
    };

    public static int BlockSize(SnmpAuthProtocol p) => p is SnmpAuthProtocol.Sha384 or SnmpAuthProtocol.Sha512 ? 128 : 64;

    public static int PrivKeyLength(SnmpPrivProtocol p) => p switch
    {
        SnmpPrivProtocol.Des => 16, // 8 key + 8 pre-IV
        SnmpPrivProtocol.Aes128 => 16,
        SnmpPrivProtocol.Aes192 or SnmpPrivProtocol.Aes192Reeder => 24,
        SnmpPrivProtocol.Aes256 or SnmpPrivProtocol.Aes256Reeder => 32,
        _ => 0,
    };

    /// <summary>The same cipher with the other AES-192/256 key extension (Blumenthal ↔ Reeder); null for the others.</summary>
    public static SnmpPrivProtocol? OtherKeyExtension(SnmpPrivProtocol p) => p switch
    {
        SnmpPrivProtocol.Aes192 => SnmpPrivProtocol.Aes192Reeder,
        SnmpPrivProtocol.Aes256 => SnmpPrivProtocol.Aes256Reeder,
        SnmpPrivProtocol.Aes192Reeder => SnmpPrivProtocol.Aes192,
        SnmpPrivProtocol.Aes256Reeder => SnmpPrivProtocol.Aes256,
        _ => null,
    };

    /// <summary>True when the two key extensions give different keys: the auth hash is shorter than the AES key
    /// (MD5 and SHA-1 for AES-192/256, SHA-224 for AES-256). With SHA-256 and longer, Kul alone is the key.</summary>
    public static bool KeyExtensionMatters(SnmpAuthProtocol auth, SnmpPrivProtocol p) =>
        OtherKeyExtension(p) is not null && HashLength(auth) < PrivKeyLength(p);

    /// <summary>net-snmp's name of the protocol (<c>snmpget -x</c>), which is also ours in the CLI and the site config.</summary>
    public static string Name(SnmpPrivProtocol p) => p switch
    {
        SnmpPrivProtocol.Des => "DES",
        SnmpPrivProtocol.Aes128 => "AES",
        SnmpPrivProtocol.Aes192 => "AES-192",
        SnmpPrivProtocol.Aes256 => "AES-256",
        SnmpPrivProtocol.Aes192Reeder => "AES-192-C",
        SnmpPrivProtocol.Aes256Reeder => "AES-256-C",
        _ => "none",
    };

#pragma warning disable CA5351 // MD5 is what RFC 3414 HMAC-MD5-96 specifies; devices still use it.
    public static byte[] Hash(SnmpAuthProtocol p, ReadOnlySpan<byte> data) => p switch
    {
        SnmpAuthProtocol.Md5 => MD5.HashData(data),
#pragma warning restore CA5351
#pragma warning disable CA5350 // SHA-1 is what RFC 3414 HMAC-SHA-96 specifies.
        SnmpAuthProtocol.Sha1 => SHA1.HashData(data),
#pragma warning restore CA5350
        SnmpAuthProtocol.Sha224 => Sha224.HashData(data),
        SnmpAuthProtocol.Sha256 => SHA256.HashData(data),
        SnmpAuthProtocol.Sha384 => SHA384.HashData(data),
        SnmpAuthProtocol.Sha512 => SHA512.HashData(data),
        _ => throw new ArgumentOutOfRangeException(nameof(p), p, "no hash for this protocol"),
    };

    /// <summary>HMAC over <paramref name="data"/> with the localized key, truncated to the protocol's MAC length.</summary>
    public static byte[] Mac(SnmpAuthProtocol p, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
    {
        byte[] full;
        switch (p)
        {
#pragma warning disable CA5351, CA5350 // protocol-mandated algorithms, see above.
            case SnmpAuthProtocol.Md5:
                full = HMACMD5.HashData(key, data);
                break;
            case SnmpAuthProtocol.Sha1:
                full = HMACSHA1.HashData(key, data);
                break;
#pragma warning restore CA5351, CA5350
            case SnmpAuthProtocol.Sha256:
                full = HMACSHA256.HashData(key, data);
                break;
            case SnmpAuthProtocol.Sha384:
                full = HMACSHA384.HashData(key, data);
                break;
            case SnmpAuthProtocol.Sha512:
                full = HMACSHA512.HashData(key, data);
                break;
            case SnmpAuthProtocol.Sha224:
                full = HmacSha224(key, data);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(p), p, "no HMAC for this protocol");
        }
        return full[..MacLength(p)];
    }

    private static byte[] HmacSha224(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
    {
        Span<byte> k = stackalloc byte[Sha224.BlockSize];
        k.Clear();
        if (key.Length > Sha224.BlockSize)
        {
            Sha224.HashData(key).CopyTo(k);
        }
        else
        {
            key.CopyTo(k);
        }
        Span<byte> pad = stackalloc byte[Sha224.BlockSize];
        for (var i = 0; i < pad.Length; i++)
        {
            pad[i] = (byte)(k[i] ^ 0x36);
        }
        var inner = new Sha224();
        inner.Append(pad);
        inner.Append(data);
        var ih = inner.GetHash();
        for (var i = 0; i < pad.Length; i++)
        {
            pad[i] = (byte)(k[i] ^ 0x5c);
        }
        var outer = new Sha224();
        outer.Append(pad);
        outer.Append(ih);
        return outer.GetHash();
    }

    /// <summary>RFC 3414 A.2: hash of the password repeated to 1 MiB (Ku).</summary>
    public static byte[] PasswordToKey(SnmpAuthProtocol p, ReadOnlySpan<byte> password)
    {
        if (password.Length == 0)
        {
            throw new ArgumentException("an SNMPv3 password must not be empty", nameof(password));
        }
        const int Total = 1_048_576;
        var chunk = new byte[64 * 64]; // 4 KiB of repeated password, fed 256 times
        var idx = 0;
        if (p == SnmpAuthProtocol.Sha224)
        {
            var s = new Sha224();
            for (var done = 0; done < Total; done += chunk.Length)
            {
                Fill(chunk, password, ref idx);
                s.Append(chunk);
            }
            return s.GetHash();
        }
        using var h = IncrementalHash.CreateHash(p switch
        {
            SnmpAuthProtocol.Md5 => HashAlgorithmName.MD5,
            SnmpAuthProtocol.Sha1 => HashAlgorithmName.SHA1,
            SnmpAuthProtocol.Sha256 => HashAlgorithmName.SHA256,
            SnmpAuthProtocol.Sha384 => HashAlgorithmName.SHA384,
            SnmpAuthProtocol.Sha512 => HashAlgorithmName.SHA512,
            _ => throw new ArgumentOutOfRangeException(nameof(p), p, "no hash for this protocol"),
        });
        for (var done = 0; done < Total; done += chunk.Length)
        {
            Fill(chunk, password, ref idx);
            h.AppendData(chunk);
        }
        return h.GetHashAndReset();
    }

    private static void Fill(byte[] chunk, ReadOnlySpan<byte> password, ref int idx)
    {
        for (var i = 0; i < chunk.Length; i++)
        {
            chunk[i] = password[idx++ % password.Length];
        }
        idx %= password.Length;
    }

    /// <summary>RFC 3414 A.2: Kul = H(Ku || engineID || Ku).</summary>
    public static byte[] Localize(SnmpAuthProtocol p, ReadOnlySpan<byte> ku, ReadOnlySpan<byte> engineId)
    {
        var buf = new byte[(ku.Length * 2) + engineId.Length];
        ku.CopyTo(buf);
        engineId.CopyTo(buf.AsSpan(ku.Length));
        ku.CopyTo(buf.AsSpan(ku.Length + engineId.Length));
        return Hash(p, buf);
    }

    /// <summary>
    /// The privacy key: the priv password localized with the auth hash (Kul), then, if shorter than the cipher needs,
    /// extended. Blumenthal (draft-blumenthal-aes-usm-04 3.1.2.1): append H(key so far). Reeder
    /// (draft-reeder-snmpv3-usm-3desede-00 2.1): append the localization of a Ku made from the key so far, i.e. the key
    /// so far taken as a password (1 MiB hash, RFC 3414 A.2.1) and localized to the same engine id. Each is what
    /// net-snmp (<c>_kul_extend_blumenthal</c> / <c>_kul_extend_reeder</c>) and pysnmp (<c>AbstractAesBlumenthal</c> /
    /// <c>AbstractAesReeder</c>) do; one round is always enough (the shortest hash, MD5, gives 16 + 16 octets).
    /// </summary>
    public static byte[] PrivKey(SnmpAuthProtocol auth, SnmpPrivProtocol priv, ReadOnlySpan<byte> privKu, ReadOnlySpan<byte> engineId)
    {
        var kul = Localize(auth, privKu, engineId);
        var need = PrivKeyLength(priv);
        if (kul.Length >= need)
        {
            return kul[..need];
        }
        var reeder = priv is SnmpPrivProtocol.Aes192Reeder or SnmpPrivProtocol.Aes256Reeder;
        var key = new byte[need];
        kul.CopyTo(key, 0);
        var have = kul.Length;
        while (have < need)
        {
            var more = reeder
                ? Localize(auth, PasswordToKey(auth, key.AsSpan(0, have)), engineId)
                : Hash(auth, key.AsSpan(0, have));
            var take = Math.Min(more.Length, need - have);
            more.AsSpan(0, take).CopyTo(key.AsSpan(have));
            have += take;
        }
        return key;
    }
}
