using System.Text;

namespace EdgeTwin.Core.Config;

/// <summary>SNMP protocol version.</summary>
public enum SnmpVersion
{
    /// <summary>SNMPv1 (<c>version: 1</c>).</summary>
    V1,
    /// <summary>SNMPv2c (<c>version: 2c</c>).</summary>
    V2c,
    /// <summary>SNMPv3 with USM (<c>version: 3</c>).</summary>
    V3,
}

/// <summary>SNMPv3 security level.</summary>
public enum SnmpSecurityLevel
{
    /// <summary><c>noAuthNoPriv</c>.</summary>
    NoAuthNoPriv,
    /// <summary><c>authNoPriv</c>.</summary>
    AuthNoPriv,
    /// <summary><c>authPriv</c>.</summary>
    AuthPriv,
}

/// <summary>SNMPv3 authentication protocol (RFC 3414, RFC 7860).</summary>
public enum SnmpAuthProtocol
{
    /// <summary>No authentication.</summary>
    None,
    /// <summary>HMAC-MD5-96 (<c>MD5</c>).</summary>
    Md5,
    /// <summary>HMAC-SHA-96 (<c>SHA</c>).</summary>
    Sha1,
    /// <summary>HMAC-SHA-224 (<c>SHA-224</c>).</summary>
    Sha224,
    /// <summary>HMAC-SHA-256 (<c>SHA-256</c>).</summary>
    Sha256,
    /// <summary>HMAC-SHA-384 (<c>SHA-384</c>).</summary>
    Sha384,
    /// <summary>HMAC-SHA-512 (<c>SHA-512</c>).</summary>
    Sha512,
}

/// <summary>SNMPv3 privacy protocol.</summary>
public enum SnmpPrivProtocol
{
    /// <summary>No privacy.</summary>
    None,
    /// <summary>CBC-DES (<c>DES</c>).</summary>
    Des,
    /// <summary>CFB128-AES-128 (<c>AES</c> or <c>AES-128</c>).</summary>
    Aes128,
    /// <summary>AES-192 (Blumenthal key extension, <c>AES-192</c>).</summary>
    Aes192,
    /// <summary>AES-256 (Blumenthal key extension, <c>AES-256</c>).</summary>
    Aes256,
    /// <summary>AES-192 (Reeder key extension, <c>AES-192-C</c>: Cisco IOS, IOS-XE, NX-OS).</summary>
    Aes192Reeder,
    /// <summary>AES-256 (Reeder key extension, <c>AES-256-C</c>: Cisco IOS, IOS-XE, NX-OS).</summary>
    Aes256Reeder,
}

/// <summary>
/// Named credentials a device refers to. Passwords come either inline or from <c>*_password_file</c>
/// (read once at load; the file name is kept for writing the config back). <see cref="ToString"/> never prints secrets.
/// </summary>
/// <param name="Name">The key under <c>credentials:</c>.</param>
/// <param name="Version">SNMP version.</param>
public sealed record CredentialsConfig(string Name, SnmpVersion Version)
{
    /// <summary>Community string for v1/v2c (from <c>community</c> or the contents of <c>community_file</c>).</summary>
    public string? Community { get; init; }

    /// <summary>The file the community was read from, or null when given inline.</summary>
    public string? CommunityFile { get; init; }

    /// <summary>USM user name for v3.</summary>
    public string? User { get; init; }

    /// <summary>Security level for v3.</summary>
    public SnmpSecurityLevel Level { get; init; } = SnmpSecurityLevel.NoAuthNoPriv;

    /// <summary>Authentication protocol for v3.</summary>
    public SnmpAuthProtocol Auth { get; init; } = SnmpAuthProtocol.None;

    /// <summary>Authentication passphrase (from <c>auth_password</c> or the contents of <c>auth_password_file</c>).</summary>
    public string? AuthPassword { get; init; }

    /// <summary>The file the authentication passphrase was read from, or null when given inline.</summary>
    public string? AuthPasswordFile { get; init; }

    /// <summary>Privacy protocol for v3.</summary>
    public SnmpPrivProtocol Priv { get; init; } = SnmpPrivProtocol.None;

    /// <summary>Privacy passphrase (from <c>priv_password</c> or the contents of <c>priv_password_file</c>).</summary>
    public string? PrivPassword { get; init; }

    /// <summary>The file the privacy passphrase was read from, or null when given inline.</summary>
    public string? PrivPasswordFile { get; init; }

    /// <summary>SNMPv3 context name (empty by default).</summary>
    public string? Context { get; init; }

    /// <summary>v2c credentials with a community.</summary>
    public static CredentialsConfig V2c(string name, string community) => new(name, SnmpVersion.V2c) { Community = community };

    private bool PrintMembers(StringBuilder builder)
    {
        // Secrets never reach logs: community and passphrases are masked.
        builder.Append("Name = ").Append(Name).Append(", Version = ").Append(Version);
        if (Version == SnmpVersion.V3)
        {
            builder.Append(", User = ").Append(User).Append(", Level = ").Append(Level)
                .Append(", Auth = ").Append(Auth).Append(", Priv = ").Append(Priv);
        }
        else
        {
            builder.Append(", Community = ***");
        }

        return true;
    }
}
