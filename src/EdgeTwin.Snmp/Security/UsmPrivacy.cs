using System.Buffers.Binary;
using System.Security.Cryptography;

namespace EdgeTwin.Snmp.Security;

/// <summary>CBC-DES (RFC 3414 section 8) and CFB128-AES (RFC 3826 section 3; the same for AES-192/256 in either key
/// extension, only the key is longer) for scoped PDUs.</summary>
internal static class UsmPrivacy
{
    private static long _salt = RandomNumberGenerator.GetInt32(int.MaxValue) * 7919L;

    /// <summary>Encrypts; returns the ciphertext and writes the 8-octet msgPrivacyParameters (the salt).</summary>
    public static byte[] Encrypt(SnmpPrivProtocol p, byte[] privKey, int boots, int time, ReadOnlySpan<byte> plain, out byte[] privParams) =>
        Encrypt(p, privKey, boots, time, plain, Interlocked.Increment(ref _salt), out privParams);

    /// <summary>Encrypts with the given salt (the local counter; tests compare with another implementation's output).</summary>
    internal static byte[] Encrypt(SnmpPrivProtocol p, byte[] privKey, int boots, int time, ReadOnlySpan<byte> plain, long salt, out byte[] privParams)
    {
        privParams = new byte[8];
        if (p == SnmpPrivProtocol.Des)
        {
            // salt = engineBoots || local 32-bit counter; IV = pre-IV XOR salt.
            BinaryPrimitives.WriteInt32BigEndian(privParams, boots);
            BinaryPrimitives.WriteInt32BigEndian(privParams.AsSpan(4), (int)salt);
            var iv = DesIv(privKey, privParams);
            var padded = new byte[(plain.Length + 7) / 8 * 8];
            plain.CopyTo(padded);
#pragma warning disable CA5351 // CBC-DES is what RFC 3414 usmDESPrivProtocol specifies.
            using var des = DES.Create();
#pragma warning restore CA5351
            des.Key = privKey[..8];
            return des.EncryptCbc(padded, iv, PaddingMode.None);
        }
        BinaryPrimitives.WriteInt64BigEndian(privParams, salt);
        using var aes = Aes.Create();
        aes.Key = privKey;
        return Cfb(aes, AesIv(boots, time, privParams), plain, encrypt: true);
    }

    /// <summary>Decrypts; throws <see cref="CryptographicException"/> when the input cannot be a ciphertext of this protocol.</summary>
    public static byte[] Decrypt(SnmpPrivProtocol p, byte[] privKey, int boots, int time, ReadOnlySpan<byte> privParams, ReadOnlySpan<byte> cipher)
    {
        if (privParams.Length != 8)
        {
            throw new CryptographicException($"msgPrivacyParameters is {privParams.Length} octets (expected 8)");
        }
        if (p == SnmpPrivProtocol.Des)
        {
            if (cipher.Length % 8 != 0)
            {
                throw new CryptographicException($"DES ciphertext of {cipher.Length} octets is not a multiple of 8");
            }
#pragma warning disable CA5351 // see above.
            using var des = DES.Create();
#pragma warning restore CA5351
            des.Key = privKey[..8];
            return des.DecryptCbc(cipher, DesIv(privKey, privParams), PaddingMode.None);
        }
        using var aes = Aes.Create();
        aes.Key = privKey;
        return Cfb(aes, AesIv(boots, time, privParams), cipher, encrypt: false);
    }

    private static byte[] DesIv(byte[] privKey, ReadOnlySpan<byte> salt)
    {
        var iv = new byte[8];
        for (var i = 0; i < 8; i++)
        {
            iv[i] = (byte)(privKey[8 + i] ^ salt[i]);
        }
        return iv;
    }

    private static byte[] AesIv(int boots, int time, ReadOnlySpan<byte> salt)
    {
        var iv = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(iv, boots);
        BinaryPrimitives.WriteInt32BigEndian(iv.AsSpan(4), time);
        salt.CopyTo(iv.AsSpan(8));
        return iv;
    }

    /// <summary>CFB128 on arbitrary lengths: .NET wants whole blocks, and CFB output for a prefix does not depend on what follows.</summary>
    private static byte[] Cfb(Aes aes, byte[] iv, ReadOnlySpan<byte> input, bool encrypt)
    {
        var padded = new byte[(input.Length + 15) / 16 * 16];
        input.CopyTo(padded);
        var output = encrypt
            ? aes.EncryptCfb(padded, iv, PaddingMode.None, 128)
            : aes.DecryptCfb(padded, iv, PaddingMode.None, 128);
        return output[..input.Length];
    }
}
